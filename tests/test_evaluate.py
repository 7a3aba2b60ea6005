"""Expected routing derived from labels, and the bench table formatting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.config import DEFAULT_POLICY
from trackguard.bench.report import format_table
from trackguard.evaluate import copy_rises, expected_queue, expected_vs_routed, reasons_table, routing_table


def _label(**kw: object) -> pd.Series:
    base = {"kind": "clean", "licensed_use": False, "voice_artist_id": "a1", "spam_type": None, "declared_ai": False}
    base.update(kw)
    return pd.Series(base)


def test_expected_queue_follows_the_design() -> None:
    opted = {"a1"}
    assert expected_queue(_label(), opted) == "pass"
    assert expected_queue(_label(kind="bad_input"), opted) == "errors"
    assert expected_queue(_label(kind="clone"), opted) == "impersonation"
    assert expected_queue(_label(kind="clone", licensed_use=True), opted) == "pass"
    assert expected_queue(_label(kind="clone", voice_artist_id="a2"), opted) == "undisclosed-ai"
    assert expected_queue(_label(kind="clone", voice_artist_id="a2", declared_ai=True), opted) == "pass"
    assert expected_queue(_label(kind="spam", spam_type="duplicate"), opted) == "duplicates"
    assert expected_queue(_label(kind="spam", spam_type="profile_mismatch"), opted) == "profile-mismatch"
    assert expected_queue(_label(kind="spam", spam_type="short_bulk"), opted) == "spam"


def test_table_aligns_and_marks_undefined() -> None:
    text = format_table([{"queue": "spam", "precision": float("nan")}, {"queue": "errors", "precision": 1.0}])
    lines = text.splitlines()
    assert lines[0].split() == ["queue", "precision"] and lines[2].split() == ["spam", "-"]
    assert len({len(line) for line in lines}) == 1


def test_routing_and_reason_tables_count_verdicts_against_labels(tmp_path: Path) -> None:
    """Three labelled uploads: a clone caught, a clean upload whose high score was set aside, a clone missed."""
    labels = pd.DataFrame([
        {"upload_id": "c1", "kind": "clone", "licensed_use": False, "voice_artist_id": "a2", "spam_type": None},
        {"upload_id": "p1", "kind": "clean", "licensed_use": False, "voice_artist_id": "a3", "spam_type": None},
        {"upload_id": "c2", "kind": "clone", "licensed_use": False, "voice_artist_id": "a2", "spam_type": None},
    ])
    labels.to_parquet(tmp_path / "labels.parquet")
    manifest = pd.DataFrame({"upload_id": ["c1", "p1", "c2"], "declared_ai": [False] * 3})
    manifest.to_parquet(tmp_path / "manifest.parquet")
    pd.DataFrame({"artist_id": ["a1"], "opted_in": [True]}).to_parquet(tmp_path / "artists.parquet")
    verdicts = tmp_path / "verdicts.parquet"
    pd.DataFrame({"upload_id": ["c1", "p1", "c2"], "queue": ["undisclosed-ai", None, None],
                  "reasons": [["synthetic_voice", "undisclosed_ai"], ["synthetic_score_without_vocals"], []],
                  "duplicate_of": [None, None, None]}).to_parquet(verdicts)
    joined = expected_vs_routed(verdicts, tmp_path)
    table, confusion = routing_table(joined)
    row = table.set_index("queue").loc["undisclosed-ai"]
    assert (row["expected"], row["routed"], row["correct"], row["recall"]) == (2, 1, 1, 0.5)
    assert confusion.loc["undisclosed-ai", "pass"] == 1
    reasons = reasons_table(joined)
    assert reasons.loc["synthetic_score_without_vocals", "pass"] == 1
    assert reasons.loc["synthetic_voice"].to_dict() == {"pass": 0, "undisclosed-ai": 1}



def test_copy_rises_compare_each_copy_with_its_original_under_one_model() -> None:
    """Two clones and two bona fide copies matched to originals; one original was scored by another model
    and one copy's original never reached the ledger, so neither counts."""
    joined = pd.DataFrame({
        "upload_id": ["o1", "o2", "k1", "k2", "b1", "b2", "b3"],
        "kind": ["clean", "clean", "clone", "clone", "spam", "spam", "clean"],
        "matched_original": [None, None, "o1", "o2", "o1", "o2", "gone"],
    })
    ledger = pd.DataFrame({
        "upload_id": ["o1", "o2", "k1", "k2", "b1", "b2", "b3"],
        "detector_model_id": ["m", "m", "m", "m", "m", "m", "m"],
        "detector_logit": [-6.0, -2.0, 3.0, -1.5, -5.0, 1.0, 0.0],
    })
    rows = {r["copies"]: r for r in copy_rises(joined, ledger, margin=4.0)}
    assert rows["clone"] == {"copies": "clone", "matched": 2, "with_both_logits": 2, "median_rise_logit": 4.75,
                             "max_rise_logit": 9.0, "at_or_over_margin": 1}
    assert rows["bona fide copy"]["matched"] == 3 and rows["bona fide copy"]["with_both_logits"] == 2
    assert rows["bona fide copy"]["max_rise_logit"] == 3.0 and rows["bona fide copy"]["at_or_over_margin"] == 0
    other_model = ledger.assign(detector_model_id=["n", "m", "m", "m", "m", "m", "m"])
    assert {r["copies"]: r["with_both_logits"] for r in copy_rises(joined, other_model, 4.0)} == \
        {"clone": 1, "bona fide copy": 1}


