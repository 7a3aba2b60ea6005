"""Decisions and appeals inside the caller's write transaction (the service adds the audit entry last).

A decision is one conditional ``UPDATE`` of the case: it only matches while the
reviewer holds a live lease with that token on an open case, so a stale, released
or foreign lease changes nothing and is reported as `StaleLeaseError`. Everything
else (decision row, ledger credit, closing an appeal) follows in the same
transaction, so a refusal raised after the update rolls all of it back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Update, and_, bindparam, case, insert, select, update
from sqlalchemy.orm import Session

from moderation.cases import CaseEvidence
from moderation.leases import at_least, c, cases, excluded
from moderation.ledger import record_entries
from moderation.review import (
    Action,
    AppealRecord,
    ConflictError,
    DecisionRecord,
    InvalidDecisionError,
    NotAllowedError,
    NotFoundError,
    Role,
    StaleLeaseError,
    User,
)
from moderation.schema import appeals, decisions, uploads
from trackguard.contracts import Queue

MAX_REASON = 2000
FINAL = frozenset({Action.UPHOLD, Action.DISMISS, Action.LABEL_AI, Action.CREDIT})
UPHELD = frozenset({Action.UPHOLD, Action.LABEL_AI, Action.CREDIT})  # an appeal against these is upheld
APPEALS = Queue.APPEALS.value


def decision_details(action: Action, reason: str, decision_id: int, evidence_version: int) -> dict[str, Any]:
    """The audit details of a decision (`moderation.fastpath` builds the same ones in SQL)."""
    return {"action": action.value, "decision_id": decision_id, "evidence_version": evidence_version,
            "reason": reason}


def check_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidDecisionError("a decision needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidDecisionError(f"the reason is longer than {MAX_REASON} characters")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise InvalidDecisionError("the reason contains a NUL character")
    return text


def _apply_statement(escalate: bool) -> Update:
    """The conditional case update for a final decision or an escalation, built once."""
    lease: dict[str, Any] = {"claimed_by": None, "lease_token": None, "lease_until": None,
                             "updated_at": bindparam("p_now")}
    if escalate:  # back to the queue, for a lead
        values: dict[str, Any] = {**lease, "min_role": case((c.min_role == Role.REVIEWER.value, Role.LEAD.value),
                                                            else_=c.min_role)}
    else:
        values = {**lease, "status": "decided", "resolution": bindparam("p_action"), "decided_at": bindparam("p_now")}
    live = and_(c.id == bindparam("p_case"), c.claimed_by == bindparam("p_user"), c.lease_token == bindparam("p_token"),
                c.lease_until > bindparam("p_now"), c.status == "open")
    return (update(cases).where(live).values(values)
            .returning(c.upload_id, c.queue, c.evidence_version, c.excluded_reviewers))


_APPLY = {escalate: _apply_statement(escalate) for escalate in (False, True)}
_INSERT_DECISION = insert(decisions).returning(decisions.c.id)


def _apply(conn: Connection, case_id: int, reviewer: str, token: str, action: Action, now: dt.datetime) -> Any:
    """The conditional case update; its RETURNING row, or None when the lease is not the caller's."""
    return conn.execute(_APPLY[action is Action.ESCALATE], {"p_case": case_id, "p_user": reviewer, "p_token": token,
                                                          "p_now": now, "p_action": action.value}).first()


def _why_stale(conn: Connection, case_id: int) -> Exception:
    row = conn.execute(select(c.status).where(c.id == case_id)).first()
    if row is None:
        return NotFoundError(f"case {case_id} does not exist")
    if row.status != "open":
        return StaleLeaseError(f"case {case_id} is already decided")
    return StaleLeaseError(f"case {case_id}: no live lease of yours with that token (expired, released or taken)")


def _open_appeal(conn: Connection, case_id: int) -> Any:
    return conn.execute(select(appeals).where(appeals.c.case_id == case_id, appeals.c.status == "open")).first()


def _check_appeal_reviewer(conn: Connection, reviewer: User, row: Any, appeal: Any) -> None:
    if not at_least(reviewer.role, Role.LEAD):
        raise NotAllowedError("an appeal is decided by a lead or an admin")
    appealed = conn.execute(select(decisions.c.reviewer).where(decisions.c.id == appeal.decision_id)).scalar_one()
    if reviewer.username == appealed or reviewer.username in excluded(row):
        raise NotAllowedError("an appeal must be decided by someone who did not decide the case before")


