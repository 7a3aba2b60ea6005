"""Tiny synthetic audio for tests: signals, files in any format, and broken files.

Everything is generated in code (no fixture files) and deterministic (seeded).
Signals are float32 in [-1, 1]: shape ``(n,)`` for mono, ``(n, channels)`` otherwise
(the layout soundfile reads and writes).

Typical use::

    from tests.audio_factory import tone, voice_like, noise, place, write_audio, write_bad_file

    x = place(noise(16000, 10.0, amplitude=0.05), voice_like(16000, 3.0), start_s=4.0, sr=16000)
    path = write_audio(tmp_path / "mix.flac", x, 16000)
    bad = write_bad_file(tmp_path / "cut.wav", "truncated_wav")   # BAD_FILE_CODES["truncated_wav"]

All signals here are synthetic; label anything measured on them as such.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

# The stable error code (``trackguard.contracts.ErrorCode`` value) each bad kind must produce
# when decoded with the default limits (min 2 s).
BAD_FILE_CODES: dict[str, str] = {
    "zero_byte": "audio_empty",
    "truncated_wav": "audio_truncated",
    "truncated_flac": "audio_truncated",
    "header_only_flac": "audio_truncated",
    "non_audio_mp3": "audio_undecodable",
    "text_as_mp3": "audio_undecodable",
    "random_wav": "audio_undecodable",
    "nan_wav": "audio_nonfinite",
    "inf_wav": "audio_nonfinite",
    "too_short": "audio_too_short",
}

# ffmpeg codec options and muxer per lossy format
_LOSSY = {
    "mp3": (["-c:a", "libmp3lame", "-q:a", "2"], "mp3"),
    "ogg": (["-c:a", "libvorbis", "-q:a", "6"], "ogg"),
    "m4a": (["-c:a", "aac", "-b:a", "128k"], "mp4"),  # libsndfile cannot read it: exercises the ffmpeg path
}


def _n(sr: int, seconds: float) -> int:
    return round(sr * seconds)


def _channels(x: np.ndarray, channels: int) -> np.ndarray:
    x = x.astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def tone(sr: int, seconds: float, freq: float = 440.0, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine at ``freq`` Hz, identical in every channel (so a downmix keeps its level)."""
    t = np.arange(_n(sr, seconds)) / sr
    return _channels(amplitude * np.sin(2 * np.pi * freq * t), channels)


