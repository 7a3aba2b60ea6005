"""Container sniffing on real files written by libsndfile and ffmpeg, and on things that only pretend to be audio."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from features.sniff import EXTENSIONS, SNIFF_BYTES, sniff_audio
from tests.audio_factory import tone, write_audio, write_bad_file

SR = 16000


def _ffmpeg(path: Path, *args: str) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg binary not installed (Debian package ffmpeg)")
    x = tone(SR, 0.5)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(SR),
           "-ac", "1", "-i", "pipe:0", *args, str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(x).tobytes(), check=True)
    return path


def _head(path: Path) -> bytes:
    return path.read_bytes()[:SNIFF_BYTES]


@pytest.mark.parametrize(("suffix", "expected"), [("wav", "wav"), ("flac", "flac"), ("ogg", "ogg"), ("mp3", "mp3"),
                                                  ("m4a", "mp4")])
def test_files_from_the_audio_factory(tmp_path: Path, suffix: str, expected: str) -> None:
    if suffix in ("ogg", "mp3", "m4a") and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg binary not installed (Debian package ffmpeg)")
    path = write_audio(tmp_path / f"x.{suffix}", tone(SR, 0.5), SR)
    assert sniff_audio(_head(path)) == expected
    assert expected in EXTENSIONS


def test_aiff_and_big_endian_wav(tmp_path: Path) -> None:
    sf.write(tmp_path / "x.aiff", tone(SR, 0.2), SR, format="AIFF", subtype="PCM_16")
    sf.write(tmp_path / "x.wav", tone(SR, 0.2), SR, format="WAV", subtype="PCM_16", endian="BIG")  # RIFX
    sf.write(tmp_path / "x64.wav", tone(SR, 0.2), SR, format="RF64", subtype="PCM_16")
    assert sniff_audio(_head(tmp_path / "x.aiff")) == "aiff"
    assert sniff_audio(_head(tmp_path / "x.wav")) == "wav"
    assert sniff_audio(_head(tmp_path / "x64.wav")) == "wav"


def test_mp3_without_an_id3_tag_is_found_by_its_frame_header(tmp_path: Path) -> None:
    path = _ffmpeg(tmp_path / "bare.mp3", "-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0",
                   "-f", "mp3")
    head = _head(path)
    assert head[:3] != b"ID3"
    assert sniff_audio(head) == "mp3"


def test_webm_matroska_and_adts(tmp_path: Path) -> None:
    assert sniff_audio(_head(_ffmpeg(tmp_path / "x.webm", "-c:a", "libopus", "-f", "webm"))) == "matroska"
    assert sniff_audio(_head(_ffmpeg(tmp_path / "x.mka", "-c:a", "flac", "-f", "matroska"))) == "matroska"
    assert sniff_audio(_head(_ffmpeg(tmp_path / "x.aac", "-c:a", "aac", "-f", "adts"))) == "aac"


def test_text_renamed_mp3_html_random_and_empty_are_not_audio(tmp_path: Path) -> None:
    text = write_bad_file(tmp_path / "lyrics.mp3", "text_as_mp3")
    assert sniff_audio(_head(text)) is None
    html = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"
    assert sniff_audio(html) is None
    assert sniff_audio(b"") is None
    assert sniff_audio(b"RIFF") is None  # a cut header is not a WAV yet
    assert sniff_audio(b"RIFF\x00\x00\x00\x00AVI LIST") is None  # RIFF, but a video
    assert sniff_audio(b"%PDF-1.7\n") is None


def _frames(header: bytes, length: int) -> bytes:
    return (header + bytes(length - len(header))) * 2


def test_mpeg_frames_must_chain_and_reserved_header_fields_are_refused() -> None:
    ok = bytes([0xFF, 0xFB, 0x90, 0x64])  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz: 417-byte frames
    assert sniff_audio(_frames(ok, 417)) == "mp3"
    assert sniff_audio(_frames(ok, 416)) is None  # the second header is not where the first one says
    assert sniff_audio(ok + bytes(500)) is None  # one lone header is 11 bits that random bytes often match
    for bad in ([0xFF, 0xFB, 0xF0, 0x64], [0xFF, 0xFB, 0x9C, 0x64], [0xFF, 0xEB, 0x90, 0x64]):
        # bitrate index 1111, sample-rate index 11, version 01: reserved values
        assert sniff_audio(_frames(bytes(bad), 417)) is None
    for seed in range(200):  # includes byte strings that start with a plausible frame header (seed 1 does)
        assert sniff_audio(np.random.default_rng(seed).bytes(SNIFF_BYTES)) is None
