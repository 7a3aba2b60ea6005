"""Run the moderation store's Alembic migrations from code, safely when several processes open one database.

The script location is resolved from the installed package (``moderation:migrations``),
so no ``alembic.ini`` is needed. Concurrency: parallel pipeline workers and the web
app may open a fresh database at the same moment.

- PostgreSQL: DDL is transactional, so the whole upgrade runs in one transaction
  that first takes ``pg_advisory_xact_lock``; a second process waits, then finds
  the database at head and does nothing.
- SQLite: the upgrade runs in one ``BEGIN IMMEDIATE`` transaction (SQLite DDL is
  transactional too), so a second process waits on the write lock (busy_timeout)
  and then finds head. Should a writer outside this module still race us, an
  "already exists" error is retried.
"""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from moderation.txn import transient_engine, writer

SCRIPT_LOCATION = "moderation:migrations"
MIGRATION_LOCK = 7_311_046_001  # pg advisory lock key (any constant no other code uses)
RETRIES = 5


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade_once(engine: Engine, target: str) -> None:
    cfg = alembic_config()
    with writer(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        if MigrationContext.configure(conn).get_current_revision() == target:
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def upgrade(url: str, target: str = "head") -> str | None:
    """Bring the database at ``url`` to ``target``; returns the revision it is at afterwards."""
    goal = (head_revision() if target == "head" else target) or target
    with transient_engine(url) as engine:
        for attempt in range(RETRIES):
            try:
                _upgrade_once(engine, goal)
                break
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                message = str(exc).lower()
                if attempt == RETRIES - 1 or ("already exists" not in message and "duplicate" not in message):
                    raise
                time.sleep(0.05 * (attempt + 1))
        return current_revision(engine)
