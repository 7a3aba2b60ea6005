"""Distributors of signed upload hooks: their keys (HMAC secrets) and the nonces seen, for replay protection.

Secrets are stored as issued because HMAC verification needs them: the database
is the trust boundary for hook keys (no envelope encryption yet).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "distributors",
        sa.Column("distributor_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("rate_per_s", sa.Float(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "distributor_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("distributor_id", sa.String(128), sa.ForeignKey("distributors.distributor_id"), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_index("ix_distributor_keys_distributor_id", "distributor_keys", ["distributor_id"])
    op.create_table(
        "request_nonces",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("seen_at", TZ, nullable=False),
    )
    op.create_index("ix_request_nonces_seen_at", "request_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_table("request_nonces")
    op.drop_table("distributor_keys")
    op.drop_table("distributors")
