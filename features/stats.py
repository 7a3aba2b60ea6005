"""Whole-track audio statistics for the spam model and for reviewers.

One pass over the track in chunks (bounded memory for a 2-hour file): each chunk
is K-weighted for loudness (ITU-R BS.1770-4, filter state carried across chunks)
and cut into 32 ms frames for level, silence, zero-crossing and spectral shape.

Levels are in dB relative to digital full scale (a full-scale square wave is
0 dBFS RMS, a full-scale sine -3.01). Digital silence is floored at -120 dBFS
and, for loudness, at -70 LUFS (BS.1770's absolute gate) so that every value is
finite.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from scipy.signal import sosfilt

STAT_KEYS = (
    "duration_s",
    "loudness_lufs",
    "peak_dbfs",
    "rms_dbfs",
    "silence_ratio",
    "leading_silence_s",
    "trailing_silence_s",
    "spectral_flatness",
    "spectral_centroid_hz",
    "zcr",
    "dynamic_range_db",
)
SILENCE_DBFS = -50.0
_FLOOR_DBFS = -120.0
_ABS_GATE_LUFS = -70.0
_REL_GATE_LU = -10.0
_FRAME_S = 0.032
_FRAMES_PER_CHUNK = 256


@functools.lru_cache(maxsize=16)
def k_weighting_sos(sr: int) -> np.ndarray:
    """BS.1770 K-weighting (high shelf + RLB high-pass) as second-order sections for ``sr``.

    Bilinear designs from the analogue parameters that reproduce the standard's
    48 kHz coefficients (libebur128's derivation), so any sample rate gets the same curve.
    """
    # stage 1: high shelf, +4 dB above ~1.7 kHz (the head's acoustic effect)
    k = np.tan(np.pi * 1681.974450955533 / sr)
    q, vh = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
    shelf += [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    # stage 2: high-pass at ~38 Hz (the revised low-frequency B-curve)
    k = np.tan(np.pi * 38.13547087602444 / sr)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    sos = np.array([shelf, high_pass])
    sos.setflags(write=False)
    return sos


class _Blocker:
    """Cuts a stream pushed in chunks into consecutive fixed-size blocks, carrying the remainder."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rest = np.zeros(0)

    def push(self, x: np.ndarray) -> np.ndarray:
        if self._rest.size:
            x = np.concatenate([self._rest, x])
        k = x.size // self.size
        self._rest = x[k * self.size :].copy()
        return x[: k * self.size].reshape(k, self.size)

    @property
    def rest(self) -> np.ndarray:
        return self._rest


@dataclasses.dataclass
class _FrameStats:
    """Per-frame values collected over the pass (a few floats per 32 ms)."""

    rms_db: list[np.ndarray] = dataclasses.field(default_factory=list)
    flatness: list[np.ndarray] = dataclasses.field(default_factory=list)
    centroid: list[np.ndarray] = dataclasses.field(default_factory=list)
    zcr: list[np.ndarray] = dataclasses.field(default_factory=list)

    def add(self, frames: np.ndarray, window: np.ndarray, freqs: np.ndarray) -> None:
        if frames.shape[0] == 0:
            return
        self.rms_db.append(_db(np.mean(frames**2, axis=1)))
        signs = np.signbit(frames)
        self.zcr.append(np.mean(signs[:, 1:] != signs[:, :-1], axis=1))
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 + 1e-12
        self.flatness.append(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1))
        self.centroid.append((power * freqs).sum(axis=1) / power.sum(axis=1))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0)

        return cat(self.rms_db), cat(self.flatness), cat(self.centroid), cat(self.zcr)


def _db(power: np.ndarray | float) -> np.ndarray:
    """Power → dB, floored at _FLOOR_DBFS."""
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), _FLOOR_DBFS)


