"""Duplicate transforms: what re-uploaders do to slip past fingerprinting.

Pitch and tempo changes go through sox (WSOLA / resampling), always to a float
file so that sox never dithers (dither noise would make the output irreproducible).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from trackguard.corpus.encode import wav_bytes

TRANSFORMS = ("pitch_+2st", "pitch_-1st", "pitch_+1st", "pitch_-2st", "tempo_-8pct", "tempo_+6pct", "tempo_-5pct",
              "tempo_+10pct", "speed_+4pct", "reencode_mp3", "reencode_ogg", "noise", "gain")


def _sox(x: np.ndarray, sr: int, effect: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="tg-sox-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        src.write_bytes(wav_bytes(x, sr, "float"))
        subprocess.run(["sox", "-R", "-D", str(src), "-e", "floating-point", "-b", "32", str(dst), *effect],
                       check=True, capture_output=True, timeout=600)
        y, _ = sf.read(str(dst), dtype="float32", always_2d=True)
    return y


def rate_factor(name: str) -> float:
    """How many times faster a transform plays its source: 1 + p/100 for ``tempo_±p pct`` and ``speed_±p pct``
    (so the copy lasts 1/factor as long), 1 for every other transform."""
    kind, _, arg = name.partition("_")
    return 1 + int(arg.rstrip("pct")) / 100 if kind in ("tempo", "speed") else 1.0


def apply(name: str, x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Transform (n, channels) float audio; re-encodes are handled by the caller (delivery format)."""
    kind, _, arg = name.partition("_")
    if kind == "pitch":
        return _sox(x, sr, ["pitch", str(100 * int(arg.rstrip("st")))])
    if kind == "tempo":
        return _sox(x, sr, ["tempo", "-m", f"{rate_factor(name):.4f}"])
    if kind == "speed":
        return _sox(x, sr, ["speed", f"{rate_factor(name):.4f}", "rate", "-h", str(sr)])
    if kind == "noise":
        level = np.sqrt(np.mean(x**2)) * 10 ** (-rng.uniform(20, 30) / 20)
        return (x + level * rng.standard_normal(x.shape)).astype(np.float32)
    if kind == "gain":
        gain_db = float(rng.choice([-8, -6, -4, 3, 4]))
        return np.clip(x * 10 ** (gain_db / 20), -1, 1).astype(np.float32)
    return x  # reencode_*: only the delivery changes
