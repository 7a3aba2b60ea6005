"""Schema base of the moderation store; engines come from `trackguard.sql`."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from trackguard.sql import create_all_tolerant, get_engine


class Base(DeclarativeBase):
    pass


def create_schema(url: str) -> Engine:
    import moderation.cases  # noqa: F401  (registers tables)

    engine = get_engine(url)
    create_all_tolerant(Base.metadata, engine)
    return engine
