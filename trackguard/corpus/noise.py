"""Noise and "sleep sound" tracks: rain, ocean, fan, coloured noise (the bulk-spam staple)."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

NOISE_KINDS = ("rain", "ocean", "fan", "white", "pink", "brown")
NOISE_NAMES = {"rain": "Rain Sounds", "ocean": "Ocean Waves", "fan": "Fan Noise", "white": "White Noise",
               "pink": "Pink Noise", "brown": "Brown Noise"}


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    # Paul Kellet's economy filter: -3 dB/octave within ~1 dB over the audio band
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, rng.standard_normal(n))


def _brown(rng: np.random.Generator, n: int) -> np.ndarray:
    return lfilter([1.0], [1.0, -0.995], rng.standard_normal(n))


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    bed = sosfilt(butter(2, [400, min(9000, sr * 0.45)], btype="bandpass", fs=sr, output="sos"), _pink(rng, n))
    drops = np.zeros(n)
    hits = rng.integers(0, n, size=int(n / sr * rng.uniform(20, 80)))
    drops[hits] = rng.uniform(0.2, 1.0, size=len(hits))
    drops = lfilter([1.0], [1.0, -0.93], drops * rng.standard_normal(n))  # each drop: a short noisy decay
    return bed / (np.std(bed) + 1e-12) + 0.6 * drops / (np.std(drops) + 1e-12)


def noise_track(kind: str, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Stereo (n, 2) noise of the given kind, unit-ish level (normalised by the caller)."""
    chans = []
    t = np.arange(n) / sr
    swell_rate = rng.uniform(0.06, 0.14)
    for ch in range(2):
        if kind == "rain":
            x = _rain(rng, n, sr)
        elif kind == "ocean":
            x = _brown(rng, n) * (0.35 + 0.65 * np.sin(np.pi * swell_rate * t + ch * 0.3) ** 2)
        elif kind == "fan":
            x = _brown(rng, n) + 0.02 * np.sin(2 * np.pi * 120 * t) * np.std(_brown(rng, 4096))
        elif kind == "pink":
            x = _pink(rng, n)
        elif kind == "brown":
            x = _brown(rng, n)
        else:
            x = rng.standard_normal(n)
        chans.append(x / (np.std(x) + 1e-12))
    return np.stack(chans, axis=1)
