"""The shared transform under Beam's TestPipeline: one verdict per upload, failures to `errors`.

Test-only scorers are registered here (one class each, the same way a real
detector is added) so routing and dead-letter behaviour are checked without
trained models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from models.base import DetectorOutput, SpamOutput, TrackInput, TrackScorer, VerifierOutput, register
from pipelines.config import DEFAULT_POLICY, PipelineConfig, load_config
from pipelines.transforms import ScoreUploads
from trackguard.bench.fingerprint import music_like
from trackguard.contracts import Segment
from trackguard.home import Home


@register("detector", "test-title")
class TitleDetector(TrackScorer[None]):
    """Synthetic iff the title says 'clone'; raises on 'explode' to exercise the dead-letter path."""

    def load_model(self) -> None:
        return None

    def score_batch(self, batch: Sequence[TrackInput], model: None) -> list[Any]:
        if any("explode" in t.row.title for t in batch):
            raise RuntimeError("detector blew up")
        return [DetectorOutput(0.9 if "clone" in t.row.title else 0.1, [Segment(0.0, 2.0, 0.9)]) for t in batch]


@register("detector", "test-title-logit")
class TitleLogitDetector(TrackScorer[None]):
    """Pooled logit from the title ("... logit -1.5"), -6 when it names none."""

    def load_model(self) -> None:
        return None

    def score_batch(self, batch: Sequence[TrackInput], model: None) -> list[Any]:
        out = []
        for t in batch:
            words = t.row.title.split()
            logit = float(words[words.index("logit") + 1]) if "logit" in words else -6.0
            out.append(DetectorOutput(float(1 / (1 + np.exp(-logit))), [], logit=logit, vocal_windows=2))
        return out


@register("verifier", "test-none")
class NoMatch(TrackScorer[None]):
    def load_model(self) -> None:
        return None

    def score_batch(self, batch: Sequence[TrackInput], model: None) -> list[Any]:
        return [VerifierOutput(None, None) for _ in batch]


@register("spam", "test-short")
class ShortIsSpam(TrackScorer[None]):
    def load_model(self) -> None:
        return None

    def score_batch(self, batch: Sequence[TrackInput], model: None) -> list[Any]:
        return [SpamOutput(0.95 if t.duration_s < 4 else 0.05, ["short"]) for t in batch]


def _config(tmp_path: Path, detector: str = "test-title", copy_margin: float | None = None) -> PipelineConfig:
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["thresholds"]["synthetic_over_original"] = copy_margin  # test scorers have no card to measure it in
    policy["scorers"] = {"detector": {"name": detector, "artifact": "none"},
                         "verifier": {"name": "test-none", "artifact": "none"},
                         "spam": {"name": "test-short", "artifact": "none"}}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return load_config(path, db_url=f"sqlite:///{tmp_path / 'tg.db'}", home=Home(tmp_path / "home"))


def _wav(path: Path, seconds: float) -> str:
    """Distinct music per file (seeded by the name): identical tones would rightly be duplicates."""
    seed = sum(path.name.encode())
    sf.write(path, music_like(seed, seconds, 16000).astype(np.float32), 16000)
    return str(path)


def _row(uid: str, uri: str, title: str = "Song", **over: Any) -> dict[str, Any]:
    row = {"upload_id": uid, "audio_uri": uri, "title": title, "artist_name": "A", "distributor_id": "d",
           "uploader_id": "u", "uploaded_at": "2026-03-01T10:00:00Z", "declared_ai": False}
    row.update(over)
    return row


@pytest.fixture()
def rows(tmp_path: Path) -> list[dict[str, Any]]:
    (tmp_path / "empty.wav").write_bytes(b"")
    return [
        _row("clean", _wav(tmp_path / "a.wav", 6)),
        _row("clone", _wav(tmp_path / "b.wav", 6), title="my clone song"),
        _row("declared", _wav(tmp_path / "c.wav", 6), title="clone but declared", declared_ai=True),
        _row("short", _wav(tmp_path / "d.wav", 3)),
        _row("explode", _wav(tmp_path / "e.wav", 6), title="explode"),
        _row("empty", str(tmp_path / "empty.wav")),
        _row("missing", str(tmp_path / "nope.wav")),
        _row("badtime", _wav(tmp_path / "f.wav", 6), uploaded_at="yesterday"),
        _row("reupload", str(tmp_path / "a.wav"), uploader_id="farm", uploaded_at="2026-03-02T10:00:00Z"),
    ]


def test_one_verdict_per_upload_with_routing_and_dead_letters(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    expected = [
        ("clean", "pass", None, None),
        ("clone", "review", "undisclosed-ai", None),
        ("declared", "pass", None, None),
        ("short", "review", "spam", None),
        ("explode", "error", "errors", "scoring_failed"),
        ("empty", "error", "errors", "audio_empty"),
        ("missing", "error", "errors", "audio_missing"),
        ("badtime", "error", "errors", "invalid_timestamp"),
        ("reupload", "review", "duplicates", None),  # the same audio as "clean", a day later
    ]
    with TestPipeline() as p:
        verdicts = p | beam.Create(rows) | ScoreUploads(_config(tmp_path))
        summary = verdicts | beam.Map(lambda v: (v.upload_id, v.decision.value,
                                                 v.queue.value if v.queue else None,
                                                 v.error_code.value if v.error_code else None))
        assert_that(summary, equal_to(expected))


def test_verdicts_carry_model_ids_and_evidence(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    with TestPipeline() as p:
        verdicts = p | beam.Create(rows[1:2]) | ScoreUploads(_config(tmp_path))
        checked = verdicts | beam.Map(lambda v: (sorted(v.model_versions), v.synthetic_score,
                                                 len(v.synthetic_segments), v.reasons))
        assert_that(checked, equal_to([(["detector", "spam", "verifier"], 0.9, 1,
                                        ["synthetic_voice", "undisclosed_ai"])]))


def test_duplicates_name_the_earlier_upload_and_rerun_gives_the_same(tmp_path: Path,
                                                                      rows: list[dict[str, Any]]) -> None:
    """The catalogue persists under the home; re-running sees both uploads indexed and still answers the same."""
    cfg = _config(tmp_path)
    chosen = [r for r in rows if r["upload_id"] in ("clean", "reupload", "short")]
    for _ in range(2):
        with TestPipeline() as p:
            verdicts = p | beam.Create(chosen) | ScoreUploads(cfg)
            assert_that(verdicts | beam.Map(lambda v: (v.upload_id, v.duplicate_of)),
                        equal_to([("clean", None), ("reupload", "clean"), ("short", None)]))
    ledger = pd.read_parquet(tmp_path / "home" / "catalogue" / "uploads.parquet")
    assert sorted(ledger["upload_id"]) == ["clean", "reupload", "short"]


def test_a_copy_far_over_its_originals_logit_is_flagged_and_the_ledger_keeps_logits(
        tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    """"reupload" is "clean"'s audio (logit -6) scored at logit -1: under the synthetic threshold, but 5
    logits over the original it copies (policy margin 4). "clone" is scored high but copies nothing."""
    cfg = _config(tmp_path, detector="test-title-logit", copy_margin=4.0)
    by_id = {r["upload_id"]: r for r in rows}
    chosen = [by_id["clean"], {**by_id["reupload"], "title": "Song logit -1"}, {**by_id["clone"], "title": "x logit 3"}]
    for _ in range(2):  # a re-run reads the originals' logits from the ledger and answers the same
        with TestPipeline() as p:
            verdicts = p | beam.Create(chosen) | ScoreUploads(cfg)
            assert_that(verdicts | beam.Map(lambda v: (v.upload_id, v.queue.value if v.queue else None,
                                                       v.duplicate_of, "synthetic_over_matched_original" in v.reasons)),
                        equal_to([("clean", None, None, False), ("reupload", "undisclosed-ai", "clean", True),
                                  ("clone", "undisclosed-ai", None, False)]))
    ledger = pd.read_parquet(tmp_path / "home" / "catalogue" / "uploads.parquet").set_index("upload_id")
    assert ledger.loc["clean", "detector_logit"] == -6.0 and ledger.loc["reupload", "detector_logit"] == -1.0
    assert set(ledger["detector_model_id"]) == {"detector/test-title-logit"}


def test_policy_voice_match_threshold_reaches_the_verifier(tmp_path: Path) -> None:
    from pipelines.transforms import build_scorers

    cfg = _config(tmp_path)
    assert "threshold" not in {s.slot: s for s in build_scorers(cfg)}["verifier"].params
    policy = {**cfg.policy, "thresholds": {**cfg.policy["thresholds"], "voice_match": 2.5}}
    verifier = {s.slot: s for s in build_scorers(dataclasses.replace(cfg, policy=policy))}["verifier"]
    assert verifier.params["threshold"] == 2.5
