"""Which windows the verifier embeds (`models.verifier.crop_windows`), and that a calibration holds for one choice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest

from features.windows import voice_band_power
from models.asnorm import VoiceCalibration
from models.base import TrackInput
from models.verifier import (
    DEFAULT_THRESHOLD,
    MEAN,
    VOCAL_SCORE,
    VOICE_BAND,
    crop_windows,
    operating_point,
    scorer_id,
)
from models.voiceprints import VoiceprintStore
from tests.audio_factory import chord, voice_like
from trackguard.contracts import ManifestRow

SR = 16_000
MODEL = "ecapa-test@000000000000"


def track_with_voice_at(start_s: float, seconds: float = 20.0) -> TrackInput:
    """A steady chord pad throughout and a sung voice only in [start_s, start_s + 4), louder than the pad."""
    x = chord(SR, seconds, amplitude=0.1)
    voice = voice_like(SR, 4.0, amplitude=0.4)
    a = int(start_s * SR)
    x[a : a + len(voice)] += voice
    # the vocal-activity scorer rated every window alike (a saturated score), earliest first
    windows = [(float(s), float(s + 4), 1.0) for s in range(0, int(seconds) - 3, 2)]
    row = ManifestRow("u1", "", "", "", "", "", datetime(2026, 1, 1, tzinfo=UTC))
    return TrackInput(row, x, SR, seconds, windows, {})


def test_voice_band_choice_embeds_the_crops_where_the_voice_sings() -> None:
    track = track_with_voice_at(12.0)
    crops, spans = crop_windows(track, 2, 2.0, VOICE_BAND)
    assert crops.shape == (2, 2 * SR)
    assert spans[0] == (13.0, 15.0)  # the crop wholly inside the sung span first
    assert min(spans[1][1], 16.0) - max(spans[1][0], 12.0) >= 1.0  # then one half inside it
    first, first_spans = crop_windows(track, 2, 2.0, VOCAL_SCORE)
    assert first_spans == [(1.0, 3.0), (3.0, 5.0)]  # the first windows: the pad alone
    assert voice_band_power(crops, SR).min() > 3 * voice_band_power(first, SR).max()


def test_with_no_more_windows_than_asked_both_choices_keep_them_all_in_order() -> None:
    track = dataclasses.replace(track_with_voice_at(12.0), windows=[(12.0, 16.0, 0.9), (0.0, 4.0, 0.8)])
    _, band_spans = crop_windows(track, 3, 2.0, VOICE_BAND)
    _, score_spans = crop_windows(track, 3, 2.0, VOCAL_SCORE)
    assert band_spans == score_spans == [(13.0, 15.0), (1.0, 3.0)]


def test_an_unknown_crop_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="crop_choice"):
        crop_windows(track_with_voice_at(0.0), 3, 2.0, "loudest")
    with pytest.raises(ValueError, match="crop_choice"):
        scorer_id(MODEL, MEAN, "loudest")


def test_a_calibration_holds_only_for_the_crop_choice_it_was_measured_with(sqlite_url: str) -> None:
    rng = np.random.default_rng(0)
    store = VoiceprintStore(sqlite_url)
    store.enroll("a0", "A", "block", "label:test", rng.normal(size=(1, 192)).astype(np.float32), ["ref.wav"])
    store.set_cohort(rng.normal(size=(8, 192)).astype(np.float32), [f"v{i}" for i in range(8)])
    store.set_calibration(VoiceCalibration(threshold=2.5, target_far=0.01, measured_far=0.01, n_impostor_trials=100,
                                           normalisation="as-norm", cohort_size=8, top_k=3,
                                           model_id=scorer_id(MODEL, MEAN, VOCAL_SCORE), data="test"))
    prints = store.voiceprints()
    assert scorer_id(MODEL, MEAN, VOCAL_SCORE) != scorer_id(MODEL, MEAN) == scorer_id(MODEL, MEAN, VOICE_BAND)
    assert operating_point(prints, scorer_id(MODEL, MEAN, VOCAL_SCORE)).threshold == 2.5
    fallback = operating_point(prints, scorer_id(MODEL, MEAN))
    assert not fallback.calibrated and fallback.threshold == DEFAULT_THRESHOLD and "vocal-score" in fallback.why
