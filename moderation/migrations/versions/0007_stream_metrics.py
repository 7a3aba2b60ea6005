"""Windowed counters of the streaming pipeline (uploads, verdicts, errors per minute).

One row per (window start, counter); a re-fired window overwrites its row, so
re-running a window never double-counts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "stream_metrics" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "stream_metrics",
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_metrics")
