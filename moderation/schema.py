"""ORM tables of the reviewer workflow (created by migration 0002; `Case` lives in `moderation.cases`).

The models mirror the migration so that ``alembic revision --autogenerate`` sees
no difference; the hot path (claim, decide, audit append) uses their ``__table__``
with SQLAlchemy Core and never loads ORM objects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Table, Text, text, true
from sqlalchemy.orm import Mapped, mapped_column

from moderation.db import Base

TZ = DateTime(timezone=True)


class Upload(Base):
    """Manifest metadata of an upload as the sweep read it: what parsed, plus the raw row."""

    __tablename__ = "uploads"
    upload_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    audio_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    artist_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    distributor_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    uploader_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(TZ, nullable=True)
    claimed_artist_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    declared_ai: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(TZ)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    distributor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    session_generation: Mapped[int] = mapped_column(Integer, server_default="0")  # sign-out ends older sessions


class ApiToken(Base):
    """Only the token's sha256 is stored: the token itself is shown once, at issue."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(TZ, nullable=True)


class DecisionRow(Base):
    """Every decision ever taken, escalations included (``final`` false); never updated."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    final: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime] = mapped_column(TZ)
    evidence_version: Mapped[int] = mapped_column(Integer)
    appeal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AppealRow(Base):
    __tablename__ = "appeals"
    __table_args__ = (
        Index("uq_appeals_one_open", "case_id", unique=True, postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    distributor_id: Mapped[str] = mapped_column(String(128))
    filed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    original_queue: Mapped[str] = mapped_column(String(32))
    filed_at: Mapped[dt.datetime] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(String(16))  # open | upheld | overturned
    closed_at: Mapped[dt.datetime | None] = mapped_column(TZ, nullable=True)
    closing_decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), nullable=True)


class AuditRow(Base):
    """One link of the hash chain (`moderation.audit`); ``seq`` is assigned under the append lock, not by a sequence."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


uploads = cast(Table, Upload.__table__)
users = cast(Table, UserRow.__table__)
api_tokens = cast(Table, ApiToken.__table__)
decisions = cast(Table, DecisionRow.__table__)
appeals = cast(Table, AppealRow.__table__)
audit_log = cast(Table, AuditRow.__table__)
