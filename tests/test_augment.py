"""features.augment: every step keeps the window's shape and level bounds, does what it claims, aligned.

All signals are generated here (seeded sweeps, vibrato tones, noise bursts); the codec
tests need the ffmpeg binary and the pitch/tempo tests sox, as the module itself does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import pytest
from scipy.signal import correlate

from features import augment as aug

SR = 16_000
MS2 = int(0.002 * SR)  # the alignment tolerance: 2 ms


# --------------------------------------------------------------------------- signals


def sweep(sr: int = SR, seconds: float = 2.0, f0: float = 150.0, f1: float = 6000.0, amp: float = 0.3) -> np.ndarray:
    """Exponential sine sweep: no period, so a cross-correlation has one clear peak."""
    t = np.arange(int(sr * seconds)) / sr
    k = np.log(f1 / f0) / seconds
    return (amp * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)).astype(np.float32)


def vibrato_tone(sr: int = SR, seconds: float = 2.0, f0: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """Harmonic, sung-like tone with 5 Hz vibrato."""
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * f0 * t + 0.5 * np.sin(2 * np.pi * 5 * t)
    x = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < sr / 2)
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def sine(freq: float, sr: int = SR, seconds: float = 2.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def noise(seed: int, sr: int = SR, seconds: float = 2.0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


def music_like(seed: int, sr: int = SR, seconds: float = 2.0) -> np.ndarray:
    """Tone plus sweep plus noise bursts at random places: distinct per seed, aperiodic."""
    rng = np.random.default_rng(seed)
    x = vibrato_tone(sr, seconds, f0=rng.uniform(150, 400)) + sweep(sr, seconds, f0=rng.uniform(100, 300))
    for start in rng.integers(0, x.size - sr // 10, size=4):
        x[start : start + sr // 20] += 0.3 * rng.standard_normal(sr // 20).astype(np.float32)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def lag_of(reference: np.ndarray, output: np.ndarray, max_lag: int) -> int:
    """Lag (samples) at which ``output`` best matches ``reference``: cross-correlation peak, ±max_lag."""
    ref = reference.astype(np.float64)[max_lag : reference.size - max_lag]
    scores = correlate(output.astype(np.float64), ref, mode="valid", method="fft")  # index k ↔ lag k - max_lag
    return int(np.argmax(scores[: 2 * max_lag + 1])) - max_lag


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    return float(10 * np.log10(np.mean(c**2) / np.mean((noisy.astype(np.float64) - c) ** 2)))


def peak_frequency(x: np.ndarray, sr: int = SR) -> float:
    seg = x[x.size // 4 : 3 * x.size // 4] * np.hanning(x.size // 2)
    spectrum = np.abs(np.fft.rfft(seg, 8 * seg.size))
    return float(np.fft.rfftfreq(8 * seg.size, 1 / sr)[np.argmax(spectrum)])


def assert_well_formed(y: np.ndarray, like: np.ndarray) -> None:
    assert y.shape == like.shape
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    assert y.size == 0 or np.max(np.abs(y)) <= 1.0


# --------------------------------------------------------------------------- every step


STEPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mp3": lambda x: aug.codec_round_trip(x, SR, "mp3", "64k"),
    "ogg": lambda x: aug.codec_round_trip(x, SR, "ogg", "q2"),
    "opus": lambda x: aug.codec_round_trip(x, SR, "opus", "24k"),
    "noise_white": lambda x: aug.add_noise(x, np.random.default_rng(0), 0.0, "white"),
    "noise_pink": lambda x: aug.add_noise(x, np.random.default_rng(0), 10.0, "pink"),
    "noise_brown": lambda x: aug.add_noise(x, np.random.default_rng(0), 10.0, "brown"),
    "noise_babble": lambda x: aug.add_noise(x, np.random.default_rng(0), 10.0, "babble", SR),
    "reverb": lambda x: aug.reverberate(x, SR, np.random.default_rng(0), 0.8),
    "gain": lambda x: aug.gain(x, 6.0),
    "lowpass": lambda x: aug.lowpass(x, SR, 4000.0),
    "pitch_tempo": lambda x: aug.pitch_tempo(x, SR, 1.0, 1.05),
    "tempo_slow": lambda x: aug.pitch_tempo(x, SR, -1.0, 0.95),
    "mix": lambda x: aug.mix_with(x, noise(9, amp=0.9), -5.0),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_each_step_keeps_shape_dtype_finite_and_peak(step: str) -> None:
    loud = np.clip(music_like(1) * 2.5, -1.0, 1.0)  # at full scale: boosts and additions must be rescaled
    y = STEPS[step](loud)
    assert_well_formed(y, loud)
    assert np.max(np.abs(y)) > 0.05  # not silenced


@pytest.mark.parametrize("step", ["noise_white", "reverb", "gain", "lowpass", "mix", "pitch_tempo", "mp3"])
def test_steps_survive_silent_and_empty_inputs(step: str) -> None:
    for x in (np.zeros(SR, np.float32), np.zeros(0, np.float32)):
        assert_well_formed(STEPS[step](x), x)


def test_non_finite_or_multichannel_input_is_rejected() -> None:
    bad = music_like(2)
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        aug.gain(bad, 1.0)
    with pytest.raises(ValueError, match="mono"):
        aug.gain(np.zeros((2, 100), np.float32), 1.0)


# --------------------------------------------------------------------------- codecs


@pytest.mark.parametrize(
    ("codec", "setting", "sr"),
    [("mp3", "64k", SR), ("mp3", "192k", SR), ("ogg", "q2", SR), ("ogg", "q6", SR), ("opus", "24k", SR),
     ("opus", "96k", SR), ("mp3", "128k", 44_100), ("opus", "48k", 44_100)],
)  # fmt: skip
def test_codec_round_trip_is_time_aligned(codec: str, setting: str, sr: int) -> None:
    x = music_like(3, sr)
    y = aug.codec_round_trip(x, sr, codec, setting)
    assert_well_formed(y, x)
    assert abs(lag_of(x, y, max_lag=int(0.02 * sr))) <= int(0.002 * sr)
    assert correlation(x, y) > 0.7


def test_low_bitrate_mp3_removes_content_above_17_5_khz_at_44_1_khz() -> None:
    sr = 44_100
    x = noise(4, sr, seconds=1.0)
    y = aug.codec_round_trip(x, sr, "mp3", "64k")  # lame low-passes 64 kbps near 16.5 kHz

    def high_share(s: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(s.astype(np.float64))) ** 2
        return float(power[np.fft.rfftfreq(s.size, 1 / sr) > 17_500].sum() / power.sum())

    assert 10 * np.log10(high_share(y) / high_share(x)) < -40.0


@pytest.mark.parametrize(("codec", "low", "high"), [("ogg", "q2", "q6"), ("opus", "24k", "96k")])
def test_lower_bitrate_distorts_more(codec: str, low: str, high: str) -> None:
    x = noise(5)
    assert snr_db(x, aug.codec_round_trip(x, SR, codec, low)) + 3 < snr_db(x, aug.codec_round_trip(x, SR, codec, high))


def test_mp3_bitrate_is_capped_below_32_khz_and_label_says_so() -> None:
    assert aug.codec_spec("mp3", "192k", 16_000).label == "mp3:160k"
    assert aug.codec_spec("mp3", "192k", 44_100).label == "mp3:192k"
    assert aug.codec_spec("ogg", "q4", 16_000).label == "ogg:q4"
    with pytest.raises(ValueError, match="unknown codec"):
        aug.codec_spec("aac", "128k", SR)
    with pytest.raises(ValueError, match="bad mp3 setting"):
        aug.codec_spec("mp3", "fast", SR)


def test_batched_codec_splits_back_to_the_right_aligned_windows() -> None:
    windows = [music_like(10 + i, seconds=1.0 + 0.25 * i) for i in range(5)]  # distinct and of unequal lengths
    specs = [aug.codec_spec(c, s, SR) for c, s in [("mp3", "64k"), ("opus", "24k"), ("mp3", "64k"), ("ogg", "q2"),
                                                     ("opus", "24k")]]  # fmt: skip
    batched = aug._codec_apply(windows, SR, specs)
    for x, y, spec in zip(windows, batched, specs, strict=True):
        single = aug.codec_round_trip(x, SR, spec.codec, str(spec.value))
        assert_well_formed(y, x)
        assert abs(lag_of(x, y, max_lag=int(0.02 * SR))) <= MS2
        assert correlation(y, single) > 0.9  # the same codec on the same window, not a neighbour's
        assert correlation(y, x) > 0.7


# --------------------------------------------------------------------------- noise, reverb, pitch/tempo, mix


@pytest.mark.parametrize("colour", aug.NOISE_COLOURS)
@pytest.mark.parametrize("target", [0.0, 12.5, 35.0])
def test_add_noise_hits_the_requested_snr(colour: str, target: float) -> None:
    x = vibrato_tone(amp=0.1)  # quiet enough that no peak rescale is needed
    y = aug.add_noise(x, np.random.default_rng(7), target, colour, SR)
    assert abs(snr_db(x, y) - target) <= 0.5


def test_noise_colours_have_their_spectral_tilt() -> None:
    def low_high_ratio(colour: str) -> float:
        n = aug.coloured_noise(4 * SR, np.random.default_rng(1), colour, SR)
        power = np.abs(np.fft.rfft(n)) ** 2
        f = np.fft.rfftfreq(n.size, 1 / SR)
        return float(power[(f > 100) & (f < 500)].mean() / power[(f > 4000) & (f < 7000)].mean())

    white, pink, brown = (low_high_ratio(c) for c in ("white", "pink", "brown"))
    assert 0.8 < white < 1.25
    assert 5 < pink < brown


def test_reverb_adds_a_decaying_tail_and_keeps_level() -> None:
    x = np.zeros(2 * SR, np.float32)
    x[: SR // 2] = noise(8, seconds=0.5, amp=0.2)
    y = aug.reverberate(x, SR, np.random.default_rng(3), rt60_s=0.6, drr_db=0.0)
    tail = slice(SR // 2 + SR // 20, SR // 2 + SR // 2)  # 50–500 ms after the burst ends

    def energy(s: np.ndarray) -> float:
        return float(np.sum(s.astype(np.float64) ** 2))

    assert energy(y[tail]) > 1e-3 * energy(y)  # the input is exactly silent there
    assert energy(y[tail][: SR // 8]) > energy(y[tail][-SR // 8 :])  # and it decays
    assert abs(10 * np.log10(energy(y) / energy(x))) < 0.1
    assert abs(lag_of(x, y, max_lag=MS2 * 5)) <= MS2  # direct path first: not delayed


def test_rir_starts_with_the_direct_path_and_decays_by_rt60() -> None:
    h = aug.synthetic_rir(SR, np.random.default_rng(0), rt60_s=0.5, drr_db=6.0)
    assert h[0] == 1.0 and np.argmax(np.abs(h)) == 0
    assert abs(10 * np.log10(1.0 / np.sum(h[1:] ** 2)) - 6.0) < 0.01
    early, late = np.mean(h[SR // 20 : SR // 10] ** 2), np.mean(h[SR // 2 - SR // 40 : SR // 2 + SR // 40] ** 2)
    assert 45 < 10 * np.log10(early / late) < 65  # ~54 dB between 75 ms and 500 ms for RT60 0.5 s


@pytest.mark.parametrize(("semitones", "expected"), [(1.0, 440 * 2 ** (1 / 12)), (-1.0, 440 * 2 ** (-1 / 12))])
def test_pitch_shift_moves_a_tone_by_a_semitone(semitones: float, expected: float) -> None:
    y = aug.pitch_tempo(sine(440.0), SR, semitones, 1.0)
    assert abs(peak_frequency(y) - expected) / expected < 0.01


@pytest.mark.parametrize("tempo", [0.95, 1.05])
def test_tempo_keeps_length_and_pitch(tempo: float) -> None:
    x = sine(440.0)
    y = aug.pitch_tempo(x, SR, 0.0, tempo)
    assert_well_formed(y, x)
    assert abs(peak_frequency(y) - 440.0) / 440.0 < 0.01


def test_neutral_pitch_tempo_is_identity() -> None:
    x = music_like(6)
    np.testing.assert_array_equal(aug.pitch_tempo(x, SR, 0.0, 1.0), x)


@pytest.mark.parametrize("ratio", [-5.0, 0.0, 15.0])
def test_mix_hits_the_vocal_to_accompaniment_ratio(ratio: float) -> None:
    vocal = vibrato_tone(amp=0.1)
    accompaniment = noise(11, seconds=0.7, amp=0.05)  # shorter: tiled
    y = aug.mix_with(vocal, accompaniment, ratio)
    assert abs(snr_db(vocal, y) - ratio) <= 0.5


def test_lowpass_removes_high_band_without_delay() -> None:
    x = music_like(12)
    y = aug.lowpass(x, SR, 4000.0)
    power = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / SR)
    assert power[f > 5000].sum() < 1e-3 * power.sum()
    assert lag_of(aug.lowpass(x, SR, 7000.0), x, max_lag=MS2 * 5) == 0


# --------------------------------------------------------------------------- augment and augment_batch

ALL_ON = aug.AugmentConfig(
    p_codec=1.0, p_noise=1.0, p_reverb=1.0, p_gain=1.0, p_lowpass=1.0, p_pitch_tempo=1.0, p_mix=1.0
)


def test_augment_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    x, music = music_like(20), noise(21, seconds=3.0, amp=0.2)
    a, steps_a = aug.augment(x, SR, np.random.default_rng(5), ALL_ON, accompaniment=music)
    b, steps_b = aug.augment(x, SR, np.random.default_rng(5), ALL_ON, accompaniment=music)
    c, steps_c = aug.augment(x, SR, np.random.default_rng(6), ALL_ON, accompaniment=music)
    assert_well_formed(a, x)
    np.testing.assert_array_equal(a, b)
    assert steps_a == steps_b
    assert steps_a != steps_c and not np.array_equal(a, c)
    assert [s.split(":")[0] for s in steps_a][:-1] == ["pitch_tempo", "reverb", "mix", "noise", "lowpass", "gain"]
    assert steps_a[-1].split(":")[0] in aug.CODECS


def test_augment_without_accompaniment_skips_mix_and_default_config_varies() -> None:
    x = music_like(22)
    rng = np.random.default_rng(0)
    labels = [aug.augment(x, SR, rng, aug.AugmentConfig(p_codec=0.0))[1] for _ in range(40)]
    assert not any(s.startswith("mix") for steps in labels for s in steps)
    assert [] in labels and any(len(steps) >= 2 for steps in labels)


def test_augment_batch_equals_a_loop_of_augment_without_codecs() -> None:
    config = dataclasses.replace(ALL_ON, p_codec=0.0, p_pitch_tempo=0.5)
    windows = np.stack([music_like(30 + i) for i in range(4)])
    music = noise(40, seconds=3.0, amp=0.2)
    batch, steps = aug.augment_batch_with_steps(windows, SR, np.random.default_rng(9), config, n_jobs=2,
                                                accompaniment=music)  # fmt: skip
    rng = np.random.default_rng(9)
    for i, x in enumerate(windows):
        single, single_steps = aug.augment(x, SR, rng, config, accompaniment=music)
        np.testing.assert_array_equal(batch[i], single)
        assert steps[i] == single_steps


# one setting per codec (those of STEPS): calibrations are shared, the test stays fast
CODECS_ONLY = aug.AugmentConfig(p_codec=1.0, p_noise=0.0, p_reverb=0.0, p_gain=0.0, p_lowpass=0.0, p_pitch_tempo=0.0,
                                mp3_kbps=(64,), ogg_quality=(2,), opus_kbps=(24,))  # fmt: skip


def test_augment_batch_with_codecs_matches_per_window_augment() -> None:
    windows = np.stack([music_like(50 + i, seconds=1.0) for i in range(6)])
    batch, steps = aug.augment_batch_with_steps(windows, SR, np.random.default_rng(1), CODECS_ONLY)
    assert batch.shape == windows.shape and batch.dtype == np.float32
    assert np.isfinite(batch).all() and np.max(np.abs(batch)) <= 1.0
    assert len({s[0] for s in steps}) > 1  # several codec streams in one batch
    rng = np.random.default_rng(1)
    for i, x in enumerate(windows):
        single, single_steps = aug.augment(x, SR, rng, CODECS_ONLY)
        assert steps[i] == single_steps  # the same plan as the per-window call
        assert abs(lag_of(x, batch[i], max_lag=int(0.02 * SR))) <= MS2
        assert correlation(batch[i], single) > 0.9


def test_augment_batch_on_two_jobs_keeps_plans_and_alignment() -> None:
    windows = np.stack([music_like(70 + i, seconds=1.0) for i in range(6)])
    one, steps_one = aug.augment_batch_with_steps(windows, SR, np.random.default_rng(2), CODECS_ONLY, n_jobs=1)
    two, steps_two = aug.augment_batch_with_steps(windows, SR, np.random.default_rng(2), CODECS_ONLY, n_jobs=2)
    assert steps_two == steps_one and two.shape == one.shape
    for x, y in zip(windows, two, strict=True):
        assert abs(lag_of(x, y, max_lag=int(0.02 * SR))) <= MS2
    np.testing.assert_array_equal(aug.augment_batch(windows, SR, np.random.default_rng(2), CODECS_ONLY, 2), two)


def test_augment_batch_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        aug.augment_batch(np.zeros(100, np.float32), SR, np.random.default_rng(0), aug.AugmentConfig())


# --------------------------------------------------------------------------- config and missing tools


def test_config_round_trips_through_json_and_validates() -> None:
    config = aug.AugmentConfig(codecs=("mp3", "opus"), snr_db=(5.0, 20.0))
    restored = aug.AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    with pytest.raises(ValueError, match="unknown AugmentConfig keys"):
        aug.AugmentConfig.from_dict({"p_codex": 0.5})
    with pytest.raises(ValueError, match="probability"):
        aug.AugmentConfig(p_noise=1.5)
    with pytest.raises(ValueError, match="unknown"):
        aug.AugmentConfig(codecs=("aac",))
    with pytest.raises(ValueError, match="low <= high"):
        aug.AugmentConfig(snr_db=(30.0, 10.0))


def test_missing_binaries_raise_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    x = music_like(60, seconds=0.5)
    with pytest.raises(aug.MissingToolError, match="apt-get install ffmpeg sox"):
        aug.codec_round_trip(x, SR, "mp3", "128k")
    with pytest.raises(aug.MissingToolError, match="sox"):
        aug.pitch_tempo(x, SR, 1.0, 1.0)
    monkeypatch.setattr(aug.shutil, "which", lambda name: None)
    with pytest.raises(aug.MissingToolError, match="`ffmpeg` not found"):
        aug.augment(x, SR, np.random.default_rng(0), aug.AugmentConfig(p_codec=1.0, p_pitch_tempo=0.0))
