"""Voiceprint registry: consented artist enrolments, centroids, policies, erasure.

Storage behind one narrow interface (`VoiceprintStore`), SQLAlchemy on the same
database URL as the moderation store (SQLite by default, PostgreSQL in
production). It lives in `models/` because it is the verifier's index.
Biometric data (embeddings, centroids, cohort voices) sits in its own tables so
opt-out can erase it completely; the audit table holds only non-biometric facts.

Score normalisation lives here too because it is part of the index: the *cohort*
(`voiceprint_cohort`) is a set of bona fide voices that are not enrolled, against
which AS-norm (`models.asnorm`) rescales every trial, and the *calibration*
(`voiceprint_calibration`, one current row plus history) is the threshold measured
on impostor trials for a target false-accept rate. Both are loaded with the
centroids by `voiceprints()`, which precomputes each centroid's cohort statistics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from models.asnorm import DEFAULT_TOP_K, VoiceCalibration
from models.voice_search import prepare
from trackguard.sql import create_all_tolerant, get_engine

POLICIES = ("block", "allow_licensed", "monitor")
# Per-artist match results cached outside the registry (moderation's attribution ledger,
# `moderation/ledger.py`). The registry may not import moderation, so opt-out reaches
# the table by name: it keeps the credit (artist, upload, date) and erases the score.
LEDGER_TABLE = "attribution_ledger"
LEDGER_SCORE_COLUMN = "similarity"


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


class DetectorReferenceLevel(RegistryBase):
    """How synthetic an enrolled artist's own reference recordings look to one detector model
    (`models.artist_norm`): the mean pooled logit of those recordings. Derived from the artist's
    voice, so opt-out erases it; tied to a detector model id, since another model scores otherwise."""

    __tablename__ = "detector_reference_levels"
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.artist_id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    n_references: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CohortEmbedding(RegistryBase):
    """A bona fide voice that is not enrolled, for AS-norm.

    ``source`` is a non-identifying label (corpus and an anonymous voice number, never
    a name, path or upload id). ``subject_ref`` is a pseudonymous erasure key
    (`subject_ref`: sha256 of the artist id) kept only so that the artist's opt-out
    can find and delete these rows; it is NULL for voices of unknown origin.
    """

    __tablename__ = "voiceprint_cohort"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(256))
    subject_ref: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class CalibrationRecord(RegistryBase):
    """One measured operating point (`VoiceCalibration`); ``current`` marks the one in use, older rows are history.

    Aggregate numbers only (no vectors, no artist ids), so opt-out leaves it alone.
    """

    __tablename__ = "voiceprint_calibration"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    current: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    threshold: Mapped[float] = mapped_column(Float)
    target_far: Mapped[float] = mapped_column(Float)
    measured_far: Mapped[float] = mapped_column(Float)
    n_impostor_trials: Mapped[int] = mapped_column(Integer)
    normalisation: Mapped[str] = mapped_column(String(16))
    cohort_size: Mapped[int] = mapped_column(Integer)
    top_k: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(128))
    data: Mapped[str] = mapped_column(Text)


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


def _empty() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Voiceprints:
    """An in-memory snapshot for matching: ids and an L2-normalised [n, d] matrix, row i being ``artist_ids[i]``
    (with a cohort, rows are in `models.voice_search.search_order`; otherwise by artist id).

    With a cohort, ``enrol_stats`` holds each centroid's AS-norm statistics (mean and
    std of its ``top_k`` best cohort cosines, [n] each), computed once at load so a
    query batch only adds its own. ``calibration`` is the registry's current operating
    point, if one was measured.
    """

    artist_ids: tuple[str, ...]
    matrix: np.ndarray
    profile_to_artist: dict[str, str]
    cohort: np.ndarray = dataclasses.field(default_factory=_empty)  # [k, d], L2-normalised
    enrol_stats: tuple[np.ndarray, np.ndarray] | None = None
    top_k: int = DEFAULT_TOP_K
    calibration: VoiceCalibration | None = None

    @property
    def has_cohort(self) -> bool:
        return len(self.cohort) > 0 and self.enrol_stats is not None

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        """Matrix row of each artist id."""
        return {a: i for i, a in enumerate(self.artist_ids)}


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


def subject_ref(artist_id: str) -> str:
    """Pseudonymous key linking cohort rows to the artist they came from, for erasure only.

    A plain hash, not a secret: anyone holding the artist id can recompute it, which
    is exactly what opt-out needs; it keeps ids and names out of the cohort table.
    """
    return hashlib.sha256(f"voiceprint-cohort:{artist_id}".encode()).hexdigest()


def _ledger(conn: Connection) -> Table | None:
    """The attribution ledger, if moderation has created it in this database (reflected: no import)."""
    if not inspect(conn).has_table(LEDGER_TABLE):
        return None
    return Table(LEDGER_TABLE, MetaData(), autoload_with=conn)


def _calibration(r: CalibrationRecord) -> VoiceCalibration:
    return VoiceCalibration(threshold=r.threshold, target_far=r.target_far, measured_far=r.measured_far,
                            n_impostor_trials=r.n_impostor_trials, normalisation=r.normalisation,
                            cohort_size=r.cohort_size, top_k=r.top_k, model_id=r.model_id, data=r.data)


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
            s.execute(delete(DetectorReferenceLevel).where(DetectorReferenceLevel.artist_id == artist_id))
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
                   licensed_partner_ids: list[str] | None = None) -> ArtistPolicy:
        """Change an artist's policy (and, if given, the licensed partners); audited with who asked."""
        if policy not in POLICIES:
            raise ConsentError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not actor or not actor.strip():
            raise ConsentError("refusing to change a policy without saying who asked: pass --actor WHO")
        with Session(self.engine) as s, s.begin():
            artist = s.get(Artist, artist_id)
            if artist is None:
                raise KeyError(f"artist {artist_id!r} is not enrolled")
            artist.policy = policy
            if licensed_partner_ids is not None:
                artist.licensed_partner_ids = list(licensed_partner_ids)
            partners = list(artist.licensed_partner_ids or [])
            s.add(RegistryAudit(actor=actor, action="policy", artist_id=artist_id,
                                details={"policy": policy, "licensed_partner_ids": partners}))
            return ArtistPolicy(artist_id, policy, tuple(partners), artist.name, artist.profile_id)

    def optout(self, artist_id: str, actor: str) -> dict[str, int]:
        """Erase everything biometric about the artist at once; keep a non-biometric audit record.

        Erased in one transaction: the enrolment embeddings, the centroid, the artist
        row (consent record, policy), cohort rows derived from the artist's voice, and
        the similarity scores of the artist's entries in the attribution ledger. The
        ledger keeps the credit itself (artist, upload, date): that is a record of
        licensed use owed to the artist, not biometric data. Calibration rows stay:
        they are aggregate numbers (a threshold, rates, counts) with no vectors and no
        ids. The audit row records who asked, when, and how many rows went.
        """
        ref = subject_ref(artist_id)
        with Session(self.engine) as s, s.begin():
            counts = self._biometric_counts(s, artist_id)
            existed = s.get(Artist, artist_id) is not None
            s.execute(delete(Embedding).where(Embedding.artist_id == artist_id))
            s.execute(delete(Centroid).where(Centroid.artist_id == artist_id))
            s.execute(delete(CohortEmbedding).where(CohortEmbedding.subject_ref == ref))
            s.execute(delete(DetectorReferenceLevel).where(DetectorReferenceLevel.artist_id == artist_id))
            s.execute(delete(Artist).where(Artist.artist_id == artist_id))
            ledger = _ledger(s.connection())
            if ledger is not None:
                s.execute(update(ledger).where(ledger.c.artist_id == artist_id).values({LEDGER_SCORE_COLUMN: None}))
            erased = {"embeddings": counts["voiceprint_embeddings"], "centroids": counts["voiceprint_centroids"],
                      "cohort": counts["voiceprint_cohort"], "ledger_scores": counts.get(LEDGER_TABLE, 0),
                      "detector_levels": counts["detector_reference_levels"], "artist_rows": int(existed)}
            s.add(RegistryAudit(actor=actor, action="optout", artist_id=artist_id, details={"erased": erased}))
        return erased

    def biometric_rows(self, artist_id: str) -> dict[str, int]:
        """Rows per table that hold biometric data of the artist or a score derived from it (all 0 after opt-out).

        The ledger counts only entries whose similarity score is still present.
        """
        with Session(self.engine) as s:
            return self._biometric_counts(s, artist_id)

    @staticmethod
    def _biometric_counts(s: Session, artist_id: str) -> dict[str, int]:
        def count(q: Any) -> int:
            return int(s.execute(q).scalar_one())

        out = {
            "voiceprint_embeddings": count(select(func.count()).select_from(Embedding)
                                           .where(Embedding.artist_id == artist_id)),
            "voiceprint_centroids": count(select(func.count()).select_from(Centroid)
                                          .where(Centroid.artist_id == artist_id)),
            "voiceprint_cohort": count(select(func.count()).select_from(CohortEmbedding)
                                       .where(CohortEmbedding.subject_ref == subject_ref(artist_id))),
            "detector_reference_levels": count(select(func.count()).select_from(DetectorReferenceLevel)
                                               .where(DetectorReferenceLevel.artist_id == artist_id)),
        }
        ledger = _ledger(s.connection())
        if ledger is not None:
            out[LEDGER_TABLE] = count(select(func.count()).select_from(ledger).where(
                ledger.c.artist_id == artist_id, ledger.c[LEDGER_SCORE_COLUMN].is_not(None)))
        return out

    def artist(self, artist_id: str) -> dict[str, Any]:
        """Everything on record about an enrolled artist except vectors: policy, profile, consent, counts."""
        with Session(self.engine) as s:
            a = s.get(Artist, artist_id)
            if a is None:
                raise KeyError(f"artist {artist_id!r} is not enrolled")
            n_emb = int(s.execute(select(func.count()).select_from(Embedding)
                                  .where(Embedding.artist_id == artist_id)).scalar_one())
            sources = list(s.execute(select(Embedding.source).where(Embedding.artist_id == artist_id)
                                     .order_by(Embedding.id)).scalars())
            levels = s.execute(select(DetectorReferenceLevel.model_id, DetectorReferenceLevel.level)
                               .where(DetectorReferenceLevel.artist_id == artist_id)
                               .order_by(DetectorReferenceLevel.model_id)).all()
            return {"artist_id": a.artist_id, "name": a.name, "profile_id": a.profile_id, "policy": a.policy,
                    "licensed_partner_ids": list(a.licensed_partner_ids or []), "consent_by": a.consent_by,
                    "consent_scope": a.consent_scope, "consent_at": a.consent_at.isoformat(),
                    "model_id": a.model_id, "n_embeddings": n_emb, "sources": sources,
                    "detector_levels": [f"{m}={v:.3f}" for m, v in levels]}

    def set_cohort(self, embeddings: np.ndarray, sources: Sequence[str],
                   subjects: Sequence[str | None] | None = None) -> int:
        """Replace the AS-norm cohort: non-enrolled bona fide voices, one row per embedding.

        ``sources`` are non-identifying labels; ``subjects`` (optional, per row) name the
        artist a voice came from, stored only as `subject_ref` so opt-out can erase it.
        """
        embeddings = np.asarray(embeddings, dtype=np.float32)
        subjects = list(subjects) if subjects is not None else [None] * len(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(sources) or len(subjects) != len(sources):
            raise ValueError("need one [d] embedding, one source label and one subject (or None) per cohort row")
        with Session(self.engine) as s, s.begin():
            s.execute(delete(CohortEmbedding))
            s.add_all(CohortEmbedding(source=src, subject_ref=subject_ref(sub) if sub else None,
                                      vector=_unit(e).tobytes())
                      for e, src, sub in zip(embeddings, sources, subjects, strict=True))
        return len(embeddings)

    def cohort(self) -> tuple[np.ndarray, list[str]]:
        """The whole cohort: an L2-normalised [k, d] matrix and its source labels."""
        with Session(self.engine) as s:
            rows = s.execute(select(CohortEmbedding.vector, CohortEmbedding.source)
                             .order_by(CohortEmbedding.id)).all()
        if not rows:
            return _empty(), []
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows]), [r[1] for r in rows]

    def cohort_subjects(self, candidates: Sequence[str]) -> set[str]:
        """Which of these artist ids have voices in the cohort (so calibration can keep them out of its trials)."""
        refs = {subject_ref(a): a for a in candidates}
        with Session(self.engine) as s:
            found = s.execute(select(CohortEmbedding.subject_ref).distinct()
                              .where(CohortEmbedding.subject_ref.in_(list(refs)))).scalars()
            return {refs[r] for r in found if r is not None}

    def set_calibration(self, cal: VoiceCalibration) -> None:
        """Make ``cal`` the current operating point; earlier ones stay as history."""
        with Session(self.engine) as s, s.begin():
            s.execute(update(CalibrationRecord).values(current=False))
            s.add(CalibrationRecord(current=True, **dataclasses.asdict(cal)))

    def generation(self) -> tuple[int, int]:
        """Changes whenever the registry does: the newest audit record (every enrolment, policy change and
        opt-out writes one) and the newest calibration. Cheap enough to ask before every batch."""
        newest = select(select(func.max(RegistryAudit.id)).scalar_subquery(),
                        select(func.max(CalibrationRecord.id)).scalar_subquery())
        with Session(self.engine) as s:
            audit, calibration = s.execute(newest).one()  # one round trip: this runs before every batch
        return int(audit or 0), int(calibration or 0)

    def calibration(self) -> VoiceCalibration | None:
        with Session(self.engine) as s:
            row = s.execute(select(CalibrationRecord).where(CalibrationRecord.current)
                            .order_by(CalibrationRecord.id.desc())).scalars().first()
            return _calibration(row) if row is not None else None

    def calibration_history(self) -> list[tuple[dt.datetime, VoiceCalibration]]:
        with Session(self.engine) as s:
            rows = s.execute(select(CalibrationRecord).order_by(CalibrationRecord.id)).scalars().all()
            return [(r.created_at, _calibration(r)) for r in rows]

    def reference_sources(self) -> dict[str, list[str]]:
        """Each enrolled artist's enrolment recordings (as given at enrolment), in enrolment order."""
        with Session(self.engine) as s:
            rows = s.execute(select(Embedding.artist_id, Embedding.source).order_by(Embedding.id)).all()
        out: dict[str, list[str]] = {}
        for artist_id, source in rows:
            out.setdefault(artist_id, []).append(source)
        return out

    def set_detector_level(self, artist_id: str, model_id: str, level: float, n_references: int,
                           actor: str) -> None:
        """Store (replace) an enrolled artist's reference level for one detector model; audited."""
        with Session(self.engine) as s, s.begin():
            if s.get(Artist, artist_id) is None:
                raise KeyError(f"artist {artist_id!r} is not enrolled")
            s.execute(delete(DetectorReferenceLevel).where(DetectorReferenceLevel.artist_id == artist_id,
                                                           DetectorReferenceLevel.model_id == model_id))
            s.add(DetectorReferenceLevel(artist_id=artist_id, model_id=model_id, level=float(level),
                                         n_references=int(n_references)))
            s.add(RegistryAudit(actor=actor, action="detector_level", artist_id=artist_id,
                                details={"model_id": model_id, "n_references": int(n_references)}))

    def detector_levels(self, model_id: str) -> dict[str, float]:
        """Enrolled artists' reference levels for this detector model (artists without one are absent)."""
        with Session(self.engine) as s:
            rows = s.execute(select(DetectorReferenceLevel.artist_id, DetectorReferenceLevel.level)
                             .where(DetectorReferenceLevel.model_id == model_id)).all()
        return {str(a): float(v) for a, v in rows}

    def policies(self) -> dict[str, ArtistPolicy]:
        with Session(self.engine) as s:
            return {
                a.artist_id: ArtistPolicy(a.artist_id, a.policy, tuple(a.licensed_partner_ids or ()), a.name,
                                          a.profile_id)
                for a in s.execute(select(Artist)).scalars()
            }

    def voiceprints(self, top_k: int | None = None) -> Voiceprints:
        """Centroids, profile map, cohort (minus rows of enrolled voices) with each centroid's AS-norm statistics,
        and the current calibration. ``top_k`` defaults to the calibration's (it is part of the operating point)."""
        with Session(self.engine) as s:
            rows = s.execute(select(Centroid.artist_id, Centroid.vector).order_by(Centroid.artist_id)).all()
            artists = list(s.execute(select(Artist)).scalars())
            profiles = {a.profile_id: a.artist_id for a in artists if a.profile_id}
            enrolled = {subject_ref(a.artist_id) for a in artists}
            cohort_rows = s.execute(select(CohortEmbedding.vector, CohortEmbedding.subject_ref)
                                    .order_by(CohortEmbedding.id)).all()
        calibration = self.calibration()
        ids = tuple(r[0] for r in rows)
        matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else _empty()
        # An enrolled voice is no longer a cohort voice: it would pull its own trials down.
        kept = [np.frombuffer(v, dtype=np.float32) for v, ref in cohort_rows if ref not in enrolled]
        cohort = np.stack(kept) if kept else _empty()
        if top_k is None:
            top_k = calibration.top_k if calibration is not None else DEFAULT_TOP_K
        stats = None
        if len(cohort) and len(matrix):
            if cohort.shape[1] != matrix.shape[1]:
                raise ValueError(f"cohort embeddings have {cohort.shape[1]} dimensions, voiceprints "
                                 f"{matrix.shape[1]}: they come from different speaker encoders; rebuild the cohort "
                                 "(`trackguard artists calibrate --cohort-from-corpus`)")
            # rows in the search's order (`models.voice_search.search_order`): it skips more AS-norm work
            order, matrix, stats = prepare(matrix, cohort, top_k)
            ids = tuple(ids[i] for i in order)
        return Voiceprints(ids, matrix.astype(np.float32), profiles, cohort, stats, top_k, calibration)

    def audit(self, artist_id: str | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(RegistryAudit).order_by(RegistryAudit.id)
            if artist_id:
                q = q.where(RegistryAudit.artist_id == artist_id)
            return [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "artist_id": r.artist_id,
                     "details": json.loads(json.dumps(r.details))} for r in s.execute(q).scalars()]
