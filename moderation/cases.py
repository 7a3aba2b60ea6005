"""Cases and verdicts: one case per flagged upload, evidence versions, upserts.

`CaseStore` is the narrow interface the pipelines write through. Re-running a
sweep is idempotent: the same verdict content adds nothing; a changed verdict
adds a new evidence version to the same case, never a second case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from moderation.db import Base, create_schema
from moderation.ledger import fill_uploaders, licensed_entry, record_entries
from moderation.schema import uploads
from moderation.uploads import upload_batch
from trackguard.contracts import Queue, Verdict


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class VerdictRecord(Base):
    """The latest verdict of every upload (pass included), for lookups and the API."""

    __tablename__ = "verdicts"
    upload_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    decision: Mapped[str] = mapped_column(String(16), index=True)
    queue: Mapped[str | None] = mapped_column(String(32), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Case(Base):
    """One per flagged upload; the workflow columns (lease, resolution, who may claim) come from migration 0002."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(String(128), unique=True)
    queue: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    evidence_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    min_role: Mapped[str] = mapped_column(String(16), default="reviewer", server_default="reviewer")
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    excluded_reviewers: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))


# The claim's orderings (migrations 0002 and 0003): by queue, and across queues over open cases only.
Index("ix_cases_claim", Case.status, Case.queue, Case.priority.desc(), Case.created_at)
Index("ix_cases_open_order", Case.priority.desc(), Case.created_at, Case.id,
      postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'"))


class CaseEvidence(Base):
    __tablename__ = "case_evidence"
    __table_args__ = (UniqueConstraint("case_id", "content_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


def verdict_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class CaseStore:
    """Writes verdicts and files cases. One accessor, no ORM objects leak out."""

    def __init__(self, url: str) -> None:
        self.engine = create_schema(url)

    def upsert_verdicts(self, verdicts: Iterable[Verdict]) -> dict[str, int]:
        """Store verdicts and file/update cases; returns counts of what changed.

        A licensed use of an enrolled voice (reason ``licensed_use``) also gets its
        attribution-ledger entry, in the same transaction (`moderation.ledger`).
        """
        counts = {"verdicts": 0, "cases_new": 0, "evidence_new": 0, "unchanged": 0, "ledger": 0}
        with Session(self.engine) as session, session.begin():
            for verdict in verdicts:
                self._upsert_one(session, verdict, counts)
                entry = licensed_entry(verdict)
                if entry is not None:
                    entry["uploader_id"] = self._uploader(session, verdict.upload_id)
                    counts["ledger"] += record_entries(session, [entry])
        return counts

    @staticmethod
    def _uploader(session: Session, upload_id: str) -> str | None:
        """The uploader of a stored upload (None until its metadata is stored; `upsert_uploads` fills it in then)."""
        return session.execute(select(uploads.c.uploader_id).where(uploads.c.upload_id == upload_id)).scalar()

    def _upsert_one(self, session: Session, verdict: Verdict, counts: dict[str, int]) -> None:
        row = verdict.to_row()
        digest = verdict_hash(row)
        ins = _insert(session)(VerdictRecord).values(
            upload_id=verdict.upload_id, decision=row["decision"], queue=row["queue"],
            content_hash=digest, verdict=row, updated_at=_now(),
        )
        session.execute(ins.on_conflict_do_update(
            index_elements=["upload_id"],
            set_={"decision": row["decision"], "queue": row["queue"], "content_hash": digest,
                  "verdict": row, "updated_at": _now()},
        ))
        counts["verdicts"] += 1
        if row["queue"] is None:
            return
        ins_case = _insert(session)(Case).values(
            upload_id=verdict.upload_id, queue=row["queue"], priority=row["priority"],
            status="open", evidence_version=0, created_at=_now(), updated_at=_now(),
        )
        session.execute(ins_case.on_conflict_do_nothing(index_elements=["upload_id"]))
        case = session.execute(select(Case).where(Case.upload_id == verdict.upload_id).with_for_update()).scalar_one()
        known = session.execute(
            select(CaseEvidence.id).where(CaseEvidence.case_id == case.id, CaseEvidence.content_hash == digest)
        ).first()
        if known:
            counts["unchanged"] += 1
            return
        if case.evidence_version == 0:
            counts["cases_new"] += 1
        case.evidence_version += 1
        case.updated_at = _now()
        if case.status == "open" and case.queue != Queue.APPEALS.value:  # a decided or appealed case stays put
            case.queue, case.priority = row["queue"], row["priority"]
        session.add(CaseEvidence(case_id=case.id, version=case.evidence_version, content_hash=digest, verdict=row))
        counts["evidence_new"] += 1

    def upsert_uploads(self, rows: Iterable[Mapping[str, Any]], batch_size: int = 1000) -> int:
        """Store the manifest metadata of uploads (what parses, plus the raw row); returns rows stored.

        Idempotent: keyed by upload_id, a second run rewrites the same values. Rows
        without a usable upload_id are skipped (`moderation.uploads`).
        """
        batch = upload_batch(rows, _now())
        with Session(self.engine) as session, session.begin():
            ins = _insert(session)(uploads)
            stmt = ins.on_conflict_do_update(
                index_elements=["upload_id"],
                set_={col.name: ins.excluded[col.name] for col in uploads.c if col.name != "upload_id"})
            for i in range(0, len(batch), batch_size):
                session.execute(stmt, batch[i:i + batch_size])
                fill_uploaders(session, [r["upload_id"] for r in batch[i:i + batch_size]])
        return len(batch)

    def erase_voice_similarity(self, artist_id: str) -> int:
        """Blank the voice-match score in every stored verdict and evidence version that names the artist.

        Part of opt-out erasure: the score is a biometric match result. Which artist a
        case was about (``matched_artist_id``) and the decision stay: they are the
        moderation record, not biometric data. Returns the rows changed.
        """
        changed = 0
        with Session(self.engine) as session, session.begin():
            verdicts = select(VerdictRecord).where(VerdictRecord.verdict["matched_artist_id"].as_string() == artist_id)
            evidence = select(CaseEvidence).where(CaseEvidence.verdict["matched_artist_id"].as_string() == artist_id)
            records: list[VerdictRecord | CaseEvidence] = [*session.execute(verdicts).scalars(),
                                                           *session.execute(evidence).scalars()]
            for rec in records:
                if rec.verdict.get("voice_similarity") is not None:
                    rec.verdict = {**rec.verdict, "voice_similarity": None}  # a new dict, so the ORM sees the change
                    changed += 1
        return changed

    def case_count(self, queue: str | None = None) -> int:
        with Session(self.engine) as session:
            q = select(Case.id)
            if queue:
                q = q.where(Case.queue == queue)
            return len(session.execute(q).all())

    def queue_counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.execute(select(Case.queue)).scalars().all()
        out: dict[str, int] = {}
        for q in rows:
            out[q] = out.get(q, 0) + 1
        return out

    def get_verdict(self, upload_id: str) -> Verdict | None:
        with Session(self.engine) as session:
            rec = session.get(VerdictRecord, upload_id)
            return Verdict.from_row(rec.verdict) if rec else None

    def evidence_versions(self, upload_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            case = session.execute(select(Case).where(Case.upload_id == upload_id)).scalar_one_or_none()
            if case is None:
                return []
            rows = session.execute(
                select(CaseEvidence).where(CaseEvidence.case_id == case.id).order_by(CaseEvidence.version)
            ).scalars()
            return [dict(r.verdict, _version=r.version) for r in rows]


def open_case_writer(url: str) -> CaseStore:
    """Entry point the pipelines resolve by dotted path (they may not import moderation)."""
    return CaseStore(url)
