"""Decode with the ``ffmpeg`` binary: the fallback for containers libsndfile cannot read.

ffmpeg downmixes and resamples itself and pipes mono float32 at the target rate,
which we read in chunks into one growing array: the source-rate signal never
exists in this process. stderr is drained on a thread (it would otherwise fill
its pipe and stall ffmpeg) and parsed for the stream description.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import threading
from typing import IO

import numpy as np

from features.buffers import OutputBuffer, check_finite
from trackguard.contracts import ErrorCode, TrackguardError

_CHUNK_BYTES = 1 << 20
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "7.1": 8}
_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_INPUT_RE = re.compile(r"Input #0, ([^,]+)")
_STREAM_RE = re.compile(r"Stream #0:\d+.*?: Audio: .*?(\d+) Hz, ([^,]+)")


@dataclasses.dataclass
class _Probe:
    """What ffmpeg's stderr said about the input (filled in by the drain thread)."""

    duration_s: float | None = None
    sample_rate: int = 0
    channels: int = 0
    container: str = "unknown"
    lines: list[str] = dataclasses.field(default_factory=list)

    def feed(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[:-50]  # keep the tail: the error that matters is last
        if self.duration_s is None and (m := _DURATION_RE.search(line)):
            self.duration_s = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        if self.container == "unknown" and (m := _INPUT_RE.search(line)):
            self.container = m[1].strip()
        if not self.sample_rate and (m := _STREAM_RE.search(line)):
            self.sample_rate = int(m[1])
            layout = m[2].strip().split("(")[0]
            n = re.match(r"(\d+) channels", layout)
            self.channels = int(n[1]) if n else _LAYOUT_CHANNELS.get(layout, 0)

    def last_error(self) -> str:
        for line in reversed(self.lines):
            if line.strip() and not line.startswith(("  ", "Input #", "Output #", "Stream mapping")):
                return line.strip()
        return "no detail from ffmpeg"


@dataclasses.dataclass(frozen=True)
class FfmpegResult:
    samples: np.ndarray
    source_sample_rate: int
    source_channels: int
    source_format: str


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def _drain(stream: IO[bytes], probe: _Probe) -> None:
    for raw in stream:
        probe.feed(raw.decode("utf-8", "replace"))


def _command(path: str, target_sr: int, max_duration_s: float) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-i", path,
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        # rematrix_maxval 1 normalises the downmix to a plain channel mean, as the
        # libsndfile path does (ffmpeg's default sums stereo at 0.707 each).
        "-ac", "1", "-ar", str(target_sr), "-rematrix_maxval", "1.0",
        "-t", f"{max_duration_s + 1.0:.3f}",  # hard cap: never decode far past the limit
        "-f", "f32le", "pipe:1",
    ]  # fmt: skip


def _too_long(duration_s: float, max_duration_s: float) -> TrackguardError:
    return TrackguardError(
        ErrorCode.AUDIO_TOO_LONG, f"audio lasts {duration_s:.1f} s or more; the maximum is {max_duration_s:.1f} s"
    )


def ffmpeg_decode(path: str, target_sr: int, max_duration_s: float) -> FfmpegResult:
    """Decode ``path`` to mono float32 at ``target_sr``; raises TrackguardError on failure."""
    if not ffmpeg_available():
        raise TrackguardError(
            ErrorCode.AUDIO_UNDECODABLE, "format not readable by libsndfile, and ffmpeg is not installed"
        )
    proc = subprocess.Popen(_command(path, target_sr, max_duration_s), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    probe = _Probe()
    stderr = proc.stderr
    drain = threading.Thread(target=_drain, args=(stderr, probe), daemon=True)
    drain.start()
    max_samples = int(max_duration_s * target_sr)
    out = OutputBuffer(capacity=60 * target_sr)
    try:
        while chunk := proc.stdout.read(_CHUNK_BYTES):
            block = np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype="<f4")
            check_finite(block, out.n / target_sr, target_sr)
            out.append(block)
            # the header's duration is an estimate for some formats: allow 25 % slack
            if out.n > max_samples or (probe.duration_s or 0.0) > 1.25 * max_duration_s:
                raise _too_long(max(out.n / target_sr, probe.duration_s or 0.0), max_duration_s)
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        proc.stdout.close()
        stderr.close()
    if rc != 0:
        detail = probe.last_error().replace(path + ": ", "")
        if out.n:
            raise TrackguardError(
                ErrorCode.AUDIO_UNDECODABLE, f"audio data is corrupt after {out.n / target_sr:.1f} s (ffmpeg: {detail})"
            )
        raise TrackguardError(
            ErrorCode.AUDIO_UNDECODABLE,
            f"not recognisable as audio: neither libsndfile nor ffmpeg could decode it (ffmpeg: {detail}); "
            "send WAV, FLAC, MP3, OGG or another common audio format",
        )
    return FfmpegResult(out.finish(), probe.sample_rate, probe.channels, probe.container)
