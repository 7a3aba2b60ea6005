"""`trackguard bench detector`: window throughput per tier and batch size, whole-track real-time
factor per track length, and the batched track scorer against a one-window-at-a-time loop.

Everything is measured in one run on the same machine. Audio is synthetic (a
seeded vocal-like tone over noise, written as FLAC so decoding is included); the
networks are untrained unless ``--artifact`` names a trained one: their cost does
not depend on the weights.

- ``windows`` rows: network calls only, on pre-cropped 4-s windows, at batch 1/16/64.
- ``track`` rows: decode → vocal-activity windows → crops → score → pool, the path
  `models.detector.WindowDetector` runs in the sweep, per track length.
- ``batched_vs_naive``: the same tracks scored by the batched scorer (windows of all
  tracks stacked, in the scorer's default chunks: 16 windows on CPU, 64 on GPU) and by
  a loop that calls the network once per window.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from models.artifact import ArtifactCard
from models.base import TrackInput
from models.detector import LoadedDetector, WindowDetector, load_detector, pick_device, score_windows
from models.detector_nets import build_net, count_parameters, place
from models.separator import SEPARATOR_DEFAULTS
from trackguard.bench.report import emit
from trackguard.contracts import ManifestRow

SR = 16000
WIN_S = 4.0
TIER_ARCH = {"cpu": "lcnn", "cpu-separated": "lcnn", "gpu": "aasist"}
# Constructor arguments a tier adds to its architecture's defaults (``cpu-separated``: the LCNN with
# the vocal separator in its front end, `trackguard train detector --separator`).
TIER_NET_KWARGS: dict[str, dict[str, Any]] = {"cpu-separated": {"separator": dict(SEPARATOR_DEFAULTS)}}


def synthetic_track(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A vocal-like harmonic tone with vibrato and syllable gating over soft noise (synthetic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    notes = rng.integers(0, 12, size=int(seconds) + 1)[t.astype(int)]  # a new pitch every second
    f0 = 220 * 2 ** (notes / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x = 0.2 * voice + 0.01 * rng.standard_normal(t.size)
    return (x / np.abs(x).max() * 0.8).astype(np.float32)


def _card(arch: str) -> ArtifactCard:
    spec = {"arch": arch, "sample_rate": SR, "win_s": WIN_S, "hop_s": 2.0, "pooling_k": 3, "max_windows": 8}
    return ArtifactCard("detector", arch, "models.detector.WindowDetector", spec, "bench", "none (untrained)")


def load_tier(arch: str, device: str, artifact: str | None, **net_kwargs: Any) -> LoadedDetector:
    if artifact:
        return load_detector(artifact, device)
    dev = pick_device(device)
    return LoadedDetector(place(build_net(arch, **net_kwargs), dev).eval(), _card(arch), dev)


def _best_of(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up: allocator, kernel selection
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def _seconds_per_window(model: LoadedDetector) -> float:
    window = 0.1 * torch.randn(1, int(WIN_S * SR), generator=torch.Generator().manual_seed(1))
    score_windows(model.net, window, 1)  # warm-up
    t0 = time.perf_counter()
    score_windows(model.net, window.repeat(2, 1), 2)
    return (time.perf_counter() - t0) / 2


def window_rows(model: LoadedDetector, tier: str, batch_sizes: Sequence[int], n_windows: int,
                repeats: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    windows = 0.1 * torch.randn(n_windows, int(WIN_S * SR), generator=gen)
    rows = []
    for bs in batch_sizes:
        wall = _best_of(lambda bs=bs: score_windows(model.net, windows, bs), repeats, model.device)  # type: ignore[misc]
        rows.append({"tier": tier, "measure": f"windows batch={bs}", "windows_per_s": n_windows / wall,
                     "rt_factor": n_windows * WIN_S / wall, "wall_s": wall})
    return rows


def _track_input(path: Path, uid: str) -> TrackInput:
    from features.decode import decode_audio
    from features.windows import vocal_activity_windows

    audio = decode_audio(str(path), target_sr=SR)
    wins = vocal_activity_windows(audio.samples, SR, win_s=WIN_S, hop_s=2.0, max_windows=8)
    row = ManifestRow(uid, str(path), "bench", "bench", "bench", "bench", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return TrackInput(row, audio.samples, SR, audio.duration_s, [(w.start_s, w.end_s, w.vocal_score) for w in wins],
                      {})


def track_rows(model: LoadedDetector, tier: str, lengths_s: Sequence[float], tmp: Path,
               repeats: int) -> list[dict[str, Any]]:
    scorer = WindowDetector()
    rows = []
    for length in lengths_s:
        path = tmp / f"track-{int(length)}.flac"
        sf.write(path, synthetic_track(length, seed=int(length)), SR)

        def run(path: Path = path) -> None:
            scorer.score_batch([_track_input(path, "bench")], model)

        wall = _best_of(run, repeats, model.device)
        rows.append({"tier": tier, "measure": f"track {length:g} s end to end", "windows_per_s": None,
                     "rt_factor": length / wall, "wall_s": wall})
    return rows


def batched_vs_naive(model: LoadedDetector, tier: str, n_tracks: int, length_s: float, tmp: Path,
                     repeats: int) -> dict[str, Any]:
    paths = []
    for i in range(n_tracks):
        paths.append(tmp / f"batch-{i}.flac")
        sf.write(paths[-1], synthetic_track(length_s, seed=100 + i), SR)
    tracks = [_track_input(p, f"t{i}") for i, p in enumerate(paths)]
    scorer = WindowDetector()  # its default chunk for the device
    batched = _best_of(lambda: scorer.score_batch(tracks, model), repeats, model.device)
    naive_scorer = WindowDetector(chunk_size=1)
    naive = _best_of(lambda: [naive_scorer.score_batch([t], model) for t in tracks], repeats, model.device)
    n_win = sum(min(len(t.windows), 8) for t in tracks)
    return {"tier": tier, "measure": f"batched vs naive ({n_tracks} × {length_s:g} s, {n_win} windows)",
            "windows_per_s": n_win / batched, "rt_factor": n_tracks * length_s / batched, "wall_s": batched,
            "naive_wall_s": naive, "batched_over_naive_speedup": naive / batched}


def bench_detector(tiers: Sequence[str], device: str | None, artifact: str | None, json_path: str | None,
                   lengths_s: Sequence[float] = (30, 180, 600), batch_sizes: Sequence[int] = (1, 16, 64),
                   n_windows: int = 128, repeats: int = 2) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"data": "synthetic vocal-like audio (seeded); untrained weights unless --artifact",
                             "window_s": WIN_S, "windows_scored_per_track_max": 8, "torch_threads":
                             torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as d:
        for tier in tiers:
            arch = TIER_ARCH.get(tier, tier)
            model = load_tier(arch, device or "", artifact if arch == "lcnn" and tier not in TIER_NET_KWARGS else None,
                              **TIER_NET_KWARGS.get(tier, {}))
            extra[f"{tier}_arch"], extra[f"{tier}_device"] = arch, str(model.device)
            extra[f"{tier}_n_parameters"] = count_parameters(model.net)
            # A tier far too slow for this device (AASIST on 2 CPU cores: ~2 windows/s) is timed on
            # fewer windows and tracks, once, so the bench still finishes; the JSON says so.
            slow = _seconds_per_window(model) > 0.1
            n_win, n_tracks, reps = (16, 2, 1) if slow else (n_windows, 16, repeats)
            extra[f"{tier}_reduced_sizes"] = {"windows": n_win, "tracks_batched_vs_naive": n_tracks} if slow else None
            rows += window_rows(model, tier, batch_sizes, n_win, reps)
            rows += track_rows(model, tier, lengths_s, Path(d), reps)
            rows.append(batched_vs_naive(model, tier, n_tracks, 30.0, Path(d), reps))
    emit("detector throughput (synthetic audio)", rows, json_path, extra)
    return rows

