"""Self-describing model artifacts (pyannote-style).

An artifact is a directory holding ``artifact.json`` plus weight files. The JSON
records the class path, slot and name, the spec (sample rate, window, hop, ...),
a version, the training-data description, metrics, the calibrated threshold and
the library versions it was made with — enough to reload and to audit it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

ARTIFACT_FILE = "artifact.json"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchaudio", "lightgbm", "numpy", "trackguard"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclasses.dataclass
class ArtifactCard:
    slot: str
    name: str
    class_path: str
    spec: dict[str, Any]
    version: str
    training_data: str
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    threshold: float | None = None
    calibration: dict[str, float] = dataclasses.field(default_factory=dict)
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> sha256
    command: str = ""  # the command that made it
    created_at: str = ""
    versions: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def model_id(self) -> str:
        digest = "".join(self.files[k] for k in sorted(self.files))
        short = hashlib.sha256(digest.encode()).hexdigest()[:8] if digest else "nofiles"
        return f"{self.slot}/{self.name}@{self.version}+{short}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_card(directory: Path, card: ArtifactCard) -> Path:
    """Write ``artifact.json`` after hashing every listed file in the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    card.files = {name: sha256_file(directory / name) for name in sorted(card.files)}
    card.created_at = card.created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    card.versions = card.versions or _versions()
    path = directory / ARTIFACT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(card), indent=2, sort_keys=True))
    tmp.replace(path)
    return path


class ArtifactError(RuntimeError):
    pass


def load_card(directory: Path, verify: bool = True) -> ArtifactCard:
    path = Path(directory) / ARTIFACT_FILE
    if not path.exists():
        raise ArtifactError(
            f"no model artifact at {directory} (missing {ARTIFACT_FILE}). "
            "Train one with `trackguard train detector|spam` or run `make demo`."
        )
    card = ArtifactCard(**json.loads(path.read_text()))
    if verify:
        for name, digest in card.files.items():
            f = Path(directory) / name
            if not f.exists() or sha256_file(f) != digest:
                raise ArtifactError(f"artifact file {f} is missing or does not match its recorded sha256")
    return card
