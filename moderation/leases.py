"""Claims as leases on case rows, in SQLAlchemy Core: the workflow's hot path (one statement per claim).

A claim is a single ``UPDATE cases SET <lease> WHERE id = (SELECT id … ORDER BY
priority DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING …``. On
PostgreSQL, concurrent claimers skip rows another transaction has locked, and a row
changed since the subquery's snapshot is re-checked before it is locked, so two
claims never take the same case. On SQLite the same statement (without the lock
clause, which SQLite lacks) runs inside ``BEGIN IMMEDIATE``, one writer at a time.

Renew and release are conditional updates keyed by (case, reviewer, token): zero
rows changed means the lease is not the caller's any more.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    Update,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from moderation.audit import as_utc
from moderation.cases import Case
from moderation.review import Claim, Role, User

cases = typing_cast(Table, Case.__table__)
c = cases.c
RANK = {Role.DISTRIBUTOR: 0, Role.REVIEWER: 1, Role.LEAD: 2, Role.ADMIN: 3}


def at_least(role: Role, minimum: Role | str) -> bool:
    return RANK[role] >= RANK[Role(minimum)]


def claimable_roles(role: Role) -> list[str]:
    """The ``min_role`` values a user of ``role`` may claim (none for distributors)."""
    if role is Role.DISTRIBUTOR:
        return []
    return [r.value for r in RANK if r is not Role.DISTRIBUTOR and RANK[r] <= RANK[role]]


def not_excluded(username: Any, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        return not_(cast(c.excluded_reviewers, JSONB).contains(func.jsonb_build_array(username)))
    names = func.json_each(c.excluded_reviewers).table_valued("value")
    return ~exists(select(literal(1)).select_from(names).where(names.c.value == username))


# A literal, not a parameter: lets the planners use the partial index on open cases.
OPEN: ColumnElement[str] = literal_column("'open'")


def claim_statement(postgres: bool, by_queue: bool, roles: tuple[str, ...]) -> Update:
    """The claim, built once per (dialect, queue filter, claimable roles).

    A prebuilt statement skips construction and cache keying on every call, and
    the roles are SQL literals (no per-call expansion of an IN list).
    """
    user = cast(bindparam("p_user"), String)
    conds = [c.status == OPEN, or_(c.lease_until.is_(None), c.lease_until < bindparam("p_now")),
             c.min_role.in_([literal_column(f"'{r}'") for r in roles]), not_excluded(user, postgres)]
    if by_queue:
        conds.append(c.queue == bindparam("p_queue"))
    pick = (select(c.id).where(and_(*conds)).order_by(c.priority.desc(), c.created_at, c.id).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return (update(cases).where(c.id == pick)
            .values(claimed_by=bindparam("p_user"), lease_token=bindparam("p_token"),
                    lease_until=bindparam("p_until"), updated_at=bindparam("p_now"))
            .returning(c.id, c.upload_id, c.queue))


CLAIMERS = (Role.REVIEWER, Role.LEAD, Role.ADMIN)
_CLAIM = {(pg, q, role): claim_statement(pg, q, tuple(claimable_roles(role)))
          for pg in (False, True) for q in (False, True) for role in CLAIMERS}


def claim_details(until: dt.datetime) -> dict[str, Any]:
    """The audit details of a claim (`moderation.fastpath` sends the same ones)."""
    return {"lease_until": as_utc(until).isoformat(timespec="microseconds")}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def claim_next(conn: Connection, reviewer: User, queue: str | None, now: dt.datetime, lease_s: float) -> Claim | None:
    """Lease the next claimable case (priority, then age) to ``reviewer``; None when there is none."""
    roles = claimable_roles(reviewer.role)
    if not roles:
        return None
    token, until = new_token(), now + dt.timedelta(seconds=lease_s)
    stmt = _CLAIM[(conn.dialect.name == "postgresql", queue is not None, reviewer.role)]
    row = conn.execute(stmt, {"p_now": now, "p_user": reviewer.username, "p_token": token,
                              "p_until": until, "p_queue": queue}).first()
    if row is None:
        return None
    return Claim(int(row.id), row.upload_id, row.queue, reviewer.username, token, until)


def lock_case(conn: Connection, case_id: int) -> Any:
    """The case row, locked for the rest of the transaction (PostgreSQL; SQLite holds the write lock already)."""
    return conn.execute(select(cases).where(c.id == case_id).with_for_update()).first()


def take_lease(conn: Connection, case_id: int, reviewer: User, token: str, now: dt.datetime,
               lease_s: float) -> Claim:
    until = now + dt.timedelta(seconds=lease_s)
    row = conn.execute(update(cases).where(c.id == case_id)
                       .values(claimed_by=reviewer.username, lease_token=token, lease_until=until, updated_at=now)
                       .returning(c.upload_id, c.queue)).one()
    return Claim(case_id, row.upload_id, row.queue, reviewer.username, token, until)


def holds_live_lease(row: Any, username: str, now: dt.datetime, token: str | None = None) -> bool:
    live = row.lease_until is not None and as_utc(row.lease_until) > now
    return bool(live and row.claimed_by == username and (token is None or row.lease_token == token))


def _mine(case_id: int, username: str, token: str) -> ColumnElement[bool]:
    return and_(c.id == case_id, c.claimed_by == username, c.lease_token == token, c.status == "open")


def renew(conn: Connection, case_id: int, reviewer: User, token: str, now: dt.datetime, lease_s: float) -> Claim | None:
    until = now + dt.timedelta(seconds=lease_s)
    row = conn.execute(update(cases).where(_mine(case_id, reviewer.username, token), c.lease_until > now)
                       .values(lease_until=until, updated_at=now).returning(c.upload_id, c.queue)).first()
    if row is None:
        return None
    return Claim(case_id, row.upload_id, row.queue, reviewer.username, token, until)


def release(conn: Connection, case_id: int, reviewer: User, token: str, now: dt.datetime) -> bool:
    """Clear the caller's lease (also an expired one nobody has taken since); False when it is not theirs."""
    row = conn.execute(update(cases).where(_mine(case_id, reviewer.username, token))
                       .values(claimed_by=None, lease_token=None, lease_until=None, updated_at=now)
                       .returning(c.id)).first()
    return row is not None


def excluded(row: Any) -> list[str]:
    return list(row.excluded_reviewers or [])
