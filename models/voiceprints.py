"""Voiceprint registry: consented artist enrolments, centroids, policies, erasure.

Storage behind one narrow interface (`VoiceprintStore`), SQLAlchemy on the same
database URL as the moderation store (SQLite by default, PostgreSQL in
production). It lives in `models/` because it is the verifier's index.
Biometric data (embeddings, centroids) sits in its own tables so opt-out can
erase it completely; the audit table holds only non-biometric facts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from trackguard.sql import create_all_tolerant, get_engine

POLICIES = ("block", "allow_licensed", "monitor")


class RegistryBase(DeclarativeBase):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Artist(RegistryBase):
    __tablename__ = "artists"
    artist_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    profile_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    policy: Mapped[str] = mapped_column(String(32))
    licensed_partner_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_by: Mapped[str] = mapped_column(String(256))
    consent_scope: Mapped[str] = mapped_column(String(256))
    consent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    model_id: Mapped[str] = mapped_column(String(128), default="")


class Embedding(RegistryBase):
    __tablename__ = "voiceprint_embeddings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.artist_id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Centroid(RegistryBase):
    __tablename__ = "voiceprint_centroids"
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.artist_id", ondelete="CASCADE"), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    n_embeddings: Mapped[int] = mapped_column(Integer)


class RegistryAudit(RegistryBase):
    """Non-biometric record of consent and erasure: who, when, what."""

    __tablename__ = "registry_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    artist_id: Mapped[str] = mapped_column(String(128), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclasses.dataclass(frozen=True)
class ArtistPolicy:
    artist_id: str
    policy: str  # block | allow_licensed | monitor
    licensed_partner_ids: tuple[str, ...] = ()
    name: str = ""
    profile_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Voiceprints:
    """An in-memory snapshot for matching: ids and an L2-normalised [n, d] matrix."""

    artist_ids: tuple[str, ...]
    matrix: np.ndarray
    profile_to_artist: dict[str, str]


class ConsentError(ValueError):
    pass


_READY: set[str] = set()


def _engine(url: str) -> Engine:
    engine = get_engine(url)
    if url not in _READY:
        create_all_tolerant(RegistryBase.metadata, engine)
        _READY.add(url)
    return engine


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class VoiceprintStore:
    def __init__(self, url: str) -> None:
        self.engine = _engine(url)

    def enroll(self, artist_id: str, name: str, policy: str, consent_by: str, embeddings: np.ndarray,
               sources: list[str], *, profile_id: str | None = None, scope: str = "voice-matching",
               licensed_partner_ids: list[str] | None = None, model_id: str = "") -> None:
        """Record consent and store every enrolment embedding plus their centroid."""
        if not consent_by or not consent_by.strip():
            raise ConsentError("refusing to enrol without a consent record: pass --consent-by WHO")
        if policy not in POLICIES:
            raise ConsentError(f"policy must be one of {POLICIES}, got {policy!r}")
        if len(embeddings) == 0 or len(embeddings) != len(sources):
            raise ValueError("need one embedding per enrolment source")
        centroid = _unit(np.mean([_unit(e) for e in embeddings], axis=0))
        with Session(self.engine) as s, s.begin():
            s.execute(delete(Artist).where(Artist.artist_id == artist_id))
            s.flush()
            s.add(Artist(artist_id=artist_id, name=name, profile_id=profile_id, policy=policy,
                         licensed_partner_ids=list(licensed_partner_ids or []), consent_by=consent_by,
                         consent_scope=scope, consent_at=_now(), model_id=model_id))
            s.flush()
            s.add_all(Embedding(artist_id=artist_id, source=src, vector=_unit(e).tobytes())
                      for e, src in zip(embeddings, sources, strict=True))
            s.add(Centroid(artist_id=artist_id, vector=centroid.tobytes(), n_embeddings=len(embeddings)))
            s.add(RegistryAudit(actor=consent_by, action="enroll", artist_id=artist_id,
                                details={"policy": policy, "scope": scope, "n_sources": len(sources)}))

    def set_policy(self, artist_id: str, policy: str, actor: str,
                   licensed_partner_ids: list[str] | None = None) -> None:
        if policy not in POLICIES:
            raise ConsentError(f"policy must be one of {POLICIES}, got {policy!r}")
        with Session(self.engine) as s, s.begin():
            artist = s.get(Artist, artist_id)
            if artist is None:
                raise KeyError(f"artist {artist_id!r} is not enrolled")
            artist.policy = policy
            if licensed_partner_ids is not None:
                artist.licensed_partner_ids = list(licensed_partner_ids)
            s.add(RegistryAudit(actor=actor, action="policy", artist_id=artist_id, details={"policy": policy}))

    def optout(self, artist_id: str, actor: str) -> dict[str, int]:
        """Erase everything biometric about the artist at once; keep a non-biometric audit record."""
        with Session(self.engine) as s, s.begin():
            n_emb = len(s.execute(select(Embedding.id).where(Embedding.artist_id == artist_id)).all())
            existed = s.get(Artist, artist_id) is not None
            s.execute(delete(Embedding).where(Embedding.artist_id == artist_id))
            s.execute(delete(Centroid).where(Centroid.artist_id == artist_id))
            s.execute(delete(Artist).where(Artist.artist_id == artist_id))
            erased = {"embeddings": n_emb, "centroids": int(existed), "artist_rows": int(existed)}
            s.add(RegistryAudit(actor=actor, action="optout", artist_id=artist_id, details={"erased": erased}))
        return erased

    def policies(self) -> dict[str, ArtistPolicy]:
        with Session(self.engine) as s:
            return {
                a.artist_id: ArtistPolicy(a.artist_id, a.policy, tuple(a.licensed_partner_ids or ()), a.name,
                                          a.profile_id)
                for a in s.execute(select(Artist)).scalars()
            }

    def voiceprints(self) -> Voiceprints:
        with Session(self.engine) as s:
            rows = s.execute(select(Centroid.artist_id, Centroid.vector).order_by(Centroid.artist_id)).all()
            profiles = {a.profile_id: a.artist_id for a in s.execute(select(Artist)).scalars() if a.profile_id}
        ids = tuple(r[0] for r in rows)
        matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0))
        return Voiceprints(ids, matrix.astype(np.float32), profiles)

    def audit(self, artist_id: str | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(RegistryAudit).order_by(RegistryAudit.id)
            if artist_id:
                q = q.where(RegistryAudit.artist_id == artist_id)
            return [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "artist_id": r.artist_id,
                     "details": json.loads(json.dumps(r.details))} for r in s.execute(q).scalars()]