def silence(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    return _channels(np.zeros(_n(sr, seconds)), channels)


def noise(
    sr: int, seconds: float, amplitude: float = 0.1, color: str = "white", channels: int = 1, seed: int = 0
) -> np.ndarray:
    """Gaussian noise with RMS ``amplitude``; ``color="pink"`` tilts it to -3 dB/octave."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(_n(sr, seconds))
    if color == "pink":  # Kellet's economical pink filter
        x = lfilter(
            [0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875, -0.522189400], x
        )
    elif color != "white":
        raise ValueError(f"unknown noise color {color!r}")
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * amplitude
    return _channels(np.clip(x, -1, 1), channels)


def chord(
    sr: int, seconds: float, freqs: tuple[float, ...] = (220.0, 277.2, 329.6), amplitude: float = 0.3
) -> np.ndarray:
    """A sustained instrumental pad: a few steady partial-rich notes, no syllables, no vibrato."""
    t = np.arange(_n(sr, seconds)) / sr
    x = np.zeros_like(t)
    for f in freqs:
        for k in range(1, 4):
            if k * f < sr / 2:
                x += np.sin(2 * np.pi * k * f * t) / k**2
    return (amplitude * x / (np.abs(x).max() + 1e-12)).astype(np.float32)


def _formants(x: np.ndarray, sr: int, freqs: tuple[float, ...] = (700.0, 1220.0, 2600.0)) -> np.ndarray:
    """Cascade of two-pole resonators, a crude vocal-tract filter."""
    y = x
    for f in freqs:
        if f >= sr / 2:
            continue
        r = np.exp(-np.pi * 110.0 / sr)  # ~110 Hz bandwidth
        a = [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
        y = lfilter([1.0 - r], a, y)
    return y


def voice_like(
    sr: int, seconds: float, f0: float = 180.0, amplitude: float = 0.5, syllable_hz: float = 4.0, seed: int = 0
) -> np.ndarray:
    """A sung-vowel caricature: harmonic buzz with vibrato and pitch glides, formant-filtered,
    chopped into syllables (raised-cosine envelopes with short gaps) at about ``syllable_hz``.
    """
    rng = np.random.default_rng(seed)
    n = _n(sr, seconds)
    t = np.arange(n) / sr
    # melody: a new note per ~2 syllables, plus 5.5 Hz vibrato of ±1.5 %
    notes = f0 * 2 ** (rng.integers(-3, 4, size=int(seconds * syllable_hz / 2) + 2) / 12)
    f_inst = np.repeat(notes, int(np.ceil(n / len(notes))))[:n] * (1 + 0.015 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f_inst) / sr
    x = np.zeros(n)
    for k in range(1, 40):
        if k * f0 * 1.2 > min(sr / 2, 5000):
            break
        x += np.sin(k * phase) / k
    x = _formants(x, sr)
    # syllables: jittered durations, each a raised cosine, 20 % gap between them
    env = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(sr / syllable_hz * rng.uniform(0.7, 1.3))
        on = int(length * 0.8)
        seg = np.sin(np.pi * np.arange(on) / on) ** 0.7
        env[pos : pos + on] = seg[: max(0, min(on, n - pos))]
        pos += length
    x = x * env
    return (amplitude * x / (np.abs(x).max() + 1e-12)).astype(np.float32)


def place(bed: np.ndarray, clip: np.ndarray, start_s: float, sr: int) -> np.ndarray:
    """``bed`` with ``clip`` added from ``start_s`` (clipped to the bed's length); both mono."""
    out = bed.astype(np.float32).copy()
    i = _n(sr, start_s)
    j = min(len(out), i + len(clip))
    out[i:j] += clip[: j - i]
    return out


def write_audio(
    path: str | os.PathLike[str], samples: np.ndarray, sr: int, fmt: str | None = None, subtype: str | None = None
) -> Path:
    """Write ``samples`` as wav/flac (soundfile) or mp3/ogg/m4a (ffmpeg); ``fmt`` defaults to the suffix.

    ``subtype`` applies to wav/flac (e.g. "PCM_16", "FLOAT"); the default is PCM_16.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    x = np.asarray(samples, dtype=np.float32)
    if fmt in ("wav", "flac"):
        sf.write(path, x, sr, format=fmt.upper(), subtype=subtype or "PCM_16")
        return path
    if fmt not in _LOSSY:
        raise ValueError(f"unsupported format {fmt!r} (wav, flac, mp3, ogg, m4a)")
    channels = 1 if x.ndim == 1 else x.shape[1]
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    codec, muxer = _LOSSY[fmt]
    cmd += ["-f", "f32le", "-ar", str(sr), "-ac", str(channels), "-i", "pipe:0", *codec, "-f", muxer, str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(x).tobytes(), check=True)
    return path


def write_long_tone_wav(
    path: str | os.PathLike[str], sr: int, seconds: float, channels: int = 2, freq: float = 440.0, chunk_s: float = 30.0
) -> Path:
    """A long PCM_16 WAV tone written chunk by chunk, so the test itself stays small in memory."""
    path = Path(path)
    total = _n(sr, seconds)
    chunk = _n(sr, chunk_s)
    with sf.SoundFile(path, "w", samplerate=sr, channels=channels, subtype="PCM_16") as f:
        for start in range(0, total, chunk):
            t = (start + np.arange(min(chunk, total - start))) / sr
            x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
            f.write(np.repeat(x[:, None], channels, axis=1))
    return path


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_bad_file(path: str | os.PathLike[str], kind: str, sr: int = 16000) -> Path:
    """Write a broken upload of ``kind`` (a key of BAD_FILE_CODES) to ``path``; returns the path.

    The file's suffix is left as given, so "non_audio_mp3" can be written to ``x.mp3``.
    """
    path = Path(path)
    rng = np.random.default_rng(7)
    song = tone(sr, 3.0, 440.0, channels=2)
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind in ("truncated_wav", "truncated_flac"):
        write_audio(path, song, sr, fmt=kind.split("_")[1])
        _cut(path, 0.6)
    elif kind == "header_only_flac":  # cut inside the first audio frame
        write_audio(path, song, sr, fmt="flac")
        data = path.read_bytes()
        path.write_bytes(data[: data.index(b"\xff\xf8") + 4] if b"\xff\xf8" in data else data[:100])
    elif kind in ("non_audio_mp3", "random_wav"):
        path.write_bytes(rng.bytes(20000))
    elif kind == "text_as_mp3":
        path.write_text("This is a lyrics sheet, not an MP3.\n" * 50)
    elif kind in ("nan_wav", "inf_wav"):
        x = tone(sr, 3.0)
        x[sr // 2 : sr // 2 + 10] = np.nan if kind == "nan_wav" else np.inf
        write_audio(path, x, sr, fmt="wav", subtype="FLOAT")
    elif kind == "too_short":
        write_audio(path, tone(sr, 0.05), sr, fmt="wav")
    else:
        raise ValueError(f"unknown bad-file kind {kind!r}; known: {sorted(BAD_FILE_CODES)}")
    return path
