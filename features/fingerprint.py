"""A near-duplicate audio fingerprint invariant to pitch shift and tempo change by construction.

Why not Chromaprint: its sub-fingerprints are bit patterns of energy differences
between fixed chroma bands in fixed time frames, so a pitch shift moves energy
into other bands and a tempo change desynchronises the frames: both flip bits
everywhere (see ``features.chromaprint``). Here the invariances are built into
the hash instead of searched for:

1. **Log-frequency spectrogram** (1/24 octave, C3–C8, from a 2048-point STFT at
   11.025 kHz, hop 23 ms). On this axis a pitch shift of *s* semitones is a
   translation by 2*s* bins, whatever the frequency.
2. **Spectral peaks** picked on the smoothed dB spectrogram with a max filter,
   kept only where they stand out from their local mean (so gain changes
   nothing and broadband noise raises the bar instead of adding peaks), at most
   ``PEAKS_PER_S`` per second, each with sub-bin pitch and sub-frame time from
   parabolic fits. A peak's weight is its prominence less its shortfall below
   ``LEVEL_MARGIN_DB`` under the loud level: quiet but prominent peaks are the
   first that noise buries (measured: the share of indexed hashes surviving
   15 dB SNR white noise rose from 0.33 to 0.46 with this weight).
3. **Peak groups** (the quads of Sonnleitner & Widmer 2016, "Robust quad-based
   audio fingerprinting", with one more point): a root peak and four of the
   peaks that follow it. The hash core keeps, per point, only

   * its pitch *difference* from the root (whole semitones, ±12): unchanged by a
     pitch shift, which moves all peaks alike;
   * its time *ratio* (t − t_root)/(t_latest − t_root) (8 levels): unchanged by
     a tempo change, which scales all gaps alike.

   The four (difference, ratio) cells are sorted, so peaks of one chord that
   swap order under frame jitter give the same hash. Why five points, not a
   landmark pair or a quad: invariant coordinates of music carry little entropy
   (intervals and rhythms repeat). Measured on the synthetic music of the tests,
   hash-vs-hash collisions between unrelated tracks: quads ~2^-13.6, five
   points ~2^-17.6; five points keep ~25 % fewer hashes under pitch/tempo
   change but make every lookup 16× more selective, which a 10^6-track index
   needs more.
4. **Context bands** (``_context``): the root's absolute pitch in 6-semitone
   bands and the group's span in half-octave (×1.41) bands, 8 bits. These are
   *not* invariant, so the query side looks up every band within its tolerance
   (±``PITCH_TOLERANCE_ST`` semitones, ×(1 ± ``TEMPO_TOLERANCE``)); the
   reference side stores one. Measured: +4 bits (collisions ~2^-21.6) for
   ~3× the lookups; invariance holds over a bounded range (±2.5 st, ±12 %),
   which covers the transformations the pipeline cares about (±2 st, ±10 %).
5. **Quantisation edges**: a coordinate within ``PROBE_MARGIN_*`` of a cell
   edge may cross it after a transformation, so the query side also looks up
   the neighbouring cell (up to 3 coordinates at once); the reference side
   stores only the primary hash, and an index prefers hashes far from edges.

All lookups other than the primary hash are precomputed as ``probe_hashes``.
Each hash keeps, for verification, its root's time (a tempo change maps
t_ref = a·t_query + b, fitted by the index) and absolute pitch (reference −
query is the pitch shift, the same for all true matches). ``strength`` (the
weakest of the five peaks' weights, dB, less ``NEAR_EDGE_PENALTY_DB`` per
near-edge coordinate) lets an index keep the hashes most likely to survive.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import gaussian_filter, maximum_filter, uniform_filter
from scipy.signal import resample_poly

SAMPLE_RATE = 11025
N_FFT = 2048  # 186 ms: 5.4 Hz bins, enough to resolve semitones from ~150 Hz up
HOP = 256  # 23.2 ms
FRAME_S = HOP / SAMPLE_RATE
BINS_PER_OCTAVE = 24
BINS_PER_SEMITONE = BINS_PER_OCTAVE // 12
F_MIN = 130.81  # C3
N_BINS = 5 * BINS_PER_OCTAVE  # C3..C8 (4186 Hz): below Nyquist with room for a shift up

PEAK_NEIGHBOURHOOD = (2 * 5 + 1, 2 * 4 + 1)  # (bins, frames): ±2.5 semitones, ±93 ms
BACKGROUND = (2 * 12 + 1, 2 * 21 + 1)  # ±6 semitones, ±0.5 s: the local mean a peak must beat
MIN_PROMINENCE_DB = 3.0
DYNAMIC_RANGE_DB = 70.0  # peaks this far below the loudest are ignored (silence, dither)
PEAKS_PER_S = 24
LOUD_PERCENTILE = 99.5  # of the spectrogram: "the loud level" of the recording
LEVEL_MARGIN_DB = 20.0  # peaks further below it lose weight dB for dB

N_POINTS = 4  # peaks per group besides the root
ZONE_MIN_DT_S = 0.07  # group points follow the root by at least this (not the root's own onset)
ZONE_MAX_DT_S = 2.0
ZONE_MAX_DPITCH = 12  # semitones; wider zones filled up with harmonic stacks and survived less
ZONE_FIRST = 12  # the zone is the first peaks after the root (a tempo change keeps their order) ...
ZONE_STRONGEST = 6  # ... of which the most prominent are combined: C(6, 4) = 15 groups per root
MIN_SPAN_S = 0.15  # root to latest point: below this the time ratios are dominated by frame jitter
RATIO_LEVELS = 8

ROOT_PITCH_CELL_ST = 6.0
PITCH_TOLERANCE_ST = 2.5  # query side: pitch shifts up to this are looked up
SPAN_CELL_LOG2 = 0.5
TEMPO_TOLERANCE = 0.12  # query side: tempo changes up to ±12 % are looked up
_CONTEXT_CELLS = 16  # per context coordinate (4 bits each)

PROBE_MARGIN_RATIO = 0.06  # fraction of a ratio cell; wider margins tripled lookups for no recall
PROBE_MARGIN_PITCH = 0.05  # fraction of a semitone
NEAR_EDGE_PENALTY_DB = 3.0


@functools.lru_cache(maxsize=8)
def _combos(k: int, n: int) -> np.ndarray:
    return np.array(list(combinations(range(k), n)), dtype=np.intp)


@dataclasses.dataclass(frozen=True)
class Peaks:
    """Spectral peaks: time (s), pitch (semitones above C3, fractional), weight (dB, see find_peaks)."""

    times: np.ndarray
    pitches: np.ndarray
    weight: np.ndarray


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """Peak-group hashes of one recording, with what a query needs to verify and locate matches.

    ``hashes[i]`` was built from a root peak at ``times[i]`` seconds and ``pitches[i]``
    semitones above C3; ``strength[i]`` ranks how likely it is to survive a
    transformation. ``probe_hashes[j]`` is an alternative quantisation of hash
    ``probe_rows[j]`` (looked up by queries only).
    """

    hashes: np.ndarray  # uint32
    times: np.ndarray  # float32, s
    pitches: np.ndarray  # float32, semitones above F_MIN
    strength: np.ndarray  # float32
    probe_hashes: np.ndarray  # uint32
    probe_rows: np.ndarray  # int32, row of the hash each probe stands for
    duration_s: float
    n_peaks: int

    def __len__(self) -> int:
        return len(self.hashes)

    def select(self, rows: np.ndarray) -> Fingerprint:
        """The hashes at ``rows`` (and their probes), e.g. an index's subsample or a time window."""
        rows = np.asarray(rows, dtype=np.intp)
        remap = np.full(len(self.hashes), -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        keep = remap[self.probe_rows] >= 0
        return dataclasses.replace(
            self, hashes=self.hashes[rows], times=self.times[rows], pitches=self.pitches[rows],
            strength=self.strength[rows], probe_hashes=self.probe_hashes[keep],
            probe_rows=remap[self.probe_rows[keep]].astype(np.int32))


# ---------------------------------------------------------------------------- spectrogram


def _to_mono_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    if sample_rate != SAMPLE_RATE and len(x):
        g = math.gcd(SAMPLE_RATE, sample_rate)
        x = resample_poly(x, SAMPLE_RATE // g, sample_rate // g).astype(np.float32)
    return x


@functools.lru_cache(maxsize=1)
def _filterbank() -> np.ndarray:
    """Triangular bands centred on log-spaced frequencies, [N_BINS, N_FFT//2+1].

    A band is 1/24 octave wide, but never narrower than 2 STFT bins: at the bottom
    the STFT cannot resolve 1/24 octave, and a band narrower than a bin would
    sample (not integrate) the spectrum, so peaks would jump between bands.
    """
    centres = F_MIN * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)
    fft_hz = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    half = np.maximum(centres * (2 ** (1 / BINS_PER_OCTAVE) - 1), 2 * SAMPLE_RATE / N_FFT)
    w = np.clip(1 - np.abs(fft_hz[None, :] - centres[:, None]) / half[:, None], 0, None)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def log_spectrogram(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """dB band energies, [N_BINS, frames], on the 1/24-octave axis (a pitch shift = a row shift)."""
    x = _to_mono_rate(samples, sample_rate)
    x = np.pad(x, (N_FFT // 2, N_FFT // 2))
    n_frames = max(0, 1 + (len(x) - N_FFT) // HOP)
    window = np.hanning(N_FFT).astype(np.float32)
    fb = _filterbank()
    out = np.empty((N_BINS, n_frames), dtype=np.float32)
    for start in range(0, n_frames, 1024):  # bounded memory for long tracks
        idx = np.arange(start, min(n_frames, start + 1024))[:, None] * HOP + np.arange(N_FFT)[None, :]
        spec = sp_fft.rfft(x[idx] * window, axis=1)
        out[:, start : start + len(idx)] = fb @ (spec.real**2 + spec.imag**2).T
    return (10.0 * np.log10(out + 1e-10)).astype(np.float32)


# ---------------------------------------------------------------------------- peaks


def _parabolic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset of a parabola's vertex through (-1, a), (0, b), (1, c), in [-0.5, 0.5]."""
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(den < 0, 0.5 * (a - c) / den, 0.0)
    return np.clip(d, -0.5, 0.5)


def _cap_density(times: np.ndarray, weight: np.ndarray, per_s: int) -> np.ndarray:
    """Indices of the ``per_s`` heaviest peaks in each 1-s block, in time order."""
    block = np.floor(times).astype(np.int64)
    order = np.lexsort((-weight, block))
    first = np.searchsorted(block[order], block[order], side="left")
    rank = np.arange(len(order)) - first
    return np.sort(order[rank < per_s])


def _local_maxima(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin, frame, prominence) of the maxima of ``s`` over PEAK_NEIGHBOURHOOD that beat their local mean.

    Prominence is measured against a local mean (not an absolute level), so a gain
    change moves nothing, and broadband noise raises the background where it
    dominates instead of adding peaks there.
    """
    prom = s - uniform_filter(s, size=BACKGROUND, mode="nearest")
    is_max = (s == maximum_filter(s, size=PEAK_NEIGHBOURHOOD, mode="nearest")) & (prom > MIN_PROMINENCE_DB)
    is_max &= s > s.max() - DYNAMIC_RANGE_DB
    is_max[[0, -1], :] = False  # no neighbours to interpolate with
    is_max[:, [0, -1]] = False
    k, t = np.nonzero(is_max)
    return k, t, prom[k, t]


def find_peaks(spec: np.ndarray) -> Peaks:
    """Spectral peaks of a ``log_spectrogram``: sub-bin pitch, sub-frame time, weight; density capped."""
    if spec.shape[1] < 3:
        empty = np.zeros(0, dtype=np.float32)
        return Peaks(empty, empty, empty)
    s = gaussian_filter(spec, sigma=(1.0, 0.7), mode="nearest")
    k, t, prom = _local_maxima(s)
    dk = _parabolic(s[k - 1, t], s[k, t], s[k + 1, t])
    dt = _parabolic(s[k, t - 1], s[k, t], s[k, t + 1])
    times = ((t + dt) * FRAME_S).astype(np.float32)
    weight = prom - np.maximum(0.0, float(np.percentile(s, LOUD_PERCENTILE)) - LEVEL_MARGIN_DB - s[k, t])
    keep = _cap_density(times, weight, PEAKS_PER_S)
    order = keep[np.lexsort((k[keep], times[keep]))]
    pitches = (k[order] + dk[order]) / BINS_PER_SEMITONE
    return Peaks(times[order], pitches.astype(np.float32), weight[order].astype(np.float32))


# ---------------------------------------------------------------------------- peak groups


@dataclasses.dataclass(frozen=True)
class _Groups:
    """Continuous group coordinates, one row per group: root index, invariant values, span."""

    root: np.ndarray
    values: np.ndarray  # [n, 2 * N_POINTS]: (pitch difference, time ratio) of each non-root point
    span: np.ndarray  # s, root to latest point
    min_weight: np.ndarray


def _zones(peaks: Peaks) -> tuple[np.ndarray, np.ndarray]:
    """For each root, the ZONE_STRONGEST heaviest of the first ZONE_FIRST peaks in its zone.

    Returns peak indices [n, ZONE_STRONGEST] in time order and their validity mask.
    "First peaks after the root" rather than "peaks within x seconds" because a
    tempo change keeps the order of peaks but moves them across a fixed window edge.
    """
    n, width = len(peaks.times), 4 * ZONE_FIRST
    idx = np.arange(n)[:, None] + 1 + np.arange(width)[None, :]
    inside = idx < n
    idx = np.minimum(idx, n - 1)
    dt = peaks.times[idx] - peaks.times[:, None]
    dp = peaks.pitches[idx] - peaks.pitches[:, None]
    valid = inside & (dt >= ZONE_MIN_DT_S) & (dt <= ZONE_MAX_DT_S) & (np.abs(dp) <= ZONE_MAX_DPITCH)
    valid &= np.cumsum(valid, axis=1) <= ZONE_FIRST
    score = np.where(valid, peaks.weight[idx], -np.inf)
    cols = np.sort(np.argsort(-score, axis=1, kind="stable")[:, :ZONE_STRONGEST], axis=1)
    return np.take_along_axis(idx, cols, axis=1), np.take_along_axis(valid, cols, axis=1)


def _groups(peaks: Peaks) -> _Groups:
    """All groups: a root and N_POINTS of its zone peaks, as (pitch difference, time ratio) per point.

    The time ratio divides by the span to the latest point, which gets ratio 1.
    No point is singled out by time order beyond that (see ``_pack``): peaks of one
    chord share an onset, and which of them comes "first" is frame jitter.
    """
    if len(peaks.times) < 4:
        return _Groups(np.zeros(0, np.intp), np.zeros((0, 2 * N_POINTS)), np.zeros(0), np.zeros(0))
    sel, ok = _zones(peaks)
    combos = _combos(ZONE_STRONGEST, N_POINTS)
    pts = sel[:, combos]  # [n, C(k, N_POINTS), N_POINTS] in time order
    ok = np.asarray(ok[:, combos].all(axis=2))
    root = np.broadcast_to(np.arange(len(sel))[:, None], ok.shape)
    t, p, w = peaks.times.astype(np.float64), peaks.pitches.astype(np.float64), peaks.weight
    span = t[pts[..., -1]] - t[root]
    ok &= span >= MIN_SPAN_S
    pts, root, span = pts[ok], root[ok], span[ok]
    dp = p[pts] - p[root][:, None]
    ratio = (t[pts] - t[root][:, None]) / span[:, None]
    values = np.stack([dp, ratio], axis=2).reshape(len(root), 2 * N_POINTS)
    min_prom = np.minimum(w[root], w[pts].min(axis=1))
    return _Groups(root, values, span, min_prom)


def _cells(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary cell per coordinate, the neighbouring cell, and whether the value is near their edge.

    Pitch differences round to whole semitones; time ratios fall in RATIO_LEVELS
    equal cells of [0, 1] (ratio 1, the latest point, in the top cell).
    """
    is_ratio = np.array([False, True] * N_POINTS)
    scaled = np.where(is_ratio, values * RATIO_LEVELS, values + ZONE_MAX_DPITCH + 0.5)  # cells [k, k + 1)
    top = np.where(is_ratio, RATIO_LEVELS - 1, 2 * ZONE_MAX_DPITCH)
    primary = np.clip(np.floor(scaled), 0, top)
    pos = scaled - primary  # where in its cell, 0..1 (beyond only at the clipped ends)
    margin = np.where(is_ratio, PROBE_MARGIN_RATIO, PROBE_MARGIN_PITCH)
    other = np.where(pos < 0.5, primary - 1, primary + 1)
    near = (np.minimum(pos, 1 - pos) < margin) & (other >= 0) & (other <= top)
    return primary.astype(np.int64), other.astype(np.int64), near


def _pack(cells: np.ndarray) -> np.ndarray:
    """The points' (pitch difference, ratio) cells, 9 bits each, sorted, in one uint64.

    Sorting makes the key independent of which point was found first, so two
    peaks of one chord that swap order under jitter give the same key.
    """
    keys = np.sort(cells[:, 0::2] * RATIO_LEVELS + cells[:, 1::2], axis=1).astype(np.uint64)  # 0..391
    packed = np.zeros(len(cells), dtype=np.uint64)
    for j in range(keys.shape[1]):
        packed = (packed << np.uint64(9)) | keys[:, j]
    return packed


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, top 32 bits: a 36-bit key to 32 uniform bits."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(32)).astype(np.uint32)


@functools.lru_cache(maxsize=8)
def _probe_masks(n_dims: int, max_alternatives: int = 3) -> np.ndarray:
    masks = [m for m in range(1, 1 << n_dims) if bin(m).count("1") <= max_alternatives]
    return np.array([[(m >> d) & 1 for d in range(n_dims)] for m in masks], dtype=bool).reshape(-1, n_dims)


def _core_variants(primary: np.ndarray, other: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and packed keys of each group's primary cells followed by its near-edge alternatives.

    The first ``len(primary)`` entries are the primary keys, row i at position i.
    """
    keys, rows = [_pack(primary)], [np.arange(len(primary))]
    for mask in _probe_masks(primary.shape[1]):
        hit = near[:, mask].all(axis=1)
        if hit.any():
            keys.append(_pack(np.where(mask, other[hit], primary[hit])))
            rows.append(np.nonzero(hit)[0])
    return np.concatenate(rows), np.concatenate(keys)


def _context_cells(value: np.ndarray, cell: float, tolerance: float, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Primary cell of ``value`` and, per offset -1/0/+1, whether ``value ± tolerance`` reaches that cell."""
    primary = np.clip(np.floor(value / cell), 0, n_cells - 1).astype(np.int64)
    lo = np.clip(np.floor((value - tolerance) / cell), 0, n_cells - 1)
    hi = np.clip(np.floor((value + tolerance) / cell), 0, n_cells - 1)
    reach = np.stack([(primary + d >= lo) & (primary + d <= hi) for d in (-1, 0, 1)], axis=1)
    return primary, reach


def _context(groups: _Groups, pitches: np.ndarray) -> tuple[np.ndarray, list[tuple[bool, np.ndarray, np.ndarray]]]:
    """Coarse absolute context: the root's pitch band and the group's span band, 4 bits each.

    Not invariant (see the module docstring), so a query looks up every band its
    tolerance reaches; the reference stores only its own. Returns the primary
    context per group and, per (pitch, span) band offset: whether it is the
    primary offset, which groups' tolerance reaches it, and the context there.
    """
    p_cell, p_reach = _context_cells(pitches, ROOT_PITCH_CELL_ST, PITCH_TOLERANCE_ST, _CONTEXT_CELLS)
    s_val = np.log2(np.maximum(groups.span, MIN_SPAN_S) / MIN_SPAN_S)
    s_cell, s_reach = _context_cells(s_val, SPAN_CELL_LOG2, math.log2(1 + TEMPO_TOLERANCE), _CONTEXT_CELLS)
    variants = []
    for i, dp in enumerate((-1, 0, 1)):
        for j, ds in enumerate((-1, 0, 1)):
            value = np.clip(p_cell + dp, 0, _CONTEXT_CELLS - 1) * _CONTEXT_CELLS + np.clip(s_cell + ds, 0, 15)
            variants.append((dp == ds == 0, p_reach[:, i] & s_reach[:, j], value.astype(np.uint64)))
    return (p_cell * _CONTEXT_CELLS + s_cell).astype(np.uint64), variants


def _combine(core: np.ndarray, context: np.ndarray) -> np.ndarray:
    return _mix((core << np.uint64(8)) | context)


def _probe_hashes(rows: np.ndarray, keys: np.ndarray, n: int, variants: list[tuple[bool, np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Every (core variant × context band) a query looks up, except each group's primary hash."""
    hashes, probe_rows = [np.zeros(0, np.uint32)], [np.zeros(0, np.int32)]
    for is_primary, reach, value in variants:
        sel = reach[rows]
        if is_primary:
            sel[:n] = False
        hashes.append(_combine(keys[sel], value[rows[sel]]))
        probe_rows.append(rows[sel].astype(np.int32))
    return np.concatenate(hashes), np.concatenate(probe_rows)


# ---------------------------------------------------------------------------- public API


def fingerprint_peaks(peaks: Peaks, duration_s: float) -> Fingerprint:
    """Hashes of already-picked peaks (split out so tests and benchmarks can reuse peaks)."""
    groups = _groups(peaks)
    n = len(groups.root)
    pitches = peaks.pitches[groups.root]
    primary, other, near = _cells(groups.values)
    rows, keys = _core_variants(primary, other, near)
    context, variants = _context(groups, pitches)
    probe_hashes, probe_rows = _probe_hashes(rows, keys, n, variants)
    strength = groups.min_weight - NEAR_EDGE_PENALTY_DB * near.sum(axis=1)
    return Fingerprint(
        hashes=_combine(keys[:n], context), times=peaks.times[groups.root].astype(np.float32),
        pitches=pitches.astype(np.float32), strength=strength.astype(np.float32), probe_hashes=probe_hashes,
        probe_rows=probe_rows, duration_s=float(duration_s), n_peaks=len(peaks.times))


def fingerprint(samples: np.ndarray, sample_rate: int) -> Fingerprint:
    """Fingerprint mono (or [n, channels]) float audio at any rate."""
    duration_s = len(samples) / float(sample_rate)
    return fingerprint_peaks(find_peaks(log_spectrogram(samples, sample_rate)), duration_s)


def fingerprint_file(path: str | Path) -> Fingerprint:
    """Decode ``path`` (soundfile; ffmpeg for what libsndfile cannot read) and fingerprint it.

    Decoding goes through ``features.decode.decode_audio`` so that broken uploads
    raise the pipeline's usual ``TrackguardError`` codes.
    """
    from features.decode import decode_audio

    audio = decode_audio(str(path), target_sr=SAMPLE_RATE, min_duration_s=1.0)
    return fingerprint(audio.samples, audio.sample_rate)


def save_fingerprint(fp: Fingerprint, path: str | Path) -> None:
    """Write ``fp`` as one .npz (arrays plus the two scalars); see `load_fingerprint`."""
    np.savez(path, hashes=fp.hashes, times=fp.times, pitches=fp.pitches, strength=fp.strength,
             probe_hashes=fp.probe_hashes, probe_rows=fp.probe_rows,
             scalars=np.array([fp.duration_s, fp.n_peaks], dtype=np.float64))


def load_fingerprint(path: str | Path) -> Fingerprint:
    with np.load(path) as z:
        duration_s, n_peaks = (float(v) for v in z["scalars"])
        return Fingerprint(hashes=z["hashes"], times=z["times"], pitches=z["pitches"], strength=z["strength"],
                           probe_hashes=z["probe_hashes"], probe_rows=z["probe_rows"], duration_s=duration_s,
                           n_peaks=int(n_peaks))
