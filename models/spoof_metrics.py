"""Evaluation metrics for the synthetic-voice (spoof) detector.

Conventions, used by every function here:

* ``labels``: 1 / True = synthetic (the class we want to catch), 0 / False = bona fide.
* ``scores``: higher = more likely synthetic. A track is *flagged* at threshold ``t`` when
  ``score >= t``.

ASVspoof literature calls bona fide the "target" class, so its "miss" is a bona fide track
rejected and its "false alarm" a spoof accepted. That naming is easy to read backwards from
a moderation point of view, so the code never says miss / false alarm for rates; it says:

* ``bona_fide_flag_rate(t)``: fraction of bona fide tracks with ``score >= t`` (ASVspoof P_miss);
* ``synthetic_pass_rate(t)``: fraction of synthetic tracks with ``score < t`` (ASVspoof P_fa).

The cost parameters keep the ASVspoof names: ``c_miss`` is the cost of flagging a bona fide
upload, ``c_fa`` the cost of passing a synthetic one, ``p_spoof`` the prior of synthetic uploads.

Unless a docstring says otherwise, functions raise ``ValueError`` when the inputs differ in
length, are not 1-D, contain NaN, when labels are not binary, or when either class is empty
(every metric here compares the two classes, so an empty class has no meaningful value).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_LN2 = float(np.log(2.0))


class DetCurve(NamedTuple):
    """Error rates at every candidate threshold, thresholds ascending (rates move monotonically)."""

    thresholds: FloatArray
    bona_fide_flag_rate: FloatArray
    synthetic_pass_rate: FloatArray


# --------------------------------------------------------------------------- validation


def _as_labels(labels: ArrayLike) -> BoolArray:
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {lab.shape}")
    if lab.dtype != np.bool_:
        if not np.issubdtype(lab.dtype, np.number):
            raise ValueError(f"labels must be bool or 0/1 numbers, got dtype {lab.dtype}")
        if not np.isin(lab, (0, 1)).all():
            raise ValueError("labels must be 0 (bona fide) or 1 (synthetic)")
    return lab.astype(bool)


def _as_scores(scores: ArrayLike, name: str = "scores") -> FloatArray:
    sc = np.asarray(scores, dtype=np.float64)
    if sc.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {sc.shape}")
    if np.isnan(sc).any():
        raise ValueError(f"{name} contain NaN")
    return sc


def _split(labels: ArrayLike, scores: ArrayLike, name: str = "scores") -> tuple[FloatArray, FloatArray]:
    """Validated (bona fide scores, synthetic scores)."""
    lab = _as_labels(labels)
    sc = _as_scores(scores, name)
    if lab.shape != sc.shape:
        raise ValueError(f"labels and {name} differ in length: {lab.size} vs {sc.size}")
    if lab.all():
        raise ValueError("no bona fide tracks (label 0): the metric needs both classes")
    if not lab.any():
        raise ValueError("no synthetic tracks (label 1): the metric needs both classes")
    return sc[~lab], sc[lab]


def _check_costs(p_spoof: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_spoof < 1.0:
        raise ValueError(f"p_spoof must be in (0, 1), got {p_spoof}")
    if c_miss <= 0.0 or c_fa <= 0.0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")


# --------------------------------------------------------------------------- DET / EER


def _det_counts(bona: FloatArray, synth: FloatArray) -> tuple[FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """(thresholds, bona fide flagged count, synthetic passed count), thresholds ascending."""
    if not np.isfinite(bona).all() or not np.isfinite(synth).all():
        raise ValueError("scores must be finite (+inf is reserved for the flag-nothing threshold)")
    thresholds = np.append(np.unique(np.concatenate([bona, synth])), np.inf)
    # side="left" counts scores strictly below t, i.e. the tracks not flagged at t.
    bona_flagged = bona.size - np.searchsorted(np.sort(bona), thresholds, side="left")
    synth_passed = np.searchsorted(np.sort(synth), thresholds, side="left")
    return thresholds, bona_flagged.astype(np.int64), synth_passed.astype(np.int64)


def det_curve(labels: ArrayLike, scores: ArrayLike) -> DetCurve:
    """Both error rates at every distinct score and at +inf, thresholds ascending; O(n log n).

    Thresholds at the distinct scores are the only ones that matter: any ``t`` between two
    consecutive scores flags the same tracks as the next score up. The lowest threshold flags
    everything (bona fide flag rate 1, synthetic pass rate 0); the final +inf flags nothing
    (0, 1), so both trivial systems are on the curve. Scores must be finite, since +inf is the
    flag-nothing sentinel and a +inf score would make it flag something.
    """
    bona, synth = _split(labels, scores)
    thresholds, bona_flagged, synth_passed = _det_counts(bona, synth)
    return DetCurve(thresholds, bona_flagged / bona.size, synth_passed / synth.size)


def eer_with_threshold(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """(EER, threshold) without interpolation between operating points.

    With finite data the two rates rarely meet exactly, so some convention is needed. We take
    the candidate threshold where |bona_fide_flag_rate - synthetic_pass_rate| is smallest and
    report the mean of the two rates there: the number then comes from an achievable operating
    point (no convex-hull interpolation), and perfect separation gives exactly 0. The gap is
    compared exactly in integers (flagged·n_synthetic vs passed·n_bona_fide), so ties are real
    ties; they go to the lowest threshold.
    """
    bona, synth = _split(labels, scores)
    thresholds, bona_flagged, synth_passed = _det_counts(bona, synth)
    i = int(np.argmin(np.abs(bona_flagged * synth.size - synth_passed * bona.size)))
    eer = 0.5 * (bona_flagged[i] / bona.size + synth_passed[i] / synth.size)
    return float(eer), float(thresholds[i])


def equal_error_rate(labels: ArrayLike, scores: ArrayLike) -> float:
    """EER as defined in :func:`eer_with_threshold` (the rate only)."""
    return eer_with_threshold(labels, scores)[0]


# --------------------------------------------------------------------------- detection cost


def _normalised_dcf(
    bona_fide_flag_rate: FloatArray | float,
    synthetic_pass_rate: FloatArray | float,
    p_spoof: float,
    c_miss: float,
    c_fa: float,
) -> FloatArray:
    """DCF divided by the cost of the better trivial system (flag nothing or flag everything)."""
    w_bona = c_miss * (1.0 - p_spoof)
    w_synth = c_fa * p_spoof
    dcf = w_bona * np.asarray(bona_fide_flag_rate) + w_synth * np.asarray(synthetic_pass_rate)
    return np.asarray(dcf / min(w_bona, w_synth), dtype=np.float64)


def min_dcf(
    labels: ArrayLike, scores: ArrayLike, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0
) -> float:
    """Minimum normalised detection cost over all thresholds (ASVspoof 5 convention).

    DCF(t) = c_miss·(1 - p_spoof)·bona_fide_flag_rate(t) + c_fa·p_spoof·synthetic_pass_rate(t),
    divided by min(c_miss·(1 - p_spoof), c_fa·p_spoof), the cost of the better trivial system,
    so 1.0 means "no better than flagging nothing / everything" and 0 is perfect.
    C_miss: cost of flagging a bona fide upload; C_fa: cost of passing a synthetic one;
    p_spoof: prior of synthetic uploads. The minimum includes flag-nothing and flag-everything,
    so it never exceeds 1. It measures discrimination only: it is invariant to any strictly increasing
    transform of the scores, hence says nothing about calibration (see :func:`act_dcf`).
    """
    _check_costs(p_spoof, c_miss, c_fa)
    curve = det_curve(labels, scores)
    costs = _normalised_dcf(curve.bona_fide_flag_rate, curve.synthetic_pass_rate, p_spoof, c_miss, c_fa)
    return float(costs.min())


def llr_from_probability(probabilities: ArrayLike, train_prior: float = 0.5) -> FloatArray:
    """Log-likelihood ratio (nats) from a calibrated synthetic posterior.

    A posterior calibrated under the training prior π has log-odds logit(p) = llr + logit(π),
    so llr = logit(p) - logit(π). p = 0 or 1 give -inf / +inf, which the Bayes decision and
    Cllr handle correctly (a confident wrong answer then costs +inf bits, as it should).
    """
    if not 0.0 < train_prior < 1.0:
        raise ValueError(f"train_prior must be in (0, 1), got {train_prior}")
    p = _as_scores(probabilities, "probabilities")
    if ((p < 0.0) | (p > 1.0)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        log_odds = np.log(p) - np.log1p(-p)
    return np.asarray(log_odds - (np.log(train_prior) - np.log1p(-train_prior)), dtype=np.float64)


def bayes_llr_threshold(p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0) -> float:
    """LLR above which flagging has the lower expected cost: log(c_miss·(1-p_spoof) / (c_fa·p_spoof)).

    Flagging costs c_miss·P(bona fide | x), passing costs c_fa·P(synthetic | x); with posterior
    odds = LR·p_spoof/(1-p_spoof), flagging wins when LR >= c_miss·(1-p_spoof)/(c_fa·p_spoof).
    """
    _check_costs(p_spoof, c_miss, c_fa)
    return float(np.log(c_miss * (1.0 - p_spoof) / (c_fa * p_spoof)))


def act_dcf(
    labels: ArrayLike,
    probabilities: ArrayLike,
    p_spoof: float = 0.05,
    c_miss: float = 1.0,
    c_fa: float = 10.0,
    train_prior: float = 0.5,
) -> float:
    """Normalised DCF (as in :func:`min_dcf`) at the Bayes decision of calibrated probabilities.

    Probabilities are turned into LLRs with :func:`llr_from_probability` (``train_prior`` is
    the class prior the calibrator was fitted under), and a track is flagged when
    llr >= :func:`bayes_llr_threshold`. No threshold is tuned on the evaluation data, so
    act_dcf - min_dcf is the cost of miscalibration; act_dcf >= min_dcf always.
    """
    bona, synth = _split(labels, probabilities, "probabilities")
    tau = bayes_llr_threshold(p_spoof, c_miss, c_fa)
    flag_rate = float(np.mean(llr_from_probability(bona, train_prior) >= tau))
    pass_rate = float(np.mean(llr_from_probability(synth, train_prior) < tau))
    return float(_normalised_dcf(flag_rate, pass_rate, p_spoof, c_miss, c_fa))


# --------------------------------------------------------------------------- Cllr


def cllr(labels: ArrayLike, llr: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer & du Preez, 2006).

    Cllr = ½·(mean over synthetic of log2(1 + e^-llr) + mean over bona fide of log2(1 + e^llr)).
    It scores LLRs as probabilistic statements across all operating points: llr ≡ 0 (a system
    that always says "don't know") costs exactly 1 bit, perfect confident answers cost 0, and
    confidently wrong answers are unbounded. ``np.logaddexp`` keeps large |llr| from overflowing.
    """
    bona, synth = _split(labels, llr, "llr")
    synth_cost = float(np.mean(np.logaddexp(0.0, -synth)))
    bona_cost = float(np.mean(np.logaddexp(0.0, bona)))
    return 0.5 * (synth_cost + bona_cost) / _LN2


