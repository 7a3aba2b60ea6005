"""Spoof-detector metrics against slow, obviously-correct references written out here.

The references loop over every candidate threshold (O(n²)) with exact ``Fraction`` arithmetic
where ties matter, and try more thresholds than the fast code does (midpoints, ±inf), so they
also check that evaluating only at the distinct scores loses nothing.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from models.spoof_metrics import (
    act_dcf,
    bayes_llr_threshold,
    cllr,
    det_curve,
    eer_with_threshold,
    equal_error_rate,
    llr_from_probability,
    min_cllr,
    min_dcf,
    operating_point,
    threshold_for_bona_fide_flag_rate,
)

SEEDS = range(50)


# --------------------------------------------------------------------------- references


def _dataset(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random labels/scores; even seeds use small integer scores (many ties)."""
    rng = np.random.default_rng(seed)
    n_bona, n_synth = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    labels = np.r_[np.zeros(n_bona, bool), np.ones(n_synth, bool)]
    if seed % 2 == 0:
        scores = np.r_[rng.integers(0, 8, n_bona), rng.integers(2, 10, n_synth)].astype(float)
    else:
        scores = np.r_[rng.normal(0, 1, n_bona), rng.normal(1.0, 1.3, n_synth)]
    perm = rng.permutation(labels.size)
    return labels[perm], scores[perm]


def _rates(labels: np.ndarray, scores: np.ndarray, t: float) -> tuple[Fraction, Fraction]:
    """(bona fide flag rate, synthetic pass rate) at t, by counting one track at a time."""
    bona = [s for lab, s in zip(labels, scores, strict=True) if not lab]
    synth = [s for lab, s in zip(labels, scores, strict=True) if lab]
    flagged = sum(1 for s in bona if s >= t)
    passed = sum(1 for s in synth if s < t)
    return Fraction(flagged, len(bona)), Fraction(passed, len(synth))


