"""Vocal-activity windows, spectral front ends and audio statistics (synthetic audio)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from features.spectral import _mel_transform, lfcc, log_mel
from features.stats import STAT_KEYS, audio_stats
from features.windows import VOCAL_THRESHOLD, Window, score_windows, stack_windows, vocal_activity_windows
from tests.audio_factory import chord, noise, place, silence, tone, voice_like

SR = 16000


def bed(seconds: float, seed: int = 0) -> np.ndarray:
    """Instrumental backing: a sustained chord over soft noise."""
    return chord(SR, seconds, amplitude=0.15) + noise(SR, seconds, amplitude=0.05, seed=seed)


def overlaps(w: Window, spans: list[tuple[float, float]]) -> bool:
    return any(w.start_s < b and w.end_s > a for a, b in spans)


# --- vocal-activity windows -------------------------------------------------


def test_vocal_windows_are_found_where_voices_were_placed() -> None:
    spans = [(20.0, 30.0), (44.0, 50.0)]
    x = bed(60.0)
    for i, (a, b) in enumerate(spans):
        x = place(x, voice_like(SR, b - a, f0=150.0 + 60 * i, seed=i), a, SR)

    windows = vocal_activity_windows(x, SR)

    assert windows, "a track with vocals must give windows"
    assert all(w.vocal_score >= VOCAL_THRESHOLD for w in windows)
    assert all(overlaps(w, spans) for w in windows)
    inside = [(a, b) for a, b in spans if any(w.start_s >= a - 1e-6 and w.end_s <= b + 1e-6 for w in windows)]
    assert inside == spans, "every vocal section contributes a window lying wholly inside it"
    scores = [w.vocal_score for w in windows]
    assert scores == sorted(scores, reverse=True)
    bed_only = [w for w, _ in score_windows(x, SR) if not overlaps(w, spans)]
    assert max(w.vocal_score for w in bed_only) < 0.2


def test_voice_in_white_noise_is_found() -> None:
    x = place(noise(SR, 30.0, amplitude=0.08), voice_like(SR, 8.0), 12.0, SR)
    best = vocal_activity_windows(x, SR, max_windows=1)[0]
    assert best.start_s >= 12.0 and best.end_s <= 20.0


@pytest.mark.parametrize(
    "instrumental",
    [lambda: bed(40.0), lambda: noise(SR, 40.0, amplitude=0.1, color="pink"), lambda: tone(SR, 40.0, 440.0)],
    ids=["chord+noise", "pink-noise", "tone"],
)
def test_instrumental_falls_back_to_the_loudest_windows(instrumental) -> None:  # type: ignore[no-untyped-def]
    x = instrumental().copy()
    x[int(24 * SR) : int(32 * SR)] *= 4.0  # a louder passage: the fallback must rank it first
    windows = vocal_activity_windows(x, SR, max_windows=3)
    assert len(windows) == 3
    assert all(w.vocal_score < VOCAL_THRESHOLD for w in windows)
    assert all(w.start_s >= 24.0 - 1e-6 and w.end_s <= 32.0 + 1e-6 for w in windows)


def test_fallback_skips_silence_and_fades() -> None:
    x = np.concatenate([silence(SR, 20.0), bed(8.0), silence(SR, 20.0)])
    windows = vocal_activity_windows(x, SR)
    assert windows and all(overlaps(w, [(20.0, 28.0)]) for w in windows)


@pytest.mark.parametrize("seconds", [1.0, 2.5, 3.99, 4.0, 4.5, 10.3])
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_never_zero_windows_for_a_track_of_a_second_or_more(seconds: float, kind: str) -> None:
    x = silence(SR, seconds) if kind == "silence" else noise(SR, seconds)
    windows = vocal_activity_windows(x, SR)
    assert len(windows) >= 1
    assert all(0.0 <= w.start_s < w.end_s <= seconds + 1e-6 for w in windows)


def test_short_track_gets_one_padded_window() -> None:
    x = voice_like(SR, 1.5)
    windows = vocal_activity_windows(x, SR, win_s=4.0)
    assert windows == [Window(0.0, 1.5, windows[0].vocal_score)]
    stacked = stack_windows(x, SR, windows, win_s=4.0)
    assert stacked.shape == (1, 4 * SR) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[0, : x.size], x)
    assert not stacked[0, x.size :].any()


def test_windows_tile_the_track_and_cover_the_tail() -> None:
    scored = score_windows(noise(SR, 11.0), SR, win_s=4.0, hop_s=2.0)
    spans = [(w.start_s, w.end_s) for w, _ in scored]
    assert spans[:4] == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    assert spans[-1] == (7.0, 11.0)  # end-aligned window so the last second is not lost


def test_stack_windows_crops_and_pads() -> None:
    x = np.arange(10 * SR, dtype=np.float32)
    windows = [Window(2.0, 6.0, 1.0), Window(8.0, 10.0, 0.5)]
    stacked = stack_windows(x, SR, windows, win_s=4.0)
    assert stacked.shape == (2, 4 * SR)
    np.testing.assert_array_equal(stacked[0], x[2 * SR : 6 * SR])
    np.testing.assert_array_equal(stacked[1, : 2 * SR], x[8 * SR :])
    assert not stacked[1, 2 * SR :].any()
    assert stack_windows(x, SR, [], 4.0).shape == (0, 4 * SR)


def test_max_windows_and_empty_input() -> None:
    x = place(bed(30.0), voice_like(SR, 20.0), 5.0, SR)
    assert len(vocal_activity_windows(x, SR, max_windows=2)) == 2
    assert vocal_activity_windows(np.zeros(0, dtype=np.float32), SR) == []


def test_windows_work_at_other_rates() -> None:
    sr = 44100
    x = place(noise(sr, 20.0, amplitude=0.05), voice_like(sr, 6.0), 10.0, sr)
    best = vocal_activity_windows(x, sr, max_windows=1)[0]
    assert best.vocal_score >= VOCAL_THRESHOLD and best.start_s >= 10.0 and best.end_s <= 16.0


# --- spectral front ends ----------------------------------------------------


def test_log_mel_shape_and_tone_bin() -> None:
    wave = torch.from_numpy(np.stack([tone(SR, 2.0, 300.0), tone(SR, 2.0, 3000.0)]))
    mel = log_mel(wave, SR, n_mels=64)
    assert mel.shape == (2, 64, 2 * SR // 160 + 1)
    assert mel.dtype == torch.float32 and torch.isfinite(mel).all()
    low, high = (int(mel[i].mean(dim=1).argmax()) for i in range(2))
    assert low < 20 < 40 < high  # the 3 kHz tone peaks in a much higher mel band


def test_log_mel_is_finite_on_silence_and_accepts_1d() -> None:
    mel = log_mel(torch.zeros(SR), SR)
    assert mel.shape[0] == 1 and torch.isfinite(mel).all()


def test_transform_is_built_once_per_config() -> None:
    wave = torch.zeros(1, SR)
    log_mel(wave, SR)
    before = _mel_transform.cache_info().hits
    log_mel(wave, SR)
    assert _mel_transform.cache_info().hits == before + 1
    log_mel(wave, SR, n_mels=80)  # a new config is a miss, not a reuse of the wrong filterbank
    assert log_mel(wave, SR, n_mels=80).shape[1] == 80


def test_lfcc_shapes_and_deltas() -> None:
    wave = torch.from_numpy(np.stack([noise(SR, 1.0), tone(SR, 1.0)]))
    static = lfcc(wave, SR)
    assert static.shape == (2, 20, SR // 160 + 1)
    full = lfcc(wave, SR, deltas=True)
    assert full.shape == (2, 60, static.shape[2])
    torch.testing.assert_close(full[:, :20], static)
    assert torch.isfinite(full).all()
    assert not torch.allclose(static[0], static[1])  # noise and tone differ


# --- statistics -------------------------------------------------------------


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_loudness_of_a_sine_matches_bs1770(sr: int) -> None:
    # a 1 kHz sine with -20 dBFS peak: mean square 0.005, K-weighting ≈ +0.691 dB at 1 kHz
    stats = audio_stats(tone(sr, 10.0, 1000.0, amplitude=0.1), sr)
    assert stats["loudness_lufs"] == pytest.approx(-23.01, abs=0.1)
    assert stats["peak_dbfs"] == pytest.approx(-20.0, abs=0.01)
    assert stats["rms_dbfs"] == pytest.approx(-23.01, abs=0.01)


def test_loudness_gating_ignores_quiet_passages() -> None:
    x = np.concatenate([tone(SR, 10.0, 1000.0, amplitude=0.1), tone(SR, 10.0, 1000.0, amplitude=0.001)])
    stats = audio_stats(x, SR)
    # ungated mean would be ~3 dB lower; the relative gate drops the -40 dB half
    assert stats["loudness_lufs"] == pytest.approx(-23.01, abs=0.1)
    assert stats["dynamic_range_db"] > 35.0
    assert audio_stats(tone(SR, 10.0), SR)["dynamic_range_db"] < 0.1


def test_silence_ratio_and_edges_of_a_half_silent_file() -> None:
    x = np.concatenate([silence(SR, 2.0), tone(SR, 5.0, 300.0), silence(SR, 3.0)])
    stats = audio_stats(x, SR)
    assert stats["silence_ratio"] == pytest.approx(0.5, abs=0.02)
    assert stats["leading_silence_s"] == pytest.approx(2.0, abs=0.05)
    assert stats["trailing_silence_s"] == pytest.approx(3.0, abs=0.05)
    assert stats["duration_s"] == pytest.approx(10.0)


def test_flatness_centroid_and_zcr_separate_noise_from_tone() -> None:
    n, t = audio_stats(noise(SR, 5.0, amplitude=0.1), SR), audio_stats(tone(SR, 5.0, 440.0), SR)
    assert n["spectral_flatness"] > 0.3 > 0.01 > t["spectral_flatness"]
    assert t["spectral_centroid_hz"] == pytest.approx(440.0, rel=0.02)
    assert n["spectral_centroid_hz"] == pytest.approx(SR / 4, rel=0.1)  # white noise: middle of the band
    assert t["zcr"] == pytest.approx(2 * 440.0 / SR, rel=0.05)
    assert n["zcr"] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("x", [np.zeros(3 * SR, np.float32), np.zeros(0, np.float32), tone(SR, 0.2)])
def test_every_stat_is_present_and_finite(x: np.ndarray) -> None:
    stats = audio_stats(x, SR)
    assert tuple(stats) == STAT_KEYS
    assert all(np.isfinite(v) for v in stats.values())


def test_stats_are_fast() -> None:
    x = place(bed(180.0), voice_like(SR, 60.0), 60.0, SR)
    audio_stats(x[:SR], SR)  # warm the filter cache
    start = time.perf_counter()
    audio_stats(x, SR)
    assert time.perf_counter() - start < 0.5  # ~60 ms measured on 2 cores; slack for a busy CI box
