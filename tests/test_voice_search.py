"""`models.voice_search.best_matches`: the same top-1 as scoring everything, while skipping AS-norm work."""

from __future__ import annotations

import numpy as np
import pytest

from models import voice_search
from models.asnorm import as_norm, cohort_stats
from models.voice_search import BLOCK, best_matches, search_order, track_owners


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def registry(n: int, seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Voiceprints, a cohort and the voiceprints' statistics; ``spread`` widens how much the statistics vary
    between voiceprints (the skip test's bound is loosest when they vary most)."""
    rng = np.random.default_rng(seed)
    matrix, cohort = unit(rng.normal(size=(n, 24))), unit(rng.normal(size=(60, 24)))
    mean, std = cohort_stats(matrix, cohort, 10)
    mean = mean + spread * rng.uniform(-0.1, 0.1, n).astype(np.float32)
    std = std * np.exp(spread * rng.uniform(-0.7, 0.7, n)).astype(np.float32)
    return matrix, cohort, (mean, std)


@pytest.mark.parametrize("dense_share", [0.5, 1.0])  # 1.0: every chunk after the first goes piece by piece
@pytest.mark.parametrize(("spread", "ordered"), [(0.0, False), (1.0, False), (1.0, True), (3.0, True)])
def test_asnorm_search_finds_the_exhaustive_top1(spread: float, ordered: bool, dense_share: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_search, "DENSE_SHARE", dense_share)
    matrix, cohort, stats = registry(3 * BLOCK + 77, seed=int(spread * 10) + ordered, spread=spread)
    if ordered:
        order = search_order(stats, chunk_rows=700)
        matrix, stats = matrix[order], (stats[0][order], stats[1][order])
    rng = np.random.default_rng(9)
    queries = unit(rng.normal(size=(50, 24)))
    queries[:4] = unit(matrix[[0, 700, 701, len(matrix) - 1]] + 0.1 * rng.normal(size=(4, 24)))  # near chunk edges
    q_stats = cohort_stats(queries, cohort, 10)
    expected = as_norm(queries @ matrix.T, q_stats, stats)
    found = best_matches(queries, matrix, None, q_stats, stats, chunk_rows=700)
    np.testing.assert_array_equal(found.index, np.argmax(expected, axis=1))
    np.testing.assert_allclose(found.score, expected.max(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(found.raw, (queries @ matrix.T)[np.arange(50), found.index], atol=1e-6)
    assert 0 < found.normalised_blocks <= found.total_blocks == 50 * 5  # chunks of 700, 700, 213: 2 + 2 + 1 blocks


def test_window_rows_score_a_track_by_its_best_window_per_voiceprint() -> None:
    matrix, cohort, stats = registry(1500, seed=3)
    windows = unit(np.random.default_rng(4).normal(size=(31, 24)))
    counts = [3] * 9 + [1, 3]  # tracks may have fewer windows
    owners = track_owners(counts)
    q_stats = cohort_stats(windows, cohort, 10)
    normed = as_norm(windows @ matrix.T, q_stats, stats)
    per_track = np.stack([normed[owners == t].max(axis=0) for t in range(len(counts))])
    found = best_matches(windows, matrix, owners, q_stats, stats, chunk_rows=600)
    np.testing.assert_array_equal(found.index, np.argmax(per_track, axis=1))
    np.testing.assert_allclose(found.score, per_track.max(axis=1), rtol=1e-5)
    raw = best_matches(windows, matrix, owners, chunk_rows=600)
    raw_per_track = np.stack([(windows @ matrix.T)[owners == t].max(axis=0) for t in range(len(counts))])
    np.testing.assert_array_equal(raw.index, np.argmax(raw_per_track, axis=1))
    assert raw.total_blocks == 0  # raw cosine has no normalisation to skip


def test_the_search_order_lets_the_search_skip_work_without_changing_the_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_search, "DENSE_SHARE", 1.0)  # count pieces, however many
    matrix, cohort, stats = registry(20 * BLOCK, seed=5, spread=0.0)
    queries = unit(np.random.default_rng(6).normal(size=(40, 24)))
    q_stats = cohort_stats(queries, cohort, 10)
    as_stored = best_matches(queries, matrix, None, q_stats, stats, chunk_rows=2 * BLOCK)
    order = search_order(stats, chunk_rows=2 * BLOCK)
    ordered = best_matches(queries, matrix[order], None, q_stats, (stats[0][order], stats[1][order]), 2 * BLOCK)
    np.testing.assert_array_equal(order[ordered.index], as_stored.index)
    assert ordered.normalised_blocks < 0.8 * as_stored.normalised_blocks


def test_ties_go_to_the_lowest_voiceprint_and_an_empty_registry_matches_nothing() -> None:
    matrix = unit(np.tile(np.eye(4, 24), (3, 1)))  # rows 0, 4, 8 identical
    found = best_matches(matrix[[0]], matrix, chunk_rows=5)
    assert found.index.tolist() == [0]
    empty = best_matches(matrix[:2], np.zeros((0, 24), np.float32))
    assert empty.index.tolist() == [-1, -1] and np.isneginf(empty.score).all()
    with pytest.raises(ValueError, match="both"):
        best_matches(matrix[:2], matrix, None, (np.zeros(2), np.ones(2)), None)
    with pytest.raises(ValueError, match="owners"):
        best_matches(matrix[:2], matrix, np.array([0]))
