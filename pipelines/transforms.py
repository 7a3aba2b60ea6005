"""The shared middle of every pipeline: validate → decode/featurize → score → decide.

`ScoreUploads` takes raw manifest mappings and returns exactly one `Verdict` per
input element: a decision, or an `errors` verdict with a stable code. Every
stage sends its failures to the same dead-letter path instead of dropping them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference

from features.decode import decode_audio
from features.fingerprint import fingerprint
from features.stats import audio_stats
from features.windows import vocal_activity_windows
from models.artifact import ArtifactError, load_card
from models.artist_norm import ArtistNorm, ArtistScoreNorm
from models.base import TrackInput, TrackScorer, create_scorer
from models.duplicates import for_query
from pipelines.config import PipelineConfig
from pipelines.decide import Scores, Thresholds, decide, thresholds_from
from pipelines.duplicates import (
    DUPLICATE,
    FINGERPRINT,
    FindDuplicates,
    attach_duplicate,
    duplicates_enabled,
    release_audio,
)
from trackguard.contracts import ErrorCode, ManifestRow, TrackguardError, Verdict, error_verdict, validate_manifest_row

log = logging.getLogger(__name__)
ERRORS = "errors"


def fallback_upload_id(raw: Any) -> str:
    """A stable id for a row whose own upload_id is unusable, so it still gets its verdict."""
    if isinstance(raw, dict):
        uid = raw.get("upload_id")
        if isinstance(uid, str) and uid.strip():
            return uid.strip()[:128]
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"invalid-row-{digest}"


class ValidateRow(beam.DoFn):  # type: ignore[misc]
    def process(self, raw: dict[str, Any]) -> Iterator[Any]:
        try:
            yield validate_manifest_row(raw)
        except TrackguardError as err:
            yield beam.pvalue.TaggedOutput(ERRORS, error_verdict(fallback_upload_id(raw), err.code, err.message))


def featurize(row: ManifestRow, cfg: PipelineConfig) -> TrackInput:
    """Decode one upload and compute what every scorer needs (pure; used by DoFn and bench)."""
    dec = cfg.policy["decode"]
    win = cfg.policy["windows"]
    audio = decode_audio(row.audio_uri, target_sr=int(dec["sample_rate"]),
                         min_duration_s=float(dec["min_duration_s"]), max_duration_s=float(dec["max_duration_s"]))
    windows = vocal_activity_windows(audio.samples, audio.sample_rate, win_s=float(win["win_s"]),
                                     hop_s=float(win["hop_s"]), max_windows=int(win["max_windows"]))
    extra = {FINGERPRINT: for_query(fingerprint(audio.samples, audio.sample_rate))} if duplicates_enabled(cfg) else {}
    return TrackInput(
        row=row, samples=audio.samples, sample_rate=audio.sample_rate, duration_s=audio.duration_s,
        windows=[(w.start_s, w.end_s, w.vocal_score) for w in windows],
        stats=audio_stats(audio.samples, audio.sample_rate),
        source_format=audio.source_format, source_sample_rate=audio.source_sample_rate,
        source_channels=audio.source_channels, extra=extra,
    )


class DecodeAndFeaturize(beam.DoFn):  # type: ignore[misc]
    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.audio_ms = Metrics.counter("sweep", "audio_ms")
        self.tracks = Metrics.counter("sweep", "tracks_decoded")

    def process(self, row: ManifestRow) -> Iterator[Any]:
        try:
            track = featurize(row, self.cfg)
            self.audio_ms.inc(int(track.duration_s * 1000))
            self.tracks.inc()
            yield track
        except TrackguardError as err:
            yield beam.pvalue.TaggedOutput(ERRORS, error_verdict(row.upload_id, err.code, err.message))
        except Exception as exc:  # an unexpected decoder crash is still one verdict
            log.exception("featurize failed for %s", row.upload_id)
            yield beam.pvalue.TaggedOutput(
                ERRORS, error_verdict(row.upload_id, ErrorCode.AUDIO_UNDECODABLE, f"{type(exc).__name__}: {exc}"))


_PROCESS_MODELS: dict[tuple[str, str, str, str], Any] = {}
_PROCESS_MODELS_LOCK = threading.Lock()
MODELS_LOADED = Metrics.counter("pipeline", "models_loaded")


def load_once_per_process(scorer: TrackScorer[Any]) -> Any:
    """The scorer's model, loaded at most once per worker process.

    RunInference keeps a model only while some DoFn instance holds it; the
    streaming local runner makes new instances per bundle and so reloaded the
    models for every bundle (PLATFORM-NOTES). A module-level reference keeps one.
    """
    key = (scorer.slot, scorer.name, _artifact_stamp(scorer.artifact_path), repr(sorted(scorer.params.items())))
    with _PROCESS_MODELS_LOCK:
        if key not in _PROCESS_MODELS:
            _PROCESS_MODELS[key] = scorer.load_model()
            MODELS_LOADED.inc()
            log.info("loaded %s/%s once for this process", scorer.slot, scorer.name)
        return _PROCESS_MODELS[key]


def _artifact_stamp(path: str | None) -> str:
    """Path plus modification times, so a retrained artifact at the same path is loaded afresh."""
    if not path or not Path(path).exists():
        return str(path)
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return f"{path}:" + ",".join(f"{p.stat().st_mtime_ns}/{p.stat().st_size}" for p in files[:200])


@dataclasses.dataclass
class ScoringFailure:
    message: str


class IsolatingScorer(TrackScorer[Any]):
    """Wraps a scorer so one bad track fails alone, not its whole batch.

    On a batch exception the batch is retried one track at a time; a track that
    still fails yields a `ScoringFailure` that becomes a `scoring_failed` verdict.
    """

    def __init__(self, inner: TrackScorer[Any], once_per_process: bool = False) -> None:
        super().__init__(inner.artifact_path, **inner.params)
        self.inner, self.once_per_process = inner, once_per_process
        self.slot, self.name, self.needs_audio = inner.slot, inner.name, inner.needs_audio

    def load_model(self) -> Any:
        return load_once_per_process(self.inner) if self.once_per_process else self.inner.load_model()

    def model_id(self, model: Any) -> str:
        return self.inner.model_id(model)

    def share_model_across_processes(self) -> bool:
        return self.inner.share_model_across_processes()

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return self.inner.batch_elements_kwargs()

    def score_batch(self, batch: Sequence[TrackInput], model: Any) -> list[Any]:
        try:
            return self.inner.score_batch(batch, model)
        except Exception:
            log.exception("%s batch of %d failed; retrying one by one", self.slot, len(batch))
        out: list[Any] = []
        for track in batch:
            try:
                out.extend(self.inner.score_batch([track], model))
            except Exception as exc:
                out.append(ScoringFailure(f"{self.slot} failed: {type(exc).__name__}: {exc}"))
        return out


class AttachScore(beam.DoFn):  # type: ignore[misc]
    """Move a PredictionResult's output onto the track (copy, never mutate inputs)."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self.scored = Metrics.counter("sweep", f"tracks_scored_{slot}")  # per-stage counts locate any loss

    def process(self, result: PredictionResult) -> Iterator[Any]:
        track = result.example
        assert isinstance(track, TrackInput)
        self.scored.inc()
        if isinstance(result.inference, ScoringFailure):
            yield beam.pvalue.TaggedOutput(
                ERRORS, error_verdict(track.row.upload_id, ErrorCode.SCORING_FAILED, result.inference.message))
            return
        extra = dict(track.extra)
        extra["scores"] = {**extra.get("scores", {}), self.slot: result.inference}
        extra["model_versions"] = {**extra.get("model_versions", {}), self.slot: result.model_id}
        yield dataclasses.replace(track, extra=extra)


