"""Synthetic backing tracks: a generic band (chords, bass, kick, hi-hat) to mix under a cappella audio.

Why: artists enrol from a cappella references, but most uploads sing over an
accompaniment, and a speaker embedding of a voice inside a mix drifts away from
the same voice alone (`trackguard eval voices` shows the drift growing as the
accompaniment gets louder). Enrolment therefore also embeds each reference window
mixed under a backing track at several vocal-to-accompaniment ratios
(`trackguard.enrol.BACKING_DB`), so the voiceprint sits between the voice alone and
the voice in a mix.

What it is: additive synthesis only — a four-note chord per bar with random
harmonic tilt, a bass note per beat, a pitch-swept sine kick and differentiated
noise hi-hats, at a random tempo and key. It is deliberately not the corpus's
accompaniment renderer (`trackguard.corpus.arrange`): the evaluation corpora are
mixed with that one, and reusing it here would tune enrolment to the test data.
Real instrumentals would serve better on a real catalogue; none ship with the
project, so this generator is the offline default.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

_MAX_HARMONICS = 12
_CHORD_STEPS = (0, 5, 7, 9, -3, 2)  # bar roots relative to the key: I, IV, V, vi, vi (down), ii
_TEMPO_BPM = (80.0, 140.0)


def _note(freq_hz: float, n: int, sr: int, rng: np.random.Generator, tilt: float) -> np.ndarray:
    """One struck note: harmonics falling as h^-tilt, 20 ms attack, exponential decay."""
    t = np.arange(n) / sr
    y = np.zeros(n)
    for h in range(1, _MAX_HARMONICS + 1):
        if freq_hz * h > 0.45 * sr:
            break
        y += h ** -tilt * np.sin(2 * np.pi * freq_hz * h * t + rng.uniform(0.0, 2 * np.pi))
    return y * np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(0.3, 3.0))


def _midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def _kick(n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    return np.asarray(np.sin(2 * np.pi * (50.0 + 80.0 * np.exp(-t * 30.0)) * t) * np.exp(-t * 12.0))


def _hat(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    bright = lfilter([1.0, -1.0], [1.0], rng.standard_normal(n))  # first difference: energy up high
    return np.asarray(bright * np.exp(-np.arange(n) / sr * 40.0))


def synthetic_backing(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples at ``sr`` of a random backing track, float64 at unit power (zeros for n == 0)."""
    if n <= 0:
        return np.zeros(max(n, 0))
    beat = max(1, int(60.0 / rng.uniform(*_TEMPO_BPM) * sr))
    bar = 4 * beat
    out = np.zeros(n + bar)
    key = int(rng.integers(45, 57))
    tilt = rng.uniform(0.8, 2.0)
    for start in range(0, n, bar):
        root = key + int(rng.choice(_CHORD_STEPS))
        third = 3 if rng.random() < 0.4 else 4
        for step in (0, third, 7, 12):
            out[start : start + bar] += 0.3 * _note(_midi_hz(root + step), bar, sr, rng, tilt)
        for q in range(4):
            at = start + q * beat
            out[at : at + beat] += 0.5 * _note(_midi_hz(root - 12), beat, sr, rng, 2.5)
            out[at : at + beat] += 0.8 * _kick(beat, sr)
            off = at + beat // 2
            out[off : off + beat // 2] += 0.15 * _hat(beat // 2, sr, rng)
    y = out[:n]
    power = float(np.mean(y**2))
    return y / np.sqrt(power) if power > 0 else y
