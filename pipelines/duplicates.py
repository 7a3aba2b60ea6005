"""The sweep's duplicate stage: every fingerprinted upload matched against all earlier ones.

Matching needs the whole batch in time order (an upload is only ever the duplicate
of an earlier one), so the fingerprints, thinned to what a query uses (a few kB a
track), are gathered, after the audio scorers, with each track's detector logit
(so a copy can be compared with its original), into one list and matched by one worker against the
persistent catalogue (`models.duplicates.DuplicateCatalogue`, under
``TRACKGUARD_HOME`` by default), which then indexes them for later sweeps. The
result is a side input keyed by upload_id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from models.base import TrackInput
from models.duplicates import (
    DetectorLogit,
    DuplicateCatalogue,
    DuplicateFinding,
    DuplicatePolicy,
    UploadFingerprint,
)
from pipelines.config import PipelineConfig

FINGERPRINT = "fingerprint"  # TrackInput.extra key: the query-thinned fingerprint, set by featurize
DUPLICATE = "duplicate"  # TrackInput.extra key: this upload's DuplicateFinding


def duplicates_enabled(cfg: PipelineConfig) -> bool:
    return bool(cfg.policy.get("duplicates", {}).get("enabled", False))


def catalogue_dir(cfg: PipelineConfig) -> Path:
    template = str(cfg.policy.get("duplicates", {}).get("catalogue", "{home}/catalogue"))
    return Path(template.format(home=cfg.home))


def with_catalogue(cfg: PipelineConfig, directory: str | Path) -> PipelineConfig:
    """``cfg`` with the duplicate catalogue elsewhere (a scratch run must not index into the real one)."""
    section = {**cfg.policy.get("duplicates", {}), "catalogue": str(directory)}
    return dataclasses.replace(cfg, policy={**cfg.policy, "duplicates": section})


def duplicate_policy(cfg: PipelineConfig) -> DuplicatePolicy:
    section = cfg.policy.get("duplicates", {})
    fields = {f.name for f in dataclasses.fields(DuplicatePolicy)}
    return DuplicatePolicy(**{k: v for k, v in section.items() if k in fields})


def upload_fingerprint(track: TrackInput) -> UploadFingerprint:
    row = track.row
    return UploadFingerprint(row.upload_id, row.uploaded_at, row.uploader_id, track.duration_s,
                             track.extra[FINGERPRINT], detector_logit(track))


def detector_logit(track: TrackInput) -> DetectorLogit | None:
    """The track's pooled detector logit and model id, once the detector has scored it."""
    output = track.extra.get("scores", {}).get("detector")
    model_id = track.extra.get("model_versions", {}).get("detector")
    if output is None or model_id is None:
        return None
    return DetectorLogit(str(model_id), float(output.logit))


class MatchCatalogue(beam.DoFn):  # type: ignore[misc]
    """One call with the whole batch: match in time order, index, persist, emit (upload_id, finding)."""

    def __init__(self, directory: Path, policy: DuplicatePolicy) -> None:
        self.directory, self.policy = directory, policy
        self.found = Metrics.counter("sweep", "duplicates_found")

    def process(self, batch: list[UploadFingerprint]) -> Iterator[tuple[str, DuplicateFinding]]:
        catalogue = DuplicateCatalogue(self.directory, self.policy)
        findings = catalogue.match(batch)
        catalogue.save()
        for finding in findings:
            self.found.inc(int(finding.duplicate_of is not None))
            yield finding.upload_id, finding


class FindDuplicates(beam.PTransform):  # type: ignore[misc]
    def __init__(self, cfg: PipelineConfig) -> None:
        super().__init__()
        self.directory, self.policy = catalogue_dir(cfg), duplicate_policy(cfg)

    def expand(self, tracks: beam.PCollection) -> beam.PCollection:
        return (
            tracks
            | "ToUploadFingerprint" >> beam.Map(upload_fingerprint)
            # without_defaults: also valid in the streaming path's fixed windows (empty window → no batch)
            | "GatherFingerprints" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
            | "MatchCatalogue" >> beam.ParDo(MatchCatalogue(self.directory, self.policy))
        )


def release_audio(track: TrackInput) -> TrackInput:
    """Drop the samples and fingerprint once the audio scorers are done.

    What follows waits for the duplicate side input, so the runner holds every
    track until the whole batch is matched: without audio that is a few kB a track.
    """
    extra = {k: v for k, v in track.extra.items() if k != FINGERPRINT}
    return dataclasses.replace(track, samples=np.zeros(0, dtype=np.float32), extra=extra)


def attach_duplicate(track: TrackInput, findings: dict[str, DuplicateFinding]) -> TrackInput:
    finding: Any = findings.get(track.row.upload_id)
    return dataclasses.replace(track, extra={**track.extra, DUPLICATE: finding})
