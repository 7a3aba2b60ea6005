"""`ReviewService`: the one interface of the reviewer workflow (semantics in `moderation.review`).

Each public method is one transaction. Methods that change something run in a
write transaction (`moderation.txn.writer`: ``BEGIN IMMEDIATE`` on SQLite) and
append their audit entry (`moderation.audit.append`) as its last step, so the
entry commits with the change or not at all. Work that is slow and needs no lock
(password hashing) happens before the transaction opens.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from moderation import audit, decisions, fastpath, leases, users, views
from moderation.audit import AuditVerification
from moderation.db import create_schema
from moderation.review import (
    Action,
    AppealRecord,
    AuditEntry,
    CaseDetail,
    CaseSummary,
    Claim,
    DecisionRecord,
    InvalidDecisionError,
    NotAllowedError,
    NotFoundError,
    QueueStats,
    Role,
    StaleLeaseError,
    User,
)
from moderation.schema import uploads
from moderation.txn import dispose_review_engine, flush_wal, now, review_engine, write_transaction

DEFAULT_SLA_S = views.DEFAULT_SLA_S
TOKEN_TOUCH_S = 60.0  # last_used_at of an API token is refreshed at most once a minute (a write per request is waste)


class ReviewService:
    """Queues, claims, decisions, appeals, users and the audit log over one database URL."""

    def __init__(self, url: str, *, lease_s: float = 300.0, sla_s: Mapping[str, float] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        create_schema(url)
        self.url = url
        self.lease_s = float(lease_s)
        self.sla_s = {**DEFAULT_SLA_S, **(sla_s or {})}
        self._clock = clock or now
        self.engine = review_engine(url)
        self._postgres = self.engine.dialect.name == "postgresql"
        self._autocommit = review_engine(url, autocommit=True)  # the one-statement hot path (PostgreSQL)

    def close(self) -> None:
        """Close this URL's workflow connection pool (shared by every service on the URL in this process)."""
        dispose_review_engine(self.url)

    def now(self) -> dt.datetime:
        return audit.as_utc(self._clock())

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[Connection]:
        """One write transaction; ``durable``: return only once it is on disk (`moderation.txn.flush_wal`)."""
        with write_transaction(self.url, durable=durable) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------ users

    def create_user(self, username: str, password: str, role: Role, *, distributor_id: str | None = None,
                    actor: str = "system") -> User:
        users.validate_username(username)
        role = Role(role)
        users.check_role(role, distributor_id)
        digest = users.hash_password(password)
        with self._write() as conn:
            user = users.insert_user(conn, username, digest, role, distributor_id, self.now())
            audit.append(conn, actor, "user_create", "user", username,
                         {"role": role.value, "distributor_id": distributor_id})
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        with self._read() as conn:
            row = users.user_row(conn, username) if isinstance(username, str) else None
        if not users.check_password(row.password_hash if row is not None else None, password or ""):
            return None
        if not row.active:
            return None
        if users.needs_rehash(row.password_hash):
            digest = users.HASHER.hash(password)
            with self._write() as conn:
                users.store_hash(conn, row.id, digest)
        return users.to_user(row)

    def set_password(self, username: str, password: str, *, actor: str) -> None:
        digest = users.hash_password(password)
        with self._write() as conn:
            user = self._user_named(conn, username)
            users.store_hash(conn, user.id, digest)
            users.end_sessions(conn, user.id)  # a new password signs the old sessions out
            audit.append(conn, actor, "user_password", "user", username, {})

    def end_sessions(self, username: str, *, actor: str) -> None:
        """Sign out everywhere: every web session issued before now stops working (API tokens are separate)."""
        with self._write() as conn:
            user = self._user_named(conn, username)
            users.end_sessions(conn, user.id)
            audit.append(conn, actor, "user_sign_out", "user", username, {})

    def deactivate_user(self, username: str, *, actor: str) -> None:
        """Login and API tokens stop working; the account's history stays."""
        with self._write() as conn:
            user = self._user_named(conn, username)
            users.set_active(conn, user.id, False)
            audit.append(conn, actor, "user_deactivate", "user", username, {})

    def get_user(self, user_id: int) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(users.users).where(users.users.c.id == user_id,
                                                         users.users.c.active.is_(True))).first()
        return users.to_user(row) if row is not None else None

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(select(users.users).where(users.users.c.active.is_(True))
                                .order_by(users.users.c.username))
            return [users.to_user(r) for r in rows]

    def issue_api_token(self, username: str, *, actor: str) -> str:
        """A new API token for the user; shown only here (the database keeps its sha256)."""
        token, digest = users.new_token()
        with self._write() as conn:
            user = self._user_named(conn, username)
            token_id = users.insert_token(conn, user.id, digest, self.now())
            audit.append(conn, actor, "user_token", "user", username, {"token_id": token_id})
        return token

    def user_for_token(self, token: str) -> User | None:
        if not token or not isinstance(token, str):
            return None
        with self._read() as conn:
            row = users.token_owner(conn, token)
        if row is None:
            return None
        stamp = self.now()
        if row.last_used_at is None or (stamp - audit.as_utc(row.last_used_at)).total_seconds() > TOKEN_TOUCH_S:
            with self._write(durable=False) as conn:
                users.touch_token(conn, row.token_id, stamp)
        return users.to_user(row)

    @staticmethod
    def _user_named(conn: Connection, username: str) -> User:
        row = users.user_row(conn, username)
        if row is None:
            raise NotFoundError(f"no user {username!r}")
        return users.to_user(row)

    # ------------------------------------------------------------------ queues and cases

    def queue_stats(self) -> list[QueueStats]:
        with self._read() as conn:
            return views.queue_stats(conn, self.now(), self.sla_s)

    def list_cases(self, queue: str | None = None, *, status: str = "open", limit: int = 100,
                   offset: int = 0) -> list[CaseSummary]:
        at = self.now()
        with self._read() as conn:
            rows = views.case_rows(conn, queue=queue, status=status, limit=limit, offset=offset)
        return [views.summary(r, at) for r in rows]

    def claim_next(self, reviewer: User, queue: str | None = None) -> Claim | None:
        if reviewer.role is Role.DISTRIBUTOR:
            return None
        at = self.now()
        if self._postgres:
            with self._autocommit.connect() as conn:
                return fastpath.claim_next(conn, reviewer, queue, at, self.lease_s)
        with self._write(durable=False) as conn:
            claim = leases.claim_next(conn, reviewer, queue, at, self.lease_s)
            if claim is not None:
                audit.append(conn, reviewer.username, "claim", "case", claim.case_id,
                             leases.claim_details(claim.lease_until), at=at)
        return claim

    def claim_case(self, reviewer: User, case_id: int) -> Claim:
        """Claim one case by id; the same reviewer claiming again keeps their token and gets a fresh lease."""
        at = self.now()
        with self._write(durable=False) as conn:
            row = leases.lock_case(conn, case_id)
            if row is None:
                raise NotFoundError(f"case {case_id} does not exist")
            if row.status != "open":
                raise InvalidDecisionError(f"case {case_id} is not open")
            if row.min_role not in leases.claimable_roles(reviewer.role) or reviewer.username in leases.excluded(row):
                raise NotAllowedError(f"case {case_id} needs role {row.min_role} and a reviewer not excluded from it")
            if leases.holds_live_lease(row, reviewer.username, at):
                return leases.take_lease(conn, case_id, reviewer, row.lease_token, at, self.lease_s)
            if row.lease_until is not None and audit.as_utc(row.lease_until) > at:
                raise StaleLeaseError(f"case {case_id} is claimed by {row.claimed_by}")
            claim = leases.take_lease(conn, case_id, reviewer, leases.new_token(), at, self.lease_s)
            audit.append(conn, reviewer.username, "claim", "case", case_id, leases.claim_details(claim.lease_until),
                         at=at)
        return claim

    def renew(self, reviewer: User, case_id: int, lease_token: str) -> Claim:
        with self._write(durable=False) as conn:
            claim = leases.renew(conn, case_id, reviewer, lease_token, self.now(), self.lease_s)
        if claim is None:
            raise StaleLeaseError(f"case {case_id}: no live lease of yours with that token")
        return claim

    def release(self, reviewer: User, case_id: int, lease_token: str) -> None:
        with self._write(durable=False) as conn:
            if not leases.release(conn, case_id, reviewer, lease_token, self.now()):
                raise StaleLeaseError(f"case {case_id}: no lease of yours with that token")
            audit.append(conn, reviewer.username, "release", "case", case_id, {})

    def decide(self, reviewer: User, case_id: int, lease_token: str, action: Action, reason: str) -> DecisionRecord:
        action = Action(action)
        text = decisions.check_reason(reason)
        at = self.now()
        if self._postgres:
            with self._autocommit.connect() as conn:
                fast = fastpath.decide(conn, reviewer, case_id, lease_token, action, text, at)
                if fast is not None:
                    flush_wal(conn)
                    return fast
        with self._write() as conn:
            record, details = decisions.decide(conn, reviewer, case_id, lease_token, action, text, at)
            audit.append(conn, reviewer.username, "decide", "case", case_id, details, at=at)
        return record

    def case_detail(self, case_id: int, viewer: User) -> CaseDetail:
        """Everything about a case; looking at a voice match is itself audited (``view_biometric``).

        The data is returned only once that audit entry has committed.
        """
        if not leases.at_least(viewer.role, Role.REVIEWER):
            raise NotAllowedError("case details are for reviewers")
        at = self.now()
        with self._read() as conn:
            rows = views.case_rows(conn, status="all", case_id=case_id, limit=1)
            if not rows:
                raise NotFoundError(f"case {case_id} does not exist")
            row, versions = rows[0], views.evidence_versions(conn, case_id)
            verdict = {k: v for k, v in versions[-1].items() if k != "_version"} if versions else {}
            detail = CaseDetail(summary=views.summary(row, at), verdict=verdict,
                                upload=views.upload_row(conn, row.upload_id), evidence_versions=versions,
                                decisions=views.decision_records(conn, case_id),
                                appeals=views.appeal_records(conn, case_id), history=views.history(conn, case_id))
        if verdict.get("matched_artist_id") or verdict.get("voice_similarity") is not None:
            with self._write() as conn:
                entry = audit.append(conn, viewer.username, "view_biometric", "case", case_id,
                                     {"upload_id": row.upload_id, "matched_artist_id": verdict.get("matched_artist_id"),
                                      "evidence_version": row.evidence_version})
            detail = dataclasses.replace(detail, history=[*detail.history, entry])
        return detail

    def upload_info(self, upload_id: str, viewer: User) -> dict[str, Any] | None:
        """The manifest metadata of any swept upload (e.g. the original of a duplicate that was never flagged).

        Not biometric, so not audited; reviewers and above only.
        """
        if not leases.at_least(viewer.role, Role.REVIEWER):
            raise NotAllowedError("upload metadata is for reviewers")
        with self._read() as conn:
            return views.upload_row(conn, upload_id)

    def case_id_for_upload(self, upload_id: str) -> int | None:
        with self._read() as conn:
            found = conn.execute(select(leases.c.id).where(leases.c.upload_id == upload_id)).scalar()
        return int(found) if found is not None else None

    # ------------------------------------------------------------------ distributors

    def verdict_status(self, upload_id: str, viewer: User) -> dict[str, Any]:
        """What a distributor may know about one upload: verdict, case status, final decision, appeal.

        Reviewer names are left out; a distributor also gets no voice-match score
        (``voice_similarity`` is None): it is biometric data of an enrolled artist.
        """
        with self._read() as conn:
            verdict = views.verdict_row(conn, upload_id)
            owner = conn.execute(select(uploads.c.distributor_id).where(uploads.c.upload_id == upload_id)).first()
            if verdict is None and owner is None:
                raise NotFoundError(f"unknown upload {upload_id!r}")
            if viewer.role is Role.DISTRIBUTOR and (owner is None or owner[0] != viewer.distributor_id):
                raise NotAllowedError(f"upload {upload_id!r} is not one of distributor {viewer.distributor_id}'s")
            case_id = conn.execute(select(leases.c.id).where(leases.c.upload_id == upload_id)).scalar()
            return _status(conn, upload_id, verdict, case_id, viewer)

    def file_appeal(self, filer: User, upload_id: str, reason: str) -> AppealRecord:
        text = decisions.check_reason(reason)
        with self._write() as conn:
            record, details = decisions.file_appeal(conn, filer, upload_id, text, self.now())
            audit.append(conn, filer.username, "appeal", "case", record.case_id, details)
        return record

    # ------------------------------------------------------------------ reference recordings (biometric)

    def reference_recordings(self, artist_id: str, viewer: User) -> list[str]:
        """The artist's enrolment recordings (paths/URIs); lead and admin only, and the access is audited."""
        _need_lead(viewer)
        sources = _sources(self.url, artist_id)
        with self._write() as conn:
            audit.append(conn, viewer.username, "list_references", "artist", artist_id, {"n_sources": len(sources)})
        return sources

    def record_reference_play(self, viewer: User, artist_id: str, source: str) -> None:
        """Audit one playback; refuses a source that is not one of the artist's enrolment recordings."""
        _need_lead(viewer)
        sources = _sources(self.url, artist_id)
        if source not in sources:
            raise NotFoundError(f"{source!r} is not an enrolment recording of {artist_id}")
        with self._write() as conn:
            audit.append(conn, viewer.username, "play_reference", "artist", artist_id,
                         {"source_index": sources.index(source)})

    # ------------------------------------------------------------------ audit and labels

    def audit_log(self, *, subject_type: str | None = None, subject_id: str | None = None,
                  limit: int = 200) -> list[AuditEntry]:
        """Newest first."""
        with self._read() as conn:
            return audit.entries(conn, subject_type=subject_type, subject_id=subject_id, limit=limit)

    def verify_audit(self) -> AuditVerification:
        with self._read() as conn:
            return audit.verify_conn(conn)

    def export_labels(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            return views.export_labels(conn)


def _need_lead(viewer: User) -> None:
    if not leases.at_least(viewer.role, Role.LEAD):
        raise NotAllowedError("reference recordings are for leads and admins")


def _sources(url: str, artist_id: str) -> list[str]:
    from models.voiceprints import VoiceprintStore

    try:
        return list(VoiceprintStore(url).artist(artist_id)["sources"])
    except KeyError as exc:
        raise NotFoundError(f"artist {artist_id!r} is not enrolled") from exc


def _status(conn: Connection, upload_id: str, verdict: dict[str, Any] | None, case_id: int | None,
            viewer: User) -> dict[str, Any]:
    if verdict is not None and viewer.role is Role.DISTRIBUTOR:
        verdict = {**verdict, "voice_similarity": None}
    out: dict[str, Any] = {"upload_id": upload_id, "verdict": verdict, "case": None, "final_decision": None,
                           "appeal": None}
    if case_id is None:
        return out
    row = views.case_rows(conn, status="all", case_id=case_id, limit=1)[0]
    out["case"] = {"id": row.id, "queue": row.queue, "status": row.status, "evidence_version": row.evidence_version}
    final = [d for d in views.decision_records(conn, case_id) if d.action is not Action.ESCALATE]
    if final:
        d = final[-1]
        out["final_decision"] = {"action": d.action.value, "reason": d.reason, "decided_at": d.decided_at.isoformat(),
                                 "evidence_version": d.evidence_version}
    appeals = views.appeal_records(conn, case_id)
    if appeals:
        a = appeals[-1]
        out["appeal"] = {"id": a.id, "status": a.status, "filed_at": a.filed_at.isoformat(), "reason": a.reason}
    return out
