"""Engines for the review workflow's write transactions, which must be serialised correctly.

Claims, decisions and audit appends read a row and then write based on what they
read. On PostgreSQL row locks (``FOR UPDATE [SKIP LOCKED]``) and an advisory lock
make that safe. SQLite has no row locks: the whole transaction must hold the
database's write lock from its first statement, i.e. begin with ``BEGIN
IMMEDIATE``. pysqlite's own transaction handling cannot do that (it issues a plain
deferred ``BEGIN`` lazily, before the first DML), so the SQLite engine here runs
the driver in autocommit mode and emits ``BEGIN`` itself — the recipe in
SQLAlchemy's pysqlite documentation ("Serializable isolation / Savepoints /
Transactional DDL"). `trackguard.sql.get_engine` is left as it is for the other
stores; this engine is a second pool on the same file (WAL lets them share it).

On PostgreSQL the engine's pool is sized so that every reviewer thread of a busy
process gets a connection without queueing behind the pool.

Durability on PostgreSQL. Every workflow transaction appends to the audit chain
under one advisory lock held until commit, so those commits are serialised. With
a synchronous commit the lock would be held through the WAL flush (≈ 3 ms on the
development VM, i.e. at most ~300 audited transactions/s whatever the number of
reviewers). So this engine's sessions commit with ``synchronous_commit = off``
(the lock is released as soon as the commit record is in the WAL buffers), and a
caller that must not acknowledge before the change is on disk calls `flush_wal`
right after the commit: a one-round-trip transaction that writes a tiny WAL record
and commits synchronously, so it returns only once the WAL up to and including
the caller's commit is flushed. Those flushes run outside the lock, so concurrent
reviewers share fsyncs (group commit). The order of the chain is unaffected: an
async commit is visible to the next lock holder at once, and WAL is flushed in
order, so a crash can only lose a suffix of unflushed transactions (each with its
audit entry), never a link in the middle. Lease changes (claim, renew, release)
skip the flush: losing one in a crash only returns the case to the queue.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, Executable, NullPool, create_engine, event, make_url

from trackguard.sql import _sqlite_pragmas

IMMEDIATE = "sqlite_begin"  # execution option: "IMMEDIATE" makes the SQLite transaction take the write lock up front
PRAGMA_RETRIES = 100
PG_POOL_SIZE = 16
PG_MAX_OVERFLOW = 64

_ENGINES: dict[tuple[str, bool], Engine] = {}
_LOCK = threading.Lock()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_autocommit(dbapi_conn: Any, record: Any) -> None:
    for attempt in range(PRAGMA_RETRIES):
        try:  # WAL, busy_timeout, foreign keys (before any BEGIN: switching to WAL needs no transaction open)
            _sqlite_pragmas(dbapi_conn, record)
            break
        except sqlite3.OperationalError as exc:
            # Switching a *fresh* file to WAL while another connection writes it fails at once ("database is
            # locked", the busy handler is not consulted); once the file is in WAL mode the pragma is a no-op.
            if "locked" not in str(exc) or attempt == PRAGMA_RETRIES - 1:
                raise
            time.sleep(min(0.01 * (attempt + 1), 0.2))
    dbapi_conn.isolation_level = None  # the driver stops issuing BEGIN/COMMIT on its own


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(IMMEDIATE, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _pg_async_commit(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
    dbapi_conn.commit()


# Simple-query protocol, two statements in one implicit transaction: SET LOCAL makes its commit synchronous, and the
# logical message is the WAL record that makes the commit wait for the flush (a transaction writing no WAL would not).
_FLUSH = "SET LOCAL synchronous_commit TO on; SELECT pg_logical_emit_message(true, 'trackguard-review', 'flush')"


def flush_wal(conn: Connection) -> None:
    """Return once everything this session committed is on disk (PostgreSQL; SQLite commits synchronously)."""
    if conn.dialect.name != "postgresql":
        return
    raw = conn.connection.driver_connection
    assert raw is not None, "flush_wal needs an open connection"
    was = raw.autocommit
    raw.autocommit = True
    try:
        raw.execute(_FLUSH)
    finally:
        raw.autocommit = was


def _make(url: str, autocommit: bool = False, **pool: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_autocommit)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if pool:  # a one-off engine (migrations): plain sessions
        return create_engine(url, **pool)
    # No pool_pre_ping: it costs a round trip per checkout (a third of a claim); a connection broken by a server
    # restart fails one request, and SQLAlchemy then invalidates the pool.
    engine = create_engine(url, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW, pool_recycle=1800,
                           **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))
    event.listen(engine, "connect", _pg_async_commit)
    return engine


def review_engine(url: str, autocommit: bool = False) -> Engine:
    """One engine per URL per process for the workflow (created on first use).

    ``autocommit`` (PostgreSQL): a second pool whose sessions are always in
    autocommit mode, for the one-statement hot path (`moderation.fastpath`);
    switching a pooled connection's mode per checkout costs more than the statement.
    """
    key = (url, autocommit and not url.startswith("sqlite"))
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _make(url, key[1])
        return _ENGINES[key]


@contextmanager
def transient_engine(url: str) -> Iterator[Engine]:
    """A pool-less engine for one-off work (a schema upgrade, a registry audit entry): no connection stays open."""
    engine = _make(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def writer(engine: Engine) -> Engine:
    """The same pool, but transactions begin with the write lock held (SQLite); unchanged on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{IMMEDIATE: "IMMEDIATE"})
    return engine


