"""Where a corpus keeps its uploads' vocal stems (`trackguard corpus make --stems`).

Its own small module so that training and evaluation can find stems without
importing the corpus renderer (speech synthesis, WORLD).
"""

from __future__ import annotations

from pathlib import Path

from features.io import local_path

STEMS_DIR = "stems"
UPLOADS_DIR = "audio"


def stem_path(audio_path: str | Path) -> Path:
    """Where the vocal stem of the upload at ``audio_path`` goes (``audio/u000042.mp3`` →
    ``stems/u000042.flac``): mono FLAC at 16 kHz, sample-aligned with the upload, holding the
    vocal exactly as it was mixed into it (its gain, fades and silences). Only uploads
    (files in ``audio/``) have stems."""
    p = Path(audio_path)
    if p.parent.name != UPLOADS_DIR:
        raise ValueError(f"{p} is not a corpus upload (in {UPLOADS_DIR}/): only uploads have stems")
    return p.parent.parent / STEMS_DIR / f"{p.stem}.flac"


def existing_stem(uri: str) -> Path | None:
    """The vocal stem of the upload at ``uri`` (a path or ``file://`` URI), or None when it has none."""
    local = local_path(uri)
    if local is None or Path(local).parent.name != UPLOADS_DIR:
        return None
    path = stem_path(local)
    return path if path.exists() else None
