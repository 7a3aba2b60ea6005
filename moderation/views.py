"""Read side of the workflow: queue statistics, case lists and details, labels for training. No writes.

Ages and SLAs count from a case's creation, except in the ``appeals`` queue where
they count from the filing of the open appeal (a months-old case appealed today
is not months late).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Select, and_, case, exists, func, select

from moderation.audit import as_utc, entries
from moderation.cases import CaseEvidence, VerdictRecord
from moderation.decisions import UPHELD
from moderation.leases import c, cases
from moderation.review import (
    Action,
    AppealRecord,
    AuditEntry,
    CaseSummary,
    DecisionRecord,
    QueueStats,
    Role,
)
from moderation.schema import appeals, decisions, uploads
from trackguard.contracts import Queue

HOUR = 3600.0
DEFAULT_SLA_S: dict[str, float] = {
    Queue.IMPERSONATION.value: 4 * HOUR,
    Queue.PROFILE_MISMATCH.value: 24 * HOUR,
    Queue.UNDISCLOSED_AI.value: 48 * HOUR,
    Queue.SPAM.value: 72 * HOUR,
    Queue.DUPLICATES.value: 72 * HOUR,
    Queue.ERRORS.value: 24 * HOUR,
    Queue.APPEALS.value: 48 * HOUR,
}
STATUSES = ("open", "decided", "all")

_open_appeal = appeals.alias("open_appeal")
_since = func.coalesce(_open_appeal.c.filed_at, c.created_at).label("since")


def _with_since(q: Select[Any]) -> Select[Any]:
    return q.outerjoin(_open_appeal, and_(_open_appeal.c.case_id == c.id, _open_appeal.c.status == "open"))


def summary(row: Any, now: dt.datetime) -> CaseSummary:
    live = row.lease_until is not None and as_utc(row.lease_until) > now
    return CaseSummary(
        id=row.id, upload_id=row.upload_id, queue=row.queue, priority=row.priority, status=row.status,
        min_role=Role(row.min_role), created_at=as_utc(row.created_at),
        age_s=(now - as_utc(row.since)).total_seconds(), claimed_by=row.claimed_by if live else None,
        lease_until=as_utc(row.lease_until) if live else None, evidence_version=row.evidence_version,
        resolution=Action(row.resolution) if row.resolution else None)


def case_rows(conn: Connection, *, queue: str | None = None, status: str = "open", limit: int = 100,
              offset: int = 0, case_id: int | None = None) -> list[Any]:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    q = _with_since(select(cases, _since).select_from(cases))
    if case_id is not None:
        q = q.where(c.id == case_id)
    if queue is not None:
        q = q.where(c.queue == queue)
    if status != "all":
        q = q.where(c.status == status)
    # Open (and all) cases in claim order; decided ones newest decision first.
    order = [c.decided_at.desc(), c.id.desc()] if status == "decided" else [c.priority.desc(), c.created_at, c.id]
    return list(conn.execute(q.order_by(*order).limit(limit).offset(offset)))


def queue_stats(conn: Connection, now: dt.datetime, sla_s: Mapping[str, float]) -> list[QueueStats]:
    """Every queue (empty ones too): open, claimed (live lease), oldest age, SLA breaches."""
    names = [q.value for q in Queue]
    cutoff = case(*[(c.queue == q, now - dt.timedelta(seconds=sla_s[q])) for q in names], else_=now)
    since = func.coalesce(_open_appeal.c.filed_at, c.created_at)
    q = _with_since(select(c.queue, func.count(), func.sum(case((c.lease_until > now, 1), else_=0)),
                           func.min(since), func.sum(case((since < cutoff, 1), else_=0))).select_from(cases))
    rows = {r[0]: r for r in conn.execute(q.where(c.status == "open").group_by(c.queue))}
    out = []
    for name in names:
        r = rows.get(name)
        oldest = (now - as_utc(r[3])).total_seconds() if r is not None and r[3] is not None else None
        out.append(QueueStats(name, int(r[1]) if r else 0, int(r[2] or 0) if r else 0, oldest, float(sla_s[name]),
                              int(r[4] or 0) if r else 0))
    return out


def decision_records(conn: Connection, case_id: int) -> list[DecisionRecord]:
    rows = conn.execute(select(decisions).where(decisions.c.case_id == case_id).order_by(decisions.c.id))
    return [DecisionRecord(r.id, r.case_id, Action(r.action), r.reason, r.reviewer, as_utc(r.decided_at),
                           r.evidence_version, r.appeal_id) for r in rows]


def appeal_records(conn: Connection, case_id: int) -> list[AppealRecord]:
    rows = conn.execute(select(appeals).where(appeals.c.case_id == case_id).order_by(appeals.c.id))
    return [AppealRecord(r.id, r.case_id, r.decision_id, r.distributor_id, r.filed_by, r.reason, as_utc(r.filed_at),
                         r.status) for r in rows]


def evidence_versions(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(CaseEvidence.verdict, CaseEvidence.version).where(CaseEvidence.case_id == case_id)
                        .order_by(CaseEvidence.version))
    return [dict(r.verdict, _version=r.version) for r in rows]


def upload_row(conn: Connection, upload_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(uploads).where(uploads.c.upload_id == upload_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for key in ("uploaded_at", "updated_at"):
        if out.get(key) is not None:
            out[key] = as_utc(out[key])
    return out


def history(conn: Connection, case_id: int) -> list[AuditEntry]:
    return entries(conn, subject_type="case", subject_id=str(case_id), limit=10_000, newest_first=False)


def verdict_row(conn: Connection, upload_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(VerdictRecord.verdict).where(VerdictRecord.upload_id == upload_id)).first()
    return dict(row.verdict) if row else None


def pseudonym(username: str) -> str:
    """Reviewer names leave the moderation system only as a stable pseudonym."""
    return hashlib.sha256(f"trackguard-reviewer:{username}".encode()).hexdigest()[:12]


def _label_query() -> Select[Any]:
    d = decisions.alias("final_decision")
    last = (select(func.max(d.c.id)).where(d.c.case_id == c.id, d.c.final.is_(True))
            .correlate(cases).scalar_subquery())
    appealed = exists().where(appeals.c.case_id == c.id)
    return (select(c.upload_id, c.queue, decisions.c.action, decisions.c.reason, decisions.c.reviewer,
                   decisions.c.decided_at, decisions.c.evidence_version, CaseEvidence.verdict,
                   appealed.label("appealed"))
            .select_from(cases)
            .join(decisions, decisions.c.id == last)
            .outerjoin(CaseEvidence, and_(CaseEvidence.case_id == c.id,
                                          CaseEvidence.version == decisions.c.evidence_version))
            .where(c.status == "decided").order_by(c.id))


def export_labels(conn: Connection) -> list[dict[str, Any]]:
    """One row per finally decided case: the decision as a label plus the evidence it was taken on."""
    out = []
    for r in conn.execute(_label_query()):
        v = dict(r.verdict or {})
        models = {m["slot"]: m["model_id"] for m in (v.get("model_versions") or [])}
        out.append({"upload_id": r.upload_id, "queue": r.queue, "action": r.action,
                    "label": int(Action(r.action) in UPHELD), "reason": r.reason, "reviewer": pseudonym(r.reviewer),
                    "decided_at": as_utc(r.decided_at).isoformat(), "evidence_version": r.evidence_version,
                    "synthetic_score": v.get("synthetic_score"), "voice_similarity": v.get("voice_similarity"),
                    "spam_score": v.get("spam_score"), "duplicate_of": v.get("duplicate_of"),
                    "model_versions": models, "appealed": bool(r.appealed)})
    return out
