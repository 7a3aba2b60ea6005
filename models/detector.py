"""Synthetic-voice detector scorer (CPU tier): a small window network, pooled per track, calibrated.

Per batch of tracks: each track's best vocal-activity windows (up to ``max_windows``)
are cropped to the model's window length, the windows of *all* tracks are stacked
and scored in chunks of at most ``chunk_size`` (one network call per chunk), each
track's window logits are pooled by the mean of its top ``k`` (a clone need only
be audible in a few windows; a mean over all would let a long bona fide intro wash
it out), and the stored logistic calibration turns the pooled logit into a
probability.

Artifact layout (see `models.artifact`): ``detector.pt`` (state dict) and
``artifact.json`` whose ``spec`` holds ``arch``, ``net_kwargs``, ``sample_rate``,
``win_s``, ``hop_s``, ``n_mels``, ``pooling_k``, ``max_windows`` and ``families``;
``calibration`` holds ``a``, ``b`` (p = sigmoid(a·logit + b)); ``threshold`` is the
operating point chosen on bona fide dev uploads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from features.resample import resample
from features.windows import VOCAL_THRESHOLD, Window, stack_windows
from models.artifact import ArtifactCard, load_card
from models.base import DetectorOutput, TrackInput, TrackScorer, register
from models.detector_nets import DetectorNet, build_net, place
from trackguard.contracts import Segment

WEIGHTS_FILE = "detector.pt"
CHUNK = 64  # windows per network call on a GPU: bounds memory
CHUNK_CPU = 16  # on 2 CPU cores larger calls were slower (bench detector: 411 windows/s at 16, 207 at 64)
N_SEGMENTS = 3  # evidence windows shown to reviewers


@dataclasses.dataclass
class LoadedDetector:
    net: DetectorNet
    card: ArtifactCard
    device: torch.device


def pick_device(device: str | None = None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def score_windows(net: DetectorNet, windows: Tensor, chunk_size: int = CHUNK) -> Tensor:
    """Raw spoof logits [N] (on the CPU) for waveform windows [N, T], in chunks of ``chunk_size``."""
    if windows.dim() != 2:
        raise ValueError(f"expected windows [N, T], got shape {tuple(windows.shape)}")
    if windows.shape[0] == 0:
        return torch.zeros(0)
    device = next(net.parameters()).device
    net.eval()
    out = []
    with torch.inference_mode():
        for chunk in windows.split(chunk_size):
            out.append(net(chunk.to(device, non_blocking=True)).spoof.float().cpu())
    return torch.cat(out)


def topk_mean(logits: Tensor, k: int) -> Tensor:
    """Mean of the ``k`` largest values (all of them when fewer); -inf-free for non-empty input."""
    if logits.numel() == 0:
        raise ValueError("topk_mean of no logits")
    return logits.topk(min(max(k, 1), logits.numel())).values.mean()


def calibrate(logit: Tensor, calibration: Mapping[str, float]) -> Tensor:
    """Logistic calibration p = sigmoid(a·logit + b); identity-on-sigmoid when uncalibrated."""
    a, b = float(calibration.get("a", 1.0)), float(calibration.get("b", 0.0))
    return torch.sigmoid(a * logit.double() + b)


def window_spans(track: TrackInput, max_windows: int, win_s: float) -> list[Window]:
    """The track's best ``max_windows`` windows as crops of exactly ``win_s`` (clipped to the track).

    The pipeline's windows may be of another length than the model's; the crop starts
    where the window starts. A track without windows gets one from its start.
    """
    chosen = track.windows[:max_windows] or [(0.0, win_s, 0.0)]
    return [Window(float(s), min(float(s) + win_s, track.duration_s), float(v)) for s, _, v in chosen]


def track_crops(track: TrackInput, spans: list[Window], sample_rate: int, win_s: float) -> np.ndarray:
    """[len(spans), win_s * sample_rate] float32, resampled first if the track is at another rate."""
    samples = track.samples
    if track.sample_rate != sample_rate:
        samples = resample(np.asarray(samples, dtype=np.float32), track.sample_rate, sample_rate)
    return stack_windows(samples, sample_rate, spans, win_s)


def load_detector(artifact_path: str | Path, device: str | None = None) -> LoadedDetector:
    """Rebuild the network named in the artifact and load its weights (``weights_only``: no pickled code)."""
    path = Path(artifact_path)
    card = load_card(path)
    dev = pick_device(device)
    net = build_net(str(card.spec["arch"]), **dict(card.spec.get("net_kwargs", {})))
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return LoadedDetector(place(net, dev).eval(), card, dev)


@register("detector", "lcnn")
class WindowDetector(TrackScorer[LoadedDetector]):
    """Params (all optional): ``max_windows`` (8), ``k`` (the artifact's ``pooling_k``),
    ``chunk_size`` (16 on CPU, 64 on GPU), ``device`` ("cuda" when available, else "cpu")."""

    def load_model(self) -> LoadedDetector:
        if not self.artifact_path:
            raise ValueError("WindowDetector needs an artifact_path (train one with `trackguard train detector`)")
        return load_detector(self.artifact_path, self.params.get("device"))

    def model_id(self, model: LoadedDetector) -> str:
        return model.card.model_id

    def score_batch(self, batch: Sequence[TrackInput], model: LoadedDetector) -> list[DetectorOutput]:
        if not batch:
            return []
        spec = model.card.spec
        sr, win_s = int(spec["sample_rate"]), float(spec["win_s"])
        max_windows = int(self.params.get("max_windows", spec.get("max_windows", 8)))
        k = int(self.params.get("k", spec.get("pooling_k", 3)))
        spans = [window_spans(t, max_windows, win_s) for t in batch]
        crops = np.concatenate([track_crops(t, s, sr, win_s) for t, s in zip(batch, spans, strict=True)])
        chunk = int(self.params.get("chunk_size", CHUNK_CPU if model.device.type == "cpu" else CHUNK))
        logits = score_windows(model.net, torch.from_numpy(crops), chunk)
        outputs, offset = [], 0
        for track_spans in spans:
            window_logits = logits[offset : offset + len(track_spans)]
            offset += len(track_spans)
            outputs.append(track_output(window_logits, track_spans, k, model.card.calibration))
        return outputs


def track_output(
    window_logits: Tensor, spans: Sequence[Window], k: int, calibration: Mapping[str, float]
) -> DetectorOutput:
    """Pool one track's window logits, calibrate, and keep the top windows as evidence."""
    logit = topk_mean(window_logits, k)
    window_scores = calibrate(window_logits, calibration).tolist()
    order = sorted(range(len(spans)), key=lambda i: -window_scores[i])[:N_SEGMENTS]
    segments = [Segment(spans[i].start_s, spans[i].end_s, float(window_scores[i])) for i in order]
    vocal = sum(s.vocal_score >= VOCAL_THRESHOLD for s in spans)
    return DetectorOutput(score=float(calibrate(logit, calibration)), segments=segments, logit=float(logit),
                          vocal_windows=vocal)


@register("detector", "aasist")
class AasistDetector(WindowDetector):
    """The GPU tier: the same window scorer over an AASIST artifact (``trackguard train detector --arch aasist``).

    Scoring is architecture-agnostic (the artifact names its net); this class exists so a
    policy names the tier it runs, and so its batches are sized for a GPU."""

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": int(self.params.get("max_batch_size", 32))}
