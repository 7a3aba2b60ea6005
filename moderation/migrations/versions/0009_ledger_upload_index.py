"""The attribution ledger is looked up by upload, not only by artist: index ``upload_id``.

Storing an upload's metadata names the uploader on its ledger entries recorded
before it (`moderation.ledger.fill_uploaders`); without this index every stored
upload batch would scan the whole ledger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attribution_ledger_upload_id", "attribution_ledger", ["upload_id"])


def downgrade() -> None:
    op.drop_index("ix_attribution_ledger_upload_id", table_name="attribution_ledger")
