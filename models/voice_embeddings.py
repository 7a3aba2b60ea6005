"""Windowed ECAPA embeddings of uploads, exactly as the sweep's verifier takes them, cached per upload.

Calibration, evaluation and benchmarks need the embeddings of hundreds of corpus
uploads; ECAPA costs ≈ 0.25 s per 2-s window on 2 CPU cores, so each upload is
embedded once and kept as one ``.npz`` keyed on its URI, its file identity (size,
mtime), the speaker model id and the windowing (see `cache_key`).

The windows are the verifier's: of the track's best vocal-activity windows (4 s, hop
2 s, up to 16; policy ``windows``), the ``n_windows`` whose ``crop_s`` centre crops carry
the most voice-band power (`models.verifier.crop_windows`).
Core function `embed_samples` takes audio; `embed_uploads` is the path-taking wrapper.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from features.io import file_identity
from features.windows import vocal_activity_windows
from models.base import TrackInput
from models.verifier import VOICE_BAND, crop_windows
from trackguard.contracts import ManifestRow, TrackguardError

CACHE_VERSION = "2"  # 2: crops chosen by `Windowing.crop_choice`


@dataclasses.dataclass(frozen=True)
class Windowing:
    """How windows are chosen and cropped; the defaults are the sweep's (policy.yaml)."""

    win_s: float = 4.0
    hop_s: float = 2.0
    max_windows: int = 16
    n_windows: int = 3
    crop_s: float = 2.0
    crop_choice: str = VOICE_BAND


@dataclasses.dataclass(frozen=True)
class UploadVoice:
    """One upload's voice: the L2-normalised mean of its window embeddings, and the windows themselves."""

    upload_id: str
    track: np.ndarray  # [D]
    windows: np.ndarray  # [k, D], L2-normalised
    spans: list[tuple[float, float]]  # (start_s, end_s) of each window


def _placeholder_row(upload_id: str) -> ManifestRow:
    return ManifestRow(upload_id, "", "", "", "", "", datetime(1970, 1, 1, tzinfo=UTC))


def embed_samples(upload_id: str, samples: np.ndarray, sample_rate: int, encoder: Any,
                  windowing: Windowing = Windowing()) -> UploadVoice:
    """Embed 16 kHz mono audio the way the verifier does (core function: no files)."""
    from models.speaker import embed_windows

    found = vocal_activity_windows(samples, sample_rate, win_s=windowing.win_s, hop_s=windowing.hop_s,
                                   max_windows=windowing.max_windows)
    track = TrackInput(_placeholder_row(upload_id), samples, sample_rate, len(samples) / sample_rate,
                       [(w.start_s, w.end_s, w.vocal_score) for w in found], {})
    crops, spans = crop_windows(track, windowing.n_windows, windowing.crop_s, windowing.crop_choice)
    emb = embed_windows(encoder, torch.from_numpy(crops)).numpy().astype(np.float32)
    mean = emb.mean(axis=0)
    return UploadVoice(upload_id, (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32), emb, spans)


def cache_key(uri: str, model_id: str, windowing: Windowing) -> str:
    text = f"{CACHE_VERSION}|{uri}|{file_identity(uri)}|{model_id}|{dataclasses.astuple(windowing)}"
    return hashlib.sha1(text.encode()).hexdigest()


def _save(voice: UploadVoice, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, track=voice.track, windows=voice.windows, spans=np.asarray(voice.spans, dtype=np.float64))
    tmp.replace(path)


def _load(upload_id: str, path: Path) -> UploadVoice:
    with np.load(path) as z:
        spans = [(float(a), float(b)) for a, b in z["spans"]]
        return UploadVoice(upload_id, z["track"], z["windows"], spans)


def embed_uploads(uris: Mapping[str, str], encoder: Any, model_id: str, cache_dir: Path,
                  windowing: Windowing = Windowing()) -> dict[str, UploadVoice]:
    """upload_id → its voice for every decodable upload of ``uris`` (others are left out), cached."""
    from features.decode import decode_audio

    out: dict[str, UploadVoice] = {}
    for upload_id, uri in uris.items():
        key = cache_key(uri, model_id, windowing)
        path = Path(cache_dir) / key[:2] / f"{key}.npz"
        if path.exists():
            out[upload_id] = _load(upload_id, path)
            continue
        try:
            audio = decode_audio(uri, target_sr=16000)
        except TrackguardError:
            continue  # bad inputs have no voice to measure
        voice = embed_samples(upload_id, audio.samples, audio.sample_rate, encoder, windowing)
        _save(voice, path)
        out[upload_id] = voice
    return out