class DecideVerdict(beam.DoFn):  # type: ignore[misc]
    def __init__(self, cfg: PipelineConfig, thresholds: Thresholds) -> None:
        self.cfg, self.thresholds = cfg, thresholds
        self.artists: dict[str, Any] = {}
        self.artist_norm: ArtistScoreNorm | None = None
        self.decided = Metrics.counter("sweep", "tracks_decided")

    def setup(self) -> None:
        from models.voiceprints import VoiceprintStore

        store = VoiceprintStore(self.cfg.db_url)
        self.artists = store.policies()
        self.artist_norm = artist_score_norm(self.cfg, store)

    def process(self, track: TrackInput) -> Iterator[Verdict]:
        scores = track.extra.get("scores", {})
        self.decided.inc()
        yield decide(
            track,
            Scores(scores.get("detector"), scores.get("verifier"), scores.get("spam"),
                   dict(track.extra.get("model_versions", {})), track.extra.get(DUPLICATE)),
            self.artists, self.thresholds, self.cfg, self.artist_norm,
        )


def artist_score_norm(cfg: PipelineConfig, store: Any) -> ArtistScoreNorm | None:
    """The detector's per-artist normalisation with the enrolled artists' levels for that model, when the
    policy allows it (``artist_normalisation``), the artifact has one fitted and some artist has a level."""
    spec = next((s for s in cfg.scorers if s.slot == "detector"), None)
    if spec is None or not cfg.policy.get("artist_normalisation", True):
        return None
    try:
        card = load_card(Path(spec.artifact), verify=False)
    except ArtifactError:
        return None
    norm = ArtistNorm.from_calibration(card.calibration)
    levels = store.detector_levels(card.model_id) if norm is not None else {}
    if norm is None or not levels:
        return None
    return ArtistScoreNorm(norm, dict(card.calibration), levels, card.model_id)


