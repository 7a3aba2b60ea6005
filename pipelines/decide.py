"""Turn the three scorers' outputs into one verdict, following policy and artist choice.

Routing order (first match wins), per DESIGN.md:
1. synthetic vocals that match an enrolled artist → `impersonation`, shaped by
   that artist's policy (block / allow_licensed / monitor);
2. delivered to an enrolled artist's profile with a voice that does not match
   → `profile-mismatch`, synthetic or not;
3. synthetic vocals, no match, not declared by the distributor → `undisclosed-ai`;
   a synthetic score counts only where the detector found vocals (policy
   ``synthetic_needs_vocals``): on a noise or instrumental upload it scored the
   loudest windows, and what it says there is not about a voice. A copy of a
   catalogued upload also counts as synthetic when it scores
   ``thresholds.synthetic_over_original`` logits above that original (reason
   ``synthetic_over_matched_original``);
4. near-duplicate of an earlier upload → `duplicates`;
5. spam score over threshold → `spam`;
6. otherwise `pass`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from models.artist_norm import ArtistScoreNorm
from models.base import DetectorOutput, SpamOutput, TrackInput, VerifierOutput
from models.duplicates import DuplicateFinding
from models.voiceprints import ArtistPolicy
from pipelines.config import PipelineConfig
from trackguard.contracts import Decision, Queue, Verdict


@dataclasses.dataclass(frozen=True)
class Thresholds:
    synthetic: float
    spam: float
    # detector logits a copy of a catalogued upload must score above that original to count as synthetic
    # vocals (see `synthetic_over_original`); None turns the comparison off
    synthetic_over_original: float | None = None


@dataclasses.dataclass
class Scores:
    detector: DetectorOutput | None
    verifier: VerifierOutput | None
    spam: SpamOutput | None
    model_versions: dict[str, str]
    duplicate: DuplicateFinding | None = None  # the catalogue match, when duplicate matching is on


def _impersonation(track: TrackInput, artist: ArtistPolicy | None,
                   cfg: PipelineConfig) -> tuple[Decision, int, list[str]]:
    policy = artist.policy if artist else "block"
    reasons = ["synthetic_voice", "matches_enrolled_artist", f"artist_policy_{policy}"]
    if policy == "allow_licensed" and artist and track.row.uploader_id in artist.licensed_partner_ids:
        return Decision.PASS, 0, [*reasons, "licensed_use"]
    if policy == "monitor":
        return Decision.REVIEW, int(cfg.policy.get("monitor_priority", 20)), reasons
    if policy == "block":
        return Decision.BLOCK, cfg.priority(Queue.IMPERSONATION.value), reasons
    return Decision.REVIEW, cfg.priority(Queue.IMPERSONATION.value), reasons


def decide(track: TrackInput, scores: Scores, artists: dict[str, ArtistPolicy],
           thresholds: Thresholds, cfg: PipelineConfig, artist_norm: ArtistScoreNorm | None = None) -> Verdict:
    det, ver, spam = scores.detector, scores.verifier, scores.spam
    verdict = Verdict(upload_id=track.row.upload_id, decision=Decision.PASS, model_versions=dict(scores.model_versions))
    _attach_evidence(verdict, det, ver, spam)
    verdict.duplicate_of = duplicate_of(scores)
    matched = ver.matched_artist_id if ver else None
    synthetic, reasons_extra = synthetic_vocals(det, thresholds, cfg, artist_norm, matched)
    if not synthetic and synthetic_over_original(det, scores.duplicate, thresholds, cfg):
        synthetic, reasons_extra = True, [*reasons_extra, "synthetic_over_matched_original"]
    queue: Queue | None = None
    reasons: list[str] = []
    if synthetic and matched and matched in artists:
        decision, priority, reasons = _impersonation(track, artists.get(matched), cfg)
        queue = None if decision is Decision.PASS else Queue.IMPERSONATION
        verdict.decision, verdict.priority = decision, priority
    elif ver is not None and ver.claimed_enrolled and ver.claimed_matches is False:
        queue, reasons = Queue.PROFILE_MISMATCH, ["profile_mismatch"] + (["synthetic_voice"] if synthetic else [])
    elif synthetic and not track.row.declared_ai:
        queue, reasons = Queue.UNDISCLOSED_AI, ["synthetic_voice", "undisclosed_ai"]
    elif duplicate_of(scores):
        queue, reasons = Queue.DUPLICATES, ["duplicate"]
    elif spam is not None and spam.score >= thresholds.spam:
        queue, reasons = Queue.SPAM, ["spam"]
    if synthetic and track.row.declared_ai:
        reasons.append("declared_ai")
    reasons.extend(reasons_extra)
    if queue is not None and verdict.decision is Decision.PASS:
        verdict.decision, verdict.priority = Decision.REVIEW, cfg.priority(queue.value)
    verdict.queue, verdict.reasons = queue, reasons
    return verdict


def synthetic_vocals(det: DetectorOutput | None, thresholds: Thresholds, cfg: PipelineConfig,
                     artist_norm: ArtistScoreNorm | None = None,
                     singer: str | None = None) -> tuple[bool, list[str]]:
    """Whether the detector calls the vocals synthetic, and the reason codes when its score is set aside.

    ``singer``: the enrolled artist the verifier matched. When that artist's own reference
    recordings score high on this detector (`models.artist_norm`), the score is judged after
    their offset; a flag that only the artist's own level explains is set aside, with a reason.
    """
    if det is None or det.score < thresholds.synthetic:
        return False, []
    if det.vocal_windows == 0 and cfg.policy.get("synthetic_needs_vocals", True):
        return False, ["synthetic_score_without_vocals"]  # it scored the loudest windows: no voice to judge
    adjusted = artist_norm.adjusted_score(det.logit, singer) if artist_norm is not None else None
    if adjusted is not None and adjusted < thresholds.synthetic:
        return False, ["synthetic_score_within_artist_reference"]
    return True, []


def synthetic_over_original(det: DetectorOutput | None, duplicate: DuplicateFinding | None,
                            thresholds: Thresholds, cfg: PipelineConfig) -> bool:
    """Whether a copy of a catalogued upload scores ``thresholds.synthetic_over_original`` logits or more
    above the original it copies (same detector model).

    An AI cover that reuses a catalogued song's mix is matched by the duplicate stage. Its original
    shares the song, the mix and often the voice, which is what moves the detector's absolute level
    from song to song; the difference between the two is mostly how the vocal was made.
    """
    margin = thresholds.synthetic_over_original
    reference = duplicate.reference_detector_logit if duplicate is not None else None
    if det is None or margin is None or reference is None:
        return False
    if det.vocal_windows == 0 and cfg.policy.get("synthetic_needs_vocals", True):
        return False
    return det.logit - reference >= margin


def duplicate_of(scores: Scores) -> str | None:
    """The earlier upload this one copies: the catalogue's finding, else what the spam scorer saw."""
    if scores.duplicate is not None:
        return scores.duplicate.duplicate_of
    return scores.spam.duplicate_of if scores.spam is not None else None


