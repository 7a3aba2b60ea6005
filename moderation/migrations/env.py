"""Alembic environment: runs on the connection `moderation.migrate` hands over (it holds the locks).

Without one (the ``alembic`` command line with a ``sqlalchemy.url``), it opens its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import moderation.cases
import moderation.distributors
import moderation.hook_ledger
import moderation.schema
import moderation.stream_store  # noqa: F401  (these imports register the tables for autogenerate)
from moderation.db import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use `trackguard db upgrade --db-url URL`")
    with create_engine(url).begin() as conn:
        _run(conn)