def _brute_eer(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    best: tuple[Fraction, Fraction, float] | None = None
    for t in [*sorted(set(scores.tolist())), math.inf]:
        flag, pas = _rates(labels, scores, t)
        gap = abs(flag - pas)
        if best is None or gap < best[0]:
            best = (gap, (flag + pas) / 2, t)
    assert best is not None
    return float(best[1]), best[2]


def _all_thresholds(scores: np.ndarray) -> list[float]:
    uniq = sorted(set(scores.tolist()))
    mids = [(a + b) / 2 for a, b in itertools.pairwise(uniq)]
    return [-math.inf, *uniq, *mids, uniq[-1] + 1.0, math.inf]


def _brute_min_dcf(labels: np.ndarray, scores: np.ndarray, p: float, c_miss: float, c_fa: float) -> float:
    costs = []
    for t in _all_thresholds(scores):
        flag, pas = _rates(labels, scores, t)
        costs.append(c_miss * (1 - p) * float(flag) + c_fa * p * float(pas))
    return min(costs) / min(c_miss * (1 - p), c_fa * p)


def _brute_min_cllr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Isotonic regression by the max-min formula over tied-score blocks, then Cllr by hand.

    fit_i = max over j <= i of min over m >= i of (synthetic share of blocks j..m): the
    textbook closed form of the isotonic fit, O(k³) and independent of pool-adjacent-violators.
    """
    uniq = np.unique(scores)
    pos = np.array([np.sum(labels[scores == u]) for u in uniq], dtype=float)
    cnt = np.array([np.sum(scores == u) for u in uniq], dtype=float)
    cum_pos, cum_cnt = np.r_[0.0, np.cumsum(pos)], np.r_[0.0, np.cumsum(cnt)]
    k = uniq.size
    window = np.zeros((k, k))
    for j in range(k):
        for m in range(j, k):
            window[j, m] = (cum_pos[m + 1] - cum_pos[j]) / (cum_cnt[m + 1] - cum_cnt[j])
    fit = [max(window[j, i:].min() for j in range(i + 1)) for i in range(k)]
    n_synth, n_bona = int(labels.sum()), int((~labels).sum())
    synth_cost = bona_cost = 0.0
    for u, f in zip(uniq, fit, strict=True):
        # the PAV posterior f re-weighted to a flat prior, scored in bits
        q = f / n_synth / (f / n_synth + (1 - f) / n_bona)
        n_pos = int(np.sum(labels[scores == u]))
        n_neg = int(np.sum(scores == u)) - n_pos
        if n_pos:
            synth_cost += -n_pos * math.log2(q) / n_synth
        if n_neg:
            bona_cost += -n_neg * math.log2(1 - q) / n_bona
    return 0.5 * (synth_cost + bona_cost)


# --------------------------------------------------------------------------- DET / EER


@pytest.mark.parametrize("seed", SEEDS)
def test_det_curve_matches_counting(seed: int) -> None:
    labels, scores = _dataset(seed)
    curve = det_curve(labels, scores)
    assert curve.thresholds[-1] == math.inf
    assert np.all(np.diff(curve.thresholds) > 0)
    for t, flag, pas in zip(*curve, strict=True):
        ref_flag, ref_pass = _rates(labels, scores, t)
        assert flag == pytest.approx(float(ref_flag), abs=1e-15)
        assert pas == pytest.approx(float(ref_pass), abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_eer_matches_brute_force(seed: int) -> None:
    labels, scores = _dataset(seed)
    eer, threshold = eer_with_threshold(labels, scores)
    ref_eer, ref_threshold = _brute_eer(labels, scores)
    assert abs(eer - ref_eer) < 1e-12
    assert threshold == ref_threshold
    assert equal_error_rate(labels.astype(int), scores) == eer


def test_hand_computed_example() -> None:
    # bona fide 1,2,3,4; synthetic 3,5,6. At t=4: 1/4 bona fide flagged, 1/3 synthetic passed
    # (the closest the rates get) -> EER 7/24. DCF/0.5 at t=5: (0.95·0 + 0.5·1/3)/0.5 = 1/3.
    labels = [0, 0, 0, 0, 1, 1, 1]
    scores = [1.0, 2.0, 3.0, 4.0, 3.0, 5.0, 6.0]
    assert eer_with_threshold(labels, scores) == pytest.approx((7 / 24, 4.0), abs=1e-15)
    assert min_dcf(labels, scores) == pytest.approx(1 / 3, abs=1e-15)
    curve = det_curve(labels, scores)
    np.testing.assert_array_equal(curve.thresholds, [1, 2, 3, 4, 5, 6, np.inf])
    np.testing.assert_allclose(curve.bona_fide_flag_rate, [1, 0.75, 0.5, 0.25, 0, 0, 0])
    np.testing.assert_allclose(curve.synthetic_pass_rate, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])


def test_perfect_and_reversed_separation() -> None:
    labels = np.r_[np.zeros(5, bool), np.ones(4, bool)]
    separated = np.r_[np.arange(5.0), np.arange(10.0, 14.0)]
    assert equal_error_rate(labels, separated) == 0.0
    assert min_dcf(labels, separated) == 0.0
    assert equal_error_rate(labels, -separated) == 1.0
    assert min_dcf(labels, -separated) == 1.0  # no better than flagging nothing


# --------------------------------------------------------------------------- DCF


@pytest.mark.parametrize("seed", SEEDS)
def test_min_dcf_matches_brute_force(seed: int) -> None:
    labels, scores = _dataset(seed)
    for p, c_miss, c_fa in [(0.05, 1.0, 10.0), (0.5, 1.0, 1.0), (0.01, 2.0, 3.0)]:
        fast = min_dcf(labels, scores, p_spoof=p, c_miss=c_miss, c_fa=c_fa)
        assert abs(fast - _brute_min_dcf(labels, scores, p, c_miss, c_fa)) < 1e-12
        assert 0.0 <= fast <= 1.0


def test_act_dcf_hand_example() -> None:
    # Bayes threshold: flag when p >= 1.9 / 2.9 ≈ 0.655 (train prior 0.5). One bona fide (0.7)
    # flagged, one synthetic (0.6) passed: (0.95·0.5 + 0.5·0.5) / 0.5 = 1.45.
    labels = [0, 0, 1, 1]
    probabilities = [0.1, 0.7, 0.6, 0.9]
    assert act_dcf(labels, probabilities) == pytest.approx(1.45, abs=1e-12)
    assert bayes_llr_threshold() == pytest.approx(math.log(1.9))


@pytest.mark.parametrize("seed", SEEDS)
def test_act_dcf_never_below_min_dcf(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    labels, scores = _dataset(seed)
    probabilities = 1.0 / (1.0 + np.exp(-(rng.uniform(0.2, 3.0) * scores + rng.normal(0, 2))))
    prior = float(rng.uniform(0.1, 0.9))
    actual = act_dcf(labels, probabilities, train_prior=prior)
    assert actual >= min_dcf(labels, probabilities) - 1e-12
    # and by hand: the Bayes decision on the same LLRs
    llr = [math.log(p / (1 - p)) - math.log(prior / (1 - prior)) for p in probabilities]
    tau = math.log(0.95 / 0.5)
    flag = np.mean([x >= tau for x, lab in zip(llr, labels, strict=True) if not lab])
    pas = np.mean([x < tau for x, lab in zip(llr, labels, strict=True) if lab])
    assert actual == pytest.approx((0.95 * flag + 0.5 * pas) / 0.5, abs=1e-12)


def test_llr_from_probability_edges() -> None:
    llr = llr_from_probability([0.0, 0.5, 1.0, 0.8], train_prior=0.8)
    assert llr[0] == -math.inf and llr[2] == math.inf
    assert llr[1] == pytest.approx(-math.log(4.0))
    assert llr[3] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- Cllr


def test_cllr_reference_values() -> None:
    labels = np.r_[np.zeros(7, bool), np.ones(3, bool)]
    assert cllr(labels, np.zeros(10)) == 1.0
    confident = np.where(labels, 60.0, -60.0)
    assert cllr(labels, confident) < 1e-25
    assert cllr(labels, np.where(labels, math.log(3), -math.log(3))) == pytest.approx(math.log2(4 / 3))
    # huge wrong LLRs must not overflow to inf / nan
    wrong = cllr(labels, np.where(labels, -1e4, 1e4))
    assert wrong == pytest.approx(1e4 / math.log(2), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_min_cllr_matches_brute_force_pav(seed: int) -> None:
    labels, scores = _dataset(seed)
    fast = min_cllr(labels, scores)
    assert abs(fast - _brute_min_cllr(labels, scores)) < 1e-9
    # no affine calibration of the scores beats the best monotone one
    for a, b in [(1.0, 0.0), (0.5, -0.3), (2.0, 1.0)]:
        assert fast <= cllr(labels, a * scores + b) + 1e-12
    assert fast <= 1.0 + 1e-12


def test_min_cllr_perfect_separation_is_zero() -> None:
    labels = [0, 0, 0, 1, 1]
    assert min_cllr(labels, [0.1, 0.2, 0.3, 0.8, 0.9]) == 0.0


# --------------------------------------------------------------------------- operating points


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_for_bona_fide_flag_rate_brute_force(seed: int) -> None:
    labels, scores = _dataset(seed)
    bona = scores[~labels]
    candidates = [*sorted(set(bona.tolist())), math.inf]
    for target in [0.0, 0.01, 0.1, 0.25, 0.29, 0.5, 1.0]:
        allowed = math.floor(Fraction(target) * len(bona) + Fraction(1, 10**9))
        ref = next(t for t in candidates if sum(1 for s in bona if s >= t) <= allowed)
        assert threshold_for_bona_fide_flag_rate(bona, target) == ref


def test_threshold_for_bona_fide_flag_rate_edges() -> None:
    bona = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert threshold_for_bona_fide_flag_rate(bona, 0.0) == math.inf
    assert threshold_for_bona_fide_flag_rate(bona, 1.0) == 1.0
    assert threshold_for_bona_fide_flag_rate(bona, 0.1) == 9.0  # exactly 1 of 10 flagged
    assert threshold_for_bona_fide_flag_rate(bona, 0.85) == 3.0  # 2.0 would flag 9 of 10


def test_operating_point() -> None:
    labels = [0, 0, 0, 0, 1, 1, 1]
    scores = [1.0, 2.0, 3.0, 4.0, 3.0, 5.0, 6.0]
    op = operating_point(labels, scores, 4.0)
    assert op["bona_fide_flag_rate"] == 0.25
    assert op["synthetic_pass_rate"] == pytest.approx(1 / 3)
    assert op["recall"] == pytest.approx(2 / 3)
    assert op["precision"] == pytest.approx(2 / 3)
    assert op["n_flagged"] == 3
    assert math.isnan(operating_point(labels, scores, 100.0)["precision"])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
        ([1, 1], [0.1, 0.2], "no bona fide"),
        ([0, 0], [0.1, 0.2], "no synthetic"),
        ([0, 2], [0.1, 0.2], "0 \\(bona fide\\) or 1"),
        (["a", "b"], [0.1, 0.2], "bool or 0/1"),
        ([0, 1], [0.1, float("nan")], "NaN"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([], [], "no bona fide"),
    ],
)
def test_validation_errors(labels: list, scores: list, match: str) -> None:
    for fn in (det_curve, equal_error_rate, min_dcf, cllr, min_cllr):
        with pytest.raises(ValueError, match=match):
            fn(labels, scores)
    with pytest.raises(ValueError, match=match):
        operating_point(labels, scores, 0.5)


def test_validation_of_parameters() -> None:
    labels, scores = [0, 1], [0.2, 0.7]
    with pytest.raises(ValueError, match="finite"):
        det_curve(labels, [0.1, math.inf])
    with pytest.raises(ValueError, match="p_spoof"):
        min_dcf(labels, scores, p_spoof=1.0)
    with pytest.raises(ValueError, match="costs"):
        act_dcf(labels, scores, c_fa=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        act_dcf(labels, [0.2, 1.5])
    with pytest.raises(ValueError, match="train_prior"):
        act_dcf(labels, scores, train_prior=0.0)
    with pytest.raises(ValueError, match="target"):
        threshold_for_bona_fide_flag_rate([0.1], 1.5)
    with pytest.raises(ValueError, match="no bona fide"):
        threshold_for_bona_fide_flag_rate([], 0.1)
