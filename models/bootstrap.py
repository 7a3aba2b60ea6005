"""Bootstrap intervals for detection metrics (EER, minDCF), resampling whole voices.

Uploads of one voice are not independent: a voice that happens to look synthetic moves
all of its songs together, so an interval that resamples uploads one at a time comes out
too narrow. The cluster bootstrap resamples voices with replacement and keeps each
voice's uploads together; with few voices the interval is wide, as it should be.
Intervals are percentile intervals. A resample that lacks either class has no EER: it is
skipped and the number of usable resamples is reported with the interval.

``paired_difference`` scores two systems on the *same* resamples, so what the uploads
have in common cancels and the interval is that of the difference itself: the way to
tell whether one detector beats another on a small test set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Metric = Callable[[np.ndarray, np.ndarray], float]

N_RESAMPLES = 1000
LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class BootstrapInterval:
    estimate: float  # the metric on the data as it is
    low: float
    high: float
    n_resamples: int  # resamples that held both classes
    n_clusters: int  # voices (or uploads, when no grouping is given)

    def as_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "ci95": [self.low, self.high], "n_resamples": self.n_resamples,
                "n_clusters": self.n_clusters}


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    baseline: float
    candidate: float
    difference: float  # candidate − baseline: negative means the candidate errs less
    low: float
    high: float
    share_candidate_lower: float  # fraction of resamples where the candidate's metric is lower
    n_resamples: int
    n_clusters: int

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "candidate": self.candidate, "difference": self.difference,
                "difference_ci95": [self.low, self.high], "share_candidate_lower": self.share_candidate_lower,
                "n_resamples": self.n_resamples, "n_clusters": self.n_clusters}


def cluster_members(groups: ArrayLike | None, n: int) -> list[np.ndarray]:
    """Row indices of each cluster (each row alone when ``groups`` is None), clusters in sorted order."""
    if groups is None:
        return [np.array([i]) for i in range(n)]
    keys = np.asarray(groups, dtype=object).astype(str)
    if keys.shape != (n,):
        raise ValueError(f"groups must have one entry per score ({n}), got shape {keys.shape}")
    _, codes = np.unique(keys, return_inverse=True)
    return [np.flatnonzero(codes == c) for c in range(int(codes.max()) + 1)] if n else []


def cluster_resamples(members: Sequence[np.ndarray], n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each resample: as many clusters as there are, drawn with replacement."""
    rng = np.random.default_rng(seed)
    k = len(members)
    for _ in range(n_resamples):
        yield np.concatenate([members[i] for i in rng.integers(0, k, size=k)])


def has_both_classes(labels: np.ndarray) -> bool:
    """Whether EER-like metrics are defined: at least one bona fide and one synthetic label."""
    return bool(labels.any() and not labels.all())


def _prepare(labels: ArrayLike, score_sets: Sequence[ArrayLike],
             groups: ArrayLike | None) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Labels, score sets as float arrays, and the clusters' members (computed once per call)."""
    y = np.asarray(labels, dtype=bool)
    sets = [np.asarray(s, dtype=np.float64) for s in score_sets]
    if any(s.shape != y.shape for s in sets):
        raise ValueError("every score set needs one score per label")
    return y, sets, cluster_members(groups, y.size)


def _draws(y: np.ndarray, sets: Sequence[np.ndarray], metric: Metric, members: Sequence[np.ndarray],
           n_resamples: int, seed: int) -> np.ndarray:
    rows = []
    for idx in cluster_resamples(members, n_resamples if members else 0, seed):
        yy = y[idx]
        if has_both_classes(yy):
            rows.append([metric(yy, s[idx]) for s in sets])
    return np.array(rows, dtype=np.float64).reshape(-1, len(sets))


def resampled_metrics(labels: ArrayLike, score_sets: Sequence[ArrayLike], metric: Metric,
                      groups: ArrayLike | None = None, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """[usable resamples, len(score_sets)]: ``metric`` of each score set on each resample holding both classes."""
    y, sets, members = _prepare(labels, score_sets, groups)
    return _draws(y, sets, metric, members, n_resamples, seed)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def metric_or_nan(metric: Metric, labels: ArrayLike, scores: ArrayLike) -> float:
    """The metric of both classes, or NaN on a one-class set (a tiny split may lack clones)."""
    y = np.asarray(labels, dtype=bool)
    return float(metric(y, np.asarray(scores, dtype=np.float64))) if has_both_classes(y) else float("nan")


def bootstrap_interval(labels: ArrayLike, scores: ArrayLike, metric: Metric, groups: ArrayLike | None = None, *,
                       n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = 0) -> BootstrapInterval:
    """The metric with its percentile interval over cluster resamples (clusters: ``groups``, e.g. voices).
    Without both classes the estimate and the interval are NaN."""
    y, sets, members = _prepare(labels, [scores], groups)
    draws = _draws(y, sets, metric, members, n_resamples, seed)[:, 0]
    low, high = _percentiles(draws, level)
    return BootstrapInterval(metric_or_nan(metric, y, sets[0]), low, high, int(draws.size), len(members))


def paired_difference(labels: ArrayLike, baseline: ArrayLike, candidate: ArrayLike, metric: Metric,
                      groups: ArrayLike | None = None, *, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                      seed: int = 0) -> PairedDifference:
    """candidate − baseline of ``metric``, both scored on the same resamples, with its percentile interval."""
    y, sets, members = _prepare(labels, [baseline, candidate], groups)
    draws = _draws(y, sets, metric, members, n_resamples, seed)
    diff = draws[:, 1] - draws[:, 0]
    low, high = _percentiles(diff, level)
    base, cand = (metric_or_nan(metric, y, s) for s in sets)
    share = float((diff < 0).mean()) if diff.size else float("nan")
    return PairedDifference(base, cand, cand - base, low, high, share, int(diff.size), len(members))
