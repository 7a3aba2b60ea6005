"""Broken uploads, each of which the pipeline must turn into a specific error code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trackguard.corpus.encode import wav_bytes

AUDIO_ERRORS = ("audio_empty", "audio_truncated", "audio_undecodable", "audio_nonfinite", "audio_too_short",
                "audio_missing")
METADATA_ERRORS = ("missing_field", "invalid_timestamp", "invalid_uri", "invalid_field")
TRUNCATE_FRACTION = 0.6
TOO_SHORT_S = 0.05
NONFINITE_S = 6.0


def write_empty(path: Path) -> None:
    path.write_bytes(b"")


def truncate(path: Path) -> None:
    """Keep the first 60 % of a rendered WAV/FLAC: headers still promise the full length."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * TRUNCATE_FRACTION)])


def write_undecodable(path: Path, rng: np.random.Generator) -> None:
    """Not audio at all: an HTML error page a CDN returned, or random bytes with no MPEG sync word."""
    if rng.random() < 0.5:
        body = b"<!DOCTYPE html><html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1>"
        path.write_bytes(body + b"<p>" + b"x" * int(rng.integers(2000, 8000)) + b"</p></body></html>\n")
    else:
        # bytes 0x00-0xFE only: 0xFF would start an MPEG frame sync and let a lenient decoder "find" audio
        path.write_bytes(rng.integers(0, 255, size=int(rng.integers(20_000, 80_000)), dtype=np.uint8).tobytes())


def write_nonfinite(path: Path, rng: np.random.Generator, sr: int, seconds: float = NONFINITE_S) -> None:
    """A float32 WAV of a tone whose middle is NaN (and one +inf): a broken DSP chain's output."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 600) * t)
    start = int(rng.integers(n // 4, n // 2))
    x[start : start + int(rng.integers(sr // 10, sr))] = np.nan
    x[int(rng.integers(0, n))] = np.inf
    path.write_bytes(wav_bytes(np.stack([x, x], axis=1), sr, "float"))


def write_too_short(path: Path, rng: np.random.Generator, sr: int) -> None:
    n = int(sr * TOO_SHORT_S)
    x = 0.5 * np.sin(2 * np.pi * rng.uniform(300, 900) * np.arange(n) / sr) * np.hanning(n)
    path.write_bytes(wav_bytes(x, sr, "pcm16"))
