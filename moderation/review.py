"""The reviewer workflow as one narrow interface: queues, claims with leases, decisions, appeals, audit.

`ReviewService` is the only thing the web app, the JSON API and the CLI call; no
ORM object leaks out of it (everything returned is a frozen dataclass below).
SQLite by default, PostgreSQL in production; both are tested for real.

Queue semantics
- One case per upload (`cases.upload_id` unique; `moderation.cases.CaseStore` files
  them). A reviewer claims the next *claimable* case of a queue by priority (higher
  first) then age (older first). Claimable: status ``open``, no live lease, the
  reviewer's role is at least the case's ``min_role``, and the reviewer is not in
  the case's ``excluded_reviewers`` (an appeal must go to someone else).
- A claim holds a lease (`lease_s`, default 300 s) identified by a random token.
  An expired lease returns the case to the queue; a decision must present the
  token of a live lease held by the same reviewer, else `StaleLeaseError`.
- PostgreSQL claims with ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED
  LIMIT 1)``; SQLite with the same statement inside ``BEGIN IMMEDIATE`` (one writer
  at a time, so no two claims can see the same free row). On PostgreSQL a claim and
  a plain decision are each one statement with their audit entry
  (`moderation.fastpath`); commits are asynchronous and a decision returns only
  after an explicit WAL flush (`moderation.txn`), so it is durable when acknowledged.

Decisions (`Action`) each need a non-empty reason: ``uphold`` (block / take down),
``dismiss`` (false positive), ``label_ai`` (AI disclosure added), ``credit``
(licensed use: an attribution-ledger entry for the matched artist), ``escalate``
(back to the queue for a ``lead``). Every decision, claim, release, appeal, view of
biometric evidence and registry change appends to the hash-chained audit log
(`moderation.audit`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import TYPE_CHECKING, Any


class Role(enum.StrEnum):
    """Ordered: a higher role may do everything a lower one may (distributors are apart)."""

    DISTRIBUTOR = "distributor"  # API only: reads its own uploads' verdicts, files appeals
    REVIEWER = "reviewer"
    LEAD = "lead"
    ADMIN = "admin"


class Action(enum.StrEnum):
    UPHOLD = "uphold"
    DISMISS = "dismiss"
    LABEL_AI = "label_ai"
    CREDIT = "credit"
    ESCALATE = "escalate"


class ReviewError(Exception):
    """Base of the workflow's refusals; ``code`` is stable (the API returns it)."""

    code = "review_error"


class StaleLeaseError(ReviewError):
    code = "stale_lease"  # lease expired, released, or held by someone else


class NotAllowedError(ReviewError):
    code = "not_allowed"  # role too low, own decision under appeal, wrong distributor


class NotFoundError(ReviewError):
    code = "not_found"


class InvalidDecisionError(ReviewError):
    code = "invalid_decision"  # empty reason, credit without a matched artist, case not open


class ConflictError(ReviewError):
    code = "conflict"  # username taken, an appeal already open for the case


class InvalidUserError(ReviewError, ValueError):
    code = "invalid_user"  # username or password outside the rules, distributor id missing


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    distributor_id: str | None = None  # set for Role.DISTRIBUTOR only
    session_generation: int = 0  # web sessions carry it; signing out increments it, ending them all


@dataclasses.dataclass(frozen=True)
class Claim:
    case_id: int
    upload_id: str
    queue: str
    reviewer: str
    lease_token: str
    lease_until: dt.datetime


@dataclasses.dataclass(frozen=True)
class QueueStats:
    queue: str
    open: int  # status open (claimed or not)
    claimed: int  # open with a live lease
    oldest_age_s: float | None  # age of the oldest open case
    sla_s: float
    sla_breaches: int  # open cases older than sla_s


@dataclasses.dataclass(frozen=True)
class CaseSummary:
    id: int
    upload_id: str
    queue: str
    priority: int
    status: str  # open | decided
    min_role: Role
    created_at: dt.datetime
    age_s: float
    claimed_by: str | None  # only while the lease is live
    lease_until: dt.datetime | None
    evidence_version: int
    resolution: Action | None  # the last final decision


@dataclasses.dataclass(frozen=True)
class DecisionRecord:
    id: int
    case_id: int
    action: Action
    reason: str
    reviewer: str
    decided_at: dt.datetime
    evidence_version: int
    appeal_id: int | None


@dataclasses.dataclass(frozen=True)
class AppealRecord:
    id: int
    case_id: int
    decision_id: int
    distributor_id: str
    filed_by: str
    reason: str
    filed_at: dt.datetime
    status: str  # open | upheld | overturned


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str  # claim | release | decide | appeal | view_biometric | play_reference | registry_* | user_*
    subject_type: str  # case | artist | user | system
    subject_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclasses.dataclass(frozen=True)
class CaseDetail:
    summary: CaseSummary
    verdict: dict[str, Any]  # the latest evidence version (Verdict.to_row shape)
    upload: dict[str, Any] | None  # manifest metadata from the `uploads` table, None if the sweep did not record it
    evidence_versions: list[dict[str, Any]]  # oldest first, each with "_version"
    decisions: list[DecisionRecord]
    appeals: list[AppealRecord]
    history: list[AuditEntry]  # audit entries whose subject is this case, oldest first


# The implementation lives in `moderation.service` (which imports this module), so it
# is re-exported lazily: `from moderation.review import ReviewService` works whichever
# module is imported first.
_LAZY = {"ReviewService": "moderation.service", "DEFAULT_SLA_S": "moderation.service",
         "AuditVerification": "moderation.audit"}

if TYPE_CHECKING:
    from moderation.audit import AuditVerification
    from moderation.service import DEFAULT_SLA_S, ReviewService
else:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            import importlib

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_SLA_S", "Action", "AppealRecord", "AuditEntry", "AuditVerification", "CaseDetail", "CaseSummary",
           "Claim", "ConflictError", "DecisionRecord", "InvalidDecisionError", "InvalidUserError", "NotAllowedError",
           "NotFoundError", "QueueStats", "ReviewError", "ReviewService", "Role", "StaleLeaseError", "User"]
