"""Audio for the browser and waveform images, both cached on disk.

Uploads may be in any format the pipeline accepts (MP3, FLAC, OGG ...), so audio is
decoded with the pipeline's own decoder (`features.decode`) into a 16-bit mono WAV
once and cached; the same file then answers every HTTP Range request (seeking).
The waveform is a min/max envelope drawn edge to edge (no margins), so the page can
overlay the flagged segments by percent of the duration.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from features.decode import decode_audio
from features.io import file_identity
from trackguard.atomicfile import replacing

PLAYBACK_SR = 32000  # keeps what the ear and the detector care about, a third the size of 96 kHz
MAX_PLAYBACK_S = 3600.0
WAVEFORM_COLUMNS = 1200
WAVEFORM_SIZE_IN = (12.0, 1.6)  # at 100 dpi: 1200 x 160 px
WAVE_COLOUR, FLAG_COLOUR = "#3b6ea5", "#d2452f"


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a concurrent reader never sees half a file."""
    with replacing(path) as out:
        out.write(data)


def decoded_wav(uri: str, cache_dir: Path) -> Path:
    """The audio at ``uri`` as a cached 16-bit mono WAV; raises TrackguardError (e.g. audio_missing).

    The key includes the file's size and mtime (local files), so a replaced file is decoded again.
    """
    path = cache_dir / "audio" / f"{_key(uri, file_identity(uri))}.wav"  # gs:// objects are immutable: URI only
    if path.exists():
        return path
    audio = decode_audio(uri, target_sr=PLAYBACK_SR, min_duration_s=0.0, max_duration_s=MAX_PLAYBACK_S)
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.samples, -1.0, 1.0), PLAYBACK_SR, subtype="PCM_16", format="WAV")
    _write_atomic(path, buf.getvalue())
    return path


def duration_s(wav: Path) -> float:
    info = sf.info(str(wav))
    return float(info.frames) / float(info.samplerate) if info.samplerate else 0.0


def envelope(wav: Path, columns: int = WAVEFORM_COLUMNS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column (time, min, max) of the track: what a waveform shows without plotting every sample."""
    samples, sr = sf.read(str(wav), dtype="float32", always_2d=False)
    n = len(samples)
    if n == 0:
        zero = np.zeros(1, dtype=np.float32)
        return zero, zero, zero
    columns = max(1, min(columns, n))
    per = -(-n // columns)  # ceil
    padded = np.pad(samples, (0, per * columns - n), mode="edge").reshape(columns, per)
    t = (np.arange(columns) + 0.5) * per / sr
    return t, padded.min(axis=1), padded.max(axis=1)


def render_waveform(wav: Path, segments: Sequence[dict[str, Any]]) -> bytes:
    """PNG of the envelope with flagged segments shaded; the x axis spans exactly 0..duration."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # Figure, not pyplot: no global state across request threads

    t, lo, hi = envelope(wav)
    total = max(duration_s(wav), 1e-3)
    fig = Figure(figsize=WAVEFORM_SIZE_IN, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    for seg in segments:
        ax.axvspan(float(seg["start_s"]), float(seg["end_s"]), color=FLAG_COLOUR, alpha=0.22, linewidth=0)
    ax.fill_between(t, lo, hi, color=WAVE_COLOUR, linewidth=0.6, step="mid")
    ax.axhline(0.0, color=WAVE_COLOUR, linewidth=0.4, alpha=0.5)
    ax.set_xlim(0.0, total)
    ax.set_ylim(-1.02, 1.02)
    ax.set_axis_off()
    out = io.BytesIO()
    fig.savefig(out, format="png", facecolor="#f7f8fa")
    return out.getvalue()


def cached_waveform(uri: str, upload_id: str, evidence_version: int, segments: Sequence[dict[str, Any]],
                    cache_dir: Path) -> Path:
    """The waveform PNG of an upload at one evidence version (its segments are part of the picture)."""
    path = cache_dir / "waveforms" / f"{_key(upload_id)}-v{int(evidence_version)}.png"
    if not path.exists():
        _write_atomic(path, render_waveform(decoded_wav(uri, cache_dir), segments))
    return path
