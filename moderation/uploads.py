"""Raw manifest rows → `uploads` table values, leniently: keep what parses, and the raw row as JSON.

The sweep hands over manifest rows as read, including the invalid ones (they
became ``errors`` verdicts and reviewers still need to see what was delivered).
Each field is parsed on its own with the manifest contract's rules; a field that
does not parse is stored as NULL, and the raw row keeps the original value. A row
without a usable ``upload_id`` cannot be keyed and is skipped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from trackguard.contracts import MAX_TEXT_LEN, TrackguardError, normalise_uri, parse_bool, parse_timestamp

MAX_ID_LEN = 128
TEXT_FIELDS = ("title", "artist_name")
ID_FIELDS = ("distributor_id", "uploader_id", "claimed_artist_id")


def jsonable(value: Any) -> Any:
    """A JSON-native copy: NaN → None, timestamps → ISO, numpy scalars/arrays → Python values."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value


def _upload_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_ID_LEN else None


def _uri(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalise_uri(value)
    except TrackguardError:
        return None


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    try:
        return parse_timestamp(value)
    except (TrackguardError, ValueError, TypeError):
        return None


def _bool(value: Any) -> bool | None:
    """The contract's reading (blank is False); None only for a value that is not a boolean at all."""
    try:
        return parse_bool(jsonable(value))  # jsonable: numpy scalars and NaN read as the contract expects
    except TrackguardError:
        return None


def upload_values(raw: Mapping[str, Any], at: dt.datetime) -> dict[str, Any] | None:
    """Column values for one raw manifest row, or None when it has no usable upload_id."""
    upload_id = _upload_id(raw.get("upload_id"))
    if upload_id is None:
        return None
    out: dict[str, Any] = {"upload_id": upload_id, "audio_uri": _uri(raw.get("audio_uri")),
                           "uploaded_at": _timestamp(raw.get("uploaded_at")),
                           "declared_ai": _bool(raw.get("declared_ai")), "raw": jsonable(dict(raw)), "updated_at": at}
    out |= {name: _text(raw.get(name), MAX_TEXT_LEN) for name in TEXT_FIELDS}
    out |= {name: _text(raw.get(name), MAX_ID_LEN) for name in ID_FIELDS}
    return out


def upload_batch(rows: Iterable[Mapping[str, Any]], at: dt.datetime) -> list[dict[str, Any]]:
    """Values for every usable row; a repeated upload_id keeps its last row (one upsert per key)."""
    by_id: dict[str, dict[str, Any]] = {}
    for raw in rows:
        values = upload_values(raw, at) if isinstance(raw, Mapping) else None
        if values is not None:
            by_id[values["upload_id"]] = values
    return list(by_id.values())
