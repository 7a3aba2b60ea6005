"""Voice-clustered bootstrap intervals and paired differences (models.bootstrap)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from models.bootstrap import bootstrap_interval, cluster_members, paired_difference, resampled_metrics
from models.spoof_metrics import equal_error_rate, min_dcf


def _voices(n_voices: int = 12, per_voice: int = 10, voice_sd: float = 2.0, gap: float = 2.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, logits and voice ids: each voice shifts its bona fide uploads by one offset (a voice that looks
    synthetic, as `awb` does to the shipped detector, raises all of its songs together)."""
    rng = np.random.default_rng(seed)
    labels, logits, voices = [], [], []
    for v in range(n_voices):
        offset = rng.normal(0.0, voice_sd)
        y = np.arange(per_voice) % 2 == 1
        labels.append(y)
        logits.append(offset * ~y + gap * y + rng.normal(0.0, 1.0, per_voice))
        voices += [f"v{v:02d}"] * per_voice
    return np.concatenate(labels), np.concatenate(logits), np.array(voices)


def test_interval_brackets_the_estimate_and_is_reproducible() -> None:
    y, x, g = _voices()
    first = bootstrap_interval(y, x, equal_error_rate, g, n_resamples=300)
    assert first.low <= first.estimate <= first.high
    assert 0.0 <= first.low < first.high <= 1.0
    assert first.estimate == pytest.approx(equal_error_rate(y, x))
    assert (first.n_resamples, first.n_clusters) == (300, 12)
    assert bootstrap_interval(y, x, equal_error_rate, g, n_resamples=300) == first
    assert bootstrap_interval(y, x, equal_error_rate, g, n_resamples=300, seed=1) != first


def test_resampling_voices_is_wider_than_resampling_uploads_when_voices_move_together() -> None:
    y, x, g = _voices(voice_sd=3.0)
    by_voice = bootstrap_interval(y, x, equal_error_rate, g, n_resamples=400)
    by_upload = bootstrap_interval(y, x, equal_error_rate, None, n_resamples=400)
    assert by_upload.n_clusters == y.size
    assert by_voice.high - by_voice.low > 1.3 * (by_upload.high - by_upload.low)


def test_more_voices_narrow_the_interval() -> None:
    def width(n_voices: int) -> float:
        y, x, g = _voices(n_voices=n_voices, seed=3)
        res = bootstrap_interval(y, x, equal_error_rate, g, n_resamples=400)
        return res.high - res.low

    assert width(60) < 0.6 * width(6)


def test_every_draw_is_one_of_the_enumerated_resamples_at_their_frequencies() -> None:
    """Brute force on two voices: the four equally likely ordered draws give three distinct resamples."""
    y = np.array([False, True, False, True, True])
    x = np.array([0.1, 0.9, 0.7, 0.4, 0.8])
    g = np.array(["a", "a", "b", "b", "b"])
    members = cluster_members(g, y.size)
    expected = Counter()
    for pick in itertools.product(range(2), repeat=2):
        idx = np.concatenate([members[i] for i in pick])
        expected[round(equal_error_rate(y[idx], x[idx]), 12)] += 1
    draws = resampled_metrics(y, [x], equal_error_rate, g, n_resamples=4000)[:, 0]
    seen = Counter(round(float(d), 12) for d in draws)
    assert set(seen) <= set(expected)
    for value, count in expected.items():
        assert seen[value] / draws.size == pytest.approx(count / 4, abs=0.03)


def test_resamples_without_both_classes_are_skipped_and_counted() -> None:
    y = np.array([False, False, True, True])
    x = np.array([0.0, 0.1, 0.9, 1.0])
    g = np.array(["bona", "bona", "clones", "clones"])  # half the draws take one voice twice: one class only
    res = bootstrap_interval(y, x, equal_error_rate, g, n_resamples=1000)
    assert 400 < res.n_resamples < 600
    lonely = bootstrap_interval(y[:2], x[:2], lambda a, b: 0.0, g[:2], n_resamples=50)
    assert lonely.n_resamples == 0 and np.isnan(lonely.low) and np.isnan(lonely.high)


def test_paired_difference_of_a_system_with_itself_is_exactly_zero() -> None:
    y, x, g = _voices()
    same = paired_difference(y, x, x.copy(), equal_error_rate, g, n_resamples=200)
    assert (same.difference, same.low, same.high, same.share_candidate_lower) == (0.0, 0.0, 0.0, 0.0)


def test_paired_difference_finds_a_better_candidate_that_separate_intervals_would_not() -> None:
    y, x, g = _voices(voice_sd=3.0, seed=5)
    better = x + 0.8 * y  # every clone a little higher: a real but small gain
    d = paired_difference(y, x, better, equal_error_rate, g, n_resamples=400)
    assert d.difference < 0 and d.high <= 0.0 and d.share_candidate_lower > 0.8
    a = bootstrap_interval(y, x, equal_error_rate, g, n_resamples=400)
    b = bootstrap_interval(y, better, equal_error_rate, g, n_resamples=400)
    assert b.high > a.low  # the two intervals overlap, yet the paired interval excludes 0

    worse = paired_difference(y, x, x - 0.8 * y, min_dcf, g, n_resamples=400)
    assert worse.difference > 0 and worse.low >= 0.0


def test_no_scores_give_no_resamples() -> None:
    empty = bootstrap_interval(np.zeros(0, bool), np.zeros(0), lambda a, b: 0.0, np.zeros(0, str), n_resamples=10)
    assert empty.n_resamples == 0 and np.isnan(empty.low)


def test_groups_must_match_the_scores() -> None:
    with pytest.raises(ValueError, match="one entry per score"):
        bootstrap_interval([True, False], [1.0, 0.0], equal_error_rate, ["a"])
    with pytest.raises(ValueError, match="one score per label"):
        paired_difference([True, False], [1.0, 0.0], [1.0], equal_error_rate)
