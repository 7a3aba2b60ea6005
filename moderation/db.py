"""Schema base of the moderation store; engines come from `trackguard.sql`, the schema from Alembic migrations."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from trackguard.sql import get_engine


class Base(DeclarativeBase):
    pass


_READY: set[str] = set()
_LOCK = threading.Lock()


def create_schema(url: str) -> Engine:
    """The engine for ``url`` with the moderation schema at the latest migration (``alembic upgrade head``).

    Databases made before migrations (by ``create_all``) are adopted by revision
    0001, which only creates what is missing. Upgrading is done once per URL per
    process; `moderation.migrate` makes concurrent first opens safe.
    """
    import moderation.cases
    import moderation.distributors
    import moderation.hook_ledger
    import moderation.ratelimit
    import moderation.schema
    import moderation.stream_store  # noqa: F401  (these imports register the tables on Base.metadata)
    from moderation.migrate import upgrade

    engine = get_engine(url)
    with _LOCK:
        if url not in _READY:
            upgrade(url)
            _READY.add(url)
    return engine
