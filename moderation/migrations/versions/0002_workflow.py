"""Reviewer workflow: uploads metadata, leases and resolutions on cases, users, tokens, decisions, appeals, audit.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
CASE_COLUMNS = ("min_role", "claimed_by", "lease_token", "lease_until", "resolution", "decided_at",
                "excluded_reviewers")


def _uploads() -> None:
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.String(128), primary_key=True),
        sa.Column("audio_uri", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("artist_name", sa.Text(), nullable=True),
        sa.Column("distributor_id", sa.String(128), nullable=True),
        sa.Column("uploader_id", sa.String(128), nullable=True),
        sa.Column("uploaded_at", TZ, nullable=True),
        sa.Column("claimed_artist_id", sa.String(128), nullable=True),
        sa.Column("declared_ai", sa.Boolean(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_uploads_distributor_id", "uploads", ["distributor_id"])


def _case_columns() -> None:
    op.add_column("cases", sa.Column("min_role", sa.String(16), nullable=False, server_default="reviewer"))
    op.add_column("cases", sa.Column("claimed_by", sa.String(64), nullable=True))
    op.add_column("cases", sa.Column("lease_token", sa.String(64), nullable=True))
    op.add_column("cases", sa.Column("lease_until", TZ, nullable=True))
    op.add_column("cases", sa.Column("resolution", sa.String(16), nullable=True))
    op.add_column("cases", sa.Column("decided_at", TZ, nullable=True))
    op.add_column("cases", sa.Column("excluded_reviewers", sa.JSON(), nullable=False,
                                     server_default=sa.text("'[]'")))
    # The claim query: open cases of a queue by priority (desc) then age.
    op.create_index("ix_cases_claim", "cases", ["status", "queue", sa.text("priority DESC"), "created_at"])


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("distributor_id", sa.String(128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_used_at", TZ, nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def _decisions_and_appeals() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
        sa.Column("evidence_version", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=True),  # no FK: appeals point back at decisions
    )
    op.create_index("ix_decisions_case_id", "decisions", ["case_id"])
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id"), nullable=False),
        sa.Column("distributor_id", sa.String(128), nullable=False),
        sa.Column("filed_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("original_queue", sa.String(32), nullable=False),
        sa.Column("filed_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("closing_decision_id", sa.Integer(), sa.ForeignKey("decisions.id"), nullable=True),
    )
    op.create_index("ix_appeals_case_id", "appeals", ["case_id"])
    # At most one open appeal per case, enforced by the database too.
    op.create_index("uq_appeals_one_open", "appeals", ["case_id"], unique=True,
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))


def _audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_type", "subject_id", "seq"])


def upgrade() -> None:
    _uploads()
    _case_columns()
    _users()
    _decisions_and_appeals()
    _audit_log()


def downgrade() -> None:
    for table in ("audit_log", "appeals", "decisions", "api_tokens", "users", "uploads"):
        op.drop_table(table)
    op.drop_index("ix_cases_claim", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in CASE_COLUMNS:
            batch.drop_column(column)
