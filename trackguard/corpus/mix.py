"""Mix a vocal with its accompaniment and master it the same way for every twin.

Everything a detector could use as a shortcut is fixed by the `MixSpec`, not by the
vocal: the vocal band (60 Hz - 7 kHz), the vocal level over the sung regions, the
accompaniment level, the final loudness, the limiter, fades and silences. A bona
fide vocal and its clone go through this with the same spec.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from trackguard.corpus.voices import VOICE_SR

VOCAL_BAND = (60.0, 7000.0)
VOCAL_DBFS = -20.0  # vocal RMS over the sung regions, before the accompaniment is added
LIMIT = 0.89  # soft limiter knee (-1 dBFS)


@dataclasses.dataclass(frozen=True)
class MixSpec:
    var_db: float | None  # vocal minus accompaniment level; None = a cappella or instrumental
    target_dbfs: float  # RMS of the finished music region
    lead_s: float  # digital silence before the music
    tail_s: float  # digital silence after it
    total_s: float | None = None  # force an exact length (31-second bulk tracks)


def band_limit(x: np.ndarray) -> np.ndarray:
    sos = butter(8, VOCAL_BAND, btype="bandpass", fs=VOICE_SR, output="sos")
    return sosfiltfilt(sos, x)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def level_vocal(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Band-limit, then scale so the sung regions (``active`` mask) sit at VOCAL_DBFS."""
    y = band_limit(x)
    level = rms_db(y[active]) if active.any() else rms_db(y)
    return y * 10 ** ((VOCAL_DBFS - level) / 20)


def to_rate(x: np.ndarray, sr_from: int, sr_to: int, n_out: int) -> np.ndarray:
    """Polyphase resample along axis 0, then pad/trim to exactly ``n_out`` samples."""
    if sr_from != sr_to:
        g = int(np.gcd(sr_from, sr_to))
        x = resample_poly(x, sr_to // g, sr_from // g, axis=0)
    out = np.zeros((n_out, *x.shape[1:]))
    n = min(n_out, len(x))
    out[:n] = x[:n]
    return out


def soft_limit(x: np.ndarray) -> np.ndarray:
    """tanh knee above LIMIT; only the (few) samples over the knee are touched."""
    over = np.abs(x) > LIMIT
    if over.any():
        v = x[over]
        x = x.copy()
        x[over] = np.sign(v) * (LIMIT + (1 - LIMIT) * np.tanh((np.abs(v) - LIMIT) / (1 - LIMIT)))
    return x


def normalise(x: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Gain to ``target_dbfs`` RMS, then the soft limiter (see `normalise_gain`)."""
    return normalise_gain(x, target_dbfs)[0]


def normalise_gain(x: np.ndarray, target_dbfs: float) -> tuple[np.ndarray, float]:
    """`normalise`, and the gain (dB) it applied before the limiter. A peaky signal loses level in the
    limiter, so the gain is corrected until the *limited* signal sits at the target (twins end up equal)."""
    gain_db = target_dbfs - rms_db(x)
    for _ in range(4):
        applied = gain_db
        y = soft_limit(x * 10 ** (applied / 20))
        error = target_dbfs - rms_db(y)
        if abs(error) < 0.02:
            break
        gain_db += error
    return y, applied


def _fades(x: np.ndarray, sr: int, fade_out_s: float) -> np.ndarray:
    n_in, n_out = int(0.01 * sr), min(len(x), int(fade_out_s * sr))
    x[:n_in] *= np.linspace(0, 1, n_in)[:, None]
    x[len(x) - n_out :] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n_out)))[:, None]
    return x


def master(vocal: np.ndarray | None, acc: np.ndarray | None, spec: MixSpec, sr: int, channels: int,
           fade_out_s: float = 1.0) -> np.ndarray:
    """Levelled vocal (mono, at ``sr``) + accompaniment (stereo, at ``sr``) → finished track (n, channels)."""
    return master_with_vocal(vocal, acc, spec, sr, channels, fade_out_s)[0]


def master_with_vocal(vocal: np.ndarray | None, acc: np.ndarray | None, spec: MixSpec, sr: int, channels: int,
                      fade_out_s: float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """`master`, and the vocal's share of the finished track: mono, with the same cut, fades, gain and
    lead/tail silence (None without a vocal). The limiter is left out of the vocal's share: it touches
    only the few samples over its knee."""
    if vocal is None and acc is None:
        raise ValueError("nothing to master")
    n = len(acc) if acc is not None else len(vocal)  # type: ignore[arg-type]
    mixed = np.zeros((n, 2))
    voc = np.zeros((n, 1))
    if vocal is not None:
        voc[:, 0] = vocal[:n]
        mixed += voc
    if acc is not None:
        gain_db = 0.0 if vocal is None or spec.var_db is None else VOCAL_DBFS - spec.var_db - rms_db(acc)
        mixed += acc * 10 ** (gain_db / 20)
    lead_n = round(spec.lead_s * sr)
    if spec.total_s is not None:
        keep = max(1, round(spec.total_s * sr) - lead_n)
        mixed, voc, tail_n = mixed[:keep], voc[:keep], max(0, keep - len(mixed))
    else:
        tail_n = round(spec.tail_s * sr)
    mixed, voc = _fades(mixed, sr, fade_out_s), _fades(voc, sr, fade_out_s)
    mixed, gain_db = normalise_gain(mixed, spec.target_dbfs)
    if channels == 1:
        mixed = mixed.mean(axis=1, keepdims=True)
    track = np.concatenate([np.zeros((lead_n, channels)), mixed, np.zeros((tail_n, channels))]).astype(np.float32)
    if vocal is None:
        return track, None
    vocal_share = np.concatenate([np.zeros(lead_n), voc[:, 0] * 10 ** (gain_db / 20), np.zeros(tail_n)])
    return track, vocal_share.astype(np.float32)
