"""Migrations on real SQLite and PostgreSQL: adopting a pre-migration database, idempotence, concurrent first opens."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from moderation.cases import CaseStore
from moderation.db import Base
from moderation.migrate import current_revision, head_revision, upgrade
from moderation.review import ReviewService
from tests.review_support import (  # noqa: F401  (fixtures)
    cheap_argon2_fixture,
    db_url_fixture,
)
from trackguard import cli
from trackguard.sql import get_engine

TZ = sa.DateTime(timezone=True)


def old_schema() -> sa.MetaData:
    """The moderation tables as `create_all` made them before migrations existed (no workflow columns)."""
    meta = sa.MetaData()
    sa.Table("verdicts", meta, sa.Column("upload_id", sa.String(128), primary_key=True),
             sa.Column("decision", sa.String(16), index=True), sa.Column("queue", sa.String(32), nullable=True),
             sa.Column("content_hash", sa.String(64)), sa.Column("verdict", sa.JSON), sa.Column("updated_at", TZ))
    sa.Table("cases", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("upload_id", sa.String(128), unique=True), sa.Column("queue", sa.String(32), index=True),
             sa.Column("priority", sa.Integer), sa.Column("status", sa.String(16), index=True),
             sa.Column("evidence_version", sa.Integer), sa.Column("created_at", TZ), sa.Column("updated_at", TZ))
    sa.Table("case_evidence", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("case_id", sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True),
             sa.Column("version", sa.Integer), sa.Column("content_hash", sa.String(64)), sa.Column("verdict", sa.JSON),
             sa.Column("created_at", TZ), sa.UniqueConstraint("case_id", "content_hash"))
    return meta  # no attribution_ledger: older databases lacked it too, 0001 must add it


def test_a_pre_migration_database_is_adopted(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    meta = old_schema()
    meta.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(meta.tables["cases"].insert().values(upload_id="old-1", queue="spam", priority=5, status="open",
                                                          evidence_version=1, created_at=now, updated_at=now))
    engine.dispose()

    assert upgrade(db_url) == head_revision()
    assert upgrade(db_url) == head_revision()  # a second upgrade is a no-op
    svc = ReviewService(db_url)
    try:
        [case] = svc.list_cases()
        assert case.upload_id == "old-1" and case.min_role.value == "reviewer" and case.claimed_by is None
        tables = set(sa.inspect(get_engine(db_url)).get_table_names())
        assert {"attribution_ledger", "uploads", "users", "api_tokens", "decisions", "appeals", "audit_log"} <= tables
    finally:
        svc.close()


def test_a_fresh_database_matches_the_models(db_url: str) -> None:
    engine = CaseStore(db_url).engine  # create_schema → upgrade head
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff


def test_concurrent_first_opens_do_not_crash(db_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_db() -> None:
        start.wait()
        try:
            upgrade(db_url)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_db) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(get_engine(db_url)) == head_revision()


def test_db_upgrade_command(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["db", "upgrade", "--db-url", db_url]) == 0
    assert capsys.readouterr().out.strip() == f"database at revision {head_revision()}"
