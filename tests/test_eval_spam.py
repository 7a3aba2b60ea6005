"""`trackguard eval spam` on a tiny synthetic corpus, and the spam report writer on hand-made scores.

The corpus is test_spam's synthetic table written as a corpus directory; audio
statistics come from that table instead of decoding (``compute_audio_stats`` is
patched), so training and evaluation take a few seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import models.train_spam as train_spam_module
from features.history import history_features
from models.artifact import load_card
from models.base import TrackInput
from models.eval_spam import evaluate_spam, score_corpus, trained_on
from models.spam import SpamScorer
from models.train_spam import evaluate, evaluate_rules, train_spam
from tests.test_spam import _synthetic_tables
from trackguard.cli import main
from trackguard.contracts import validate_manifest_row
from trackguard.reports.spam_report import write_spam_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
META: dict[str, Any] = {
    "model_id": "spam/lgbm@test",
    "threshold": 0.5,
    "data": "synthetic hand-made score table",
    "command": "trackguard eval spam --corpus nowhere",
    "split": "test",
    "split_note": "hand-made",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A corpus directory, a model trained on it, and the audio stats the patch serves."""
    root = tmp_path_factory.mktemp("evalspam")
    manifest, labels, artists, stats = _synthetic_tables(1200, seed=11)
    corpus = root / "corpus-seed11"
    corpus.mkdir()
    manifest.to_parquet(corpus / "manifest.parquet")
    labels.to_parquet(corpus / "labels.parquet")
    artists.to_parquet(corpus / "artists.parquet")

    def fake_stats(m: pd.DataFrame, cache_dir: Path, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return stats.reindex(pd.Index(m["upload_id"].astype(str), name="upload_id"))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_spam_module, "compute_audio_stats", fake_stats)
        model = root / "model"
        train_spam(corpus, model, cache_dir=root / "cache")
        report = root / "report"
        metrics = evaluate_spam(model, corpus, report, split="test")
        yield {
            "root": root,
            "corpus": corpus,
            "model": model,
            "report": report,
            "metrics": metrics,
            "manifest": manifest,
            "labels": labels,
            "stats": stats,
        }


def test_report_files_and_test_split_matches_training(world: dict[str, Any]) -> None:
    report, metrics = world["report"], world["metrics"]
    for name in ("report.md", "metrics.json", "pr.png", "importance.png", "scores.parquet"):
        assert (report / name).stat().st_size > 0, name
    for name in ("pr.png", "importance.png"):
        assert (report / name).read_bytes().startswith(PNG_MAGIC)
    assert json.loads((report / "metrics.json").read_text()) == metrics
    scores = pd.read_parquet(report / "scores.parquet")
    assert set(scores["split"]) == {"test"}
    # the same time split, model and rows as training's own test evaluation: the same figures
    card = load_card(world["model"])
    assert metrics["n"] == card.metrics["test"]["n"] == len(scores)
    assert metrics["pr_auc"] == pytest.approx(card.metrics["test"]["pr_auc"], abs=1e-12)
    assert metrics["model"]["recall"] == pytest.approx(card.metrics["test"]["recall"], abs=1e-12)
    assert metrics["rules_baseline"]["recall"] == pytest.approx(card.metrics["rules_baseline_test"]["recall"])
    assert trained_on(card, world["corpus"]) and "test split" in metrics["split_note"]


def test_metrics_agree_with_train_spam_helpers(world: dict[str, Any]) -> None:
    scores = pd.read_parquet(world["report"] / "scores.parquet")
    metrics = world["metrics"]
    y, p = scores["is_spam"].to_numpy(bool), scores["score"].to_numpy(float)
    ref = evaluate(y, p, metrics["threshold"], scores)
    assert metrics["precision_at_recall_0.9"] == pytest.approx(ref["precision_at_recall_0.9"], nan_ok=True)
    assert {k: v["recall"] for k, v in metrics["model"]["recall_by_spam_type"].items()} == pytest.approx(
        {k: v["recall"] for k, v in ref["recall_by_spam_type"].items()}
    )
    assert {k: v["flag_rate"] for k, v in metrics["model"]["flag_rate_by_kind"].items()} == pytest.approx(
        ref["flag_rate_by_kind"]
    )
    rules = evaluate_rules(y, scores["rules_flag"].to_numpy(bool), scores)
    assert metrics["rules_baseline"]["precision"] == pytest.approx(rules["precision"])
    assert scores["flagged"].sum() == metrics["model"]["n_flagged"]


def test_report_lists_every_spam_type_with_its_n(world: dict[str, Any]) -> None:
    md = (world["report"] / "report.md").read_text()
    scores = pd.read_parquet(world["report"] / "scores.parquet")
    counts = scores[scores["is_spam"]]["spam_type"].value_counts()
    assert len(counts) >= 4
    for spam_type, n in counts.items():
        assert f"| {spam_type} | {n} |" in md, spam_type
    for kind, n in scores[~scores["is_spam"]]["kind"].value_counts().items():
        assert f"| {kind} | {n} |" in md, kind
    assert "synthetic" in md.lower() and "corpus-seed11" in md
    assert "| model |" in md and "| rules baseline |" in md
    examples = world["metrics"]["examples"]
    assert 0 < len(examples) <= 5 and all(e["reasons"] for e in examples if e["label"].startswith("spam"))
    flagged = scores[scores["flagged"]]
    distinct = {f"spam: {t}" if s else f"not spam: {k}" for s, t, k in flagged[["is_spam", "spam_type", "kind"]].values}
    assert len({e["label"] for e in examples}) == min(5, len(distinct))  # one per label before any repeat