def _pav(y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted isotonic (non-decreasing) least-squares fit by pool-adjacent-violators."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        means.append(yi)
        weights.append(wi)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w_sum = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w_sum
            weights[-2] = w_sum
            sizes[-2] += sizes[-1]
            del means[-1], weights[-1], sizes[-1]
    return np.repeat(np.asarray(means), sizes)


def min_cllr(labels: ArrayLike, scores: ArrayLike) -> float:
    """Cllr after the best monotone calibration of ``scores`` (PAV), in bits.

    PAV of the labels against the scores gives the monotone posterior that maximises the
    likelihood; turning it into LLRs with the evaluation set's own prior and scoring with
    :func:`cllr` gives the discrimination-only part of Cllr, so cllr - min_cllr is the
    calibration loss. Tied scores are pooled first (they must get the same LLR).
    """
    bona, synth = _split(labels, scores)
    sc = np.concatenate([bona, synth])
    lab = np.concatenate([np.zeros(bona.size), np.ones(synth.size)])
    _, inverse, counts = np.unique(sc, return_inverse=True, return_counts=True)
    block_mean = np.bincount(inverse, weights=lab) / counts
    posterior = _pav(block_mean, counts.astype(np.float64))[inverse]
    prior_log_odds = np.log(synth.size) - np.log(bona.size)
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - prior_log_odds
    return cllr(lab, llr)


# --------------------------------------------------------------------------- operating points


def threshold_for_bona_fide_flag_rate(bona_fide_scores: ArrayLike, target: float) -> float:
    """Lowest threshold (a bona fide score, or +inf) that flags at most ``target`` of bona fide.

    Only bona fide scores are needed (an empty synthetic set is fine), which is how a
    moderation budget is usually set: "flag at most 0.1 % of genuine uploads". Any t just
    above the next-lower score flags the same tracks; returning an actual score keeps the
    threshold reproducible. Returns +inf when even the top score would flag too much
    (e.g. target 0). Raises ValueError for an empty input or a target outside [0, 1].
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be in [0, 1], got {target}")
    bona = _as_scores(bona_fide_scores, "bona_fide_scores")
    if bona.size == 0:
        raise ValueError("no bona fide scores")
    candidates = np.append(np.unique(bona), np.inf)
    n_flagged = bona.size - np.searchsorted(np.sort(bona), candidates, side="left")
    # Compare counts with the allowed count floor(target·n); the 1e-9 absorbs float error in
    # target·n (0.29 · 100 = 28.999…), which would otherwise lose one allowed flag.
    allowed = np.floor(target * bona.size + 1e-9)
    ok = n_flagged <= allowed  # non-increasing in t and true at +inf, so argmax finds the first
    return float(candidates[int(np.argmax(ok))])


def operating_point(labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Rates at one fixed threshold (flag when score >= threshold).

    ``precision`` is the synthetic fraction among flagged tracks (NaN when nothing is flagged)
    and depends on this set's class mix, unlike the two rates; ``recall`` = 1 - synthetic_pass_rate.
    """
    bona, synth = _split(labels, scores)
    bona_flagged = int((bona >= threshold).sum())
    synth_flagged = int((synth >= threshold).sum())
    n_flagged = bona_flagged + synth_flagged
    return {
        "threshold": float(threshold),
        "bona_fide_flag_rate": bona_flagged / bona.size,
        "synthetic_pass_rate": (synth.size - synth_flagged) / synth.size,
        "precision": synth_flagged / n_flagged if n_flagged else float("nan"),
        "recall": synth_flagged / synth.size,
        "n_flagged": n_flagged,
        "n_bona_fide": int(bona.size),
        "n_synthetic": int(synth.size),
    }
