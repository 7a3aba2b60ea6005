"""Songs as data: key, tempo, chords, structure, the vocal melody, the arrangement.

A `Song` is planned in the parent process (cheap, deterministic) and rendered in a
worker. The melody is stored at a reference octave; the renderer moves it by whole
octaves into the singer's range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from trackguard.corpus.rng import choice

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
RELEASE_S = 1.5  # rendered after the last bar: note releases and reverb tails
LINE_BARS = 2  # every sung line occupies two bars of 4/4


@dataclasses.dataclass(frozen=True)
class Style:
    genre: str
    tempo: tuple[int, int]
    chord_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]
    lead_programs: tuple[int, ...]
    drums: tuple[str, ...]
    comp: tuple[str, ...]
    bass: str


STYLES: dict[str, Style] = {
    s.genre: s
    for s in (
        Style("pop", (90, 128), (0, 4, 89), (33, 34), (73, 80), ("pop",), ("stabs", "sustain"), "root2"),
        Style("rock", (100, 140), (29, 30, 27), (34,), (30, 65), ("rock",), ("eighths",), "eighths"),
        Style("folk", (80, 115), (24, 25), (32,), (73, 22), ("light", "none"), ("arpeggio",), "root2"),
        Style("electronic", (115, 130), (81, 88, 90), (38, 39), (80, 81), ("four",), ("stabs", "sustain"), "eighths"),
        Style("hip-hop", (80, 96), (4, 5, 11), (38, 33), (11, 4), ("boombap",), ("sustain",), "root2"),
        Style("ballad", (66, 84), (0, 48, 49), (32, 42), (40, 71), ("none", "light"), ("arpeggio", "sustain"), "root2"),
        Style("jazz", (90, 140), (0, 4, 26), (32,), (65, 66), ("swing",), ("stabs",), "walk"),
        Style("ambient", (60, 72), (89, 91, 95), (89,), (92, 88), ("none",), ("sustain",), "none"),
    )
}
SONG_GENRES = ("pop", "rock", "folk", "electronic", "hip-hop", "ballad", "jazz")
_PROGRESSIONS_MAJOR = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (1, 4, 0, 0), (0, 3, 0, 4))
_PROGRESSIONS_MINOR = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4))


@dataclasses.dataclass(frozen=True)
class MelodyNote:
    start: float  # beats from the start of the line
    dur: float
    pitch: int  # MIDI, reference octave (tonic near 60)


@dataclasses.dataclass(frozen=True)
class Line:
    key: str  # lines with one key share text and melody (a repeated chorus line)
    text: str
    start_beat: float
    notes: tuple[MelodyNote, ...]


@dataclasses.dataclass(frozen=True)
class Song:
    genre: str
    tempo: float
    tonic: int
    minor: bool
    chords: tuple[int, ...]  # scale degree (0-based) of each bar's chord
    chord_program: int
    bass_program: int
    lead_program: int
    drums: str
    comp: str
    bass: str
    lines: tuple[Line, ...]

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo

    @property
    def n_bars(self) -> int:
        return len(self.chords)

    @property
    def music_s(self) -> float:
        return self.n_bars * 4 * self.beat_s + RELEASE_S

    def sung_span_s(self) -> tuple[float, float]:
        """From the first note's onset to the last note's end, in seconds (0, 0 if instrumental)."""
        if not self.lines:
            return 0.0, 0.0
        first, last = self.lines[0], self.lines[-1]
        start = first.start_beat + first.notes[0].start
        end = last.start_beat + last.notes[-1].start + last.notes[-1].dur
        return start * self.beat_s, end * self.beat_s

    def scale(self) -> tuple[int, ...]:
        return MINOR if self.minor else MAJOR

    def degree_pitch(self, degree: int, base: int) -> int:
        """MIDI pitch of a scale degree (may be negative or > 6) above ``base + tonic``."""
        octave, step = divmod(degree, 7)
        return base + self.tonic + self.scale()[step] + 12 * octave


def _melody(rng: np.random.Generator, chord_degree: int, scale: tuple[int, ...], tonic: int) -> tuple[MelodyNote, ...]:
    """A two-bar phrase: a rhythm that leaves a breath at the end, a stepwise walk from a chord tone."""
    t = float(choice(rng, [0.0, 0.5, 1.0]))
    degree = chord_degree + int(choice(rng, [0, 2, 4]))
    notes: list[MelodyNote] = []
    while t < 5.5:
        dur = float(choice(rng, [0.5, 1.0, 1.0, 1.5, 2.0]))
        notes.append(MelodyNote(t, dur, 0))
        t += dur
    last = notes[-1]
    notes[-1] = MelodyNote(last.start, min(last.dur + float(choice(rng, [0.5, 1.0, 1.5])), 7.5 - last.start), 0)
    pitched = []
    for note in notes:
        octave, step = divmod(degree, 7)
        pitched.append(MelodyNote(note.start, note.dur, 60 + tonic + scale[step] + 12 * octave))
        degree = int(np.clip(degree + int(choice(rng, [-2, -1, 0, 1, 2], p=[0.1, 0.3, 0.2, 0.3, 0.1])), -3, 9))
    return tuple(pitched)


def _structure(n_lines_max: int, rng: np.random.Generator) -> list[str]:
    """Line keys in order: verses are new lines, a chorus repeats two lines."""
    keys: list[str] = []
    verse = 0
    while len(keys) < n_lines_max:
        keys.extend(f"v{verse}-{i}" for i in range(4))
        verse += 1
        keys.extend(["c0", "c1", "c0", "c1"] if rng.random() < 0.8 else ["c0", "c0", "c1", "c1"])
    return keys[:n_lines_max]


LyricFn = Callable[[int, int], str]  # (min_words, max_words) -> line


def plan_song(rng: np.random.Generator, genre: str, target_music_s: float, lyric: LyricFn | None,
              intro: int | None = None, outro: int = 1, bars: int | None = None) -> Song:
    """A song of about ``target_music_s`` seconds; ``lyric`` is None for an instrumental.

    ``intro``/``outro`` are bars without singing (default intro: 1-4 bars by length; the
    outro is the held final chord).
    """
    style = STYLES[genre]
    tempo = float(rng.integers(style.tempo[0], style.tempo[1] + 1))
    minor = bool(rng.random() < 0.4)
    progression = choice(rng, _PROGRESSIONS_MINOR if minor else _PROGRESSIONS_MAJOR)
    bar_s = 240.0 / tempo
    n_bars = bars if bars is not None else max(4, round((target_music_s - RELEASE_S) / bar_s))
    chords = tuple(progression[i % len(progression)] for i in range(n_bars))
    if intro is None:
        intro = 1 if n_bars < 10 else int(choice(rng, [2, 2, 4]))
    body = n_bars - intro - outro
    keys = _structure(max(0, body // LINE_BARS), rng)
    tonic = int(rng.integers(0, 12))
    scale = MINOR if minor else MAJOR
    # Sung speech runs ~1.6 words/s once stretched over the notes.
    span_s = 6.5 * 60.0 / tempo
    words = int(np.clip(round(span_s * 1.6), 3, 9))
    texts: dict[str, str] = {}
    melodies: dict[str, tuple[MelodyNote, ...]] = {}
    lines = []
    for i, key in enumerate(keys):
        bar = intro + i * LINE_BARS
        if key not in texts:
            texts[key] = lyric(words - 1, words + 1) if lyric else ""
            melodies[key] = _melody(rng, chords[bar], scale, tonic)
        lines.append(Line(key, texts[key], bar * 4.0, melodies[key]))
    return Song(
        genre=genre,
        tempo=tempo,
        tonic=tonic,
        minor=minor,
        chords=chords,
        chord_program=int(choice(rng, style.chord_programs)),
        bass_program=int(choice(rng, style.bass_programs)),
        lead_program=int(choice(rng, style.lead_programs)),
        drums=choice(rng, style.drums),
        comp=choice(rng, style.comp),
        bass=style.bass,
        lines=tuple(lines),
    )
