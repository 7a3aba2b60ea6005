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

from trackguard.corpus import encode, noise, transforms
from trackguard.corpus.arrange import accompaniment_midi, render_midi
from trackguard.corpus.encode import Delivery
from trackguard.corpus.generators import FAMILIES, GENERATORS
from trackguard.corpus.mix import MixSpec, level_vocal, master, rms_db, to_rate
from trackguard.corpus.music import Song
from trackguard.corpus.sing import HOP, Vocal, sing_song
from trackguard.corpus.voices import VOICE_SR, Voice, speak


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


def _render_song(job: SongJob) -> list[Rendered]:
    song, d = job.song, job.delivery
    n_music = int(round(song.music_s * d.sr))
    vocal = None
    if job.voice is not None:
        unique = {line.key: line.text for line in song.lines}
        spoken = dict(zip(unique, speak(job.voice, list(unique.values())), strict=True))
        n16 = int(round(song.music_s * VOICE_SR))
        vocal = sing_song(song, spoken, job.style, np.random.default_rng([job.seed, 1]), n16)
    acc = None
    if not job.a_cappella:
        midi = accompaniment_midi(song, np.random.default_rng([job.seed, 2]), with_lead=vocal is None)
        acc = render_midi(midi, d.sr, n_music)
    results = []
    for out in job.outputs:
        voc = None
        if vocal is not None:
            raw = vocal.samples
            if out.family is not None:
                raw = GENERATORS[out.family](vocal, np.random.default_rng([job.seed, 3, FAMILIES.index(out.family)]))
            voc = to_rate(level_vocal(raw, _active_mask(vocal)), VOICE_SR, d.sr, n_music)
        x = master(voc, acc, job.mix, d.sr, d.channels)
        encode.write(Path(out.path), x, d)
        results.append(Rendered(out.path, len(x) / d.sr, d.sr, d.channels))
    return results


def _render_noise(job: NoiseJob) -> list[Rendered]:
    d = job.delivery
    rng = np.random.default_rng(job.seed)
    x = noise.noise_track(job.kind, rng, int(round(job.seconds * d.sr)), d.sr)
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
    n_out = int(round(len(y) * d.sr / sr))
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


__all__ = ["DuplicateJob", "Job", "NoiseJob", "Rendered", "SongJob", "SongOutput", "rms_db", "run_job"]
