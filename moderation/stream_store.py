"""What the streaming pipeline reads and writes in the moderation store, behind one accessor.

The pipeline resolves `open_stream_store` by dotted path (pipelines may not import
moderation). Writes are idempotent by key: verdicts and cases by upload_id (through
`CaseStore`), metrics by (window start, counter name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from moderation.cases import CaseStore, VerdictRecord
from moderation.db import Base

stream_metrics = sa.Table(
    "stream_metrics", Base.metadata,
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("window_s", sa.Integer(), nullable=False),
    sa.Column("value", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class StreamStore(CaseStore):
    """`CaseStore` plus the two things only streaming needs: 'already scored?' and windowed counters."""

    def scored(self, upload_ids: Iterable[str]) -> set[str]:
        """Those of ``upload_ids`` that already have a verdict (a redelivered event is then not scored again)."""
        ids = list(upload_ids)
        if not ids:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(VerdictRecord.upload_id).where(VerdictRecord.upload_id.in_(ids)))
            return {r[0] for r in rows}

    def write_metric(self, window_start: dt.datetime, window_s: int, name: str, value: int) -> None:
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(stream_metrics).values(window_start=window_start, name=name, window_s=window_s,
                                                 value=value, updated_at=now)
            conn.execute(stmt.on_conflict_do_update(index_elements=["window_start", "name"],
                                                    set_={"value": value, "window_s": window_s, "updated_at": now}))

    def metrics(self, since: dt.datetime | None = None) -> list[dict[str, object]]:
        """Windowed counters, oldest first."""
        query = sa.select(stream_metrics).order_by(stream_metrics.c.window_start, stream_metrics.c.name)
        if since is not None:
            query = query.where(stream_metrics.c.window_start >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def open_stream_store(url: str) -> StreamStore:
    """Entry point the streaming pipeline resolves by dotted path."""
    return StreamStore(url)
