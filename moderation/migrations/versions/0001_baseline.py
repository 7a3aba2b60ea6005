"""Baseline: the moderation schema as `create_all` made it before migrations (verdicts, cases, evidence, ledger).

Databases made by that path have these tables but no ``alembic_version``; this
revision creates only the tables that are missing, so it is a no-op for them and
a plain creation for a fresh database. Column definitions are spelled out here
(not imported from the models) so later model changes cannot alter history.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _verdicts() -> None:
    op.create_table(
        "verdicts",
        sa.Column("upload_id", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(32), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_verdicts_decision", "verdicts", ["decision"])


def _cases() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("upload_id", sa.String(128), nullable=False, unique=True),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evidence_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_cases_queue", "cases", ["queue"])
    op.create_index("ix_cases_status", "cases", ["status"])


def _case_evidence() -> None:
    op.create_table(
        "case_evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("case_id", "content_hash"),
    )
    op.create_index("ix_case_evidence_case_id", "case_evidence", ["case_id"])


def _attribution_ledger() -> None:
    op.create_table(
        "attribution_ledger",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("artist_id", sa.String(128), nullable=False),
        sa.Column("upload_id", sa.String(128), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("uploader_id", sa.String(128), nullable=True),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.UniqueConstraint("artist_id", "upload_id", name="uq_attribution_artist_upload"),
    )
    op.create_index("ix_attribution_ledger_artist_id", "attribution_ledger", ["artist_id"])


TABLES = {"verdicts": _verdicts, "cases": _cases, "case_evidence": _case_evidence,
          "attribution_ledger": _attribution_ledger}


def upgrade() -> None:
    for name, create in TABLES.items():  # dict order = foreign-key order (cases before case_evidence)
        if _missing(name):
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