def test_importance_from_contributions(world: dict[str, Any]) -> None:
    scores = pd.read_parquet(world["report"] / "scores.parquet")
    card = load_card(world["model"])
    contrib = scores[[f"contrib_{f}" for f in card.spec["features"]]]
    # SHAP contributions plus the bias add up to the margin
    bias = scores["margin"] - contrib.sum(axis=1)
    assert np.allclose(bias, bias.iloc[0], atol=1e-6)
    top = world["metrics"]["importance"]["mean_abs_contrib"]
    assert len(top) == 15 and top[0]["mean_abs_contrib"] == pytest.approx(contrib.abs().mean().max())
    assert world["metrics"]["importance"]["gain"][0]["gain"] > 0


def test_scores_and_reasons_match_the_serving_scorer(world: dict[str, Any]) -> None:
    """The report's reasons must be the reviewer's reasons: same score, same text as SpamScorer."""
    manifest, stats = world["manifest"], world["stats"]
    scores = pd.read_parquet(world["report"] / "scores.parquet").set_index("upload_id")
    picked = list(scores.sort_values("score", ascending=False).index[:15]) + list(scores.index[:5])
    history = history_features(manifest.assign(duration_s=stats["duration_s"].to_numpy()))
    rows = manifest.set_index("upload_id").loc[picked].reset_index().to_dict("records")
    tracks = [
        TrackInput(
            row=validate_manifest_row(r),
            samples=np.zeros(1, np.float32),
            sample_rate=16000,
            duration_s=float(stats.loc[r["upload_id"], "duration_s"]),
            windows=[],
            stats={k: float(v) for k, v in stats.loc[r["upload_id"]].items() if k != "duration_s"},
            extra={"history": history.loc[r["upload_id"]].to_dict()},
        )
        for r in rows
    ]
    scorer = SpamScorer(artifact_path=str(world["model"]))
    outputs = scorer.score_batch(tracks, scorer.load_model())
    for uid, out in zip(picked, outputs, strict=True):
        assert out.score == pytest.approx(scores.loc[uid, "score"], abs=1e-12), uid
        assert out.reasons == list(scores.loc[uid, "reasons"]), uid


def test_split_all_on_the_training_corpus_warns(world: dict[str, Any]) -> None:
    out = world["root"] / "report-all"
    argv = [
        "eval",
        "spam",
        "--corpus",
        str(world["corpus"]),
        "--artifact",
        str(world["model"]),
        "--out",
        str(out),
        "--split",
        "all",
    ]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(score_corpus(world["model"], world["corpus"]))
    assert set(metrics["splits"]) == {"train", "dev", "test"}
    md = (out / "report.md").read_text()
    assert "Warning" in md and "optimistic" in md and "`all`" in md


def test_perfect_scorer_gives_pr_auc_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.2
    scores = pd.DataFrame(
        {
            "upload_id": [f"u{i}" for i in range(200)],
            "is_spam": y,
            "spam_type": [
                str(t) if s else None for s, t in zip(y, rng.choice(["short_bulk", "duplicate"], 200), strict=True)
            ],
            "kind": np.where(y, "spam", rng.choice(["clean", "clone"], 200)),
            "score": np.where(y, rng.uniform(0.6, 1.0, 200), rng.uniform(0.0, 0.4, 200)),
            "rules_flag": y & (rng.random(200) < 0.5),
            "reasons": [["title has 9 generic keywords"] if s else [] for s in y],
            "split": "test",
        }
    )
    scores["flagged"] = scores["score"] >= META["threshold"]
    metrics = write_spam_report(scores, tmp_path, title="perfect", meta=META)
    assert metrics["pr_auc"] == 1.0 and metrics["precision_at_recall_0.9"] == 1.0
    assert metrics["model"]["precision"] == 1.0 and metrics["model"]["recall"] == 1.0
    assert metrics["rules_baseline"]["precision"] == 1.0 and metrics["rules_baseline"]["recall"] < 1.0
    assert all(r["flag_rate"] == 0.0 for r in metrics["model"]["flag_rate_by_kind"].values())
    assert metrics["importance"]["mean_abs_contrib"] == [] and metrics["importance"]["gain"] == []
    assert {e["label"] for e in metrics["examples"][:2]} == {"spam: short_bulk", "spam: duplicate"}


def test_nothing_flagged_and_validation(tmp_path: Path) -> None:
    scores = pd.DataFrame(
        {
            "upload_id": ["a", "b"],
            "is_spam": [True, False],
            "spam_type": ["x", None],
            "kind": ["spam", "clean"],
            "score": [0.2, 0.1],
            "flagged": [False, False],
            "rules_flag": [False, False],
            "reasons": [[], []],
        }
    )
    metrics = write_spam_report(scores, tmp_path, title="empty queue", meta=META)
    assert metrics["model"]["precision"] is None and metrics["model"]["recall"] == 0.0  # undefined, not 0
    assert "Nothing was flagged" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="reasons"):
        write_spam_report(scores.drop(columns=["reasons"]), tmp_path, title="x", meta=META)
    with pytest.raises(ValueError, match="split_note"):
        write_spam_report(scores, tmp_path, title="x", meta={k: v for k, v in META.items() if k != "split_note"})


@pytest.mark.slow
def test_spam_notebook_executes_against_a_report(world: dict[str, Any]) -> None:
    pytest.importorskip("nbclient", reason="notebook execution needs the dev extras (nbclient, ipykernel)")
    import nbformat

    from trackguard.notebooks import execute

    path = execute("spam", world["report"], out=world["root"] / "nb.ipynb")
    nb = nbformat.read(str(path), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
