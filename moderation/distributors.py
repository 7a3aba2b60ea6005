"""Distributors of the upload hooks, their signing keys, and the nonces already seen (replay protection).

Keys are HMAC secrets (`trackguard.signing`): verifying a signature needs the
secret itself, so it is stored as issued. The database is therefore the trust
boundary for hook keys: anyone who can read ``distributor_keys`` can sign as any
distributor. There is no envelope encryption (a KMS-wrapped secret) yet.

Admin actions (add, rotate, revoke, activate) run in one write transaction with
their entry in the hash-chained audit log; the details name key ids and expiry
times, never a secret. The request path costs one indexed read (`key`) and one
write transaction (`admit`: the nonce and the rate-limit bucket). That transaction
is not waited onto disk (`write_transaction(durable=False)`): a machine crash can
forget the last nonces only of requests after which nothing durable was written,
and re-playing those changes nothing.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from moderation import audit, ratelimit
from moderation.db import Base, create_schema
from moderation.txn import dispose_review_engine, now, read_engine, write_transaction

TZ = DateTime(timezone=True)
DISTRIBUTOR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KEY_PREFIX = "tgk_"

# Mirrors migration 0005 (registered on Base.metadata so autogenerate sees no difference).
distributors = Table(
    "distributors", Base.metadata,
    Column("distributor_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("rate_per_s", Float, nullable=False),
    Column("burst", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", TZ, nullable=False),
)
distributor_keys = Table(
    "distributor_keys", Base.metadata,
    Column("key_id", String(64), primary_key=True),
    Column("distributor_id", String(128), ForeignKey("distributors.distributor_id"), nullable=False, index=True),
    Column("secret", String(128), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=True),
    Column("revoked_at", TZ, nullable=True),
)
request_nonces = Table(
    "request_nonces", Base.metadata,
    Column("key_id", String(64), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", TZ, nullable=False),
    Index("ix_request_nonces_seen_at", "seen_at"),
)


class NonceReplayed(Exception):
    """The key already signed a request with this nonce."""


def _replayed(key_id: str) -> NonceReplayed:
    return NonceReplayed(f"nonce already used with key {key_id!r}")


@dataclasses.dataclass(frozen=True)
class IssuedKey:
    distributor_id: str
    key_id: str
    secret: str = dataclasses.field(repr=False)  # shown once to the operator; never logged


@dataclasses.dataclass(frozen=True)
class Distributor:
    distributor_id: str
    name: str
    rate_per_s: float
    burst: int
    active: bool


def new_key(distributor_id: str) -> IssuedKey:
    return IssuedKey(distributor_id, KEY_PREFIX + secrets.token_hex(8), secrets.token_urlsafe(32))


def _distributor(row: Any) -> Distributor:
    return Distributor(row.distributor_id, row.name, float(row.rate_per_s), int(row.burst), bool(row.active))


def _usable(at: dt.datetime | BindParameter[dt.datetime]) -> Any:
    """Keys neither revoked nor expired at ``at``."""
    return (distributor_keys.c.revoked_at.is_(None)
            & or_(distributor_keys.c.expires_at.is_(None), distributor_keys.c.expires_at > at))


# The request path's statements, built once: SQLAlchemy memoises a statement object's cache key, so executing
# a prebuilt statement with parameters skips building and hashing it on every request.
_KEY_QUERY = (select(distributors, distributor_keys.c.secret)
              .join(distributor_keys, distributor_keys.c.distributor_id == distributors.c.distributor_id)
              .where(distributor_keys.c.key_id == bindparam("key_id"), _usable(bindparam("at", type_=TZ))))
_NONCE_INSERT = insert(request_nonces)
# `admit` on PostgreSQL: the nonce, then a GCRA token only when the nonce was fresh, in one autocommit statement.
_ADMIT_PG = text("""
WITH nonce AS (
    INSERT INTO request_nonces (key_id, nonce, seen_at) VALUES (:key_id, :nonce, :seen_at)
    ON CONFLICT DO NOTHING RETURNING 1
), token AS (
    UPDATE rate_buckets SET tat = GREATEST(tat, :now) + :interval
    WHERE distributor_id = :distributor_id AND EXISTS (SELECT 1 FROM nonce)
      AND GREATEST(tat, :now) + :interval - :now <= :burst_interval + 1e-9
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM nonce) AS fresh, EXISTS (SELECT 1 FROM token) AS admitted
""")


def _check_limits(rate_per_s: float, burst: int) -> None:
    if not rate_per_s > 0 or burst < 1:
        raise ValueError("rate_per_s must be > 0 and burst >= 1")


class DistributorStore:
    """Distributors and their keys over one database URL (SQLite or PostgreSQL)."""

    def __init__(self, db_url: str, *, clock: Callable[[], dt.datetime] = now) -> None:
        self.url = db_url
        create_schema(db_url)
        self.engine = read_engine(db_url)  # reads; writes go through `moderation.txn.write_transaction`
        self._postgres = self.engine.dialect.name == "postgresql"
        self._clock = clock

    def close(self) -> None:
        dispose_review_engine(self.url)

    def _now(self) -> dt.datetime:
        return audit.as_utc(self._clock())

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with write_transaction(self.url) as conn:  # an admin change is acknowledged only once it is on disk
            yield conn

    # ------------------------------------------------------------ distributors

    def add(self, distributor_id: str, name: str, *, rate_per_s: float = 20.0, burst: int = 40,
            actor: str = "cli") -> IssuedKey:
        """Register a distributor with its first key; the returned secret is not shown again by anything."""
        if not DISTRIBUTOR_ID_RE.match(distributor_id or ""):
            raise ValueError(f"distributor id must match {DISTRIBUTOR_ID_RE.pattern}")
        _check_limits(rate_per_s, burst)
        at, key = self._now(), new_key(distributor_id)
        with self._write() as conn:
            if conn.execute(select(distributors.c.distributor_id)
                            .where(distributors.c.distributor_id == distributor_id)).first() is not None:
                raise ValueError(f"distributor {distributor_id!r} exists")
            conn.execute(insert(distributors).values(distributor_id=distributor_id, name=name,
                                                     rate_per_s=float(rate_per_s), burst=int(burst), active=True,
                                                     created_at=at))
            ratelimit.add_bucket(conn, distributor_id)
            self._insert_key(conn, key, at)
            audit.append(conn, actor, "distributor_add", "distributor", distributor_id,
                         {"name": name, "rate_per_s": float(rate_per_s), "burst": int(burst), "key_id": key.key_id},
                         at=at)
        return key

    def get(self, distributor_id: str) -> Distributor | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(distributors).where(distributors.c.distributor_id == distributor_id)).first()
        return _distributor(row) if row is not None else None

    def list(self) -> builtins.list[Distributor]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(distributors).order_by(distributors.c.distributor_id)).all()
        return [_distributor(r) for r in rows]

    def set_active(self, distributor_id: str, active: bool, *, actor: str = "cli") -> None:
        """Suspend (or restore) a distributor: its keys stay, but requests get 403 distributor_inactive."""
        with self._write() as conn:
            done = conn.execute(update(distributors).where(distributors.c.distributor_id == distributor_id)
                                .values(active=active)).rowcount
            if not done:
                raise LookupError(f"no distributor {distributor_id!r}")
            audit.append(conn, actor, "distributor_activate" if active else "distributor_deactivate",
                         "distributor", distributor_id, {}, at=self._now())

    # -------------------------------------------------------------------- keys

    def _insert_key(self, conn: Connection, key: IssuedKey, at: dt.datetime) -> None:
        conn.execute(insert(distributor_keys).values(key_id=key.key_id, distributor_id=key.distributor_id,
                                                     secret=key.secret, created_at=at))

    def rotate(self, distributor_id: str, *, grace_s: int = 86400, now: dt.datetime | None = None,
               actor: str = "cli") -> IssuedKey:
        """Issue a new key; every older usable key stays valid for ``grace_s`` more seconds, then expires."""
        if grace_s < 0:
            raise ValueError("grace_s must be >= 0")
        at = audit.as_utc(now) if now is not None else self._now()
        until, key = at + dt.timedelta(seconds=grace_s), new_key(distributor_id)
        with self._write() as conn:
            if conn.execute(select(distributors.c.distributor_id)
                            .where(distributors.c.distributor_id == distributor_id)).first() is None:
                raise LookupError(f"no distributor {distributor_id!r}")
            older = (distributor_keys.c.distributor_id == distributor_id) & _usable(at)
            old_ids = sorted(conn.execute(select(distributor_keys.c.key_id).where(older)).scalars())
            # A key already due to expire sooner keeps its earlier expiry.
            conn.execute(update(distributor_keys)
                         .where(older, or_(distributor_keys.c.expires_at.is_(None),
                                           distributor_keys.c.expires_at > until))
                         .values(expires_at=until))
            self._insert_key(conn, key, at)
            audit.append(conn, actor, "distributor_key_rotate", "distributor", distributor_id,
                         {"key_id": key.key_id, "old_key_ids": old_ids, "old_keys_expire_at": audit.iso(until)},
                         at=at)
        return key

    def revoke(self, key_id: str, *, actor: str = "cli") -> None:
        """Refuse the key from now on (idempotent: revoking twice keeps the first time)."""
        at = self._now()
        with self._write() as conn:
            row = conn.execute(select(distributor_keys.c.distributor_id, distributor_keys.c.revoked_at)
                               .where(distributor_keys.c.key_id == key_id)).first()
            if row is None:
                raise LookupError(f"no key {key_id!r}")
            if row.revoked_at is not None:
                return
            conn.execute(update(distributor_keys).where(distributor_keys.c.key_id == key_id).values(revoked_at=at))
            audit.append(conn, actor, "distributor_key_revoke", "distributor", row.distributor_id,
                         {"key_id": key_id}, at=at)

    def key(self, key_id: str, now: dt.datetime) -> tuple[Distributor, str] | None:
        """(owner, secret) when the key exists, is not revoked and not expired at ``now``.

        The owner may be inactive: the caller tells that apart (403, not 401).
        """
        with self.engine.connect() as conn:
            row = conn.execute(_KEY_QUERY, {"key_id": key_id, "at": audit.as_utc(now)}).first()
        return (_distributor(row), str(row.secret)) if row is not None else None

    def keys(self, distributor_id: str) -> builtins.list[dict[str, Any]]:
        """Key ids and their state (no secrets), newest first: for the CLI listing."""
        q = (select(distributor_keys.c.key_id, distributor_keys.c.created_at, distributor_keys.c.expires_at,
                    distributor_keys.c.revoked_at)
             .where(distributor_keys.c.distributor_id == distributor_id)
             .order_by(distributor_keys.c.created_at.desc(), distributor_keys.c.key_id))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [{"key_id": r.key_id, "created_at": audit.as_utc(r.created_at),
                 "expires_at": audit.as_utc(r.expires_at) if r.expires_at else None,
                 "revoked_at": audit.as_utc(r.revoked_at) if r.revoked_at else None} for r in rows]

    def callback_key(self, distributor_id: str) -> IssuedKey:
        """The newest usable key (trackguard signs callbacks with it); LookupError when there is none."""
        q = (select(distributor_keys.c.key_id, distributor_keys.c.secret)
             .where(distributor_keys.c.distributor_id == distributor_id, _usable(self._now()))
             # after a rotation only the new key has no expiry: prefer it even when created the same instant
             .order_by(distributor_keys.c.expires_at.is_(None).desc(), distributor_keys.c.created_at.desc(),
                       distributor_keys.c.key_id)
             .limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise LookupError(f"distributor {distributor_id!r} has no usable key")
        return IssuedKey(distributor_id, str(row.key_id), str(row.secret))

    # ------------------------------------------------------------------ nonces

    def admit(self, key_id: str, nonce: str, owner: Distributor, at: dt.datetime) -> float:
        """Record the nonce, then take a rate-limit token, in one transaction: 0.0 admitted, else the seconds
        to wait (the nonce stays used); `NonceReplayed` when this key already used the nonce (nothing taken).

        Safe across threads, processes and app instances on one database: the nonce's
        primary key decides between two simultaneous requests, and the bucket row is
        locked (`moderation.ratelimit`).
        """
        now = audit.as_utc(at).timestamp()
        if self._postgres:
            if self._admit_in_one_statement(key_id, nonce, owner, at, now):
                return 0.0
            with write_transaction(self.url, durable=False) as conn:  # refused (or no bucket row): the wait
                return ratelimit.take(conn, owner.distributor_id, owner.rate_per_s, owner.burst, now)
        with write_transaction(self.url, durable=False) as conn:
            try:
                conn.execute(_NONCE_INSERT, {"key_id": key_id, "nonce": nonce, "seen_at": audit.as_utc(at)})
            except IntegrityError as exc:
                raise _replayed(key_id) from exc
            return ratelimit.take(conn, owner.distributor_id, owner.rate_per_s, owner.burst, now)

    def _admit_in_one_statement(self, key_id: str, nonce: str, owner: Distributor, at: dt.datetime,
                                now: float) -> bool:
        """PostgreSQL, one round trip (`ratelimit.gcra` as SQL): whether a token was taken; `NonceReplayed`."""
        interval = 1.0 / owner.rate_per_s
        with self.engine.connect() as conn:
            row = conn.execute(_ADMIT_PG, {"key_id": key_id, "nonce": nonce, "seen_at": audit.as_utc(at),
                                           "distributor_id": owner.distributor_id, "now": now,
                                           "interval": interval, "burst_interval": owner.burst * interval}).one()
        if not row.fresh:
            raise _replayed(key_id)
        return bool(row.admitted)

    def purge_nonces(self, before: dt.datetime) -> int:
        """Forget nonces seen before ``before`` (older than the timestamp window, they cannot be replayed)."""
        with write_transaction(self.url, durable=False) as conn:
            return int(conn.execute(delete(request_nonces)
                                    .where(request_nonces.c.seen_at < audit.as_utc(before))).rowcount or 0)
