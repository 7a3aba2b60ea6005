"""Attribution ledger: which licensed uploads used which enrolled artist's voice.

An artist with policy ``allow_licensed`` lets named partners publish with their
voice; the sweep passes those uploads (reason ``licensed_use``) and the ledger
records the credit — artist, upload, uploader when known, date — so royalties and
reporting can be settled later. One row per (artist, upload): re-running a sweep
never duplicates an entry, it only refreshes the score.

The similarity score is the only biometric-derived value here; the registry's
opt-out (`models.voiceprints.VoiceprintStore.optout`) erases it and keeps the
credit. Entries are written by `CaseStore.upsert_verdicts` in the same transaction
as the verdict.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Float, Integer, String, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.voiceprints import LEDGER_SCORE_COLUMN, LEDGER_TABLE
from moderation.db import Base, create_schema
from moderation.schema import uploads
from trackguard.contracts import Verdict

LICENSED_REASON = "licensed_use"
CSV_COLUMNS = ("artist_id", "upload_id", "uploader_id", "similarity", "recorded_at")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LedgerEntry(Base):
    __tablename__ = LEDGER_TABLE
    __table_args__ = (UniqueConstraint("artist_id", "upload_id", name="uq_attribution_artist_upload"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    artist_id: Mapped[str] = mapped_column(String(128), index=True)
    upload_id: Mapped[str] = mapped_column(String(128), index=True)
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)  # erased on the artist's opt-out
    uploader_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


assert LEDGER_SCORE_COLUMN in LedgerEntry.__table__.c  # the registry's opt-out erases this column by name


def licensed_entry(verdict: Verdict) -> dict[str, Any] | None:
    """The ledger entry a verdict owes, or None when it is not a licensed use of an enrolled voice (the verdict
    does not know the uploader; the caller fills ``uploader_id`` in from the stored upload)."""
    if LICENSED_REASON not in verdict.reasons or not verdict.matched_artist_id:
        return None
    return {"artist_id": verdict.matched_artist_id, "upload_id": verdict.upload_id,
            "similarity": verdict.voice_similarity, "uploader_id": None}


def record_entries(session: Session, entries: Iterable[dict[str, Any]]) -> int:
    """Insert entries, or refresh the score (and a newly known uploader) of ones already there; returns how many."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    n = 0
    for entry in entries:
        ins = insert(LedgerEntry).values(**entry, recorded_at=_now())
        uploader = ins.excluded.uploader_id if entry.get("uploader_id") else LedgerEntry.uploader_id
        session.execute(ins.on_conflict_do_update(
            index_elements=["artist_id", "upload_id"],
            set_={"similarity": ins.excluded.similarity, "uploader_id": uploader},
        ))
        n += 1
    return n


def fill_uploaders(session: Session, upload_ids: Sequence[str]) -> int:
    """Name the stored uploader on these uploads' entries that were recorded before it was known.

    A sweep writes verdicts and upload metadata in separate steps, in either order, so
    whichever comes second completes the entry; an uploader already named is kept. One
    statement, on the ``upload_id`` index, reading the ``uploads`` rows just stored.
    """
    known = select(uploads.c.uploader_id).where(uploads.c.upload_id == LedgerEntry.upload_id).scalar_subquery()
    return int(session.execute(update(LedgerEntry).where(
        LedgerEntry.upload_id.in_(list(upload_ids)), LedgerEntry.uploader_id.is_(None), known.is_not(None)
    ).values(uploader_id=known)).rowcount)  # type: ignore[attr-defined]


class AttributionLedger:
    """Read and write the ledger outside a sweep (export, tests)."""

    def __init__(self, url: str) -> None:
        self.engine = create_schema(url)

    def record(self, entries: Iterable[dict[str, Any]]) -> int:
        with Session(self.engine) as session, session.begin():
            return record_entries(session, entries)

    def entries(self, artist_id: str | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            q = select(LedgerEntry).order_by(LedgerEntry.artist_id, LedgerEntry.recorded_at, LedgerEntry.upload_id)
            if artist_id:
                q = q.where(LedgerEntry.artist_id == artist_id)
            return [{"artist_id": e.artist_id, "upload_id": e.upload_id, "uploader_id": e.uploader_id,
                     "similarity": e.similarity, "recorded_at": e.recorded_at.isoformat()}
                    for e in session.execute(q).scalars()]

    def export_csv(self, out: Path | str, artist_id: str | None = None) -> int:
        """Write the ledger (or one artist's part) as CSV; returns the number of rows."""
        rows = self.entries(artist_id)
        write_csv(rows, Path(out))
        return len(rows)


def write_csv(rows: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