def stored_thresholds(cfg: PipelineConfig) -> dict[str, float | None]:
    """Per-model default thresholds, read once from the artifacts' cards."""
    out: dict[str, float | None] = {}
    for spec in cfg.scorers:
        if spec.slot in ("detector", "spam"):
            key = "synthetic" if spec.slot == "detector" else "spam"
            try:
                card = load_card(Path(spec.artifact), verify=False)
            except ArtifactError:
                out[key] = None  # no card (e.g. a test scorer); the scorer itself fails loudly if it needs one
                continue
            out[key] = card.threshold
            if spec.slot == "detector":  # `trackguard train copy-margin` measures it per model
                margin = card.calibration.get("copy_margin_logit")
                out["synthetic_over_original"] = None if margin is None else float(margin)
    return out


def build_scorers(cfg: PipelineConfig, once_per_process: bool = False) -> list[TrackScorer[Any]]:
    max_batch = int(cfg.policy.get("batch", {}).get("max_batch_size", 8))
    return [
        IsolatingScorer(create_scorer(s.slot, s.name, s.artifact, **{"max_batch_size": max_batch,
                                                                      "db_url": cfg.db_url, **_overrides(s.slot, cfg),
                                                                      **s.params}), once_per_process)
        for s in cfg.scorers
    ]


def _overrides(slot: str, cfg: PipelineConfig) -> dict[str, Any]:
    """``thresholds.voice_match`` in the policy overrides the registry's calibrated threshold."""
    voice_match = cfg.threshold("voice_match")
    return {"threshold": voice_match} if slot == "verifier" and voice_match is not None else {}


class ScoreUploads(beam.PTransform):  # type: ignore[misc]
    """Raw manifest mappings in, exactly one Verdict per element out."""

    def __init__(self, cfg: PipelineConfig, history: Any = None, streaming: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.history = history  # optional side input: upload_id -> as-of history features
        self.thresholds = thresholds_from(cfg, stored_thresholds(cfg))
        # streaming workers live long and see many small bundles: load each model once per process
        self.scorers = build_scorers(cfg, once_per_process=streaming)

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        valid = rows | "Validate" >> beam.ParDo(ValidateRow()).with_outputs(ERRORS, main="ok")
        tracks = valid.ok | "DecodeFeaturize" >> beam.ParDo(DecodeAndFeaturize(self.cfg)).with_outputs(
            ERRORS, main="ok")
        current = tracks.ok
        if self.history is not None:
            current = current | "AttachHistory" >> beam.Map(_attach_history, beam.pvalue.AsDict(self.history))
        errors = [valid[ERRORS], tracks[ERRORS]]
        released = False
        for scorer in self.scorers:
            if not scorer.needs_audio and not released:
                current, released = self._after_audio(current), True
            predicted = current | f"Score[{scorer.slot}]" >> RunInference(scorer)
            attached = predicted | f"Attach[{scorer.slot}]" >> beam.ParDo(AttachScore(scorer.slot)).with_outputs(
                ERRORS, main="ok")
            current = attached.ok
            errors.append(attached[ERRORS])
        if not released:
            current = self._after_audio(current)
        decided = current | "Decide" >> beam.ParDo(DecideVerdict(self.cfg, self.thresholds))
        return [decided, *errors] | "AllVerdicts" >> beam.Flatten()


    def _after_audio(self, current: beam.PCollection) -> beam.PCollection:
        # Duplicates are matched after the audio scorers, so each fingerprint travels with its detector
        # logit: a copy of a catalogued upload is then also judged against its original's score.
        findings = current | "Duplicates" >> FindDuplicates(self.cfg) if duplicates_enabled(self.cfg) else None
        current = current | "ReleaseAudio" >> beam.Map(release_audio)
        if findings is None:
            return current
        # A keyed join, not a side input: the local streaming runner crashes on side inputs when it
        # schedules an empty bundle, and a join in the same window works in batch and streaming alike.
        keyed = current | "KeyByUpload" >> beam.Map(lambda t: (t.row.upload_id, t))
        return ({"track": keyed, "finding": findings} | "JoinDuplicates" >> beam.CoGroupByKey()
                | "AttachDuplicates" >> beam.FlatMap(_attach_joined_duplicate))


def _attach_joined_duplicate(joined: tuple[str, dict[str, Any]]) -> Iterator[TrackInput]:
    _, grouped = joined
    findings = list(grouped["finding"])
    for track in grouped["track"]:
        yield attach_duplicate(track, {track.row.upload_id: findings[0]} if findings else {})


def _attach_history(track: TrackInput, history: dict[str, dict[str, float]]) -> TrackInput:
    return dataclasses.replace(track, extra={**track.extra, "history": history.get(track.row.upload_id, {})})