def _credit(conn: Connection, case_id: int, upload_id: str, version: int) -> None:
    """The attribution-ledger entry a `credit` decision owes the matched artist."""
    verdict = conn.execute(select(CaseEvidence.verdict).where(CaseEvidence.case_id == case_id,
                                                              CaseEvidence.version == version)).scalar_one_or_none()
    artist = (verdict or {}).get("matched_artist_id")
    if not artist:
        raise InvalidDecisionError("credit needs a verdict with a matched artist")
    uploader = conn.execute(select(uploads.c.uploader_id).where(uploads.c.upload_id == upload_id)).scalar()
    entry = {"artist_id": artist, "upload_id": upload_id, "similarity": (verdict or {}).get("voice_similarity"),
             "uploader_id": uploader}
    with Session(bind=conn) as session:
        record_entries(session, [entry])
        session.flush()


def decide(conn: Connection, reviewer: User, case_id: int, token: str, action: Action, reason: str,
           now: dt.datetime) -> tuple[DecisionRecord, dict[str, Any]]:
    """Record the decision; returns it and the audit details."""
    row = _apply(conn, case_id, reviewer.username, token, action, now)
    if row is None:
        raise _why_stale(conn, case_id)
    appeal = _open_appeal(conn, case_id) if row.queue == APPEALS else None
    if appeal is not None:
        _check_appeal_reviewer(conn, reviewer, row, appeal)
    if action is Action.CREDIT:
        _credit(conn, case_id, row.upload_id, row.evidence_version)
    decision_id = int(conn.execute(_INSERT_DECISION, {
        "case_id": case_id, "action": action.value, "final": action in FINAL, "reason": reason,
        "reviewer": reviewer.username, "queue": row.queue, "decided_at": now, "evidence_version": row.evidence_version,
        "appeal_id": appeal.id if appeal is not None else None}).scalar_one())
    details = decision_details(action, reason, decision_id, row.evidence_version)
    if appeal is not None and action in FINAL:
        outcome = "upheld" if action in UPHELD else "overturned"
        conn.execute(update(appeals).where(appeals.c.id == appeal.id)
                     .values(status=outcome, closed_at=now, closing_decision_id=decision_id))
        conn.execute(update(cases).where(c.id == case_id).values(queue=appeal.original_queue))
        details |= {"appeal_id": appeal.id, "appeal_status": outcome}
    record = DecisionRecord(decision_id, case_id, action, reason, reviewer.username, now, row.evidence_version,
                            appeal.id if appeal is not None else None)
    return record, details


def _may_appeal(filer: User, upload_distributor: str | None) -> None:
    if filer.role is Role.ADMIN:
        return
    if filer.role is Role.DISTRIBUTOR and filer.distributor_id and upload_distributor == filer.distributor_id:
        return
    raise NotAllowedError("an appeal is filed by the upload's distributor (or an admin)")


def file_appeal(conn: Connection, filer: User, upload_id: str, reason: str,
                now: dt.datetime) -> tuple[AppealRecord, dict[str, Any]]:
    """Reopen a finally decided case in the appeals queue, for a lead who did not decide it."""
    row = conn.execute(select(cases).where(c.upload_id == upload_id).with_for_update()).first()
    distributor = conn.execute(select(uploads.c.distributor_id).where(uploads.c.upload_id == upload_id)).scalar()
    _may_appeal(filer, distributor)
    if row is None:
        raise NotFoundError(f"no case for upload {upload_id!r}")
    if _open_appeal(conn, row.id) is not None:
        raise ConflictError(f"case {row.id} already has an open appeal")
    if row.status != "decided" or row.resolution is None:
        raise InvalidDecisionError("only a case with a final decision can be appealed")
    last = conn.execute(select(decisions.c.id).where(decisions.c.case_id == row.id, decisions.c.final.is_(True))
                        .order_by(decisions.c.id.desc()).limit(1)).scalar_one()
    reviewers = sorted(set(conn.execute(select(decisions.c.reviewer).where(decisions.c.case_id == row.id)).scalars()))
    owner = distributor or filer.distributor_id or ""
    appeal_id = int(conn.execute(insert(appeals).values(
        case_id=row.id, decision_id=last, distributor_id=owner, filed_by=filer.username, reason=reason,
        original_queue=row.queue, filed_at=now, status="open").returning(appeals.c.id)).scalar_one())
    conn.execute(update(cases).where(c.id == row.id).values(
        queue=APPEALS, status="open", min_role=Role.LEAD.value, excluded_reviewers=reviewers, claimed_by=None,
        lease_token=None, lease_until=None, updated_at=now))
    record = AppealRecord(appeal_id, row.id, last, owner, filer.username, reason, now, "open")
    details = {"upload_id": upload_id, "appeal_id": appeal_id, "decision_id": last, "distributor_id": owner,
               "original_queue": row.queue, "reason": reason, "excluded_reviewers": reviewers}
    return record, details
