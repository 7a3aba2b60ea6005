"""PostgreSQL: a claim or a plain decision as one statement, audit entry included (one round trip each).

Why: every workflow transaction appends to the audit chain under one advisory
lock, and on a small machine the client's per-statement cost is what bounds
throughput (`trackguard bench queue`). So on PostgreSQL the hot path runs each
operation as a single statement in autocommit mode — no BEGIN/COMMIT round trips:

- claim: ``WITH claimed AS (UPDATE cases … WHERE id = (SELECT … FOR UPDATE SKIP
  LOCKED LIMIT 1) RETURNING …) SELECT … FROM claimed, LATERAL audit_append(…)``;
- decision (uphold, dismiss, label_ai outside the appeals queue): ``WITH decided AS
  (UPDATE cases … WHERE <live lease of this reviewer and token> RETURNING …),
  recorded AS (INSERT INTO decisions SELECT … FROM decided RETURNING …) SELECT …
  FROM recorded, LATERAL audit_append(…)``.

The statement is its own transaction, so the change and its audit entry commit
together. ``audit_append`` (migration 0003) takes the lock and reads the chain head
in its own, later snapshot; the ids only the database knows (case id, decision id,
evidence version) are spliced as integers into canonical JSON that Python encoded,
so `moderation.audit.verify` recomputes the same hash. Anything else (escalate,
credit, appeals, a refused lease) returns None and the caller takes the general,
multi-statement path, which also reports why a lease was refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, DateTime, Select, String, Text, bindparam, cast, func, insert, literal, select, true
from sqlalchemy import update as sql_update

from moderation.audit import as_utc, canonical_head, dumps
from moderation.decisions import decision_details
from moderation.leases import CLAIMERS, c, cases, claim_details, claim_statement, claimable_roles, new_token
from moderation.review import Action, Claim, DecisionRecord, Role, User
from moderation.schema import decisions

FAST_ACTIONS = frozenset({Action.UPHOLD, Action.DISMISS, Action.LABEL_AI})
_ID1, _ID2 = "\x00decision_id", "\x00evidence_version"  # placeholders for the ids the database assigns
TZ = DateTime(timezone=True)


def _audit(subject_id: Any, details: Any) -> Any:
    """``audit_append`` as a lateral table over a CTE row whose integer id is the subject."""
    sid = cast(subject_id, Text)
    return func.audit_append(bindparam("p_now", type_=TZ), cast(bindparam("p_user"), String),
                             cast(bindparam("p_action_name"), String), literal("case", String), sid,
                             cast(bindparam("p_head"), String), literal('"', String) + sid + literal('"', String),
                             details).table_valued("out_seq", "out_prev", "out_hash").lateral()


def _claim(by_queue: bool, role: Role) -> Select[Any]:
    claimed = claim_statement(True, by_queue, tuple(claimable_roles(role))).cte("claimed")
    entry = _audit(claimed.c.id, cast(bindparam("p_details"), String))
    return select(claimed.c.id, claimed.c.upload_id, claimed.c.queue).select_from(claimed).join(entry, true())


def _decide() -> Select[Any]:
    live = (c.id == bindparam("p_case"), c.claimed_by == bindparam("p_user"), c.lease_token == bindparam("p_token"),
            c.lease_until > bindparam("p_now", type_=TZ), c.status == "open", c.queue != "appeals")
    decided = (sql_update(cases).where(*live)
               .values(status="decided", resolution=bindparam("p_action"), decided_at=bindparam("p_now", type_=TZ),
                       claimed_by=None, lease_token=None, lease_until=None, updated_at=bindparam("p_now", type_=TZ))
               .returning(c.id, c.queue, c.evidence_version).cte("decided"))
    rows = select(decided.c.id, bindparam("p_action"), true(), bindparam("p_reason"), bindparam("p_user"),
                  decided.c.queue, bindparam("p_now", type_=TZ), decided.c.evidence_version)
    recorded = (insert(decisions)
                .from_select(["case_id", "action", "final", "reason", "reviewer", "queue", "decided_at",
                              "evidence_version"], rows)
                .returning(decisions.c.id, decisions.c.case_id, decisions.c.evidence_version).cte("recorded"))
    details = (cast(bindparam("p_d0"), String) + cast(recorded.c.id, Text) + cast(bindparam("p_d1"), String)
               + cast(recorded.c.evidence_version, Text) + cast(bindparam("p_d2"), String))
    entry = _audit(recorded.c.case_id, details)
    return select(recorded.c.id, recorded.c.evidence_version).select_from(recorded).join(entry, true())


_CLAIM = {(by_queue, role): _claim(by_queue, role) for by_queue in (False, True) for role in CLAIMERS}
_DECIDE = _decide()


def claim_next(conn: Connection, reviewer: User, queue: str | None, now: dt.datetime, lease_s: float) -> Claim | None:
    """One statement on an autocommit connection; None when nothing is claimable."""
    roles = claimable_roles(reviewer.role)
    if not roles:
        return None
    token, until = new_token(), now + dt.timedelta(seconds=lease_s)
    row = conn.execute(_CLAIM[(queue is not None, reviewer.role)], {
        "p_now": now, "p_user": reviewer.username, "p_token": token, "p_until": until,
        "p_queue": queue, "p_action_name": "claim", "p_head": canonical_head(now, reviewer.username, "claim", "case"),
        "p_details": dumps(claim_details(until))}).first()
    if row is None:
        return None
    return Claim(int(row.id), row.upload_id, row.queue, reviewer.username, token, as_utc(until))


def _detail_pieces(action: Action, reason: str) -> list[str] | None:
    placeholders: Any = (_ID1, _ID2)  # strings standing in for the two integers
    text = dumps(decision_details(action, reason, *placeholders))
    first = text.split(dumps(_ID1))
    if len(first) != 2:
        return None
    second = first[1].split(dumps(_ID2))
    return [first[0], *second] if len(second) == 2 else None


def decide(conn: Connection, reviewer: User, case_id: int, token: str, action: Action, reason: str,
           now: dt.datetime) -> DecisionRecord | None:
    """One statement on an autocommit connection; None when this case needs the general path."""
    pieces = _detail_pieces(action, reason) if action in FAST_ACTIONS else None
    if pieces is None:
        return None
    head = canonical_head(now, reviewer.username, "decide", "case")
    row = conn.execute(_DECIDE, {
        "p_case": case_id, "p_user": reviewer.username, "p_token": token, "p_now": now, "p_action": action.value,
        "p_reason": reason, "p_action_name": "decide", "p_head": head, "p_d0": pieces[0], "p_d1": pieces[1],
        "p_d2": pieces[2]}).first()
    if row is None:
        return None
    return DecisionRecord(int(row.id), case_id, action, reason, reviewer.username, now, int(row.evidence_version), None)
