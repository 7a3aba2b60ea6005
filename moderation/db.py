"""Database engine and schema base. SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the review app read while a sweep writes; busy_timeout waits
    # for a concurrent writer instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_ENGINES: dict[str, Engine] = {}


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


def create_schema(url: str) -> Engine:
    import moderation.cases  # noqa: F401  (registers tables)

    engine = get_engine(url)
    Base.metadata.create_all(engine)
    return engine
