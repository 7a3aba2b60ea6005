"""The scorer contract: every scorer is a Beam ``ModelHandler``.

Pipelines see three *slots* (``detector``, ``verifier``, ``spam``). Each slot is
filled by a registered handler class; adding an architecture means writing one
class and decorating it with ``@register(slot, name)`` — no other file changes.

A handler's ``run_inference`` takes a batch of `TrackInput` and returns one
``PredictionResult`` per track whose ``inference`` is that slot's output record
and whose ``model_id`` names the artifact that produced it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from trackguard.contracts import ManifestRow, Segment

SLOTS = ("detector", "verifier", "spam")


@dataclasses.dataclass
class TrackInput:
    """A decoded, featurized upload as every scorer receives it.

    ``samples`` is mono float32 at ``sample_rate`` (the models' rate, 16 kHz).
    ``windows`` are (start_s, end_s, vocal_score) tuples from vocal-activity
    detection, best first; ``stats`` are loudness/silence/spectral statistics.
    """

    row: ManifestRow
    samples: np.ndarray
    sample_rate: int
    duration_s: float
    windows: list[tuple[float, float, float]]
    stats: dict[str, float]
    source_format: str = ""
    source_sample_rate: int = 0
    source_channels: int = 0
    # side information computed outside the track (e.g. as-of uploader history for spam)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DetectorOutput:
    score: float  # calibrated probability that the vocals are machine-generated
    segments: list[Segment]  # top-scoring windows, evidence for reviewers
    logit: float = 0.0
    # scored windows that sounded like singing (`features.windows.VOCAL_THRESHOLD`); 0 means the
    # track fell back to its loudest windows, so there were no vocals to judge. None: not reported.
    vocal_windows: int | None = None


@dataclasses.dataclass
class VerifierOutput:
    matched_artist_id: str | None  # best enrolled artist above threshold, else None
    similarity: float | None  # normalised score of the best enrolled artist
    claimed_similarity: float | None = None  # score against claimed_artist_id, if enrolled
    claimed_enrolled: bool = False  # the profile delivered to belongs to an enrolled artist
    claimed_matches: bool | None = None  # that artist's voiceprint matches (None: not enrolled / no vocals)
    best_artist_id: str | None = None  # best candidate even when below threshold
    segments: list[Segment] = dataclasses.field(default_factory=list)
    skipped: bool = False  # not matched (cascade: not a plausible clone, not delivered to an enrolled profile)
    raw_similarity: float | None = None  # cosine of the best artist before normalisation (= similarity when raw)


@dataclasses.dataclass
class SpamOutput:
    score: float  # calibrated probability of spam
    reasons: list[str]  # plain-language top contributions
    duplicate_of: str | None = None
    duplicate_ratio: float | None = None
    features: dict[str, Any] = dataclasses.field(default_factory=dict)


ModelT = TypeVar("ModelT")


class TrackScorer(ModelHandler[TrackInput, PredictionResult, ModelT], Generic[ModelT]):
    """Base for all scorers. Subclasses implement `load_model` and `score_batch`."""

    slot: str = ""
    name: str = ""
    # False for scorers that read only metadata and statistics: the pipeline may drop the
    # samples before them, and attach batch-wide evidence (duplicates) that needs every track.
    needs_audio: bool = True

    def __init__(self, artifact_path: str | None = None, **params: Any) -> None:
        super().__init__()
        self.artifact_path = artifact_path
        self.params = params

    def model_id(self, model: ModelT) -> str:
        return f"{self.slot}/{self.name}"

    def score_batch(self, batch: Sequence[TrackInput], model: ModelT) -> list[Any]:
        raise NotImplementedError

    def run_inference(
        self,
        batch: Sequence[TrackInput],
        model: ModelT,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        outputs = self.score_batch(batch, model)
        mid = self.model_id(model)
        return [PredictionResult(example=t, inference=o, model_id=mid) for t, o in zip(batch, outputs, strict=True)]

    def share_model_across_processes(self) -> bool:
        # Load once per worker, not per bundle (the streaming local runner
        # otherwise reloads per bundle; see PLATFORM-NOTES).
        return False

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": int(self.params.get("max_batch_size", 16))}


_REGISTRY: dict[tuple[str, str], type[TrackScorer[Any]]] = {}


def register(slot: str, name: str) -> Callable[[type[TrackScorer[Any]]], type[TrackScorer[Any]]]:
    """Class decorator: make a scorer available to pipelines under (slot, name)."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; expected one of {SLOTS}")

    def wrap(cls: type[TrackScorer[Any]]) -> type[TrackScorer[Any]]:
        cls.slot, cls.name = slot, name
        _REGISTRY[(slot, name)] = cls
        return cls

    return wrap


def registered(slot: str | None = None) -> list[tuple[str, str]]:
    return sorted(k for k in _REGISTRY if slot is None or k[0] == slot)


def create_scorer(slot: str, name: str, artifact_path: str | None = None, **params: Any) -> TrackScorer[Any]:
    import models.catalog  # noqa: F401  (registers the built-in scorers)

    try:
        cls = _REGISTRY[(slot, name)]
    except KeyError:
        raise KeyError(f"no scorer {name!r} registered for slot {slot!r}; have {registered(slot)}") from None
    return cls(artifact_path=artifact_path, **params)
