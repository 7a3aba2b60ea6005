"""As-of uploader/distributor history for the spam model, computed over the manifest.

Batch only: the whole manifest is gathered once (metadata only, no audio, so no
durations: the spam model is trained without the duration-based history feature) so
every upload's features count strictly earlier-or-simultaneous uploads (no
look-ahead; see `features.history`). The streaming path reads history from the
catalogue database instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pandas as pd

from features.history import history_features
from trackguard.contracts import TrackguardError, parse_timestamp

HISTORY_COLUMNS = ("upload_id", "uploader_id", "distributor_id", "uploaded_at", "title", "artist_name")


def _history_rows(rows: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, float]]]:
    records = []
    for r in rows:
        try:
            ts = parse_timestamp(r.get("uploaded_at"))
        except TrackguardError:
            continue  # this row becomes an errors verdict elsewhere
        if not r.get("upload_id"):
            continue
        records.append({"upload_id": str(r["upload_id"]).strip(), "uploader_id": str(r.get("uploader_id") or ""),
                        "distributor_id": str(r.get("distributor_id") or ""), "uploaded_at": ts,
                        "title": str(r.get("title") or ""), "artist_name": str(r.get("artist_name") or "")})
    if not records:
        return
    table = history_features(pd.DataFrame.from_records(records, columns=list(HISTORY_COLUMNS)))
    for upload_id, feats in table.to_dict(orient="index").items():
        yield str(upload_id), {k: float(v) for k, v in feats.items()}


class HistoryFeatures(beam.PTransform):  # type: ignore[misc]
    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            | "GatherMetadata" >> beam.Map(lambda r: {k: r.get(k) for k in HISTORY_COLUMNS})
            | "ToList" >> beam.combiners.ToList()
            | "AsOfHistory" >> beam.FlatMap(_history_rows)
        )