class SqliteWriterLock:
    """SQLite's one writer at a time, queued for without sleeping: a thread mutex, then a file lock.

    SQLite admits one writer at a time; writers that collide on ``BEGIN IMMEDIATE``
    retry in SQLite's busy handler, which sleeps in growing steps (up to 100 ms), so
    under load some wait for seconds. Queueing first hands the write lock over as
    soon as it is free: threads of a process on a mutex, processes (``serve
    --workers``, a sweep beside the app) on an exclusive ``flock`` of
    ``<database>-writer.lock``, which the kernel grants the moment it is released.
    A writer that does not take this lock still meets the others at the busy handler.
    """

    def __init__(self, database: str | None) -> None:
        self._mutex = threading.Lock()
        self._path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            if self._path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own (flock is per open file)
            self._fd = os.open(self._path or "", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


_SQLITE_WRITERS: dict[str, SqliteWriterLock] = {}


def writer_lock(url: str) -> SqliteWriterLock | None:
    """SQLite: the database's `SqliteWriterLock` for write transactions (one per URL per process); None on
    PostgreSQL (row locks and advisory locks serialise there)."""
    if not url.startswith("sqlite"):
        return None
    with _LOCK:
        if url not in _SQLITE_WRITERS:
            _SQLITE_WRITERS[url] = SqliteWriterLock(make_url(url).database)
        return _SQLITE_WRITERS[url]


def read_engine(url: str) -> Engine:
    """For reads of request paths: on PostgreSQL the autocommit pool (no BEGIN and ROLLBACK round trips around a
    one-statement read); on SQLite the workflow engine."""
    return review_engine(url, autocommit=True)


@contextmanager
def write_transaction(url: str, *, durable: bool = True) -> Iterator[Connection]:
    """One write transaction on the workflow engine of ``url``, committed when the block ends.

    SQLite: queued on the database's `SqliteWriterLock`, then ``BEGIN IMMEDIATE``. PostgreSQL:
    commits asynchronously; ``durable`` then waits for the WAL flush (`flush_wal`)
    outside any lock, so concurrent requests share fsyncs. ``durable=False`` is for
    writes whose loss in a machine crash is harmless: they are not waited onto disk
    (SQLite: ``synchronous=NORMAL`` for that commit), and the WAL flush of any later
    durable commit makes them durable too, as WAL is flushed in order.
    """
    with writer_lock(url) or nullcontext(), review_engine(url).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # on the connection, not a `writer` engine: making an option engine costs more than the write
            conn.execution_options(**{IMMEDIATE: "IMMEDIATE"})
        lazy = not durable and sqlite
        if lazy:  # WAL commits without fsync; the next synchronous commit's fsync covers them (the WAL is ordered)
            _sqlite_synchronous(conn, "NORMAL")
        try:
            with conn.begin():
                yield conn
        finally:
            if lazy:
                _sqlite_synchronous(conn, "FULL")
        if durable:
            flush_wal(conn)


def execute_durably(url: str, statement: Executable, parameters: dict[str, Any]) -> None:
    """One statement as its own durable transaction, in the fewest round trips: on PostgreSQL in autocommit
    mode, then `flush_wal` (two round trips, instead of BEGIN, statement, COMMIT and the flush)."""
    if url.startswith("sqlite"):
        with write_transaction(url) as conn:
            conn.execute(statement, parameters)
        return
    with read_engine(url).connect() as conn:
        conn.execute(statement, parameters)
        flush_wal(conn)


def _sqlite_synchronous(conn: Connection, level: str) -> None:
    # On the driver connection: a statement through SQLAlchemy would open a transaction first (autobegin).
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA synchronous={level}")


def dispose_review_engine(url: str) -> None:
    """Close the pools (tests, before their database is dropped)."""
    with _LOCK:
        engines = [_ENGINES.pop(key) for key in list(_ENGINES) if key[0] == url]
    for engine in engines:
        engine.dispose()


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"
