"""Make a TTS voice sing: WORLD analysis, stretch vowels over the notes, F0 follows the melody.

This is the *bona fide* vocal of the corpus: full-resolution WORLD parameters of
the artist's voice, so the only things that change are timing and pitch. The
clone families (generators.py) start from the parameters or the waveform made here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyworld as pw
from scipy.signal import lfilter

from trackguard.corpus.music import Line, Song
from trackguard.corpus.voices import VOICE_SR

FRAME_MS = 5.0
HOP = int(VOICE_SR * FRAME_MS / 1000)


@dataclasses.dataclass
class WorldParams:
    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray


@dataclasses.dataclass
class PlacedPhrase:
    start: int  # sample offset in the vocal track
    params: WorldParams


@dataclasses.dataclass
class Vocal:
    samples: np.ndarray  # float64 mono at VOICE_SR
    phrases: list[PlacedPhrase]

    def f0_track(self) -> np.ndarray:
        """F0 per 5 ms frame over the whole track (0 = unvoiced)."""
        f0 = np.zeros(len(self.samples) // HOP + 1)
        for ph in self.phrases:
            i = ph.start // HOP
            seg = ph.params.f0[: max(0, len(f0) - i)]
            f0[i : i + len(seg)] = np.maximum(f0[i : i + len(seg)], seg)
        return f0


def analyse(x: np.ndarray) -> WorldParams:
    """WORLD analysis at 10 ms frames, interpolated to the 5 ms synthesis grid.

    Every parameter is resampled in time afterwards anyway (stretching), so analysing
    at half the frame rate halves the cost and loses nothing audible.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x, VOICE_SR, f0_floor=55.0, f0_ceil=700.0, frame_period=2 * FRAME_MS, speed=2)
    f0 = pw.stonemask(x, f0, t, VOICE_SR)
    sp = pw.cheaptrick(x, f0, t, VOICE_SR)
    # D4C is the slowest step and aperiodicity changes slowly: estimate it every 20 ms.
    ap = _upsample_rows(pw.d4c(x, np.ascontiguousarray(f0[::2]), np.ascontiguousarray(t[::2]), VOICE_SR), len(f0))
    n = 2 * len(f0) - 1
    voiced = _upsample_rows(f0[:, None], n)[:, 0]
    voiced_mask = _upsample_rows((f0 > 0).astype(float)[:, None], n)[:, 0] > 0.99  # both neighbours voiced
    return WorldParams(np.where(voiced_mask, voiced, 0.0), np.exp(_upsample_rows(np.log(sp), n)),
                       _upsample_rows(ap, n))


