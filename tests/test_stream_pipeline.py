"""The streaming pipeline's transforms under `TestStream`: windows, triggers, poison, one verdict per event.

No broker here: `TestStream` plays Pub/Sub messages with controlled event times and
watermarks, through the same `build_scoring` that `trackguard stream` runs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from moderation.stream_store import open_stream_store
from pipelines.config import load_config
from pipelines.events import UploadEvent
from pipelines.stream import StreamOptions, WindowedCounters, build_scoring
from pipelines.sweep import prepare_stores
from trackguard.home import Home

T0 = 1_800_000_000  # event-time origin, seconds (a multiple of 60)


def _options() -> PipelineOptions:
    opts = PipelineOptions(["--runner=DirectRunner"])
    opts.view_as(StandardOptions).streaming = True
    return opts


def test_counters_sum_per_window_and_fire_when_the_watermark_passes(sqlite_url: str) -> None:
    prepare_stores(sqlite_url)
    events = (TestStream()
              .add_elements([TimestampedValue(("uploads", 1), T0 + s) for s in (1, 5, 59)])
              .add_elements([TimestampedValue(("errors", 1), T0 + 30)])
              .advance_watermark_to(T0 + 60)  # the first minute closes: it fires now, once
              .add_elements([TimestampedValue(("uploads", 1), T0 + 61), TimestampedValue(("verdicts", 1), T0 + 62)])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=_options()) as p:
        _ = p | events | WindowedCounters(sqlite_url, 60)
    rows = {(r["window_start"].replace(tzinfo=dt.UTC).timestamp() - T0, r["name"]): r["value"]
            for r in open_stream_store(sqlite_url).metrics()}
    assert rows == {(0, "uploads"): 3, (0, "errors"): 1, (60, "uploads"): 1, (60, "verdicts"): 1}


def _event_message(row: dict[str, Any]) -> PubsubMessage:
    manifest = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
    manifest = {k: v for k, v in manifest.items() if not (isinstance(v, float) and v != v)}
    data, attributes = UploadEvent(row["upload_id"], manifest, dt.datetime.now(dt.UTC)).to_message()
    return PubsubMessage(data, attributes)


@pytest.fixture()
def scoring_world(trained_home: Path, small_corpus: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TRACKGUARD_HOME", str(trained_home))
    db_url = f"sqlite:///{tmp_path / 'stream.db'}"
    (tmp_path / "stream.db").write_bytes((trained_home / "enrolled.db").read_bytes())
    cfg = load_config(None, db_url, Home(trained_home))
    rows = pd.read_parquet(small_corpus / "manifest.parquet").head(6).to_dict("records")
    return {"cfg": cfg, "db_url": db_url, "rows": rows}


def test_every_event_gets_one_verdict_poison_included_and_models_load_once(scoring_world: dict[str, Any]) -> None:
    cfg, rows = scoring_world["cfg"], scoring_world["rows"]
    prepare_stores(cfg.db_url)
    poison = [PubsubMessage(b"{not json", {"upload_id": "poison-1"}),
              PubsubMessage(json.dumps(["a", "list"]).encode(), {})]
    stream = TestStream()
    for i, row in enumerate(rows):  # several bundles, across several scoring windows
        stream = stream.add_elements([TimestampedValue(_event_message(row), T0 + 2 * i)]).advance_watermark_to(
            T0 + 2 * i + 1)
    stream = stream.add_elements([TimestampedValue(m, T0 + 20) for m in poison]).advance_watermark_to_infinity()
    p = beam.Pipeline(options=_options())
    verdicts = build_scoring(p | stream, cfg, StreamOptions(dead_letter_topic=None, window_s=1.0))
    _ = verdicts | beam.Map(lambda v: v.upload_id)
    result = p.run()
    result.wait_until_finish()
    store = open_stream_store(cfg.db_url)
    ids = [r["upload_id"] for r in rows]
    assert store.scored(ids) == set(ids)
    poisoned = store.get_verdict("poison-1")
    assert poisoned is not None and poisoned.error_code is not None
    assert (poisoned.decision.value, poisoned.error_code.value) == ("error", "invalid_event")
    loads = [c for c in result.metrics().query()["counters"] if c.key.metric.name == "models_loaded"]
    assert sum(c.committed for c in loads) <= 3  # once per scorer per process, not per bundle
    assert len(store.scored([*ids, "poison-1"])) == len(ids) + 1


def _run_once(cfg: Any, message: PubsubMessage) -> Any:
    p = beam.Pipeline(options=_options())
    _ = build_scoring(p | TestStream().add_elements([TimestampedValue(message, T0)]).advance_watermark_to_infinity(),
                      cfg, StreamOptions(dead_letter_topic=None))
    result = p.run()
    result.wait_until_finish()
    return result


def test_a_redelivered_event_is_not_scored_again(scoring_world: dict[str, Any]) -> None:
    cfg, row = scoring_world["cfg"], scoring_world["rows"][3]
    prepare_stores(cfg.db_url)
    message = _event_message(row)
    _run_once(cfg, message)
    store = open_stream_store(cfg.db_url)
    first = store.get_verdict(row["upload_id"])
    result = _run_once(cfg, message)  # the relay re-published it, or Pub/Sub delivered it twice
    skipped = [c for c in result.metrics().query()["counters"] if c.key.metric.name == "redelivered_skipped"]
    assert sum(c.committed for c in skipped) == 1
    assert store.get_verdict(row["upload_id"]) == first
    assert len(store.evidence_versions(row["upload_id"])) <= 1
