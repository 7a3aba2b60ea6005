"""Render jobs: plain picklable records, and the worker function that turns one into files.

A `SongJob` renders one piece of content and every upload made from it: the bona
fide take and, when the content has been cloned, the clone(s). Rendering them
together guarantees they share the accompaniment, timing and mastering, and it
reuses the expensive TTS + WORLD work.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter, oaconvolve

from trackguard.corpus import encode, noise, transforms
from trackguard.corpus.arrange import accompaniment_midi, render_midi
from trackguard.corpus.encode import Delivery
from trackguard.corpus.generators import FAMILIES, GENERATORS
from trackguard.corpus.mix import VOCAL_DBFS, MixSpec, level_vocal, master, master_with_vocal, to_rate
from trackguard.corpus.music import Song
from trackguard.corpus.sing import HOP, Vocal, sing_song
from trackguard.corpus.stems import stem_path
from trackguard.corpus.voices import VOICE_SR, Voice, speak

A_CAPPELLA_PAD = (0.25, 0.6)  # seconds kept before the first note and after the last sound
STEM_SR = VOICE_SR
_STEM_DELIVERY = Delivery("flac", STEM_SR, 1, "pcm16")


@dataclasses.dataclass(frozen=True)
class SongOutput:
    path: str
    family: str | None  # None: the bona fide (or instrumental) rendering


@dataclasses.dataclass(frozen=True)
class SongJob:
    seed: int
    song: Song
    voice: Voice | None  # None: instrumental (the melody goes to a lead instrument)
    style: str  # sung | spoken
    a_cappella: bool
    mix: MixSpec
    delivery: Delivery
    outputs: tuple[SongOutput, ...]
    stems: bool = False  # also write each output's vocal stem (`trackguard.corpus.stems.stem_path`)

    def cost(self) -> float:
        return self.song.music_s * (1 + 2 * (self.voice is not None) + len(self.outputs))


@dataclasses.dataclass(frozen=True)
class NoiseJob:
    seed: int
    kind: str
    seconds: float
    mix: MixSpec
    delivery: Delivery
    path: str

    def cost(self) -> float:
        return self.seconds * 0.3


@dataclasses.dataclass(frozen=True)
class DuplicateJob:
    seed: int
    source: str
    transform: str
    delivery: Delivery
    path: str

    def cost(self) -> float:
        return 10.0


Job = SongJob | NoiseJob | DuplicateJob


@dataclasses.dataclass(frozen=True)
class Rendered:
    path: str
    duration_s: float
    sample_rate: int
    channels: int


def _active_mask(vocal: Vocal) -> np.ndarray:
    """Where the bona fide vocal sings; clones are levelled over the same samples."""
    mask = np.zeros(len(vocal.samples), dtype=bool)
    for ph in vocal.phrases:
        mask[ph.start : ph.start + len(ph.params.f0) * HOP] = True
    return mask


def _gate(mask: np.ndarray) -> np.ndarray:
    """The bona fide sung regions widened by 30 ms with 10 ms ramps. Every twin's vocal is multiplied by
    it, so residue a generator leaves in the pauses (Griffin-Lim smear, codec noise) is no giveaway."""
    widen, ramp = int(0.03 * VOICE_SR), int(0.01 * VOICE_SR)
    wide = maximum_filter1d(mask.astype(float), size=2 * widen + 1)
    kernel = np.hanning(2 * ramp + 1)
    return np.clip(oaconvolve(wide, kernel / kernel.sum(), mode="same"), 0.0, 1.0)


def _room_tone(seed: int, n: int) -> np.ndarray:
    """A faint shared noise floor (-60 dB under the vocal) for a-cappella takes: no digital silence between
    phrases, as in any real room, and identical in both twins."""
    rng = np.random.default_rng([seed, 4])
    brown = lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    return brown / (np.std(brown) + 1e-12) * 10 ** ((VOCAL_DBFS - 60) / 20)


def _a_cappella_span(song: Song, vocal: Vocal) -> tuple[int, int]:
    """Samples (at VOICE_SR) of an a-cappella take: from just before the first note to just after the
    last sound. Taken from the bona fide vocal, so a clone is cut exactly like its twin."""
    start_s, end_s = song.sung_span_s()
    active = np.flatnonzero(_active_mask(vocal))
    sung_end = active[-1] / VOICE_SR if len(active) else end_s
    start = max(0, int((start_s - A_CAPPELLA_PAD[0]) * VOICE_SR))
    end = min(len(vocal.samples), int((max(end_s, sung_end) + A_CAPPELLA_PAD[1]) * VOICE_SR))
    return start, end


def _bona_fide_vocal(job: SongJob) -> Vocal | None:
    if job.voice is None:
        return None
    unique = {line.key: line.text for line in job.song.lines}
    spoken = dict(zip(unique, speak(job.voice, list(unique.values())), strict=True))
    n16 = round(job.song.music_s * VOICE_SR)
    return sing_song(job.song, spoken, job.style, np.random.default_rng([job.seed, 1]), n16)


@dataclasses.dataclass
class _VocalBed:
    """What every take of one song shares: the bona fide vocal, its sung regions, gate and cut."""

    vocal: Vocal
    mask: np.ndarray
    gate: np.ndarray
    span: tuple[int, int]

    def take(self, job: SongJob, family: str | None, sr: int, n_out: int) -> np.ndarray:
        """The bona fide vocal or its clone by ``family``, levelled, gated, cut and at ``sr``."""
        raw = self.vocal.samples
        if family is not None:
            raw = GENERATORS[family](self.vocal, np.random.default_rng([job.seed, 3, FAMILIES.index(family)]))
        levelled = level_vocal(raw, self.mask) * self.gate
        if job.a_cappella:
            levelled = levelled + _room_tone(job.seed, len(levelled))
        return to_rate(levelled[self.span[0] : self.span[1]], VOICE_SR, sr, n_out)


def _render_song(job: SongJob) -> list[Rendered]:
    song, d = job.song, job.delivery
    n_music = round(song.music_s * d.sr)
    vocal = _bona_fide_vocal(job)
    acc, bed = None, None
    if not job.a_cappella:
        midi = accompaniment_midi(song, np.random.default_rng([job.seed, 2]), with_lead=vocal is None)
        acc = render_midi(midi, d.sr, n_music)
    if vocal is not None:
        mask = _active_mask(vocal)
        span = _a_cappella_span(song, vocal) if job.a_cappella else (0, round(song.music_s * VOICE_SR))
        n_music = round((span[1] - span[0]) / VOICE_SR * d.sr) if job.a_cappella else n_music
        bed = _VocalBed(vocal, mask, _gate(mask), span)
    results = []
    for out in job.outputs:
        voc = bed.take(job, out.family, d.sr, n_music) if bed is not None else None
        x, vocal_share = master_with_vocal(voc, acc, job.mix, d.sr, d.channels, fade_out_s=0.4 if acc is None else 1.0)
        encode.write(Path(out.path), x, d)
        if job.stems and vocal_share is not None:
            stem = to_rate(vocal_share, d.sr, STEM_SR, round(len(vocal_share) * STEM_SR / d.sr))
            encode.write(stem_path(out.path), stem, _STEM_DELIVERY)
        results.append(Rendered(out.path, len(x) / d.sr, d.sr, d.channels))
    return results


def _render_noise(job: NoiseJob) -> list[Rendered]:
    d = job.delivery
    rng = np.random.default_rng(job.seed)
    x = noise.noise_track(job.kind, rng, round(job.seconds * d.sr), d.sr)
    x = master(None, x * 10 ** (-20 / 20), job.mix, d.sr, d.channels)
    encode.write(Path(job.path), x, d)
    return [Rendered(job.path, len(x) / d.sr, d.sr, d.channels)]


def _render_duplicate(job: DuplicateJob) -> list[Rendered]:
    x, sr = encode.decode(Path(job.source))
    y = transforms.apply(job.transform, x, sr, np.random.default_rng(job.seed))
    d = job.delivery
    if d.channels == 1 and y.shape[1] > 1:
        y = y.mean(axis=1, keepdims=True)
    elif d.channels == 2 and y.shape[1] == 1:
        y = np.repeat(y, 2, axis=1)
    n_out = round(len(y) * d.sr / sr)
    y = to_rate(y, sr, d.sr, n_out).astype(np.float32)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.999:  # resampling overshoot; a real re-upload tool would limit too
        y *= 0.999 / peak
    encode.write(Path(job.path), y, d)
    return [Rendered(job.path, len(y) / d.sr, d.sr, d.channels)]


def run_job(job: Job) -> list[Rendered]:
    """Worker entry point (must stay importable at module level for process pools)."""
    if isinstance(job, SongJob):
        return _render_song(job)
    if isinstance(job, NoiseJob):
        return _render_noise(job)
    return _render_duplicate(job)