def _gated_loudness(z: np.ndarray) -> tuple[float, float]:
    """(integrated loudness LUFS, 95th–5th percentile spread LU) from 400 ms block mean squares."""
    lk = -0.691 + 10 * np.log10(np.maximum(z, 1e-30))
    above = lk > _ABS_GATE_LUFS
    if not above.any():
        return _ABS_GATE_LUFS, 0.0
    rel_gate = -0.691 + 10 * np.log10(z[above].mean()) + _REL_GATE_LU
    kept = above & (lk > rel_gate)
    loudness = -0.691 + 10 * np.log10(z[kept].mean()) if kept.any() else _ABS_GATE_LUFS
    spread = float(np.percentile(lk[above], 95) - np.percentile(lk[above], 5)) if above.sum() > 1 else 0.0
    return max(float(loudness), _ABS_GATE_LUFS), spread


def _block_mean_squares(sub_sums: np.ndarray, hop: int, tail: np.ndarray, n: int) -> np.ndarray:
    """BS.1770 400 ms blocks (75 % overlap) from 100 ms sums; a track under 400 ms is one block."""
    if sub_sums.size >= 4:
        return np.convolve(sub_sums, np.ones(4), mode="valid") / (4 * hop)
    return np.array([(sub_sums.sum() + float(np.sum(tail**2))) / max(n, 1)])


def _edges(silent: np.ndarray, frame_s: float, duration_s: float) -> tuple[float, float]:
    """Leading and trailing silence in seconds (the whole duration when all frames are silent)."""
    loud = np.flatnonzero(~silent)
    if loud.size == 0:
        return duration_s, duration_s
    return float(loud[0] * frame_s), float(max(duration_s - (loud[-1] + 1) * frame_s, 0.0))


def audio_stats(samples: np.ndarray, sr: int) -> dict[str, float]:
    """Statistics of a mono track (keys: STAT_KEYS), all finite floats."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    frame = max(16, round(_FRAME_S * sr))
    window = np.hanning(frame + 1)[:-1]
    freqs = np.fft.rfftfreq(frame, 1.0 / sr)
    sos, zi = k_weighting_sos(sr).copy(), np.zeros((2, 2))  # sosfilt wants a writable array
    hop = max(1, round(0.1 * sr))  # BS.1770 100 ms step
    sub_blocks, frames = _Blocker(hop), _Blocker(frame)
    sub_sums: list[np.ndarray] = []
    per_frame = _FrameStats()
    peak, sumsq = 0.0, 0.0
    chunk = frame * _FRAMES_PER_CHUNK
    for i in range(0, x.size, chunk):
        part = x[i : i + chunk].astype(np.float64)
        peak = max(peak, float(np.abs(part).max()))
        sumsq += float(np.dot(part, part))
        weighted, zi = sosfilt(sos, part, zi=zi)
        sub_sums.append((sub_blocks.push(weighted**2)).sum(axis=1))
        per_frame.add(frames.push(part), window, freqs)
    z = _block_mean_squares(np.concatenate(sub_sums) if sub_sums else np.zeros(0), hop, sub_blocks.rest, x.size)
    loudness, spread = _gated_loudness(z)
    rms_db, flatness, centroid, zcr = per_frame.arrays()
    silent = rms_db < SILENCE_DBFS
    voiced = ~silent
    duration = x.size / sr
    leading, trailing = _edges(silent, frame / sr, duration)
    return {
        "duration_s": duration,
        "loudness_lufs": loudness,
        "peak_dbfs": float(_db(peak**2)),
        "rms_dbfs": float(_db(sumsq / max(x.size, 1))),
        "silence_ratio": float(silent.mean()) if silent.size else 1.0,
        "leading_silence_s": leading,
        "trailing_silence_s": trailing,
        "spectral_flatness": float(flatness[voiced].mean()) if voiced.any() else 0.0,
        "spectral_centroid_hz": float(centroid[voiced].mean()) if voiced.any() else 0.0,
        "zcr": float(zcr[voiced].mean()) if voiced.any() else 0.0,
        "dynamic_range_db": spread,
    }
