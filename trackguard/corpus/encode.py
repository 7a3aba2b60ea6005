"""Deliver audio as WAV/FLAC/MP3/OGG with reproducible bytes, and decode it back.

WAV is written by hand (libsndfile adds a time-stamped PEAK chunk to float WAVs).
The lossy and FLAC encoders run through ffmpeg with bit-exact flags, no metadata
and a fixed Ogg serial number, so the same samples give the same file.
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
from pathlib import Path

import numpy as np

_BITEXACT = ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


@dataclasses.dataclass(frozen=True)
class Delivery:
    fmt: str  # wav | flac | mp3 | ogg
    sr: int
    channels: int
    quality: str  # pcm16 | pcm24 | float (wav/flac); e.g. 192k (mp3); q5 (ogg)


def wav_bytes(x: np.ndarray, sr: int, sample_format: str = "pcm16") -> bytes:
    """A canonical RIFF/WAVE file: fmt + data chunks only."""
    x = x.reshape(len(x), -1)
    channels = x.shape[1]
    if sample_format == "float":
        data, tag, width = x.astype("<f4").tobytes(), 3, 4
    elif sample_format == "pcm24":
        ints = np.clip(np.rint(x * 8388607.0), -8388608, 8388607).astype("<i4")
        data, tag, width = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes(), 1, 3
    else:
        data, tag, width = np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2").tobytes(), 1, 2
    fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * channels * width, channels * width, 8 * width)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    if len(data) % 2:
        body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _codec_args(d: Delivery) -> list[str]:
    if d.fmt == "flac":
        depth = ["-sample_fmt", "s32", "-bits_per_raw_sample", "24"] if d.quality == "pcm24" else ["-sample_fmt", "s16"]
        return ["-c:a", "flac", *depth, "-f", "flac"]
    if d.fmt == "mp3":
        return ["-c:a", "libmp3lame", "-b:a", d.quality, "-compression_level", "7", "-id3v2_version", "0", "-f", "mp3"]
    if d.fmt == "ogg":
        return ["-c:a", "libvorbis", "-q:a", d.quality.lstrip("q"), "-serial_offset", "7", "-f", "ogg"]
    raise ValueError(f"unsupported delivery format {d.fmt!r}")


def write(path: Path, x: np.ndarray, d: Delivery) -> None:
    """Float samples (n, channels) at d.sr → ``path`` in the delivery format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    if d.fmt == "wav":
        path.write_bytes(wav_bytes(x, d.sr, d.quality))
        return
    # A seekable output, not a pipe: FLAC's STREAMINFO (length, MD5) and MP3's Xing/LAME header
    # are written at the end by seeking back; through a pipe they would be left empty.
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(d.sr), "-ac", str(x.shape[1]), "-i", "pipe:0",
           *_BITEXACT, *_codec_args(d), str(path)]
    subprocess.run(cmd, input=x.astype("<f4").tobytes(), check=True, capture_output=True, timeout=600)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Any file ffmpeg reads → float32 (n, channels), sample rate. Used by the duplicate transforms."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels",
         "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    sr_text, ch_text = probe.split(",")[:2]
    sr, channels = int(sr_text), int(ch_text)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "pipe:1"], check=True,
                         capture_output=True, timeout=600).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels).copy(), sr
