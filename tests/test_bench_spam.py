"""`trackguard bench spam` on small row counts with a tiny in-process model (synthetic rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.eval_spam import load_spam_artifact
from trackguard.bench.spam import infer, model_inputs, sweep_share, synthetic_uploads, train_tiny
from trackguard.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tinyspam")
    train_tiny(out, n=1500)
    return out


def test_synthetic_uploads_are_deterministic_and_mixed() -> None:
    a, labels = synthetic_uploads(500, seed=3)
    b, _ = synthetic_uploads(500, seed=3)
    assert a.equals(b) and len(a) == 500 and a["upload_id"].is_unique
    assert 0.03 < labels["is_spam"].mean() < 0.4
    assert labels["spam_type"].nunique() >= 4


def test_batched_and_single_inference_give_identical_outputs(tiny: Path) -> None:
    card, booster = load_spam_artifact(tiny)
    uploads, _ = synthetic_uploads(300, seed=5)
    rows, contexts = model_inputs(uploads, card)
    batched, calls = infer(booster, card, rows, contexts, 128)
    single, single_calls = infer(booster, card, rows, contexts, 1)
    assert len(calls) == 3 and len(single_calls) == 300
    np.testing.assert_array_equal(batched.score, single.score)
    np.testing.assert_array_equal(batched.margin, single.margin)
    assert batched.reasons == single.reasons
    assert any(batched.reasons) and np.ptp(batched.score) > 0.1  # a real model, not a constant
    assert any("confusable" in r for rs in batched.reasons for r in rs)  # lookalike names reach the reasons


def test_bench_json_has_unit_keys(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trackguard.bench.spam import bench_spam

    path = tmp_path / "bench.json"
    bench_spam([200, 600], artifact=tiny, json_path=str(path), single_rows=100, sweep_json=tmp_path / "none.json")
    printed = capsys.readouterr().out
    assert "synthetic" in printed and "inference one at a time" in printed and "bench sweep" in printed
    data = json.loads(path.read_text())
    rows = data["rows"]
    assert len(rows) == 8 and {r["rows"] for r in rows} == {200, 600}
    assert all(r["tracks_per_s"] > 0 and r["wall_s"] > 0 for r in rows)
    inference = [r for r in rows if r["measure"].startswith("inference")]
    assert all(r["p95_s"] >= r["p50_s"] > 0 for r in inference)
    assert [r["tracks"] for r in inference if "one at a time" in r["measure"]] == [100, 100]
    assert all(r["batched_over_single"] > 0 for r in inference if "batched" in r["measure"])
    assert set(data["tracks_per_s_by_rows"]["history features (whole table)"]) == {"200", "600"}
    assert data["spam_share_of_sweep"].startswith("skipped")


def test_sweep_share_reads_bench_sweep_rows(tmp_path: Path) -> None:
    path = tmp_path / "bench-sweep.json"
    rows = [
        {"tracks": 50, "stage": "decode (floor)", "wall_s": 10.0},
        {"tracks": 50, "stage": "score spam", "wall_s": 2.5},
        {"tracks": 50, "stage": "end-to-end sweep (1 worker)", "wall_s": 10.0},
        {"tracks": 200, "stage": "decode (floor)", "wall_s": 40.0},
    ]
    path.write_text(json.dumps({"rows": rows}))
    share = sweep_share(path)
    assert share == {"50": {"spam_s_per_track": 0.05, "sweep_s_per_track": 0.2, "spam_share": 0.25}}
    path.write_text(json.dumps({"rows": rows[:1]}))
    assert isinstance(sweep_share(path), str)


def test_cli_without_artifact_trains_a_tiny_model(tg_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "spam", "--rows", "1e2"]) == 0
    printed = capsys.readouterr().out
    assert "tiny booster trained in-process" in printed and "no artifact at" in printed
    assert "metadata features (per row)" in printed
