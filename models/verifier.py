"""Singer verification scorer: ECAPA-TDNN embeddings of vocal windows vs enrolled voiceprints.

Embeddings are taken on the track's best vocal-activity windows (batched
across all tracks of a batch) and compared by cosine with every enrolled centroid,
the whole batch at once, chunk by chunk of the registry (`search_tracks`,
`models.voice_search`); a track's score against an artist is its mean embedding's
(``pooling: mean``, the default) or its best window's (``best-window``).

When the registry holds a cohort and a calibration measured with it, scores are
AS-norm normalised (`models.asnorm`) and compared with the calibrated threshold;
otherwise the raw cosine is compared with `DEFAULT_THRESHOLD` and a warning says the
operating point is uncalibrated. `operating_point` makes that choice and
`score_matrix` computes the scores, so calibration and evaluation score trials
exactly as the sweep does.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from features.windows import voice_band_power
from models.asnorm import as_norm, cohort_stats
from models.base import TrackInput, TrackScorer, VerifierOutput, register
from models.voice_search import Matches, best_matches, track_owners
from models.voiceprints import Voiceprints, VoiceprintStore
from trackguard.contracts import Segment

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.45  # raw cosine, never measured; used only until `trackguard artists calibrate` has run
AS_NORM, RAW = "as-norm", "raw"
# How a track's window scores become its score against an artist: the windows' mean
# embedding, or the best window (the one where the voice is heard most clearly). Mean
# is the default: best-window did not do better on a held-out corpus (README,
# "Singer verification"); `trackguard eval voices` scores both on every run.
BEST_WINDOW, MEAN = "best-window", "mean"
POOLINGS = (BEST_WINDOW, MEAN)
# Which of a track's vocal-activity windows are embedded (policy ``crop_choice``): the
# ones whose crop carries the most voice-band power, or the first by vocal score. Over
# a steady accompaniment a louder voice band means the voice is singing there; the
# vocal score (harmonicity, syllabic modulation, band share) saturates on most windows
# of a mix, so its first windows are often accompaniment between phrases. Measured by
# `trackguard eval voices` (variant raw_vocalscore3).
VOICE_BAND, VOCAL_SCORE = "voice-band", "vocal-score"
CROP_CHOICES = (VOICE_BAND, VOCAL_SCORE)


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    normalisation: str  # AS_NORM or RAW
    threshold: float
    calibrated: bool
    why: str  # one line for logs and reports


@dataclasses.dataclass
class LoadedVerifier:
    encoder: Any
    voiceprints: Voiceprints
    threshold: float
    model_id: str
    normalisation: str = RAW
    pooling: str = MEAN
    # With a store, `EcapaVerifier.current` reloads the voiceprints when the registry's generation changes.
    store: VoiceprintStore | None = None
    generation: tuple[int, int] = (0, 0)
    crop_choice: str = VOICE_BAND
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return pooling


def check_crop_choice(choice: str) -> str:
    if choice not in CROP_CHOICES:
        raise ValueError(f"crop_choice must be one of {CROP_CHOICES}, got {choice!r}")
    return choice


def scorer_id(model_id: str, pooling: str, crop_choice: str = VOICE_BAND) -> str:
    """What a calibration is valid for: the speaker encoder, the pooling that turns windows into a track score
    and how the windows are chosen (a threshold measured on one does not hold for another, so
    `operating_point` compares this id)."""
    pooled = model_id if check_pooling(pooling) == MEAN else f"{model_id}+{pooling}"
    return f"{pooled}+crops:{check_crop_choice(crop_choice)}"


def crop_windows(track: TrackInput, n: int, crop_s: float, choice: str = VOICE_BAND
                 ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Centre crops of ``n`` of the track's vocal windows, as a [k, crop] array, chosen by ``choice``
    (`CROP_CHOICES`): the crops with the most voice-band power, or the first windows (best vocal score)."""
    sr, size = track.sample_rate, int(crop_s * track.sample_rate)
    candidates = track.windows if check_crop_choice(choice) == VOICE_BAND else track.windows[:n]
    crops, spans = [], []
    for start_s, end_s, _ in candidates:
        mid = int((start_s + end_s) / 2 * sr)
        lo = max(0, min(mid - size // 2, len(track.samples) - size))
        piece = track.samples[lo: lo + size]
        if len(piece) < size:
            piece = np.pad(piece, (0, size - len(piece)))
        crops.append(piece)
        spans.append((lo / sr, (lo + size) / sr))
    stacked = np.stack(crops).astype(np.float32)
    if choice == VOICE_BAND and len(crops) > n:
        keep = np.argsort(-voice_band_power(stacked, sr), kind="stable")[:n]
        return stacked[keep], [spans[i] for i in keep]
    return stacked, spans


def _unit_mean(window_emb: np.ndarray) -> np.ndarray:
    mean = np.asarray(window_emb, dtype=np.float32).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _enrol_stats(prints: Voiceprints, columns: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    if not prints.has_cohort or prints.enrol_stats is None:
        raise ValueError("AS-norm scoring needs the registry's cohort; none is loaded")
    means, stds = prints.enrol_stats
    return (means, stds) if columns is None else (means[list(columns)], stds[list(columns)])


def score_matrix(query: np.ndarray, prints: Voiceprints, normalisation: str, columns: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(raw cosines, scores on the operating scale), both [m, n], for L2-normalised queries [m, d] against every
    voiceprint, or only the voiceprint rows ``columns`` (then [m, len(columns)])."""
    query = np.asarray(query, dtype=np.float32)
    matrix = prints.matrix if columns is None else prints.matrix[list(columns)]
    if matrix.size == 0:
        empty = np.zeros((len(query), 0), dtype=np.float32)
        return empty, empty
    raw = np.asarray(query @ matrix.T, dtype=np.float32)
    if normalisation == RAW:
        return raw, raw
    enrol = _enrol_stats(prints, columns)
    return raw, as_norm(raw, cohort_stats(query, prints.cohort, prints.top_k), enrol)


def track_scores(window_emb: np.ndarray, prints: Voiceprints, normalisation: str, pooling: str = MEAN,
                 columns: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(raw cosine [n], score on the operating scale [n]) of one track vs every voiceprint (or ``columns``).

    ``window_emb`` [k, d] are the track's L2-normalised window embeddings. ``BEST_WINDOW``:
    per voiceprint, the window scoring highest on the operating scale (its raw cosine
    is reported alongside). ``MEAN``: the L2-normalised mean embedding scored once.
    """
    window_emb = np.asarray(window_emb, dtype=np.float32)
    if check_pooling(pooling) == MEAN:
        raw, normed = score_matrix(_unit_mean(window_emb)[None, :], prints, normalisation, columns)
        return raw[0], normed[0]
    raw, normed = score_matrix(window_emb, prints, normalisation, columns)
    best = np.argmax(normed, axis=0) if normed.shape[1] else np.zeros(0, dtype=np.int64)
    cols = np.arange(normed.shape[1])
    return raw[best, cols], normed[best, cols]


def search_tracks(window_embs: Sequence[np.ndarray], prints: Voiceprints, normalisation: str, pooling: str = MEAN
                  ) -> Matches:
    """Each track's best voiceprint, for a batch of tracks at once (`models.voice_search.best_matches`, chunked
    over the registry): the same voiceprint and scores as the argmax of `track_scores`, without the [n] scores."""
    if check_pooling(pooling) == MEAN:
        queries, owners = np.stack([_unit_mean(w) for w in window_embs]), None
    else:
        queries = np.concatenate([np.asarray(w, dtype=np.float32) for w in window_embs])
        owners = track_owners([len(w) for w in window_embs])
    if normalisation == RAW:
        return best_matches(queries, prints.matrix, owners)
    enrol = _enrol_stats(prints, None)
    return best_matches(queries, prints.matrix, owners, cohort_stats(queries, prints.cohort, prints.top_k), enrol)


def operating_point(prints: Voiceprints, model_id: str, override: float | None = None) -> OperatingPoint:
    """Which scale and threshold to score with, from what the registry holds.

    AS-norm only with both a cohort and an AS-norm calibration: a normalised score
    without a measured threshold means nothing, so a cohort alone falls back to raw
    cosine. A calibration made with another speaker encoder is ignored (its scores
    are not comparable). ``override`` (the policy's ``threshold`` parameter) replaces
    the threshold on whichever scale is chosen.
    """
    cal = prints.calibration
    point: OperatingPoint
    if cal is not None and cal.model_id and model_id and cal.model_id != model_id:
        point = OperatingPoint(RAW, DEFAULT_THRESHOLD, False, f"calibration was measured with {cal.model_id}, "
                               f"not {model_id}: uncalibrated raw cosine {DEFAULT_THRESHOLD}")
    elif cal is not None and cal.normalisation == AS_NORM and prints.has_cohort:
        point = OperatingPoint(AS_NORM, cal.threshold, True, f"AS-norm (cohort {len(prints.cohort)}, top-k "
                               f"{prints.top_k}), threshold {cal.threshold:.3f} for FAR {cal.target_far:g}")
    elif cal is not None and cal.normalisation == RAW:
        point = OperatingPoint(RAW, cal.threshold, True,
                               f"raw cosine, threshold {cal.threshold:.3f} for FAR {cal.target_far:g}")
    else:
        missing = "the cohort is empty" if cal is not None else "no calibration is stored"
        point = OperatingPoint(RAW, DEFAULT_THRESHOLD, False,
                               f"{missing}: uncalibrated raw cosine {DEFAULT_THRESHOLD} "
                               "(run `trackguard artists calibrate`)")
    if override is not None:
        return OperatingPoint(point.normalisation, float(override), False,
                              f"{point.normalisation} with the policy's threshold {override} ({point.why})")
    return point


@register("verifier", "ecapa")
class EcapaVerifier(TrackScorer[LoadedVerifier]):
    """Params: ``db_url`` (voiceprint registry), ``n_windows`` (3), ``crop_s`` (2.0), ``crop_choice``
    (``voice-band`` or ``vocal-score``), ``pooling`` (``mean`` or ``best-window``; the calibration must have been
    measured with the same pooling and crop choice), ``threshold``,
    ``screen_synthetic_score`` (run only when the detector score reaches it, or the upload is delivered to an
    enrolled artist's profile; 0 matches everything)."""

    def load_model(self) -> LoadedVerifier:
        from models.speaker import load_speaker_encoder, speaker_model_id

        device = "cuda" if torch.cuda.is_available() else "cpu"
        encoder = load_speaker_encoder(self.artifact_path, device=device)
        store = VoiceprintStore(str(self.params["db_url"]))
        generation = store.generation()  # before the snapshot: a change in between reloads at the next batch
        prints = store.voiceprints()
        model_id = speaker_model_id(self.artifact_path)
        pooling = str(self.params.get("pooling", MEAN))
        crop_choice = check_crop_choice(str(self.params.get("crop_choice", VOICE_BAND)))
        point = self._operating_point(prints, scorer_id(model_id, pooling, crop_choice))
        return LoadedVerifier(encoder, prints, point.threshold, model_id, point.normalisation, pooling, store,
                              generation, crop_choice)

    def _operating_point(self, prints: Voiceprints, scorer: str) -> OperatingPoint:
        override = self.params.get("threshold")
        point = operating_point(prints, scorer, None if override is None else float(override))
        if prints.artist_ids and not point.calibrated:
            log.warning("voice matching is not calibrated: %s", point.why)
        else:
            log.info("voice matching: %s", point.why)
        return point

    def current(self, model: LoadedVerifier) -> LoadedVerifier:
        """A consistent snapshot of the loaded verifier for one batch, reloaded first if the registry changed.

        An enrolment, an opt-out or a new calibration changes the registry's generation;
        the next batch then matches against the registry as it is now, so an opted-out
        artist stops matching in a long-running stream too. Threads share ``model``: the
        reload swaps its fields under the lock and each batch works on its own copy.
        """
        if model.store is not None:
            generation = model.store.generation()
            if generation != model.generation:
                prints = model.store.voiceprints()
                point = self._operating_point(prints, scorer_id(model.model_id, model.pooling, model.crop_choice))
                with model.lock:
                    model.voiceprints, model.threshold, model.normalisation = prints, point.threshold, \
                        point.normalisation
                    model.generation = generation
                log.info("voiceprint registry changed: reloaded %d voiceprints", len(prints.artist_ids))
        with model.lock:
            return dataclasses.replace(model)

    def model_id(self, model: LoadedVerifier) -> str:
        return f"verifier/{model.model_id}"

    def score_batch(self, batch: Sequence[TrackInput], model: LoadedVerifier) -> list[VerifierOutput]:
        from models.speaker import embed_windows

        n, crop_s = int(self.params.get("n_windows", 3)), float(self.params.get("crop_s", 2.0))
        model = self.current(model)
        todo = [i for i, t in enumerate(batch) if self._needs_matching(t, model)]
        outputs = [VerifierOutput(None, None, skipped=True) for _ in batch]
        if not todo:
            return outputs
        crops = [crop_windows(batch[i], n, crop_s, model.crop_choice) for i in todo]
        stacked = torch.from_numpy(np.concatenate([c for c, _ in crops]))
        window_emb = embed_windows(model.encoder, stacked).cpu().numpy()
        per_track = np.split(window_emb, np.cumsum([len(c) for c, _ in crops])[:-1])
        found = search_tracks(per_track, model.voiceprints, model.normalisation, model.pooling)
        for k, (i, (_, spans)) in enumerate(zip(todo, crops, strict=True)):
            best = (int(found.index[k]), float(found.score[k]), float(found.raw[k]))
            outputs[i] = self._verify(batch[i], per_track[k], spans, model, best)
        return outputs

    def _needs_matching(self, track: TrackInput, model: LoadedVerifier) -> bool:
        """The cascade: match only plausible clones and uploads to enrolled profiles."""
        if not model.voiceprints.artist_ids:
            return False
        claimed = track.row.claimed_artist_id or ""
        if model.voiceprints.profile_to_artist.get(claimed, claimed) in model.voiceprints.row_of:
            return True
        detector = track.extra.get("scores", {}).get("detector")
        screen = float(self.params.get("screen_synthetic_score", 0.0))
        return detector is None or float(detector.score) >= screen

    def _verify(self, track: TrackInput, window_emb: np.ndarray, spans: list[tuple[float, float]],
                model: LoadedVerifier, best: tuple[int, float, float] | None = None) -> VerifierOutput:
        """One track's output from its best voiceprint (row, score, raw cosine), found by `search_tracks` for the
        whole batch (or here, for this track alone, when ``best`` is not given)."""
        prints = model.voiceprints
        if best is None:
            found = search_tracks([window_emb], prints, model.normalisation, model.pooling)
            best = (int(found.index[0]), float(found.score[0]), float(found.raw[0]))
        out = VerifierOutput(matched_artist_id=None, similarity=None)
        claimed = track.row.claimed_artist_id
        claimed_id = prints.profile_to_artist.get(claimed or "", claimed)
        claimed_row = prints.row_of.get(str(claimed_id))
        out.claimed_enrolled = claimed_row is not None
        row, score, raw = best
        if row < 0:
            return out
        out.best_artist_id, out.similarity, out.raw_similarity = prints.artist_ids[row], score, raw
        if score >= model.threshold:
            out.matched_artist_id = prints.artist_ids[row]
            per_window = score_matrix(window_emb, prints, model.normalisation, [row])[1][:, 0]
            out.segments = [Segment(s, e, float(v)) for (s, e), v in sorted(
                zip(spans, per_window, strict=True), key=lambda x: -x[1])[:3]]
        if claimed_row is not None:
            claimed_score = float(track_scores(window_emb, prints, model.normalisation, model.pooling,
                                               [claimed_row])[1][0])
            out.claimed_similarity = claimed_score
            out.claimed_matches = claimed_score >= model.threshold
        return out
