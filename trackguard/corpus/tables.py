"""The three Parquet tables: manifest (what the pipeline sees), labels (ground truth), artists.

Schemas are explicit so that a column that happens to be all-null in a small build
still has its proper type, and so the files are byte-identical between builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trackguard.contracts import MANIFEST_FIELDS
from trackguard.corpus.jobs import Rendered
from trackguard.corpus.plan import Planner, Upload, uploaded_at

_S, _B, _F, _I = pa.string(), pa.bool_(), pa.float64(), pa.int32()
MANIFEST_SCHEMA = pa.schema([(name, _B if name == "declared_ai" else _S) for name in MANIFEST_FIELDS])
LABEL_SCHEMA = pa.schema([
    ("upload_id", _S), ("kind", _S), ("is_synthetic", _B), ("generator_family", _S), ("voice_artist_id", _S),
    ("content_id", _S), ("twin_upload_id", _S), ("a_cappella", _B), ("vocal_to_accompaniment_db", _F),
    ("vocal_style", _S), ("is_spam", _B), ("spam_type", _S), ("duplicate_of", _S), ("duplicate_transform", _S),
    ("expected_error_code", _S), ("licensed_use", _B), ("format", _S), ("sample_rate", _I), ("channels", _I),
    ("duration_s", _F),
])
ARTIST_SCHEMA = pa.schema([
    ("artist_id", _S), ("name", _S), ("profile_id", _S), ("voice_engine", _S), ("voice_params", _S),
    ("opted_in", _B), ("policy", _S), ("licensed_partner_ids", pa.list_(_S)), ("reference_uris", pa.list_(_S)),
])


def manifest_row(u: Upload) -> dict[str, Any]:
    row = dict(u.manifest)
    row["upload_id"] = u.upload_id
    row["audio_uri"] = u.overrides.get("audio_uri", u.path)
    row["uploaded_at"] = u.overrides.get("uploaded_at", uploaded_at(u.t))
    return {name: row[name] for name in MANIFEST_FIELDS}


def label_row(u: Upload, p: Planner, rendered: dict[str, Rendered], durations: dict[str, float]) -> dict[str, Any]:
    row = {name: u.label.get(name) for name in LABEL_SCHEMA.names}
    row["upload_id"] = u.upload_id
    row["twin_upload_id"] = p.uploads[u.twin_key].upload_id if u.twin_key else None
    row["duplicate_of"] = p.uploads[u.source_key].upload_id if u.source_key else None
    row["format"] = u.ext
    row["sample_rate"] = u.delivery.sr if u.delivery else None
    row["channels"] = u.delivery.channels if u.delivery else None
    done = rendered.get(u.path)
    row["duration_s"] = round(done.duration_s, 6) if done else durations.get(u.key)
    return row


def artist_rows(p: Planner) -> list[dict[str, Any]]:
    refs: dict[str, list[str]] = {}
    for ref in p.references:
        refs.setdefault(ref.artist_id, []).append(ref.path)
    return [{
        "artist_id": a.artist_id, "name": a.name, "profile_id": a.profile_id, "voice_engine": a.voice.engine,
        "voice_params": a.voice.params_json(), "opted_in": a.opted_in, "policy": a.policy,
        "licensed_partner_ids": list(a.licensed_partner_ids), "reference_uris": refs.get(a.artist_id, []),
    } for a in p.artists]


def write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, str(path), compression="zstd")