def test_eval_sweep_cli_adds_the_copies_table_from_the_sweeps_catalogue(
        tmp_path: Path, tg_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from trackguard.cli import main

    labels = pd.DataFrame({"upload_id": ["o1", "k1"], "kind": ["clean", "clone"], "licensed_use": [False, False],
                           "voice_artist_id": ["a1", "a1"], "spam_type": [None, None]})
    labels.to_parquet(tmp_path / "labels.parquet")
    pd.DataFrame({"upload_id": ["o1", "k1"], "declared_ai": [False, False]}).to_parquet(tmp_path / "manifest.parquet")
    pd.DataFrame({"artist_id": ["a9"], "opted_in": [True]}).to_parquet(tmp_path / "artists.parquet")
    pd.DataFrame({"upload_id": ["o1", "k1"], "queue": [None, "undisclosed-ai"],
                  "reasons": [[], ["synthetic_voice", "undisclosed_ai", "synthetic_over_matched_original"]],
                  "duplicate_of": [None, "o1"]}).to_parquet(tmp_path / "verdicts.parquet")
    (tmp_path / "cat").mkdir()
    pd.DataFrame({"upload_id": ["o1", "k1"], "detector_model_id": ["m", "m"], "detector_logit": [-6.0, -1.0]}
                 ).to_parquet(tmp_path / "cat" / "uploads.parquet")
    out = tmp_path / "eval.json"
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["thresholds"]["synthetic_over_original"] = 4.0  # no detector installed in this home to measure it
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    argv = ["eval", "sweep", "--verdicts", str(tmp_path / "verdicts.parquet"), "--corpus", str(tmp_path),
            "--policy", str(tmp_path / "policy.yaml"), "--catalogue", str(tmp_path / "cat"), "--json", str(out)]
    assert main(argv) == 0
    clone = json.loads(out.read_text())["copies_vs_original"][0]
    assert (clone["copies"], clone["median_rise_logit"], clone["at_or_over_margin"]) == ("clone", 5.0, 1)
    assert "copies against the original they copy" in capsys.readouterr().out
    assert main(argv[:-4]) == 0  # without a catalogue there: the routing tables only, and a hint
    assert "pass the sweep's --catalogue" in capsys.readouterr().out
