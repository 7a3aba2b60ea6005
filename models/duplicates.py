"""Near-duplicates of earlier uploads, found in upload-time order, with a persistent catalogue.

A batch of uploads (a sweep, or a training corpus) is matched in two passes, so
that the cost is one query per upload and one sort of the batch's hashes:

1. against the persistent ``FingerprintIndex`` of earlier sweeps;
2. against a temporary index of the batch itself.

Either way only matches with an *earlier* upload count (by ``(uploaded_at,
upload_id)``): an upload is never the duplicate of one that came after it, so
re-running a sweep whose uploads are already indexed gives the same answer, and
the features are as-of features (no look-ahead), like `features.history`.

The catalogue ledger (``uploads.parquet`` next to the index) remembers every
indexed upload's time, uploader, duration and whether it was a duplicate, which the
as-of share of an uploader's duplicate uploads needs across sweeps.

| feature | why it signals spam |
| --- | --- |
| ``duplicate_prior_matches`` | earlier uploads this one near-duplicates: farms copy one track many times |
| ``duplicate_match_score`` | the best match's share of surviving hashes (0 when none): how complete the copy is |
| ``uploader_duplicate_share`` | share of the uploader's earlier uploads that were duplicates (NaN for a first upload) |
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.fingerprint import Fingerprint
from models.fingerprint_index import FingerprintIndex, IndexConfig, Match, strongest_per_second

DUPLICATE_FEATURES = ("duplicate_prior_matches", "duplicate_match_score", "uploader_duplicate_share")
LEDGER_FILE = "uploads.parquet"
TimeKey = tuple[int, str]


@dataclasses.dataclass(frozen=True)
class DuplicatePolicy:
    """When a match makes an upload a duplicate (pipeline parameters, see policy.yaml).

    ``min_score``: hashes consistent with one pitch shift and one time map; unrelated
    synthetic music peaked at 8 (see ``models.fingerprint_index.DEFAULT_MIN_SCORE``).
    ``min_normalised_score``: the share of the reference's indexed hashes in the
    matched span that the copy kept; on the demo corpus, unrelated songs that reached
    ``min_score`` kept at most 0.25 and re-uploads at least 0.47.

    ``min_coverage``: the matched span over the shorter track's duration; a second or two
    of shared texture is not a copy (demo corpus: unrelated matches covered 0.02 and
    0.26, real copies 0.65 and more). Using the shorter track keeps excerpts and
    compilations that contain a whole track.
    """

    min_score: int = 10
    min_normalised_score: float = 0.35
    min_coverage: float = 0.5
    max_results: int = 24


@dataclasses.dataclass(frozen=True)
class DetectorLogit:
    """An upload's pooled synthetic-voice logit; comparable only with another of the same ``model_id``."""

    model_id: str
    logit: float


@dataclasses.dataclass(frozen=True)
class UploadFingerprint:
    """What matching needs of one upload; ``fingerprint`` may be pre-thinned (see `for_query`)."""

    upload_id: str
    uploaded_at: datetime
    uploader_id: str
    duration_s: float
    fingerprint: Fingerprint
    # this upload's pooled detector logit and the detector's model id, when it was scored: kept in the
    # ledger so that a later copy of this upload can be compared with it (`reference_detector_logit`)
    detector: DetectorLogit | None = None

    @property
    def key(self) -> TimeKey:
        return (_millis(self.uploaded_at), self.upload_id)


def for_query(fp: Fingerprint, config: IndexConfig | None = None) -> Fingerprint:
    """The hashes a query and an add can use (the strongest per second): what a pipeline ships around."""
    return strongest_per_second(fp, (config or IndexConfig()).query_hashes_per_s)


