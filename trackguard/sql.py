"""Database engines shared by every store (SQLite by default, PostgreSQL in production).

Lives in the core package so both the voiceprint registry (models layer) and the
moderation store can use it without importing each other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

_ENGINES: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the review app read while a sweep writes; busy_timeout waits for a
    # concurrent writer instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    if url not in _ENGINES:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _ENGINES[url] = engine
    return _ENGINES[url]


def dispose_engine(url: str) -> None:
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def create_all_tolerant(metadata: MetaData, engine: Engine) -> None:
    """`create_all`, tolerating another process creating the same tables at the same moment.

    Parallel pipeline workers open a fresh database together; the loser of that
    race sees "already exists" and simply checks again.
    """
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError, IntegrityError) as exc:
        if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
            raise
        metadata.create_all(engine)
