"""Decoder: every format × rate × layout, every broken input's code, bounded memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from features.decode import decode_audio, decode_bytes
from features.io import open_uri, set_storage_client, uri_size
from features.resample import StreamingResampler, _design, ratio, resample
from tests.audio_factory import (
    BAD_FILE_CODES,
    noise,
    tone,
    write_audio,
    write_bad_file,
    write_long_tone_wav,
)
from trackguard.contracts import ErrorCode, TrackguardError

TARGET_SR = 16000


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[int(np.argmax(spec))])


def expect_code(code: ErrorCode, uri: str, **kwargs: float) -> TrackguardError:
    with pytest.raises(TrackguardError) as info:
        decode_audio(uri, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code, info.value.message
    return info.value


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_decodes_every_format_rate_and_layout(tmp_path: Path, fmt: str, sr: int, channels: int) -> None:
    path = write_audio(tmp_path / f"t.{fmt}", tone(sr, 2.5, 1000.0, channels=channels, amplitude=0.5), sr)
    audio = decode_audio(str(path), target_sr=TARGET_SR)

    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == TARGET_SR
    assert (audio.source_sample_rate, audio.source_channels, audio.source_format) == (sr, channels, fmt)
    # lossy encoders add priming/padding of a few tens of ms
    assert audio.duration_s == pytest.approx(2.5, abs=0.01 if fmt in ("wav", "flac") else 0.15)
    assert audio.duration_s == pytest.approx(audio.samples.size / TARGET_SR)
    middle = audio.samples[TARGET_SR // 4 : -TARGET_SR // 4]
    assert dominant_hz(middle, TARGET_SR) == pytest.approx(1000.0, abs=3.0)
    # identical channels averaged, not summed: the sine keeps its RMS of 0.5 / sqrt(2)
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_ffmpeg_fallback_reads_what_libsndfile_cannot(tmp_path: Path) -> None:
    x = np.stack([tone(44100, 3.0, 500.0), tone(44100, 3.0, 500.0)], axis=1)
    path = write_audio(tmp_path / "t.m4a", x, 44100)
    audio = decode_audio(str(path))
    assert audio.source_format == "mov"
    assert (audio.source_sample_rate, audio.source_channels) == (44100, 2)
    assert audio.duration_s == pytest.approx(3.0, abs=0.1)
    assert dominant_hz(audio.samples[4000:-4000], TARGET_SR) == pytest.approx(500.0, abs=3.0)
    # ffmpeg's default downmix would sum stereo at 0.707 each (+3 dB); we want the mean
    assert np.abs(audio.samples).max() == pytest.approx(0.5, rel=0.05)


def test_decode_bytes_matches_decode_audio(tmp_path: Path) -> None:
    for fmt in ("flac", "m4a"):  # libsndfile and ffmpeg paths
        path = write_audio(tmp_path / f"t.{fmt}", tone(22050, 2.5, 700.0), 22050)
        from_bytes = decode_bytes(path.read_bytes())
        from_path = decode_audio(str(path))
        np.testing.assert_array_equal(from_bytes.samples, from_path.samples)


def test_file_uri_and_plain_path_agree(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a b%.wav", tone(16000, 2.5), 16000)
    uri = "file://" + str(path).replace("%", "%25").replace(" ", "%20")
    assert uri_size(uri) == path.stat().st_size
    with open_uri(uri) as f:
        assert f.read(4) == b"RIFF"
    np.testing.assert_array_equal(decode_audio(uri).samples, decode_audio(str(path)).samples)


@pytest.mark.parametrize("kind", sorted(BAD_FILE_CODES))
def test_each_bad_input_gets_its_code(tmp_path: Path, kind: str) -> None:
    suffix = ".mp3" if kind.endswith("mp3") else ".flac" if "flac" in kind else ".wav"
    path = write_bad_file(tmp_path / f"bad{suffix}", kind)
    err = expect_code(ErrorCode(BAD_FILE_CODES[kind]), str(path))
    assert str(path) in err.message  # the engineer can tell which file


def test_truncated_message_says_how_much_is_missing(tmp_path: Path) -> None:
    path = write_bad_file(tmp_path / "cut.wav", "truncated_wav")
    err = expect_code(ErrorCode.AUDIO_TRUNCATED, str(path))
    assert "3.0 s" in err.message and "1.8 s" in err.message


def test_a_few_missing_bytes_are_not_truncation(tmp_path: Path) -> None:
    # writers that drop a pad byte or round a size must not be rejected
    path = write_audio(tmp_path / "t.wav", tone(16000, 3.0), 16000)
    path.write_bytes(path.read_bytes()[:-3])
    assert decode_audio(str(path)).duration_s == pytest.approx(3.0, abs=0.01)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_code(ErrorCode.AUDIO_MISSING, str(tmp_path / "nope.wav"))
    expect_code(ErrorCode.AUDIO_MISSING, "file://" + str(tmp_path / "nope.wav"))
    expect_code(ErrorCode.AUDIO_MISSING, str(tmp_path))


def test_unsupported_scheme_is_invalid_uri() -> None:
    expect_code(ErrorCode.INVALID_URI, "http://example.com/a.wav")


def test_too_long_from_header_and_from_ffmpeg(tmp_path: Path) -> None:
    wav = write_audio(tmp_path / "t.wav", tone(16000, 5.0), 16000)
    expect_code(ErrorCode.AUDIO_TOO_LONG, str(wav), max_duration_s=3.0)
    m4a = write_audio(tmp_path / "t.m4a", tone(16000, 5.0), 16000)
    expect_code(ErrorCode.AUDIO_TOO_LONG, str(m4a), max_duration_s=3.0)


def test_limits_are_parameters(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "t.ogg", noise(16000, 1.0), 16000)
    expect_code(ErrorCode.AUDIO_TOO_SHORT, str(path))
    assert decode_audio(str(path), min_duration_s=0.5).duration_s == pytest.approx(1.0, abs=0.05)


def test_target_rate_is_honoured(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "t.flac", tone(44100, 2.5, 3000.0), 44100)
    audio = decode_audio(str(path), target_sr=22050)
    assert audio.samples.size == pytest.approx(2.5 * 22050, abs=1)
    assert dominant_hz(audio.samples, 22050) == pytest.approx(3000.0, abs=3.0)


@pytest.mark.parametrize(("src", "dst"), [(44100, 16000), (48000, 16000), (8000, 16000), (22050, 16000), (7, 3)])
def test_streaming_resampler_is_seamless(src: int, dst: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(30000).astype(np.float32)
    rs, parts, i = StreamingResampler(src, dst), [], 0
    while i < x.size:
        n = int(rng.integers(1, 3000))
        parts.append(rs.process(x[i : i + n]))
        i += n
    streamed = np.concatenate([*parts, rs.flush()])
    one_shot = resample(x, src, dst)
    np.testing.assert_array_equal(streamed, one_shot)
    up, down = ratio(src, dst)
    taps, _ = _design(up, down)
    reference = resample_poly(x.astype(np.float64), up, down, window=taps.astype(np.float64) / up)
    assert streamed.size == reference.size == -(-x.size * up // down)
    np.testing.assert_allclose(streamed, reference, atol=1e-5)


def test_decoding_a_long_file_keeps_memory_bounded(tmp_path: Path) -> None:
    """20 min of 48 kHz stereo: the source as float64 would be 920 MB; the output is 77 MB."""
    seconds, sr = 1200.0, 48000
    path = write_long_tone_wav(tmp_path / "long.wav", sr, seconds, channels=2)
    tracemalloc.start()
    try:
        audio = decode_audio(str(path), target_sr=TARGET_SR)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out_bytes = audio.samples.nbytes
    source_f64 = int(seconds * sr) * 2 * 8
    assert audio.duration_s == pytest.approx(seconds, abs=0.01)
    assert peak < 3 * out_bytes, f"peak {peak / 1e6:.0f} MB for a {out_bytes / 1e6:.0f} MB output"
    assert peak < source_f64 / 8
    assert dominant_hz(audio.samples[: 10 * TARGET_SR], TARGET_SR) == pytest.approx(440.0, abs=1.0)


class _FakeBlob:
    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def open(self, mode: str, chunk_size: int | None = None) -> io.BytesIO:
        assert mode == "rb"
        return io.BytesIO(self.data)


class _FakeBucket:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_blob(self, name: str) -> _FakeBlob | None:
        return _FakeBlob(self.objects[name]) if name in self.objects else None


class _FakeClient:
    """Stands in for google.cloud.storage.Client (the emulator tests live elsewhere)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def bucket(self, name: str) -> _FakeBucket:
        assert name == "uploads"
        return _FakeBucket(self.objects)


def test_remote_streams_use_both_decoders(tmp_path: Path) -> None:
    flac = write_audio(tmp_path / "t.flac", tone(44100, 2.5, 600.0), 44100).read_bytes()
    m4a = write_audio(tmp_path / "t.m4a", tone(44100, 2.5, 600.0), 44100).read_bytes()
    set_storage_client(_FakeClient({"a/t.flac": flac, "a/t.m4a": m4a, "a/cut.wav": b"RIFF"}))
    try:
        for name in ("a/t.flac", "a/t.m4a"):  # libsndfile on the stream; ffmpeg via a spooled copy
            audio = decode_audio(f"gs://uploads/{name}")
            assert dominant_hz(audio.samples[4000:-4000], TARGET_SR) == pytest.approx(600.0, abs=3.0)
        assert uri_size("gs://uploads/a/t.flac") == len(flac)
        expect_code(ErrorCode.AUDIO_MISSING, "gs://uploads/a/missing.wav")
        expect_code(ErrorCode.AUDIO_UNDECODABLE, "gs://uploads/a/cut.wav")
        expect_code(ErrorCode.INVALID_URI, "gs://uploads")
    finally:
        set_storage_client(None)
