"""Expected routing derived from labels, and the bench table formatting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackguard.bench.report import format_table
from trackguard.evaluate import expected_queue, expected_vs_routed, reasons_table, routing_table


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
                  "reasons": [["synthetic_voice", "undisclosed_ai"], ["synthetic_score_without_vocals"], []]}
                 ).to_parquet(verdicts)
    joined = expected_vs_routed(verdicts, tmp_path)
    table, confusion = routing_table(joined)
    row = table.set_index("queue").loc["undisclosed-ai"]
    assert (row["expected"], row["routed"], row["correct"], row["recall"]) == (2, 1, 1, 0.5)
    assert confusion.loc["undisclosed-ai", "pass"] == 1
    reasons = reasons_table(joined)
    assert reasons.loc["synthetic_score_without_vocals", "pass"] == 1
    assert reasons.loc["synthetic_voice"].to_dict() == {"pass": 0, "undisclosed-ai": 1}
