"""Accompaniment: a Song's chords, bass and drums as General MIDI notes, rendered by fluidsynth."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from trackguard.corpus.midi import DRUM_CHANNEL, Note, smf_bytes
from trackguard.corpus.music import Song

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
CHORD_CH, BASS_CH, LEAD_CH = 0, 1, 2

# 16 steps per bar: (GM drum key, steps, velocity)
_DRUMS: dict[str, tuple[tuple[int, tuple[int, ...], int], ...]] = {
    "pop": ((36, (0, 8, 10), 100), (38, (4, 12), 95), (42, (0, 2, 4, 6, 8, 10, 12, 14), 60)),
    "rock": ((36, (0, 6, 8), 110), (38, (4, 12), 105), (42, (0, 2, 4, 6, 8, 10, 12, 14), 75)),
    "four": ((36, (0, 4, 8, 12), 110), (39, (4, 12), 85), (46, (2, 6, 10, 14), 60)),
    "boombap": ((36, (0, 7, 10), 105), (38, (4, 12), 100), (42, (0, 2, 4, 6, 8, 10, 12, 14), 55)),
    "swing": ((51, (0, 4, 7, 8, 12, 15), 70), (44, (4, 12), 55), (36, (0,), 60)),
    "light": ((42, (0, 4, 8, 12), 50), (36, (0,), 70), (37, (8,), 55)),
    "none": (),
}


def _triad(song: Song, degree: int) -> list[int]:
    """Close-position triad wrapped into the middle register (52..67)."""
    pitches = []
    for k in (0, 2, 4):
        p = song.degree_pitch(degree + k, 48)
        while p < 52:
            p += 12
        while p > 67:
            p -= 12
        pitches.append(p)
    return sorted(pitches)


def _bass_root(song: Song, degree: int) -> int:
    p = song.degree_pitch(degree, 36)
    return p - 12 if p > 43 else p


def _comp(song: Song, bar: int, rng: np.random.Generator) -> list[Note]:
    chord, t0 = _triad(song, song.chords[bar]), bar * 4.0
    vel = int(rng.integers(60, 80))
    if song.comp == "sustain" or bar == song.n_bars - 1:
        return [Note(CHORD_CH, p, t0, 3.9, vel) for p in chord]
    if song.comp == "stabs":
        return [Note(CHORD_CH, p, t0 + b, 0.45, vel) for b in (0.0, 1.5, 2.0, 3.5) for p in chord]
    if song.comp == "eighths":
        root = chord[0]
        return [Note(CHORD_CH, p, t0 + i / 2, 0.45, vel) for i in range(8) for p in (root, root + 7, root + 12)]
    order = [*chord, chord[0] + 12, *chord[::-1][1:]][:8]  # arpeggio up and down
    return [Note(CHORD_CH, order[i % len(order)], t0 + i / 2, 0.9, vel) for i in range(8)]


def _bass(song: Song, bar: int, rng: np.random.Generator) -> list[Note]:
    root, t0 = _bass_root(song, song.chords[bar]), bar * 4.0
    vel = int(rng.integers(80, 100))
    if song.bass == "none":
        return []
    if song.bass == "eighths":
        return [Note(BASS_CH, root, t0 + i / 2, 0.45, vel) for i in range(8)]
    if song.bass == "walk":
        steps = [0, 4, 7, int(rng.choice([9, 10, 11]))]
        return [Note(BASS_CH, root + s, t0 + i, 0.9, vel) for i, s in enumerate(steps)]
    return [Note(BASS_CH, root, t0, 1.8, vel), Note(BASS_CH, root + 7 if bar % 2 else root, t0 + 2, 1.8, vel)]


def _drums(song: Song, bar: int, rng: np.random.Generator) -> list[Note]:
    notes = []
    for key, steps, vel in _DRUMS[song.drums]:
        for s in steps:
            v = int(np.clip(vel + rng.integers(-8, 9), 1, 127))
            notes.append(Note(DRUM_CHANNEL, key, bar * 4.0 + s / 4, 0.25, v))
    if bar == 0 and song.drums != "none":
        notes.append(Note(DRUM_CHANNEL, 49, 0.0, 1.0, 90))  # crash on the downbeat
    return notes


def _lead(song: Song) -> list[Note]:
    """Instrumental tracks play the melody on a lead instrument instead of a voice."""
    notes = []
    for line in song.lines:
        for n in line.notes:
            notes.append(Note(LEAD_CH, n.pitch + 12, line.start_beat + n.start, n.dur * 0.95, 90))
    return notes


def accompaniment_midi(song: Song, rng: np.random.Generator, with_lead: bool) -> bytes:
    notes: list[Note] = []
    for bar in range(song.n_bars):
        notes += _comp(song, bar, rng) + _bass(song, bar, rng)
        if bar < song.n_bars - 1:
            notes += _drums(song, bar, rng)
    if with_lead:
        notes += _lead(song)
    programs = {CHORD_CH: song.chord_program, BASS_CH: song.bass_program, LEAD_CH: song.lead_program}
    end_beat = song.n_bars * 4 + song.tempo / 60.0 * 1.2
    return smf_bytes(notes, programs, song.tempo, end_beat)


def render_midi(midi: bytes, sr: int, n_samples: int) -> np.ndarray:
    """fluidsynth offline render → float32 stereo (n_samples, 2), padded/trimmed to length."""
    with tempfile.TemporaryDirectory(prefix="tg-fs-") as tmp:
        mid, wav = Path(tmp) / "a.mid", Path(tmp) / "a.wav"
        mid.write_bytes(midi)
        # float output: no dither, so the render is bit-reproducible.
        cmd = ["fluidsynth", "-ni", "-q", "-C", "0", "-g", "0.5", "-r", str(sr), "-O", "float", "-T", "wav",
               "-F", str(wav), SOUNDFONT, str(mid)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        audio, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    out = np.zeros((n_samples, 2), dtype=np.float32)
    n = min(n_samples, len(audio))
    out[:n] = audio[:n, :2] if audio.shape[1] >= 2 else np.repeat(audio[:n], 2, axis=1)
    return out
