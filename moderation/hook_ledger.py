"""The upload hooks' ledger (table ``hook_uploads``, migration 0006): the durable record behind the upload API.

One row per upload_id. It is the outbox of the event publishing: a row becomes
``accepted`` and commits *before* its event is published, so a crash between the
two loses nothing — `moderation.outbox.relay_outbox` finds accepted rows without a
verdict and publishes them (again). It also carries each callback's delivery state.

The status a distributor sees is derived, not stored: ``awaiting_audio`` →
``queued`` (accepted, no row in ``verdicts`` yet) → ``scored`` (a verdict exists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    Row,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from moderation.audit import as_utc
from moderation.cases import VerdictRecord
from moderation.db import Base, create_schema
from moderation.txn import execute_durably, read_engine, write_transaction

TZ = DateTime(timezone=True)
AWAITING_AUDIO = "awaiting_audio"
ACCEPTED = "accepted"
_CALLBACKS_PENDING = "callback_url IS NOT NULL AND callback_delivered_at IS NULL"

# Mirrors migration 0006 (on Base.metadata so that autogenerate sees no difference).
hook_uploads = Table(
    "hook_uploads", Base.metadata,
    Column("upload_id", String(128), primary_key=True),
    Column("distributor_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("manifest_hash", String(64), nullable=False),
    Column("object_key", Text, nullable=False),
    Column("audio_uri", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=True),
    Column("content_type", String(128), nullable=True),
    Column("container", String(16), nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("created_at", TZ, nullable=False),
    Column("accepted_at", TZ, nullable=True),
    Column("published_at", TZ, nullable=True),
    Column("publish_count", Integer, nullable=False, server_default="0"),
    Column("callback_delivered_at", TZ, nullable=True),
    Column("callback_attempts", Integer, nullable=False, server_default="0"),
    Column("callback_next_at", TZ, nullable=True),
    Column("callback_last_error", Text, nullable=True),
    Index("ix_hook_uploads_outbox", "status", "published_at"),
    Index("ix_hook_uploads_callbacks", "callback_next_at", postgresql_where=text(_CALLBACKS_PENDING),
          sqlite_where=text(_CALLBACKS_PENDING)),
    Index("ix_hook_uploads_distributor", "distributor_id", "created_at"),
)
h = hook_uploads.c
_verdicts = VerdictRecord.__table__


class UploadConflict(Exception):
    """The upload_id is already registered with another manifest or by another distributor."""


@dataclasses.dataclass(frozen=True)
class Received:
    """The audio of an upload as stored: what `HookLedger.accept` records."""

    size_bytes: int
    content_type: str | None
    container: str


@dataclasses.dataclass(frozen=True)
class HookRecord:
    upload_id: str
    distributor_id: str
    status: str  # stored: awaiting_audio | accepted
    manifest: dict[str, Any]
    manifest_hash: str
    object_key: str
    audio_uri: str
    size_bytes: int | None
    content_type: str | None
    container: str | None
    callback_url: str | None
    created_at: dt.datetime
    accepted_at: dt.datetime | None
    published_at: dt.datetime | None
    publish_count: int
    callback_delivered_at: dt.datetime | None
    callback_attempts: int
    callback_next_at: dt.datetime | None
    callback_last_error: str | None
    scored: bool  # a row exists in `verdicts`

    @property
    def public_status(self) -> str:
        """What a distributor is told: awaiting_audio, queued or scored."""
        if self.status == AWAITING_AUDIO:
            return AWAITING_AUDIO
        return "scored" if self.scored else "queued"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return as_utc(value) if value is not None else None


def _record(row: Row[Any]) -> HookRecord:
    m = row._mapping
    times = {name: _utc(m[name]) for name in ("accepted_at", "published_at", "callback_delivered_at",
                                              "callback_next_at")}
    return HookRecord(
        upload_id=m["upload_id"], distributor_id=m["distributor_id"], status=m["status"], manifest=dict(m["manifest"]),
        manifest_hash=m["manifest_hash"], object_key=m["object_key"], audio_uri=m["audio_uri"],
        size_bytes=m["size_bytes"], content_type=m["content_type"], container=m["container"],
        callback_url=m["callback_url"], created_at=as_utc(m["created_at"]), publish_count=int(m["publish_count"]),
        callback_attempts=int(m["callback_attempts"]), callback_last_error=m["callback_last_error"],
        scored=m["verdict_upload_id"] is not None, **times)


def _with_verdict() -> Select[Any]:
    """Ledger rows with the upload_id of their verdict (NULL: no verdict yet)."""
    return (select(hook_uploads, _verdicts.c.upload_id.label("verdict_upload_id"))
            .select_from(hook_uploads.outerjoin(_verdicts, _verdicts.c.upload_id == h.upload_id)))


_BY_UPLOAD_ID = _with_verdict().where(h.upload_id == bindparam("upload_id"))  # built once (see distributors.py)
_INSERT = insert(hook_uploads)


class HookLedger:
    """Register, accept and look up hook uploads; the outbox and callback queries.

    Writes go through `moderation.txn.write_transaction` and `execute_durably`
    (SQLite: one writer at a time, queued on `SqliteWriterLock` rather than in
    SQLite's sleeping busy handler; PostgreSQL: group-committed), reads through
    `read_engine`.
    """

    def __init__(self, db_url: str) -> None:
        create_schema(db_url)
        self.url = db_url
        self.engine = read_engine(db_url)

    def get(self, upload_id: str) -> HookRecord | None:
        with self.engine.connect() as conn:
            return self._get(conn, upload_id)

    @staticmethod
    def _get(conn: Connection, upload_id: str) -> HookRecord | None:
        row = conn.execute(_BY_UPLOAD_ID, {"upload_id": upload_id}).first()
        return _record(row) if row is not None else None

    def register(self, *, upload_id: str, distributor_id: str, manifest: Mapping[str, Any], manifest_hash: str,
                 object_key: str, audio_uri: str, callback_url: str | None, at: dt.datetime,
                 received: Received | None = None, content_type: str | None = None) -> tuple[HookRecord, bool]:
        """Insert the upload (``accepted`` at once when ``received`` is given); (record, created).

        ``content_type``: of an upload still awaiting its audio, the type its upload URL demands.

        Idempotent by upload_id: the same distributor with the same manifest hash gets
        the existing record and ``created`` False; anything else raises `UploadConflict`.
        """
        values: dict[str, Any] = dict(
            upload_id=upload_id, distributor_id=distributor_id, status=AWAITING_AUDIO, manifest=dict(manifest),
            manifest_hash=manifest_hash, object_key=object_key, audio_uri=audio_uri, callback_url=callback_url,
            created_at=as_utc(at), publish_count=0, callback_attempts=0, content_type=content_type)
        if received is not None:
            values |= _accepted_values(received, at)
        try:
            execute_durably(self.url, _INSERT, values)
        except IntegrityError:  # the upload_id exists (a re-delivery, perhaps a concurrent one)
            record = self.get(upload_id)
            assert record is not None  # rows are never deleted
            self.check_same(record, distributor_id, manifest_hash)
            return record, False
        return _new_record(values), True

    @staticmethod
    def check_same(record: HookRecord, distributor_id: str, manifest_hash: str) -> None:
        """Raise `UploadConflict` unless a re-delivery matches the registered upload."""
        if record.distributor_id != distributor_id or record.manifest_hash != manifest_hash:
            raise UploadConflict(f"upload_id {record.upload_id!r} is already registered with a different manifest")

    def accept(self, upload_id: str, received: Received, at: dt.datetime) -> tuple[HookRecord, bool]:
        """``awaiting_audio`` → ``accepted``; (record, changed). Only one of two concurrent calls changes it."""
        with write_transaction(self.url) as conn:
            done = conn.execute(update(hook_uploads)
                                .where(h.upload_id == upload_id, h.status == AWAITING_AUDIO)
                                .values(**_accepted_values(received, at))).rowcount
            record = self._get(conn, upload_id)
        if record is None:
            raise LookupError(f"no hook upload {upload_id!r}")
        return record, bool(done)

    # ------------------------------------------------------------------ outbox

    def outbox_due(self, now: dt.datetime, republish_after_s: float, limit: int = 200) -> list[HookRecord]:
        """Accepted uploads without a verdict, never published or last published ``republish_after_s`` ago."""
        stale = as_utc(now) - dt.timedelta(seconds=republish_after_s)
        q = (_with_verdict()
             .where(h.status == ACCEPTED, _verdicts.c.upload_id.is_(None),
                    or_(h.published_at.is_(None), h.published_at <= stale))
             .order_by(h.published_at.is_(None).desc(), h.accepted_at, h.upload_id)
             .limit(limit))
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def mark_published(self, upload_id: str, at: dt.datetime) -> None:
        # Not waited onto disk: a mark lost in a crash only makes the relay publish again (the pipeline skips scored
        # uploads and keys every write by upload_id).
        with write_transaction(self.url, durable=False) as conn:
            conn.execute(update(hook_uploads).where(h.upload_id == upload_id)
                         .values(published_at=as_utc(at), publish_count=h.publish_count + 1))

    # ------------------------------------------------------------------ callbacks

    def callbacks_due(self, now: dt.datetime, max_attempts: int, limit: int = 100) -> list[HookRecord]:
        """Scored uploads with an undelivered callback whose next attempt is due and attempts remain."""
        at = as_utc(now)
        q = (select(hook_uploads, _verdicts.c.upload_id.label("verdict_upload_id"))
             .select_from(hook_uploads.join(_verdicts, _verdicts.c.upload_id == h.upload_id))
             .where(and_(h.callback_url.is_not(None), h.callback_delivered_at.is_(None)),
                    h.status == ACCEPTED, h.callback_attempts < max_attempts,
                    or_(h.callback_next_at.is_(None), h.callback_next_at <= at))
             .order_by(h.callback_next_at, h.upload_id)
             .limit(limit))
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def callback_result(self, upload_id: str, *, at: dt.datetime, delivered: bool, error: str | None = None,
                        next_at: dt.datetime | None = None) -> None:
        """Record one delivery attempt: delivered, or failed with ``error`` and retried at ``next_at`` (None: never)."""
        values: dict[str, Any] = {"callback_attempts": h.callback_attempts + 1,
                                  "callback_last_error": None if delivered else (error or "failed")[:2000],
                                  "callback_next_at": None if delivered else _utc(next_at)}
        if delivered:
            values["callback_delivered_at"] = as_utc(at)
        with write_transaction(self.url) as conn:
            conn.execute(update(hook_uploads).where(h.upload_id == upload_id).values(**values))


def _new_record(values: Mapping[str, Any]) -> HookRecord:
    """The record of a row just inserted from ``values`` (no read back; a new upload has no verdict yet)."""
    unset = {name: values.get(name) for name in ("size_bytes", "content_type", "container", "accepted_at")}
    return HookRecord(
        upload_id=values["upload_id"], distributor_id=values["distributor_id"], status=values["status"],
        manifest=dict(values["manifest"]), manifest_hash=values["manifest_hash"], object_key=values["object_key"],
        audio_uri=values["audio_uri"], callback_url=values["callback_url"], created_at=values["created_at"],
        published_at=None, publish_count=0, callback_delivered_at=None, callback_attempts=0, callback_next_at=None,
        callback_last_error=None, scored=False, **unset)


def _accepted_values(received: Received, at: dt.datetime) -> dict[str, Any]:
    return {"status": ACCEPTED, "accepted_at": as_utc(at), "size_bytes": int(received.size_bytes),
            "content_type": received.content_type, "container": received.container}