def _attach_evidence(verdict: Verdict, det: DetectorOutput | None, ver: VerifierOutput | None,
                     spam: SpamOutput | None) -> None:
    if det is not None:
        verdict.synthetic_score = float(det.score)
        verdict.synthetic_segments = list(det.segments)
    if ver is not None:
        verdict.matched_artist_id = ver.matched_artist_id
        verdict.voice_similarity = None if ver.similarity is None else float(ver.similarity)
    if spam is not None:
        verdict.spam_score = float(spam.score)
        verdict.spam_reasons = list(spam.reasons)


def thresholds_from(cfg: PipelineConfig, stored: dict[str, Any]) -> Thresholds:
    """Policy overrides win; otherwise the threshold stored with each artifact. The copy rule's margin
    (`synthetic_over_original`, stored by `trackguard train copy-margin`) has no default: without one it is
    off, and ``false`` in the policy turns it off too."""

    def chosen(name: str) -> float | None:
        override = cfg.threshold(name)
        if override is not None:
            return override
        value = stored.get(name)
        return None if value is None else float(value)

    def pick(name: str, default: float) -> float:
        value = chosen(name)
        return default if value is None else value

    copy_rule_off = cfg.policy.get("thresholds", {}).get("synthetic_over_original") is False
    return Thresholds(synthetic=pick("synthetic", 0.5), spam=pick("spam", 0.5),
                      synthetic_over_original=None if copy_rule_off else chosen("synthetic_over_original"))
