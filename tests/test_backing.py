"""The synthetic backing track that enrolment mixes under reference windows (`features.backing`)."""

from __future__ import annotations

import numpy as np
import pytest

from features.backing import synthetic_backing

SR = 16_000


def band_share(x: np.ndarray, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


def test_a_backing_track_has_unit_power_and_the_asked_length() -> None:
    y = synthetic_backing(3 * SR, SR, np.random.default_rng(0))
    assert y.shape == (3 * SR,) and np.isfinite(y).all()
    assert np.mean(y**2) == pytest.approx(1.0)
    assert synthetic_backing(0, SR, np.random.default_rng(0)).shape == (0,)


def test_a_backing_track_is_a_band_bass_and_kick_low_chords_in_the_voice_band_hats_on_top() -> None:
    y = synthetic_backing(4 * SR, SR, np.random.default_rng(1))
    assert band_share(y, 20, 200) > 0.2  # kick and bass
    assert band_share(y, 200, 4000) > 0.05  # chords, where the voice sings
    assert band_share(y, 4000, 8000) > 1e-4  # hi-hats


def test_the_same_seed_gives_the_same_track_and_another_seed_another() -> None:
    a = synthetic_backing(2 * SR, SR, np.random.default_rng([7, 1]))
    b = synthetic_backing(2 * SR, SR, np.random.default_rng([7, 1]))
    c = synthetic_backing(2 * SR, SR, np.random.default_rng([7, 2]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
