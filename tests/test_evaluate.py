"""Expected routing derived from labels, and the bench table formatting."""

from __future__ import annotations

import pandas as pd

from trackguard.bench.report import format_table
from trackguard.evaluate import expected_queue


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
