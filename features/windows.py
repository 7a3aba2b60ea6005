"""Heuristic vocal-activity windows for music (no model).

Which parts of a track to hand to the voice models: the clone detector and the
singer verifier only make sense on sung vocals. Three cues per window, each
mapped to [0, 1], combined by geometric mean (any cue near zero vetoes):

- harmonicity — normalised autocorrelation peak (Boersma's window-corrected
  method) at a lag in the sung f0 range 80–1000 Hz, in the 200–4000 Hz band:
  voices are periodic, noise and drums are not;
- syllabic modulation — depth of 2–8 Hz modulation of the band's amplitude
  envelope: singing is chopped into syllables, pads and drones are not;
- vocal-band share — fraction of energy in 200–4000 Hz, where the voice lives.

The product is gated by loudness relative to the track's own loud windows, so a
fade-out or a quiet intro never outranks the song. When no window reaches
VOCAL_THRESHOLD the loudest windows are returned instead (instrumental tracks
still get scored). Steady-pitch instruments played in short notes (piano, plucked
strings) can pass as vocals: this is a cheap prior, not a singing detector.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from features.resample import resample

VOCAL_THRESHOLD = 0.5
_BAND_HZ = (200.0, 4000.0)
_F0_HZ = (80.0, 1000.0)
_MOD_HZ = (2.0, 8.0)
_ANALYSIS_SR = 8000  # the cues live below 4 kHz: analysing at 8 kHz halves the work
_N_FFT = 512  # 64 ms at 8 kHz: three periods at 80 Hz
_HOP = 256  # 32 ms: resolves envelope modulation up to ~15 Hz
_CHUNK_FRAMES = 2048  # bounds the frame matrix for long tracks
_SILENT_DB = -40.0  # windows this far below the track's loud windows are "silence"


@dataclasses.dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    vocal_score: float  # 0..1; >= VOCAL_THRESHOLD means vocal-like


@dataclasses.dataclass(frozen=True)
class _Frames:
    band: np.ndarray  # mean power in the vocal band per frame
    total: np.ndarray  # mean full-band power per frame
    harmonicity: np.ndarray  # 0..1 per frame
    start_s: np.ndarray  # frame start times
    rate: float  # frames per second


def _block_power(x: np.ndarray, sr: int, n_blocks: int) -> np.ndarray:
    """Mean power of consecutive hop-long blocks of the full-band signal (chunked: bounded memory)."""
    edges = np.minimum(np.round(np.arange(n_blocks + 1) * (sr * _HOP / _ANALYSIS_SR)).astype(np.int64), x.size)
    out = np.zeros(n_blocks)
    for b in range(0, n_blocks, _CHUNK_FRAMES):
        e = edges[b : b + _CHUNK_FRAMES + 1]
        csum = np.concatenate([[0.0], np.cumsum(x[e[0] : e[-1]].astype(np.float64) ** 2)])
        out[b : b + e.size - 1] = (csum[e[1:] - e[0]] - csum[e[:-1] - e[0]]) / np.maximum(np.diff(e), 1)
    return out


def _frame_features(x: np.ndarray, sr: int) -> _Frames:
    """Band power, full-band power and harmonicity per frame, analysed at 8 kHz."""
    y = resample(x, sr, _ANALYSIS_SR) if sr != _ANALYSIS_SR else x
    if y.size < _N_FFT:
        y = np.pad(y, (0, _N_FFT - y.size))
    frames = sliding_window_view(y, _N_FFT)[::_HOP]
    win = np.hanning(_N_FFT + 1)[:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(2 * _N_FFT, 1.0 / _ANALYSIS_SR)
    band = ((freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])).astype(np.float32)
    lag_lo, lag_hi = int(_ANALYSIS_SR / _F0_HZ[1]), int(_ANALYSIS_SR / _F0_HZ[0])
    # autocorrelation of the analysis window: dividing by it undoes the taper's decay with lag
    w_ac = np.fft.irfft(np.abs(np.fft.rfft(win, 2 * _N_FFT)) ** 2)[: lag_hi + 1]
    w_ac /= w_ac[0]
    out_band, out_h = [], []
    for i in range(0, len(frames), _CHUNK_FRAMES):
        spec_band = np.abs(np.fft.rfft(frames[i : i + _CHUNK_FRAMES] * win, 2 * _N_FFT)) ** 2 * band
        e_band = spec_band.sum(axis=1)
        ac = np.fft.irfft(spec_band)[:, : lag_hi + 1] / w_ac
        h = ac[:, lag_lo:].max(axis=1) / np.maximum(ac[:, 0], 1e-20)
        out_band.append(e_band)
        out_h.append(np.where(e_band > 1e-10, np.clip(h, 0.0, 1.0), 0.0))
    # Parseval: band power of a frame = sum of its band bins / (N * sum(win^2))
    band_power = np.concatenate(out_band) / (_N_FFT * float((win.astype(np.float64) ** 2).sum()))
    blocks = _block_power(x, sr, len(frames) + 1)  # a frame spans two hops
    total_power = np.maximum(0.5 * (blocks[:-1] + blocks[1:]), band_power)
    start = np.arange(len(frames)) * _HOP / _ANALYSIS_SR
    return _Frames(band_power, total_power, np.concatenate(out_h), start, _ANALYSIS_SR / _HOP)


def _modulation_depth(band_power: np.ndarray, rate: float) -> float:
    """Typical depth of 2–8 Hz envelope modulation relative to the mean envelope (≈1 for full syllables).

    The median of the band-passed envelope's magnitude is taken, not its RMS, so a single
    level change (a crescendo, a drop) does not read as a stream of syllables.
    """
    env = np.sqrt(band_power)
    mean = env.mean()
    if env.size < 8 or mean <= 0:
        return 0.0
    t = np.arange(env.size)
    trend = np.polyval(np.polyfit(t, env, 1), t)  # a linear ramp would leak into every band
    spec = np.fft.rfft(env - trend)
    freqs = np.fft.rfftfreq(env.size, 1.0 / rate)
    spec[(freqs < _MOD_HZ[0]) | (freqs > _MOD_HZ[1])] = 0
    # for a sinusoidal modulation a*sin, median |a*sin| = a*sin(pi/4)
    return float(np.median(np.abs(np.fft.irfft(spec, env.size))) / (np.sin(np.pi / 4) * mean))


def _ramp(value: float, lo: float, hi: float) -> float:
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def _window_cues(fr: _Frames, idx: slice) -> tuple[float, float, float, float]:
    """(harmonicity, modulation depth, band share, band energy) of the frames in ``idx``."""
    band, total = fr.band[idx], fr.total[idx]
    e_band = float(band.sum())
    if band.size == 0 or e_band <= 0:
        return 0.0, 0.0, 0.0, 0.0
    harmonicity = float((fr.harmonicity[idx] * band).sum() / e_band)  # loud frames count most
    share = e_band / max(float(total.sum()), 1e-20)
    return harmonicity, _modulation_depth(band, fr.rate), share, e_band / band.size


def _grid(duration_s: float, win_s: float, hop_s: float) -> list[tuple[float, float]]:
    if duration_s <= win_s:
        return [(0.0, float(duration_s))]
    n = int((duration_s - win_s) / hop_s + 1e-9) + 1
    starts = [round(i * float(hop_s), 6) for i in range(n)]  # multiply, not accumulate: no 0.30000000000000004
    if duration_s - (starts[-1] + win_s) > 0.1 * win_s:  # cover the tail with an end-aligned window
        starts.append(round(float(duration_s - win_s), 6))
    return [(s, round(s + win_s, 6)) for s in starts]


def score_windows(samples: np.ndarray, sr: int, win_s: float = 4.0, hop_s: float = 2.0) -> list[tuple[Window, float]]:
    """Every window of the grid in time order, with its vocal score and its band energy in dB."""
    if win_s <= 0 or hop_s <= 0:
        raise ValueError(f"win_s and hop_s must be positive, got {win_s}, {hop_s}")
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return []
    fr = _frame_features(x, sr)
    cues = []
    frame_s = _N_FFT / _ANALYSIS_SR
    for start, end in _grid(x.size / sr, win_s, hop_s):
        # frames wholly inside the window, so sound just past its edges does not leak in
        lo = int(np.searchsorted(fr.start_s, start - 1e-9))
        hi = int(np.searchsorted(fr.start_s, end - frame_s + 1e-9, side="right"))
        if hi <= lo:  # window shorter than a frame: take the frames that touch it
            lo, hi = min(lo, fr.start_s.size - 1), max(lo + 1, hi)
        cues.append(((start, end), _window_cues(fr, slice(lo, hi))))
    energies_db = np.array([10 * np.log10(c[3] + 1e-20) for _, c in cues])
    loud_db = float(np.percentile(energies_db, 90))
    result = []
    for ((start, end), (h, mod, share, _)), e_db in zip(cues, energies_db, strict=True):
        core = (_ramp(h, 0.3, 0.7) * _ramp(mod, 0.1, 0.4) * _ramp(share, 0.3, 0.6)) ** (1 / 3)
        score = core * _ramp(e_db - loud_db, -30.0, -10.0)
        result.append((Window(start, end, round(score, 4)), float(e_db)))
    return result


def vocal_activity_windows(
    samples: np.ndarray, sr: int, win_s: float = 4.0, hop_s: float = 2.0, max_windows: int | None = None
) -> list[Window]:
    """Vocal-like windows, best first; if there are none, the loudest non-silent windows, loudest first.

    Never empty for non-empty audio. A track shorter than ``win_s`` gives one window
    ``[0, duration]`` (``stack_windows`` pads it).
    """
    scored = score_windows(samples, sr, win_s, hop_s)
    if not scored:
        return []
    vocal = [w for w, _ in scored if w.vocal_score >= VOCAL_THRESHOLD]
    if vocal:
        ranked = sorted(vocal, key=lambda w: (-w.vocal_score, w.start_s))
    else:
        loudest = max(e for _, e in scored)
        audible = [(w, e) for w, e in scored if e >= loudest + _SILENT_DB] or scored
        ranked = [w for w, _ in sorted(audible, key=lambda we: (-we[1], we[0].start_s))]
    return ranked[:max_windows] if max_windows is not None else ranked


def voice_band_power(crops: np.ndarray, sr: int) -> np.ndarray:
    """Power [k] of each crop [k, n] in the vocal band (200–4000 Hz), Hann-tapered: over a steady accompaniment,
    the crops where the voice sings carry the most (`models.verifier.crop_windows` ranks by it)."""
    spectrum = np.abs(np.fft.rfft(crops * np.hanning(crops.shape[1]).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(crops.shape[1], 1.0 / sr)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
    return np.asarray(spectrum[:, band].sum(axis=1))


def stack_windows(samples: np.ndarray, sr: int, windows: list[Window], win_s: float) -> np.ndarray:
    """``[len(windows), int(win_s * sr)]`` float32 crops, zero-padded at the end."""
    n = int(win_s * sr)
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    out = np.zeros((len(windows), n), dtype=np.float32)
    for i, w in enumerate(windows):
        a = round(w.start_s * sr)
        seg = x[a : min(a + n, round(w.end_s * sr), x.size)]
        out[i, : seg.size] = seg
    return out
