"""Append-only, hash-chained audit log: who did what to which case, artist or user, and when.

Each entry's hash is ``sha256(prev_hash || canonical JSON of (seq, at, actor,
action, subject_type, subject_id, details))`` with ``at`` as ISO-8601 UTC with
microseconds; the first entry's ``prev_hash`` is 64 zeros. Editing any field of a
row, deleting a row from the middle, or swapping rows breaks the chain at that
row, which `verify` reports (deleting the *newest* rows cannot be seen from the
chain alone; anchor the latest hash elsewhere for that).

The chain must never fork, so appends are serialised:
- PostgreSQL: `append` calls the ``audit_append`` function (migration 0003) in the
  caller's transaction. It takes ``pg_advisory_xact_lock(AUDIT_LOCK)``, then reads
  the last entry in a *new* statement (in READ COMMITTED each statement gets a
  fresh snapshot, so the read sees every append committed while it waited),
  hashes and inserts. The entry commits atomically with the business change it
  records, and the lock is held until that commit. Callers append last (after
  their row locks), so the lock is held for one round trip plus the commit.
- SQLite: callers run in a ``BEGIN IMMEDIATE`` transaction (`moderation.txn`),
  which already excludes every other writer.
``seq`` is the primary key, so even a caller that broke these rules would get a
unique-key error rather than a fork.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, text

from moderation.review import AuditEntry
from moderation.schema import audit_log
from moderation.txn import is_postgres, now, transient_engine, writer

GENESIS = "0" * 64
AUDIT_LOCK = 7_311_046_002  # pg advisory lock key for appends
_LAST = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)


@dataclasses.dataclass(frozen=True)
class AuditVerification:
    ok: bool
    entries: int  # rows checked
    first_bad_seq: int | None  # the first row whose link or content does not match
    problem: str | None


def as_utc(at: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: every stored time is UTC."""
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def iso(at: dt.datetime) -> str:
    return as_utc(at).isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(seq: int, at: dt.datetime, actor: str, action: str, subject_type: str, subject_id: str,
              details: Mapping[str, Any]) -> str:
    """The hashed text: compact, sorted keys, ASCII-only JSON of the entry (so any database encoding agrees)."""
    return dumps([seq, iso(at), actor, action, subject_type, subject_id, details])


def canonical_head(at: dt.datetime, actor: str, action: str, subject_type: str) -> str:
    """`canonical` between ``[seq`` and the subject id: ``,"at","actor","action","subject_type",``.

    PostgreSQL's ``audit_append`` (migration 0003) assembles the hashed text as
    ``'[' || seq || head || subject JSON || ',' || details JSON || ']'``, which is
    `canonical` exactly.
    """
    return "," + dumps([iso(at), actor, action, subject_type])[1:-1] + ","


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, subject_type: str,
               subject_id: str, details: Mapping[str, Any]) -> str:
    body = canonical(seq, at, actor, action, subject_type, subject_id, details)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _plain(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-native copy (what the JSON column will hand back), so the hash verifies after a round trip."""
    out: dict[str, Any] = json.loads(json.dumps(dict(details or {}), sort_keys=True, default=str, allow_nan=False))
    return out


_APPEND_PG = text("SELECT out_seq, out_prev, out_hash FROM audit_append(:at, :actor, :action, :subject_type, "
                  ":subject_id, :head, :subject_json, :details)")


def append(conn: Connection, actor: str, action: str, subject_type: str, subject_id: str | int,
           details: Mapping[str, Any] | None = None, at: dt.datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's (write) transaction; call it after the change it records."""
    plain = _plain(details)
    stamp = as_utc(at or now())
    sid = str(subject_id)
    if is_postgres(conn):  # one round trip: lock, read head, hash, insert (migration 0003)
        seq, prev, digest = conn.execute(_APPEND_PG, {
            "at": stamp, "actor": actor, "action": action, "subject_type": subject_type, "subject_id": sid,
            "head": canonical_head(stamp, actor, action, subject_type), "subject_json": dumps(sid),
            "details": dumps(plain)}).one()
        return AuditEntry(int(seq), stamp, actor, action, subject_type, sid, plain, prev, digest)
    last = conn.execute(_LAST).first()  # SQLite: the caller's BEGIN IMMEDIATE already excludes other writers
    seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    digest = entry_hash(prev, seq, stamp, actor, action, subject_type, sid, plain)
    conn.execute(insert(audit_log).values(seq=seq, at=stamp, actor=actor, action=action, subject_type=subject_type,
                                          subject_id=sid, details=plain, prev_hash=prev, hash=digest))
    return AuditEntry(seq, stamp, actor, action, subject_type, sid, plain, prev, digest)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=row.seq, at=as_utc(row.at), actor=row.actor, action=row.action,
                      subject_type=row.subject_type, subject_id=row.subject_id, details=dict(row.details or {}),
                      prev_hash=row.prev_hash, hash=row.hash)


