"""Data contracts shared by every layer: the manifest row, the verdict, error codes.

These are plain typed records (dataclasses), so they pickle cheaply through Beam
and carry no I/O. Validation of a raw manifest row lives in `validate_manifest_row`;
a row that fails it still becomes a verdict (decision ``error``, queue ``errors``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any


class Decision(enum.StrEnum):
    PASS = "pass"
    REVIEW = "review"
    BLOCK = "block"
    ERROR = "error"


class Queue(enum.StrEnum):
    IMPERSONATION = "impersonation"
    PROFILE_MISMATCH = "profile-mismatch"
    UNDISCLOSED_AI = "undisclosed-ai"
    SPAM = "spam"
    DUPLICATES = "duplicates"
    ERRORS = "errors"
    APPEALS = "appeals"


class ErrorCode(enum.StrEnum):
    """Stable reason codes for uploads that could not be scored.

    The values are part of the public contract (distributors match on them):
    never rename one, only add.
    """

    # manifest validation
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_URI = "invalid_uri"
    INVALID_TIMESTAMP = "invalid_timestamp"
    DUPLICATE_UPLOAD_ID = "duplicate_upload_id"
    # audio
    AUDIO_MISSING = "audio_missing"
    AUDIO_EMPTY = "audio_empty"
    AUDIO_UNDECODABLE = "audio_undecodable"
    AUDIO_TRUNCATED = "audio_truncated"
    AUDIO_NONFINITE = "audio_nonfinite"
    AUDIO_TOO_SHORT = "audio_too_short"
    AUDIO_TOO_LONG = "audio_too_long"
    # pipeline
    SCORING_FAILED = "scoring_failed"
    INTERNAL_ERROR = "internal_error"
    # streaming: an event on the uploads topic that is not a valid upload event (also sent to the dead-letter topic)
    INVALID_EVENT = "invalid_event"


class TrackguardError(Exception):
    """An upload-level failure with a stable code; becomes an `errors` verdict."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


REQUIRED_FIELDS = (
    "upload_id",
    "audio_uri",
    "title",
    "artist_name",
    "distributor_id",
    "uploader_id",
    "uploaded_at",
)
OPTIONAL_FIELDS = ("claimed_artist_id", "isrc", "genre", "language", "declared_ai")
MANIFEST_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

_UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_URI_SCHEMES = ("file://", "gs://")
MAX_TEXT_LEN = 500


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One upload as delivered. Points at its audio; never holds samples."""

    upload_id: str
    audio_uri: str
    title: str
    artist_name: str
    distributor_id: str
    uploader_id: str
    uploaded_at: dt.datetime
    claimed_artist_id: str | None = None
    isrc: str | None = None
    genre: str | None = None
    language: str | None = None
    declared_ai: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["uploaded_at"] = self.uploaded_at.isoformat()
        return d


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


def parse_timestamp(value: Any) -> dt.datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC."""
    if isinstance(value, dt.datetime):
        ts = value
    elif hasattr(value, "to_pydatetime"):
        ts = value.to_pydatetime()
    elif isinstance(value, str):
        try:
            ts = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise TrackguardError(ErrorCode.INVALID_TIMESTAMP,
                                  f"uploaded_at {value!r} is not ISO-8601") from exc
    else:
        raise TrackguardError(ErrorCode.INVALID_TIMESTAMP, f"uploaded_at {value!r} is not a timestamp")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    try:
        return ts.astimezone(dt.UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
        raise TrackguardError(ErrorCode.INVALID_TIMESTAMP, f"uploaded_at {value!r} is out of range") from exc


def parse_bool(value: Any) -> bool:
    """The manifest's reading of ``declared_ai``: blank is False; anything not boolean-like is refused."""
    if _blank(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise TrackguardError(ErrorCode.INVALID_FIELD, f"declared_ai {value!r} is not a boolean")


def normalise_uri(uri: str) -> str:
    """Plain paths become ``file://`` URIs; other schemes are refused."""
    uri = uri.strip()
    if uri.startswith(_URI_SCHEMES):
        return uri
    if "://" in uri:
        raise TrackguardError(ErrorCode.INVALID_URI,
                              f"audio_uri scheme not supported: {uri!r} (use a path, file:// or gs://)")
    return "file://" + uri


def validate_manifest_row(raw: Mapping[str, Any]) -> ManifestRow:
    """Turn a raw manifest mapping into a ManifestRow or raise TrackguardError."""
    for name in REQUIRED_FIELDS:
        if _blank(raw.get(name)):
            raise TrackguardError(ErrorCode.MISSING_FIELD, f"required field {name!r} is empty")
    upload_id = str(raw["upload_id"]).strip()
    if not _UPLOAD_ID_RE.match(upload_id):
        raise TrackguardError(ErrorCode.INVALID_FIELD,
                              f"upload_id {upload_id!r} has characters outside [A-Za-z0-9._:-] or is too long")
    texts: dict[str, str | None] = {}
    text_fields = ("title", "artist_name", "distributor_id", "uploader_id", "claimed_artist_id", "isrc", "genre",
                   "language")
    for name in text_fields:
        value = raw.get(name)
        if _blank(value):
            texts[name] = None
            continue
        if not isinstance(value, str):
            raise TrackguardError(ErrorCode.INVALID_FIELD, f"{name} must be text, got {type(value).__name__}")
        if len(value) > MAX_TEXT_LEN:
            raise TrackguardError(ErrorCode.INVALID_FIELD, f"{name} is longer than {MAX_TEXT_LEN} characters")
        texts[name] = value
    if not isinstance(raw["audio_uri"], str):
        raise TrackguardError(ErrorCode.INVALID_URI, "audio_uri must be text")
    return ManifestRow(
        upload_id=upload_id,
        audio_uri=normalise_uri(raw["audio_uri"]),
        title=texts["title"] or "",
        artist_name=texts["artist_name"] or "",
        distributor_id=texts["distributor_id"] or "",
        uploader_id=texts["uploader_id"] or "",
        uploaded_at=parse_timestamp(raw["uploaded_at"]),
        claimed_artist_id=texts["claimed_artist_id"],
        isrc=texts["isrc"],
        genre=texts["genre"],
        language=texts["language"],
        declared_ai=parse_bool(raw.get("declared_ai")),
    )


@dataclasses.dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    score: float


VERDICT_COLUMNS = (
    "upload_id",
    "decision",
    "queue",
    "priority",
    "reasons",
    "synthetic_score",
    "synthetic_segments",
    "matched_artist_id",
    "voice_similarity",
    "spam_score",
    "spam_reasons",
    "duplicate_of",
    "error_code",
    "error_message",
    "model_versions",
)


@dataclasses.dataclass
class Verdict:
    """One per upload, never zero, never two. Column order = VERDICT_COLUMNS."""

    upload_id: str
    decision: Decision
    queue: Queue | None = None
    priority: int = 0
    reasons: list[str] = dataclasses.field(default_factory=list)
    synthetic_score: float | None = None
    synthetic_segments: list[Segment] = dataclasses.field(default_factory=list)
    matched_artist_id: str | None = None
    voice_similarity: float | None = None
    spam_score: float | None = None
    spam_reasons: list[str] = dataclasses.field(default_factory=list)
    duplicate_of: str | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    model_versions: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """Flat, Arrow-friendly row (enums as strings, segments as structs)."""
        return {
            "upload_id": self.upload_id,
            "decision": self.decision.value,
            "queue": self.queue.value if self.queue else None,
            "priority": int(self.priority),
            "reasons": list(self.reasons),
            "synthetic_score": self.synthetic_score,
            "synthetic_segments": [dataclasses.asdict(s) for s in self.synthetic_segments],
            "matched_artist_id": self.matched_artist_id,
            "voice_similarity": self.voice_similarity,
            "spam_score": self.spam_score,
            "spam_reasons": list(self.spam_reasons),
            "duplicate_of": self.duplicate_of,
            "error_code": self.error_code.value if self.error_code else None,
            "error_message": self.error_message,
            "model_versions": [{"slot": k, "model_id": v} for k, v in sorted(self.model_versions.items())],
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Verdict:
        return cls(
            upload_id=row["upload_id"],
            decision=Decision(row["decision"]),
            queue=Queue(row["queue"]) if row.get("queue") else None,
            priority=int(row.get("priority") or 0),
            reasons=list(row.get("reasons") or []),
            synthetic_score=row.get("synthetic_score"),
            synthetic_segments=[Segment(**s) for s in (row.get("synthetic_segments") or [])],
            matched_artist_id=row.get("matched_artist_id"),
            voice_similarity=row.get("voice_similarity"),
            spam_score=row.get("spam_score"),
            spam_reasons=list(row.get("spam_reasons") or []),
            duplicate_of=row.get("duplicate_of"),
            error_code=ErrorCode(row["error_code"]) if row.get("error_code") else None,
            error_message=row.get("error_message"),
            model_versions={m["slot"]: m["model_id"] for m in (row.get("model_versions") or [])},
        )


def error_verdict(upload_id: str, code: ErrorCode, message: str) -> Verdict:
    return Verdict(
        upload_id=upload_id,
        decision=Decision.ERROR,
        queue=Queue.ERRORS,
        priority=1,
        reasons=[code.value],
        error_code=code,
        error_message=message,
    )
