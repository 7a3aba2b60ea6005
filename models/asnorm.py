"""Score normalisation (adaptive s-norm) and false-accept-rate calibration for voice matching.

Raw cosine scores drift with recording conditions: a voice over loud accompaniment
scores lower against everyone, a breathy enrolment higher against everyone. AS-norm
(Cumani et al. 2011; Matejka et al. 2017) rescales each trial by how the query and
the enrolment score against a *cohort* of voices that are neither: per side, the
mean and standard deviation of its ``top_k`` highest cohort scores, and the trial
score is the average of the two z-scores. Thresholds then mean the same thing for
every artist and every mix, which is what lets one threshold hold a target
false-accept rate.

Core functions take matrices of L2-normalised embeddings (numpy, CPU) so they batch:
``m`` queries × ``n`` enrolled voiceprints × ``k`` cohort voices cost two matrix
products and a partial sort.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

DEFAULT_TOP_K = 50
CHUNK_ROWS = 32_768  # embeddings scored per block, so memory stays bounded at any registry size


def top_k_stats(scores: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row's ``top_k`` largest values ([r, k] → [r], [r])."""
    scores = np.asarray(scores, dtype=np.float32)
    k = max(1, min(int(top_k), scores.shape[1]))
    top = -np.partition(-scores, k - 1, axis=1)[:, :k]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


def cohort_stats(embeddings: np.ndarray, cohort: np.ndarray, top_k: int = DEFAULT_TOP_K,
                 chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Per embedding: mean and std of its top-k cosine scores against the cohort.

    ``chunk_rows`` embeddings at a time, so a million voiceprints against a cohort of
    a thousand never hold more than one [chunk_rows, k] block of scores."""
    if len(cohort) == 0:
        raise ValueError("AS-norm needs a non-empty cohort of non-enrolled voices")
    embeddings, cohort = np.asarray(embeddings, dtype=np.float32), np.asarray(cohort, dtype=np.float32)
    means = np.empty(len(embeddings), dtype=np.float32)
    stds = np.empty(len(embeddings), dtype=np.float32)
    for start in range(0, len(embeddings), chunk_rows):
        block = embeddings[start: start + chunk_rows]
        means[start: start + len(block)], stds[start: start + len(block)] = top_k_stats(block @ cohort.T, top_k)
    return means, stds


def as_norm(raw: np.ndarray, query_stats: tuple[np.ndarray, np.ndarray],
            enrol_stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Normalised [m, n] scores from raw cosines [m, n] and each side's cohort statistics.

    Enrolment statistics do not change between queries, so the registry computes them
    once per voiceprint (`cohort_stats`) and a query batch only adds its own.
    """
    (mq, sq), (me, se) = query_stats, enrol_stats
    raw = np.asarray(raw, dtype=np.float32)
    return 0.5 * ((raw - mq[:, None]) / sq[:, None] + (raw - me[None, :]) / se[None, :])


@dataclasses.dataclass(frozen=True)
class VoiceCalibration:
    """The registry's operating point: a threshold on (normalised) scores for a target false-accept rate.

    ``measured_far`` is the share of ``n_impostor_trials`` at or above ``threshold``;
    with n trials a FAR below 1/n cannot be measured, so ``target_far`` below it is
    refused rather than extrapolated.
    """

    threshold: float
    target_far: float
    measured_far: float
    n_impostor_trials: int
    normalisation: str  # "as-norm" or "raw" (cosine)
    cohort_size: int
    top_k: int
    model_id: str
    data: str  # what the impostor trials were, in words


_MARGIN = 1e-6  # relative: far above float32 rounding of a recomputed score, far below any real score gap


def threshold_for_far(impostor_scores: np.ndarray, target_far: float) -> tuple[float, float]:
    """(threshold, measured FAR): a threshold whose FAR on these impostor scores is ≤ ``target_far``, accepting
    as many impostors as that allows.

    A trial is accepted when score ≥ threshold. The threshold sits halfway between the
    highest impostor score it must reject (with every impostor tied to it) and the next
    higher one, not a hair above the first: a borderline trial scored again with other
    float rounding (another CPU's BLAS, another registry order) then lands on the same
    side. With no higher impostor (all tied) it sits `_MARGIN` above them.
    """
    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64))[::-1]
    n = len(scores)
    if n == 0:
        raise ValueError("no impostor trials to calibrate on")
    if target_far < 1.0 / n:
        need = math.ceil(1 / target_far)
        raise ValueError(f"a FAR of {target_far} cannot be measured on {n} impostor trials (need ≥ {need})")
    allowed = math.floor(target_far * n)  # impostors we may accept
    if allowed >= n:
        return float(scores[-1]), 1.0
    rejected = scores[allowed]
    higher = scores[scores > rejected]
    if higher.size:
        threshold = float((rejected + higher[-1]) / 2)
    else:
        threshold = float(rejected + _MARGIN * max(1.0, abs(rejected)))
    return threshold, float(np.mean(scores >= threshold))
