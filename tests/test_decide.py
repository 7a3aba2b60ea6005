"""Routing rules and artist choice in `decide`, on hand-made scorer outputs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pytest

from models.base import DetectorOutput, SpamOutput, TrackInput, VerifierOutput
from models.duplicates import DuplicateFinding
from models.voiceprints import ArtistPolicy
from pipelines.config import load_config
from pipelines.decide import Scores, Thresholds, decide
from trackguard.contracts import Decision, ManifestRow

CFG = load_config(db_url="sqlite://")
THRESHOLDS = Thresholds(synthetic=0.5, spam=0.6)
ARTISTS = {
    "a-block": ArtistPolicy("a-block", "block"),
    "a-lic": ArtistPolicy("a-lic", "allow_licensed", ("partner-1",)),
    "a-mon": ArtistPolicy("a-mon", "monitor"),
}


def track(uploader: str = "u-9", declared_ai: bool = False, claimed: str | None = None) -> TrackInput:
    row = ManifestRow("up-1", "file:///x.wav", "t", "n", "d", uploader, dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                      claimed_artist_id=claimed, declared_ai=declared_ai)
    return TrackInput(row, np.zeros(16000, np.float32), 16000, 1.0, [(0.0, 1.0, 1.0)], {})


def scores(synthetic: float = 0.1, matched: str | None = None, spam: float = 0.1, claimed_enrolled: bool = False,
           claimed_matches: bool | None = None, duplicate_of: str | None = None) -> Scores:
    ver = VerifierOutput(matched, 0.8 if matched else 0.2, claimed_enrolled=claimed_enrolled,
                         claimed_matches=claimed_matches)
    return Scores(DetectorOutput(synthetic, []), ver, SpamOutput(spam, ["r"], duplicate_of=duplicate_of),
                  {"detector": "d@1", "verifier": "v@1", "spam": "s@1"})


def route(t: TrackInput, s: Scores) -> tuple[str, str | None, list[str]]:
    v = decide(t, s, ARTISTS, THRESHOLDS, CFG)
    return v.decision.value, v.queue.value if v.queue else None, v.reasons


def test_clean_upload_passes() -> None:
    assert route(track(), scores()) == ("pass", None, [])


@pytest.mark.parametrize(
    ("artist", "uploader", "expected"),
    [
        ("a-block", "u-9", ("block", "impersonation")),
        ("a-mon", "u-9", ("review", "impersonation")),
        ("a-lic", "u-9", ("review", "impersonation")),
        ("a-lic", "partner-1", ("pass", None)),
    ],
)
def test_clone_of_enrolled_artist_follows_artist_policy(artist: str, uploader: str,
                                                         expected: tuple[str, str | None]) -> None:
    decision, queue, reasons = route(track(uploader=uploader), scores(synthetic=0.9, matched=artist))
    assert (decision, queue) == expected
    assert "matches_enrolled_artist" in reasons
    if uploader == "partner-1":
        assert "licensed_use" in reasons


def test_monitor_is_low_priority_and_block_is_highest() -> None:
    mon = decide(track(), scores(synthetic=0.9, matched="a-mon"), ARTISTS, THRESHOLDS, CFG)
    blk = decide(track(), scores(synthetic=0.9, matched="a-block"), ARTISTS, THRESHOLDS, CFG)
    assert mon.priority < blk.priority == CFG.priority("impersonation")


def test_profile_mismatch_whether_synthetic_or_not() -> None:
    for synthetic in (0.1, 0.9):
        got = route(track(claimed="prf-1"), scores(synthetic=synthetic, claimed_enrolled=True, claimed_matches=False))
        assert got[:2] == ("review", "profile-mismatch")


def test_undisclosed_ai_respects_declaration() -> None:
    assert route(track(), scores(synthetic=0.9))[:2] == ("review", "undisclosed-ai")
    decision, queue, reasons = route(track(declared_ai=True), scores(synthetic=0.9))
    assert (decision, queue) == ("pass", None) and "declared_ai" in reasons


def test_duplicates_then_spam() -> None:
    assert route(track(), scores(spam=0.9, duplicate_of="up-0"))[:2] == ("review", "duplicates")
    assert route(track(), scores(spam=0.9))[:2] == ("review", "spam")
    assert route(track(), scores(spam=0.59))[:2] == ("pass", None)


def test_catalogue_finding_routes_duplicates_and_names_the_original() -> None:
    finding = DuplicateFinding("up-1", "up-0", 40, 0.8, (0.0, 30.0), (0.0, 30.0), 1.0, 2.0, 1)
    s = dataclasses.replace(scores(spam=0.1), duplicate=finding)
    v = decide(track(), s, ARTISTS, THRESHOLDS, CFG)
    assert (v.decision.value, v.queue.value if v.queue else None, v.duplicate_of) == ("review", "duplicates", "up-0")
    # a synthetic upload is routed by the detector first, but keeps the duplicate evidence
    v = decide(track(), dataclasses.replace(s, detector=DetectorOutput(0.9, [])), ARTISTS, THRESHOLDS, CFG)
    assert v.queue is not None and v.queue.value == "undisclosed-ai" and v.duplicate_of == "up-0"
    # no catalogue match: the spam scorer's own duplicate_of is not consulted over the finding
    none = dataclasses.replace(scores(duplicate_of="stale"), duplicate=DuplicateFinding("up-1", None))
    assert decide(track(), none, ARTISTS, THRESHOLDS, CFG).duplicate_of is None


def test_verdict_carries_evidence_and_model_versions() -> None:
    v = decide(track(), scores(synthetic=0.9, matched="a-block"), ARTISTS, THRESHOLDS, CFG)
    assert v.synthetic_score == 0.9 and v.matched_artist_id == "a-block" and v.voice_similarity == 0.8
    assert v.spam_reasons == ["r"] and v.model_versions == {"detector": "d@1", "verifier": "v@1", "spam": "s@1"}
    assert v.decision is Decision.BLOCK


def test_synthetic_score_without_vocals_does_not_flag() -> None:
    """On a track where no window sounded like singing the detector scored the loudest windows:
    a high score there is kept as evidence but routes nothing, unless the policy turns the gate off."""
    no_vocals = dataclasses.replace(scores(), detector=DetectorOutput(0.9, [], vocal_windows=0))
    assert route(track(), no_vocals) == ("pass", None, ["synthetic_score_without_vocals"])
    assert decide(track(), no_vocals, ARTISTS, THRESHOLDS, CFG).synthetic_score == pytest.approx(0.9)
    with_vocals = dataclasses.replace(scores(), detector=DetectorOutput(0.9, [], vocal_windows=1))
    assert route(track(), with_vocals) == ("review", "undisclosed-ai", ["synthetic_voice", "undisclosed_ai"])
    ungated = dataclasses.replace(CFG, policy={**CFG.policy, "synthetic_needs_vocals": False})
    assert decide(track(), no_vocals, ARTISTS, THRESHOLDS, ungated).queue is not None
    low = dataclasses.replace(scores(), detector=DetectorOutput(0.2, [], vocal_windows=0))
    assert route(track(), low) == ("pass", None, [])  # below threshold: nothing to set aside


def _copy_scores(logit: float, reference: float | None, vocal_windows: int | None = 2,
                 matched: str | None = None) -> Scores:
    """An upload the duplicate stage matched to an earlier one whose detector logit was ``reference``."""
    finding = DuplicateFinding("up-1", "up-0", 40, 0.8, (0.0, 30.0), (0.0, 30.0), 1.0, 0.0, 1,
                               reference_detector_logit=reference)
    det = DetectorOutput(float(1 / (1 + np.exp(-logit))), [], logit=logit, vocal_windows=vocal_windows)
    return dataclasses.replace(scores(matched=matched), detector=det, duplicate=finding)


@pytest.mark.parametrize(("logit", "reference", "expected"), [
    (-1.0, -6.0, ("review", "undisclosed-ai")),  # under the absolute threshold, 5 logits over its original
    (-1.0, -4.5, ("review", "duplicates")),  # 3.5 over: under the margin, so a plain copy
    (-1.0, None, ("review", "duplicates")),  # the original was never scored (or by another model)
])
def test_a_copy_scoring_well_over_its_original_counts_as_synthetic(
        logit: float, reference: float | None, expected: tuple[str, str]) -> None:
    thresholds = dataclasses.replace(THRESHOLDS, synthetic_over_original=4.0)
    v = decide(track(), _copy_scores(logit, reference), ARTISTS, thresholds, CFG)
    assert (v.decision.value, v.queue.value if v.queue else None) == expected
    assert ("synthetic_over_matched_original" in v.reasons) == (expected[1] == "undisclosed-ai")
    assert v.duplicate_of == "up-0" and v.synthetic_score == pytest.approx(1 / (1 + np.exp(1.0)))


def test_copy_rule_follows_artist_policy_and_needs_vocals_and_a_margin() -> None:
    thresholds = dataclasses.replace(THRESHOLDS, synthetic_over_original=4.0)
    v = decide(track(), _copy_scores(-1.0, -6.0, matched="a-block"), ARTISTS, thresholds, CFG)
    assert (v.decision, v.queue and v.queue.value) == (Decision.BLOCK, "impersonation")
    no_vocals = decide(track(), _copy_scores(-1.0, -6.0, vocal_windows=0), ARTISTS, thresholds, CFG)
    assert no_vocals.queue and no_vocals.queue.value == "duplicates"
    off = decide(track(), _copy_scores(-1.0, -6.0), ARTISTS, THRESHOLDS, CFG)  # no margin: the rule is off
    assert off.queue and off.queue.value == "duplicates" and "synthetic_over_matched_original" not in off.reasons


def test_copy_margin_is_the_detectors_unless_the_policy_says_otherwise() -> None:
    from pipelines.decide import thresholds_from

    def policy(value: object) -> Any:
        thresholds = {**CFG.policy["thresholds"], "synthetic_over_original": value}
        return dataclasses.replace(CFG, policy={**CFG.policy, "thresholds": thresholds})

    measured = {"synthetic_over_original": 3.7}  # what `trackguard train copy-margin` stored in the card
    assert CFG.policy["thresholds"]["synthetic_over_original"] is None  # pipelines/policy.yaml: the detector's
    assert thresholds_from(CFG, measured).synthetic_over_original == 3.7
    assert thresholds_from(CFG, {}).synthetic_over_original is None  # a detector without one: off
    assert thresholds_from(policy(5.0), measured).synthetic_over_original == 5.0
    assert thresholds_from(policy(False), measured).synthetic_over_original is None


def test_every_reason_decide_gives_has_a_sentence_for_reviewers() -> None:
    from moderation.web.explain import REASONS

    codes = {"synthetic_voice", "matches_enrolled_artist", "licensed_use", "profile_mismatch", "undisclosed_ai",
             "duplicate", "spam", "declared_ai", "synthetic_score_without_vocals",
             "synthetic_score_within_artist_reference", "synthetic_over_matched_original"}
    assert codes - set(REASONS) == set()