def entries(conn: Connection, *, subject_type: str | None = None, subject_id: str | None = None,
            limit: int = 200, newest_first: bool = True) -> list[AuditEntry]:
    q = select(audit_log)
    if subject_type is not None:
        q = q.where(audit_log.c.subject_type == subject_type)
    if subject_id is not None:
        q = q.where(audit_log.c.subject_id == str(subject_id))
    q = q.order_by(audit_log.c.seq.desc() if newest_first else audit_log.c.seq).limit(limit)
    return [_entry(r) for r in conn.execute(q)]


def verify_entries(rows: Iterable[AuditEntry]) -> AuditVerification:
    """Walk the chain in seq order: seq must count up from 1, each link must match, each hash must recompute."""
    prev, expected, n = GENESIS, 1, 0
    for e in rows:
        n += 1
        if e.seq != expected:
            return AuditVerification(False, n, e.seq, f"seq {e.seq} follows {expected - 1}: rows missing or reordered")
        if e.prev_hash != prev:
            return AuditVerification(False, n, e.seq, f"seq {e.seq}: prev_hash does not match the previous entry")
        if entry_hash(prev, e.seq, e.at, e.actor, e.action, e.subject_type, e.subject_id, e.details) != e.hash:
            return AuditVerification(False, n, e.seq, f"seq {e.seq}: content does not match its hash (edited)")
        prev, expected = e.hash, expected + 1
    return AuditVerification(True, n, None, None)


def verify_conn(conn: Connection) -> AuditVerification:
    rows = conn.execution_options(yield_per=1000).execute(select(audit_log).order_by(audit_log.c.seq))
    return verify_entries(_entry(r) for r in rows)


def verify(url: str) -> AuditVerification:
    """Check the whole chain of the database at ``url``."""
    from moderation.db import create_schema

    create_schema(url)
    with transient_engine(url) as engine, engine.connect() as conn:
        return verify_conn(conn)


MAX_NUMBERS = 8  # a list of more numbers than this looks like a vector


def _check_not_biometric(value: Any, key: str = "details") -> None:
    """Registry entries outlive an opt-out: refuse binary data, vectors and match scores (counts are fine)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"audit details may not hold binary data ({key!r})")
    if isinstance(value, float) and ("similarity" in key or "score" in key):
        raise ValueError(f"audit details may not hold a voice-match score ({key!r})")
    if isinstance(value, list | tuple):
        if sum(isinstance(v, int | float) for v in value) > MAX_NUMBERS:
            raise ValueError(f"audit details may not hold a vector ({key!r})")
        for v in value:
            _check_not_biometric(v, key)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_not_biometric(v, str(k).lower())


def record_registry_change(url: str, actor: str, action: str, artist_id: str,
                           details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Audit a voiceprint-registry change (enrol, policy, opt-out) in the moderation log; no biometric data.

    The registry (`models.voiceprints`) may not import moderation, so this runs
    right after the registry's own transaction rather than inside it.
    """
    from moderation.db import create_schema

    plain = dict(details or {})
    _check_not_biometric(plain)
    name = action if action.startswith("registry_") else f"registry_{action}"
    create_schema(url)
    with transient_engine(url) as engine, writer(engine).begin() as conn:
        return append(conn, actor, name, "artist", artist_id, plain)
