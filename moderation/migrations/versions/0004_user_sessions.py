"""Signing out ends every session of the user: a session carries the user's ``session_generation``, and
signing out (or a new password) increments it, so older sessions no longer match.

Sessions are signed cookies (nothing stored server-side), so without this a copied
cookie stayed valid until it expired even after its owner signed out.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "session_generation" not in columns:
        op.add_column("users", sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("users", "session_generation")
