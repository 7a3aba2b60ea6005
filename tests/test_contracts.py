"""Manifest validation: every bad field gives its stable code; good rows normalise."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from trackguard.contracts import (
    VERDICT_COLUMNS,
    Decision,
    ErrorCode,
    Queue,
    Segment,
    TrackguardError,
    Verdict,
    error_verdict,
    validate_manifest_row,
)


def good_row(**over: Any) -> dict[str, Any]:
    row = {
        "upload_id": "up-001", "audio_uri": "/data/a.wav", "title": "Song", "artist_name": "Mira Vale",
        "claimed_artist_id": None, "distributor_id": "dist-1", "uploader_id": "u-1",
        "uploaded_at": "2026-01-02T03:04:05Z", "isrc": None, "genre": "pop", "language": "en", "declared_ai": False,
    }
    row.update(over)
    return row


def test_good_row_normalises_uri_and_time() -> None:
    row = validate_manifest_row(good_row())
    assert row.audio_uri == "file:///data/a.wav"
    assert row.uploaded_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert row.declared_ai is False


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "", ErrorCode.MISSING_FIELD),
        ("title", None, ErrorCode.MISSING_FIELD),
        ("upload_id", "   ", ErrorCode.MISSING_FIELD),
        ("uploader_id", float("nan"), ErrorCode.MISSING_FIELD),
        ("uploaded_at", "yesterday", ErrorCode.INVALID_TIMESTAMP),
        ("uploaded_at", 12345, ErrorCode.INVALID_TIMESTAMP),
        ("audio_uri", "ftp://host/a.mp3", ErrorCode.INVALID_URI),
        ("audio_uri", 17, ErrorCode.INVALID_URI),
        ("upload_id", "bad id/with slash", ErrorCode.INVALID_FIELD),
        ("upload_id", "x" * 200, ErrorCode.INVALID_FIELD),
        ("title", "t" * 501, ErrorCode.INVALID_FIELD),
        ("genre", 5, ErrorCode.INVALID_FIELD),
        ("declared_ai", "maybe", ErrorCode.INVALID_FIELD),
    ],
)
def test_each_bad_field_has_its_code(field: str, value: Any, code: ErrorCode) -> None:
    with pytest.raises(TrackguardError) as info:
        validate_manifest_row(good_row(**{field: value}))
    assert info.value.code is code


def test_naive_timestamp_is_utc_and_offsets_convert() -> None:
    assert validate_manifest_row(good_row(uploaded_at="2026-01-02T03:04:05")).uploaded_at.tzinfo == dt.UTC
    ts = validate_manifest_row(good_row(uploaded_at="2026-01-02T05:04:05+02:00")).uploaded_at
    assert ts == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_gs_uri_kept_and_bool_strings_parsed() -> None:
    row = validate_manifest_row(good_row(audio_uri="gs://bucket/a.flac", declared_ai="true"))
    assert row.audio_uri == "gs://bucket/a.flac" and row.declared_ai is True


def test_verdict_row_round_trip_has_exact_columns() -> None:
    v = Verdict("u1", Decision.REVIEW, Queue.UNDISCLOSED_AI, 60, ["synthetic_voice"], 0.93,
                [Segment(1.0, 5.0, 0.97)], model_versions={"detector": "detector/lcnn@1"})
    row = v.to_row()
    assert tuple(row) == VERDICT_COLUMNS
    assert Verdict.from_row(row) == v


def test_error_verdict_routes_to_errors_queue() -> None:
    v = error_verdict("u2", ErrorCode.AUDIO_EMPTY, "zero bytes")
    assert (v.decision, v.queue, v.error_code, v.reasons) == (Decision.ERROR, Queue.ERRORS, ErrorCode.AUDIO_EMPTY,
                                                             ["audio_empty"])
