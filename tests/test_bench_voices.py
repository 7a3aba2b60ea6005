"""`trackguard bench voices`: chunked matching, AS-norm statistics and the JSON's unit keys (synthetic vectors;
the encode part runs on synthetic tones with the stub encoder of `tests.test_eval_voices`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.asnorm import as_norm, cohort_stats
from models.voice_search import best_matches, prepare
from tests.test_eval_voices import F0, StubEncoder, tone
from trackguard.bench.voices import (
    Track,
    bench_voices,
    encode_rows,
    exhaustive_top1,
    full_track_embedding,
    random_unit,
    trial_eer,
)
from trackguard.cli import main


def test_random_unit_is_deterministic_and_on_the_sphere() -> None:
    a = random_unit(2500, seed=4, chunk_rows=1000)
    assert a.dtype == np.float32 and a.shape == (2500, 192)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, random_unit(2500, seed=4, chunk_rows=1000))
    assert abs(float((a[:100] @ a[100:200].T).mean())) < 0.02  # random voiceprints are near-orthogonal


def test_exhaustive_baseline_is_chunked_without_changing_the_top1() -> None:
    matrix = random_unit(5003, seed=1)
    queries = random_unit(64, seed=2)
    queries[:8] = matrix[[7, 999, 1000, 2048, 4095, 4096, 5002, 0]]  # exact hits on and around chunk edges
    idx, score = exhaustive_top1(queries, matrix, chunk_rows=1000)
    np.testing.assert_array_equal(idx, np.argmax(queries @ matrix.T, axis=1))
    np.testing.assert_allclose(score, (queries @ matrix.T).max(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(idx[:8], [7, 999, 1000, 2048, 4095, 4096, 5002, 0])


def test_exhaustive_asnorm_baseline_and_the_prepared_registry_agree_with_unchunked_scoring() -> None:
    matrix, queries, cohort = random_unit(3001, seed=5), random_unit(40, seed=6), random_unit(300, seed=7)
    _, ordered, stats = prepare(matrix, cohort, top_k=20, chunk_rows=700)
    assert sorted(map(tuple, ordered)) == sorted(map(tuple, matrix))  # the same voiceprints, reordered
    whole = cohort_stats(ordered, cohort, 20)
    np.testing.assert_allclose(stats[0], whole[0], rtol=1e-5)
    np.testing.assert_allclose(stats[1], whole[1], rtol=1e-5)
    q_stats = cohort_stats(queries, cohort, 20)
    idx, score = exhaustive_top1(queries, ordered, 700, q_stats, stats)
    expected = as_norm(queries @ ordered.T, q_stats, whole)
    np.testing.assert_array_equal(idx, np.argmax(expected, axis=1))
    np.testing.assert_allclose(score, expected.max(axis=1), rtol=1e-4)
    np.testing.assert_array_equal(best_matches(queries, ordered, None, q_stats, stats, 700).index, idx)
    with pytest.raises(ValueError, match="both"):
        exhaustive_top1(queries, ordered, 700, q_stats, None)


def test_trial_eer_pools_windows_by_their_mean_embedding() -> None:
    prints = np.eye(2, 4, dtype=np.float32)
    a = np.array([[0.6, 0.8, 0, 0], [0.6, -0.8, 0, 0]], dtype=np.float32)  # neither window alone is clearly a
    b = np.array([[0.8, 0.6, 0, 0], [-0.8, 0.6, 0, 0]], dtype=np.float32)  # the means are exactly a and b
    assert trial_eer([a, b], ["a", "b"], ["a", "b"], prints)["eer"] == 0.0
    assert trial_eer([a, b], ["b", "a"], ["a", "b"], prints)["eer"] == 1.0


def test_trial_eer_counts_targets_per_enrolled_artist() -> None:
    prints = np.eye(2, 4, dtype=np.float32)
    emb = np.array([[1, 0.1, 0, 0], [0.1, 1, 0, 0], [0.5, 0.5, 0.7, 0]], dtype=np.float32)
    r = trial_eer(emb, ["a", "b", "c"], ["a", "b"], prints)
    assert r == {"eer": 0.0, "n_target": 2, "n_impostor": 4}
    assert trial_eer(emb, ["b", "a", "c"], ["a", "b"], prints)["eer"] == 1.0  # swapped voices


def test_encode_rows_time_both_methods_on_the_same_tracks() -> None:
    encoder = StubEncoder()
    tracks = [Track(f"t{i}-{a}", tone(f0, seconds=8.0, seed=i), a) for i, (a, f0) in enumerate(F0.items())]
    prints = np.concatenate([full_track_embedding(encoder, Track("p", tone(F0[a], 8.0, seed=50), a))
                             for a in ("art-a", "art-b")])
    rows, summary = encode_rows(tracks, encoder, ["art-a", "art-b"], prints)
    assert [r["measure"] for r in rows] == ["windowed 3 × 2 s (verifier)", "full track encode_batch (SpeechBrain)"]
    for r in rows:
        assert r["tracks"] == 3 and r["audio_s"] == pytest.approx(24.0)
        assert r["tracks_per_s"] > 0 and r["rt_factor"] > 0 and r["p95_s"] >= r["p50_s"] > 0
        assert (r["n_target"], r["n_impostor"]) == (2, 4) and 0.0 <= r["eer"] <= 1.0
    assert summary["speed_ratio_windowed_over_full"] == pytest.approx(rows[0]["tracks_per_s"] / rows[1]["tracks_per_s"])
    assert set(summary) >= {"at_least_10x_faster", "eer_equal_or_better", "eer_windowed", "eer_full_track"}


def test_bench_json_has_unit_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench-voices.json"
    out = bench_voices(tracks=0, sizes=[1000, 2500], json_path=str(path), chunk_rows=1000)
    printed = capsys.readouterr().out
    assert "synthetic random unit" in printed and "match AS-norm" in printed
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(out, default=str))
    rows = data["rows"]
    assert len(rows) == 8 and {r["enrolled"] for r in rows} == {1000, 2500}
    for r in rows:
        assert r["part"] == "matching" and r["queries"] == 1000
        assert r["queries_per_s"] > 0 and r["s_per_1000_queries"] > 0
        assert r["memory_bytes"] >= r["enrolled"] * 192 * 4
        windows = 3 if "best of 3 windows" in r["measure"] else 1
        assert r["chunk_bytes"] == 1000 * windows * min(1000, r["enrolled"]) * 4
    assert all(r["enrol_stats_s"] > 0 for r in rows if "AS-norm" in r["measure"])
    searched = [r for r in rows if "same_top1_as_exhaustive" in r]
    assert len(searched) == 2 and all(r["same_top1_as_exhaustive"] is True for r in searched)
    assert all(0 < r["normalised_share"] <= 1 and r["speedup_vs_exhaustive"] > 0 for r in searched)
    assert "machine" in data and "encode" not in data  # --tracks 0 skips the encode part


def test_cli_bench_voices_skips_the_encode_part_with_zero_tracks(tmp_path: Path, tg_home: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.json"
    assert main(["bench", "voices", "--tracks", "0", "--enrolled", "1e3", "--json", str(path)]) == 0
    assert "match raw cosine (top-1)" in capsys.readouterr().out
    assert json.loads(path.read_text())["rows"][0]["enrolled"] == 1000
