"""Singer verification scorer: ECAPA-TDNN embeddings of vocal windows vs enrolled voiceprints.

Embeddings are taken on the track's best vocal-activity windows (batched
across all tracks of a batch), averaged into a track embedding and compared by
cosine with every enrolled centroid in one matrix product.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from models.base import TrackInput, TrackScorer, VerifierOutput, register
from models.voiceprints import Voiceprints, VoiceprintStore
from trackguard.contracts import Segment

DEFAULT_THRESHOLD = 0.45  # cosine; replaced by the registry's calibrated value once measured


@dataclasses.dataclass
class LoadedVerifier:
    encoder: Any
    voiceprints: Voiceprints
    threshold: float
    model_id: str


def crop_windows(track: TrackInput, n: int, crop_s: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Centre crops of the track's best vocal windows, as a [k, crop] array."""
    sr, size = track.sample_rate, int(crop_s * track.sample_rate)
    crops, spans = [], []
    for start_s, end_s, _ in track.windows[:n]:
        mid = int((start_s + end_s) / 2 * sr)
        lo = max(0, min(mid - size // 2, len(track.samples) - size))
        piece = track.samples[lo: lo + size]
        if len(piece) < size:
            piece = np.pad(piece, (0, size - len(piece)))
        crops.append(piece)
        spans.append((lo / sr, (lo + size) / sr))
    return np.stack(crops).astype(np.float32), spans


def match(track_emb: np.ndarray, prints: Voiceprints) -> np.ndarray:
    """Cosine of L2-normalised track embeddings [m, d] against all centroids [n, d] → [m, n]."""
    if prints.matrix.size == 0:
        return np.zeros((len(track_emb), 0), dtype=np.float32)
    return np.asarray(track_emb @ prints.matrix.T, dtype=np.float32)


@register("verifier", "ecapa")
class EcapaVerifier(TrackScorer[LoadedVerifier]):
    """Params: ``db_url`` (voiceprint registry), ``n_windows`` (3), ``crop_s`` (2.0), ``threshold``,
    ``screen_synthetic_score`` (run only when the detector score reaches it, or the upload is delivered to an
    enrolled artist's profile; 0 matches everything)."""

    def load_model(self) -> LoadedVerifier:
        from models.speaker import load_speaker_encoder, speaker_model_id

        device = "cuda" if torch.cuda.is_available() else "cpu"
        encoder = load_speaker_encoder(self.artifact_path, device=device)
        prints = VoiceprintStore(str(self.params["db_url"])).voiceprints()
        threshold = float(self.params.get("threshold") or DEFAULT_THRESHOLD)
        return LoadedVerifier(encoder, prints, threshold, speaker_model_id(self.artifact_path))

    def model_id(self, model: LoadedVerifier) -> str:
        return f"verifier/{model.model_id}"

    def score_batch(self, batch: Sequence[TrackInput], model: LoadedVerifier) -> list[VerifierOutput]:
        from models.speaker import embed_windows

        n, crop_s = int(self.params.get("n_windows", 3)), float(self.params.get("crop_s", 2.0))
        todo = [i for i, t in enumerate(batch) if self._needs_matching(t, model)]
        outputs = [VerifierOutput(None, None, skipped=True) for _ in batch]
        if not todo:
            return outputs
        crops = [crop_windows(batch[i], n, crop_s) for i in todo]
        stacked = torch.from_numpy(np.concatenate([c for c, _ in crops]))
        window_emb = embed_windows(model.encoder, stacked).cpu().numpy()
        offset = 0
        for i, (c, spans) in zip(todo, crops, strict=True):
            outputs[i] = self._verify(batch[i], window_emb[offset: offset + len(c)], spans, model)
            offset += len(c)
        return outputs

    def _needs_matching(self, track: TrackInput, model: LoadedVerifier) -> bool:
        """The cascade: match only plausible clones and uploads to enrolled profiles."""
        if not model.voiceprints.artist_ids:
            return False
        claimed = track.row.claimed_artist_id or ""
        if model.voiceprints.profile_to_artist.get(claimed, claimed) in model.voiceprints.artist_ids:
            return True
        detector = track.extra.get("scores", {}).get("detector")
        screen = float(self.params.get("screen_synthetic_score", 0.0))
        return detector is None or float(detector.score) >= screen

    def _verify(self, track: TrackInput, window_emb: np.ndarray, spans: list[tuple[float, float]],
                model: LoadedVerifier) -> VerifierOutput:
        prints = model.voiceprints
        track_emb = window_emb.mean(axis=0)
        track_emb = track_emb / max(float(np.linalg.norm(track_emb)), 1e-12)
        out = VerifierOutput(matched_artist_id=None, similarity=None)
        claimed = track.row.claimed_artist_id
        claimed_id = prints.profile_to_artist.get(claimed or "", claimed)
        out.claimed_enrolled = claimed_id in prints.artist_ids
        if not prints.artist_ids:
            return out
        scores = match(track_emb[None, :], prints)[0]
        best = int(np.argmax(scores))
        out.best_artist_id, out.similarity = prints.artist_ids[best], float(scores[best])
        if scores[best] >= model.threshold:
            out.matched_artist_id = prints.artist_ids[best]
            per_window = match(window_emb, prints)[:, best]
            out.segments = [Segment(s, e, float(v)) for (s, e), v in sorted(
                zip(spans, per_window, strict=True), key=lambda x: -x[1])[:3]]
        if out.claimed_enrolled:
            claimed_score = float(scores[prints.artist_ids.index(str(claimed_id))])
            out.claimed_similarity = claimed_score
            out.claimed_matches = claimed_score >= model.threshold
        return out
