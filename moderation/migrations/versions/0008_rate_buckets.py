"""Rate-limit state of the upload hooks, shared by every app process (GCRA: one float per distributor).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "rate_buckets" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "rate_buckets",
        sa.Column("distributor_id", sa.String(128), primary_key=True),
        sa.Column("tat", sa.Float(), nullable=False),
    )
    op.execute("INSERT INTO rate_buckets (distributor_id, tat) SELECT distributor_id, 0.0 FROM distributors")


def downgrade() -> None:
    op.drop_table("rate_buckets")