def _upsample_rows(a: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of a parameter track onto ``n`` frames at twice its frame rate."""
    pos = np.arange(n) / 2.0
    lo = np.minimum(np.floor(pos).astype(int), len(a) - 1)
    hi = np.minimum(lo + 1, len(a) - 1)
    w = (pos - lo)[:, None]
    return np.ascontiguousarray(a[lo] * (1 - w) + a[hi] * w)


def synthesize(p: WorldParams) -> np.ndarray:
    return pw.synthesize(np.ascontiguousarray(p.f0), np.ascontiguousarray(p.sp), np.ascontiguousarray(p.ap),
                         VOICE_SR, FRAME_MS)


def stretch(p: WorldParams, frames_out: int) -> WorldParams:
    """Time-stretch to ``frames_out`` frames, lengthening voiced frames (vowels) more than consonants."""
    voiced = p.f0 > 0
    n = len(p.f0)
    n_voiced = max(1, int(voiced.sum()))
    unvoiced_rate = 1.0 if frames_out >= n else frames_out / n
    voiced_rate = max(0.3, (frames_out - unvoiced_rate * (n - n_voiced)) / n_voiced)
    durations = np.where(voiced, voiced_rate, unvoiced_rate)
    # Output frame k maps back to the source position where cumulative duration reaches k.
    edges = np.concatenate([[0.0], np.cumsum(durations)])
    src = np.interp(np.arange(frames_out) * edges[-1] / frames_out, edges, np.arange(n + 1))
    src = np.clip(src, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (src - lo)[:, None]
    log_sp = np.log(p.sp[lo]) * (1 - w) + np.log(p.sp[hi]) * w
    ap = p.ap[lo] * (1 - w) + p.ap[hi] * w
    f0 = p.f0[np.rint(src).astype(int)]
    return WorldParams(f0, np.exp(log_sp), np.clip(ap, 0.0, 1.0))


def melody_f0(line: Line, n_frames: int, beat_s: float, transpose: int, rng: np.random.Generator) -> np.ndarray:
    """Target F0 per frame: the notes, with glides between them and a delayed vibrato."""
    t = np.arange(n_frames) * FRAME_MS / 1000
    midi = np.full(n_frames, float(line.notes[0].pitch + transpose))
    onset = np.zeros(n_frames)
    for note in line.notes:
        mask = t >= note.start * beat_s
        midi[mask] = note.pitch + transpose
        onset[mask] = note.start * beat_s
    alpha = FRAME_MS / 50.0  # one-pole glide: ~50 ms portamento between notes
    glided = lfilter([alpha], [1.0, alpha - 1.0], midi - midi[0]) + midi[0]
    rate, depth = rng.uniform(4.8, 6.2), rng.uniform(0.15, 0.35)
    vib = depth * np.sin(2 * np.pi * rate * t) * np.clip((t - onset - 0.25) / 0.2, 0.0, 1.0)
    # slow random drift + jitter (a few cents): a held note is never perfectly flat
    drift = lfilter([0.02], [1.0, -0.98], rng.standard_normal(n_frames)) * 0.6
    return 440.0 * 2.0 ** ((glided + vib + drift - 69.0) / 12.0)


def _transpose_for(song: Song, speech_f0: float) -> int:
    """Whole octaves that put the melody's middle a few semitones above the speaking pitch."""
    pitches = [n.pitch for line in song.lines for n in line.notes]
    mid = (min(pitches) + max(pitches)) / 2
    target = 69.0 + 12 * np.log2(max(speech_f0, 60.0) / 440.0) + 3.0
    return int(12 * round((target - mid) / 12))


def sing_song(song: Song, spoken: dict[str, np.ndarray], style: str, rng: np.random.Generator,
              n_samples: int) -> Vocal:
    """The vocal track: each line's speech stretched and pitched onto its notes, placed on the beat."""
    analysed = {key: analyse(x) for key, x in spoken.items()}
    voiced = np.concatenate([p.f0[p.f0 > 0] for p in analysed.values()] + [np.array([150.0])])
    transpose = _transpose_for(song, float(np.median(voiced)))
    out = np.zeros(n_samples)
    phrases: list[PlacedPhrase] = []
    cache: dict[str, WorldParams] = {}  # repeated chorus lines are sung identically, as a take copied in a DAW
    for line in song.lines:
        if line.key not in cache:
            cache[line.key] = _line_params(song, line, analysed[line.key], style, transpose, rng)
        params = cache[line.key]
        start = round((line.start_beat + line.notes[0].start) * song.beat_s * VOICE_SR)
        phrases.append(PlacedPhrase(start, params))
    for ph, y in zip(phrases, _synth_unique(phrases), strict=True):
        end = min(n_samples, ph.start + len(y))
        out[ph.start : end] += y[: end - ph.start]
    return Vocal(out, phrases)


def _synth_unique(phrases: list[PlacedPhrase]) -> list[np.ndarray]:
    done: dict[int, np.ndarray] = {}
    for ph in phrases:
        if id(ph.params) not in done:
            done[id(ph.params)] = synthesize(ph.params)
    return [done[id(ph.params)] for ph in phrases]


def _line_params(song: Song, line: Line, src: WorldParams, style: str, transpose: int,
                 rng: np.random.Generator) -> WorldParams:
    first, last = line.notes[0], line.notes[-1]
    span_s = (last.start + last.dur - first.start) * song.beat_s
    n_src = len(src.f0)
    if style == "spoken":
        # rap / spoken word: near natural timing, natural intonation
        frames = int(np.clip(span_s * 1000 / FRAME_MS, n_src * 0.9, n_src * 1.15))
        return stretch(src, frames)
    frames = int(np.clip(span_s * 1000 / FRAME_MS * rng.uniform(0.85, 0.97), n_src * 0.8, n_src * 2.4))
    p = stretch(src, frames)
    relative = tuple(dataclasses.replace(n, start=n.start - first.start) for n in line.notes)
    shifted = dataclasses.replace(line, notes=relative)
    target = melody_f0(shifted, frames, song.beat_s, transpose, rng)
    return WorldParams(np.where(p.f0 > 0, target, 0.0), p.sp, p.ap)
