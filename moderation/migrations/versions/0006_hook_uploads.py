"""The upload hooks' ledger: one row per upload delivered through ``POST /v1/uploads`` (`moderation.hook_ledger`).

It is the durable record of the outbox: an accepted upload's event is published
after this row commits, and the relay re-publishes accepted uploads that still
have no verdict. It also carries the callback delivery state.

- ``ix_hook_uploads_outbox``: accepted uploads by publish time (the relay's scan);
- ``ix_hook_uploads_callbacks``: undelivered callbacks by due time, partial on
  ``callback_url IS NOT NULL AND callback_delivered_at IS NULL`` so delivered
  ones drop out;
- ``ix_hook_uploads_distributor``: a distributor's uploads by age.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
CALLBACKS_PENDING = "callback_url IS NOT NULL AND callback_delivered_at IS NULL"


def upgrade() -> None:
    if "hook_uploads" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "hook_uploads",
        sa.Column("upload_id", sa.String(128), primary_key=True),
        sa.Column("distributor_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # awaiting_audio | accepted
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_hash", sa.String(64), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("audio_uri", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(128), nullable=True),
        sa.Column("container", sa.String(16), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("accepted_at", TZ, nullable=True),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("publish_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("callback_delivered_at", TZ, nullable=True),
        sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("callback_next_at", TZ, nullable=True),
        sa.Column("callback_last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_hook_uploads_outbox", "hook_uploads", ["status", "published_at"])
    op.create_index("ix_hook_uploads_callbacks", "hook_uploads", ["callback_next_at"],
                    postgresql_where=sa.text(CALLBACKS_PENDING), sqlite_where=sa.text(CALLBACKS_PENDING))
    op.create_index("ix_hook_uploads_distributor", "hook_uploads", ["distributor_id", "created_at"])


def downgrade() -> None:
    op.drop_table("hook_uploads")