@dataclasses.dataclass(frozen=True)
class DuplicateFinding:
    """One upload's duplicate evidence and its as-of duplicate features."""

    upload_id: str
    duplicate_of: str | None
    score: int = 0
    normalised_score: float = 0.0
    query_span_s: tuple[float, float] = (0.0, 0.0)
    reference_span_s: tuple[float, float] = (0.0, 0.0)
    time_scale: float = 1.0
    pitch_shift_semitones: float = 0.0
    prior_matches: int = 0
    uploader_prior_uploads: int = 0
    uploader_prior_duplicates: int = 0
    # the matched original's pooled detector logit, from the same detector model as this upload's
    # (None: no match, the original was not scored, or by another model)
    reference_detector_logit: float | None = None

    def features(self) -> dict[str, float]:
        prior = self.uploader_prior_uploads
        return {
            "duplicate_prior_matches": float(self.prior_matches),
            "duplicate_match_score": float(self.normalised_score if self.duplicate_of else 0.0),
            "uploader_duplicate_share": self.uploader_prior_duplicates / prior if prior else math.nan,
        }

    def reason(self) -> str | None:
        """The evidence in a reviewer's words: which upload, which span, how it was changed."""
        if not self.duplicate_of:
            return None
        changes = []
        if abs(self.pitch_shift_semitones) >= 0.25:
            changes.append(f"pitch {self.pitch_shift_semitones:+.1f} st")
        speed = 1.0 / self.time_scale - 1.0  # time_scale is query seconds per reference second
        if abs(speed) >= 0.015:
            changes.append(f"tempo {speed:+.0%}")
        how = f" ({', '.join(changes)})" if changes else ""
        q, r = self.query_span_s, self.reference_span_s
        text = (f"near-duplicate of upload {self.duplicate_of}: {_clock(q[0])}–{_clock(q[1])} here matches "
                f"{_clock(r[0])}–{_clock(r[1])} there{how}, {self.normalised_score:.0%} of its hashes")
        if self.prior_matches > 1:
            text += f"; matches {self.prior_matches} earlier uploads"
        return text


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _millis(ts: datetime) -> int:
    t = pd.Timestamp(ts)
    return int((t.tz_localize("UTC") if t.tzinfo is None else t).value // 1_000_000)


# ---------------------------------------------------------------- matching


def _coverage(m: Match, query_s: float, reference_s: float | None) -> float:
    shorter = min(query_s, reference_s) if reference_s else query_s
    return (m.query_span_s[1] - m.query_span_s[0]) / max(shorter, 1e-6)


def _earlier_matches(matches: Iterable[Match], upload: UploadFingerprint, keys: Mapping[str, TimeKey],
                     durations: Mapping[str, float], policy: DuplicatePolicy) -> list[Match]:
    """Matches with uploads strictly before ``upload`` that pass the policy.

    A reference the ledger does not know (indexed by another tool) counts as earlier.
    """
    out = []
    for m in matches:
        ref_key = keys.get(m.reference_id)
        if ref_key is not None and ref_key >= upload.key:
            continue
        if (m.score >= policy.min_score and m.normalised_score >= policy.min_normalised_score
                and _coverage(m, upload.duration_s, durations.get(m.reference_id)) >= policy.min_coverage):
            out.append(m)
    return out


def _batch_index(batch: Sequence[UploadFingerprint], directory: Path) -> FingerprintIndex:
    index = FingerprintIndex.open(directory)
    for u in batch:
        index.add(u.upload_id, u.fingerprint, duration_s=u.duration_s)
    return index


def _best(matches: Sequence[Match], keys: Mapping[str, TimeKey]) -> Match | None:
    """Highest score; among equal scores the earliest upload (the likely original)."""
    if not matches:
        return None
    return min(matches, key=lambda m: (-m.score, keys.get(m.reference_id, (0, "")), m.reference_id))


def match_batch(batch: Sequence[UploadFingerprint], index: FingerprintIndex | None,
                keys: Mapping[str, TimeKey], durations: Mapping[str, float],
                policy: DuplicatePolicy) -> dict[str, list[Match]]:
    """upload_id → its matches with earlier uploads, from ``index`` and from the batch itself.

    ``keys`` and ``durations`` cover every upload a match may name: the ledger's and the batch's.
    """
    found: dict[str, dict[str, Match]] = {u.upload_id: {} for u in batch}
    with tempfile.TemporaryDirectory(prefix="tg-dup-") as tmp:
        sources = [index] if index is not None and len(index) else []
        sources.append(_batch_index(batch, Path(tmp)))
        for source in sources:
            for u in batch:
                hits = source.query(u.fingerprint, exclude_id=u.upload_id, min_score=policy.min_score,
                                    max_results=policy.max_results)
                for m in _earlier_matches(hits, u, keys, durations, policy):
                    old = found[u.upload_id].get(m.reference_id)
                    if old is None or m.score > old.score:
                        found[u.upload_id][m.reference_id] = m
    return {uid: list(ms.values()) for uid, ms in found.items()}


def _finding(upload_id: str, matches: Sequence[Match], keys: Mapping[str, TimeKey]) -> DuplicateFinding:
    best = _best(matches, keys)
    if best is None:
        return DuplicateFinding(upload_id, None)
    return DuplicateFinding(upload_id, best.reference_id, best.score, best.normalised_score, best.query_span_s,
                            best.reference_span_s, best.time_scale, best.pitch_shift_semitones, len(matches))


def with_uploader_history(findings: Mapping[str, DuplicateFinding], ledger: pd.DataFrame) -> list[DuplicateFinding]:
    """Fill the as-of uploader counts by walking the ledger (this batch included) in time order."""
    counts: dict[str, list[int]] = {}
    out = []
    for row in ledger.sort_values(["uploaded_at_ms", "upload_id"]).itertuples(index=False):
        prior = counts.setdefault(str(row.uploader_id), [0, 0])
        finding = findings.get(str(row.upload_id))
        if finding is not None:
            out.append(dataclasses.replace(finding, uploader_prior_uploads=prior[0],
                                           uploader_prior_duplicates=prior[1]))
        prior[0] += 1
        prior[1] += int(bool(row.is_duplicate))
    return out


# ---------------------------------------------------------------- the persistent catalogue


def _empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({"upload_id": pd.Series(dtype=str), "uploaded_at_ms": pd.Series(dtype="int64"),
                         "uploader_id": pd.Series(dtype=str), "duration_s": pd.Series(dtype="float64"),
                         "is_duplicate": pd.Series(dtype=bool), "detector_model_id": pd.Series(dtype=object),
                         "detector_logit": pd.Series(dtype="float64")})


def _with_reference(finding: DuplicateFinding, query: UploadFingerprint,
                    logits: Mapping[str, DetectorLogit]) -> DuplicateFinding:
    """Attach the matched original's detector logit when the same detector model scored both."""
    ref = logits.get(finding.duplicate_of) if finding.duplicate_of else None
    if ref is None or query.detector is None or ref.model_id != query.detector.model_id:
        return finding
    return dataclasses.replace(finding, reference_detector_logit=ref.logit)


class DuplicateCatalogue:
    """The fingerprint index of every upload seen so far plus its ledger; single writer.

    ``directory=None`` gives a throw-away in-memory catalogue (training, tests).
    """

    def __init__(self, directory: Path | None, policy: DuplicatePolicy | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.policy = policy or DuplicatePolicy()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if self.directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tg-catalogue-")
            root = Path(self._tmp.name)
        else:
            root = self.directory
        self.index = FingerprintIndex.open(root / "index")
        ledger_path = root / LEDGER_FILE
        self.ledger_path = ledger_path
        self.ledger = pd.read_parquet(ledger_path) if ledger_path.exists() else _empty_ledger()
        for column, empty in _empty_ledger().items():  # a ledger written before a column existed
            if column not in self.ledger:
                self.ledger[column] = pd.Series(index=self.ledger.index, dtype=empty.dtype)

    def keys(self) -> dict[str, TimeKey]:
        return {str(u): (int(t), str(u)) for u, t in zip(self.ledger["upload_id"], self.ledger["uploaded_at_ms"],
                                                         strict=True)}

    def detector_logits(self) -> dict[str, DetectorLogit]:
        """Each ledger upload's stored detector logit (those that were scored)."""
        known = self.ledger[self.ledger["detector_logit"].notna() & self.ledger["detector_model_id"].notna()]
        return {str(u): DetectorLogit(str(m), float(x)) for u, m, x in
                zip(known["upload_id"], known["detector_model_id"], known["detector_logit"], strict=True)}

    def match(self, batch: Sequence[UploadFingerprint]) -> list[DuplicateFinding]:
        """Findings for ``batch`` (one per distinct upload_id, in time order); indexes the batch."""
        batch = list({u.upload_id: u for u in batch}.values())
        keys = {**self.keys(), **{u.upload_id: u.key for u in batch}}
        durations = {str(u): float(d) for u, d in zip(self.ledger["upload_id"], self.ledger["duration_s"],
                                                      strict=True) if pd.notna(d)}
        durations.update({u.upload_id: u.duration_s for u in batch})
        matches = match_batch(batch, self.index, keys, durations, self.policy)
        logits = {**self.detector_logits(), **{u.upload_id: u.detector for u in batch if u.detector is not None}}
        findings = {u.upload_id: _with_reference(_finding(u.upload_id, matches[u.upload_id], keys), u, logits)
                    for u in batch}
        rows = pd.DataFrame({
            "upload_id": [u.upload_id for u in batch], "uploaded_at_ms": [u.key[0] for u in batch],
            "uploader_id": [u.uploader_id for u in batch], "duration_s": [u.duration_s for u in batch],
            "is_duplicate": [findings[u.upload_id].duplicate_of is not None for u in batch],
            "detector_model_id": pd.Series([u.detector.model_id if u.detector else None for u in batch],
                                           dtype=object),
            "detector_logit": pd.Series([u.detector.logit if u.detector else None for u in batch], dtype="float64")})
        kept = self.ledger[~self.ledger["upload_id"].isin(rows["upload_id"])]
        self.ledger = pd.concat([kept, rows], ignore_index=True) if len(kept) else rows
        for u in batch:
            if u.upload_id not in self.index:  # fingerprints are deterministic: re-adding would only churn
                self.index.add(u.upload_id, u.fingerprint, duration_s=u.duration_s)
        return with_uploader_history(findings, self.ledger)

    def save(self) -> None:
        """Persist the index (one new segment) and the ledger (replaced atomically)."""
        self.index.flush()
        tmp = self.ledger_path.with_suffix(f".{os.getpid()}.tmp")
        self.ledger.to_parquet(tmp, index=False)
        os.replace(tmp, self.ledger_path)

    def forget(self, upload_ids: Iterable[str]) -> None:
        """Remove uploads (taken down, or deleted by their owner) from matching and the ledger."""
        ids = set(upload_ids)
        for uid in ids:
            self.index.remove(uid)
        self.ledger = self.ledger[~self.ledger["upload_id"].isin(ids)]


def findings_frame(findings: Sequence[DuplicateFinding]) -> pd.DataFrame:
    """Duplicate features per upload (index upload_id), columns ``DUPLICATE_FEATURES`` + duplicate_of."""
    rows = [{"upload_id": f.upload_id, "duplicate_of": f.duplicate_of, **f.features()} for f in findings]
    frame = pd.DataFrame(rows, columns=["upload_id", "duplicate_of", *DUPLICATE_FEATURES])
    return frame.set_index("upload_id")
