"""Database engine and schema base. SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
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
    create_all_tolerant(Base.metadata, engine)
    return engine


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
