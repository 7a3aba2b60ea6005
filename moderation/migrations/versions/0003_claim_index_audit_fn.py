"""Claims across all queues get their own index; PostgreSQL appends audit entries in one round trip.

- ``ix_cases_open_order``: open cases in claim order (priority desc, age, id),
  partial on ``status = 'open'`` so decided cases drop out of it; a claim without a
  queue walks it from the front instead of sorting every open case.
- ``audit_append(...)`` (PostgreSQL only): takes the audit advisory lock, reads the
  chain's head in a *new* statement (so it sees every append committed while it
  waited), computes ``sha256(prev_hash || canonical)`` and inserts, all server-side.
  The caller's transaction holds the lock until it commits. The canonical JSON is
  assembled from pieces `moderation.audit` encodes (``p_head`` = ``,"at","actor",
  "action","subject_type",``; the subject id's JSON; the details' canonical JSON),
  so the hash is exactly what `moderation.audit.entry_hash` computes and `verify`
  checks. Taking the pieces as text lets a single-statement claim or decision
  (`moderation.fastpath`) fill in ids only the database knows. The lock key must
  equal `moderation.audit.AUDIT_LOCK`.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUDIT_APPEND = """
CREATE OR REPLACE FUNCTION audit_append(p_at timestamptz, p_actor text, p_action text, p_subject_type text,
                                        p_subject_id text, p_head text, p_subject_json text, p_details text)
RETURNS TABLE (out_seq integer, out_prev text, out_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_seq integer;
    last_hash text;
    new_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(7311046002);
    SELECT a.seq, a.hash INTO last_seq, last_hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        last_hash := repeat('0', 64);
    END IF;
    new_hash := encode(sha256(convert_to(last_hash || '[' || (last_seq + 1)::text || p_head || p_subject_json
                                         || ',' || p_details || ']', 'UTF8')), 'hex');
    INSERT INTO audit_log (seq, at, actor, action, subject_type, subject_id, details, prev_hash, hash)
    VALUES (last_seq + 1, p_at, p_actor, p_action, p_subject_type, p_subject_id, p_details::json, last_hash, new_hash);
    RETURN QUERY SELECT last_seq + 1, last_hash, new_hash;
END
$$
"""


def upgrade() -> None:
    op.create_index("ix_cases_open_order", "cases", [sa.text("priority DESC"), "created_at", "id"],
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append(timestamptz, text, text, text, text, text, text, text)")
    op.drop_index("ix_cases_open_order", table_name="cases")
