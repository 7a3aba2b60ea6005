"""The streaming path: upload events from Pub/Sub → the sweep's `ScoreUploads` → verdict + case.

    subscription ─→ window ─→ ParseEvent ─→ SkipScored ─→ ScoreUploads ─→ upsert verdicts + cases
                                  │                         (shared with the batch sweep)
                        └→ poison: dead-letter topic + an `errors` verdict (invalid_event)
    uploads / verdicts / errors ─→ per-minute windows ─→ stream_metrics table + Beam counters

Delivery: on Dataflow, Pub/Sub messages are acknowledged once the runner has
checkpointed them; the local DirectRunner acknowledges at read. Neither waits for
the verdict, so the hook's ledger is the durable record: `relay_outbox`
(`trackguard stream` runs it) re-publishes any accepted upload that has no verdict
after a timeout, and every write here is idempotent by upload_id, so a re-delivered
event never makes a second verdict or case (and one already scored is skipped).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics import Metrics
from apache_beam.transforms import window

from pipelines.config import PipelineConfig
from pipelines.events import InvalidEvent, UploadEvent
from pipelines.sweep import UpsertCases, UpsertUploads, _StoreWriter
from pipelines.transforms import ScoreUploads, fallback_upload_id
from trackguard.contracts import Decision, ErrorCode, Verdict, error_verdict

log = logging.getLogger(__name__)
STREAM_STORE = "moderation.stream_store:open_stream_store"
POISON = "poison"


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    dead_letter_topic: str | None  # full path projects/P/topics/T; None: poison only becomes an errors verdict
    window_s: float = 1.0  # scoring window: bounds how long duplicate matching waits for its batch
    metrics_window_s: int = 60


@dataclasses.dataclass(frozen=True)
class Poison:
    """A message that is not an upload event: what to dead-letter and which errors verdict to file."""

    data: bytes
    attributes: dict[str, str]
    upload_id: str
    reason: str


class ParseEvent(beam.DoFn):  # type: ignore[misc]
    def __init__(self) -> None:
        self.received = Metrics.counter("stream", "events_received")
        self.poisoned = Metrics.counter("stream", "events_poison")

    def process(self, message: PubsubMessage) -> Iterator[Any]:
        self.received.inc()
        attributes = dict(message.attributes or {})
        try:
            event = UploadEvent.from_message(message.data or b"", attributes)
        except InvalidEvent as err:
            self.poisoned.inc()
            yield beam.pvalue.TaggedOutput(POISON, Poison(message.data or b"", attributes,
                                                          _poison_id(message.data, attributes), str(err)))
            return
        yield event.manifest


def _poison_id(data: bytes | None, attributes: dict[str, str]) -> str:
    """The upload the poison message was about when that can be told, else a stable id of its bytes."""
    try:
        parsed = json.loads(data or b"")
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("upload_id"), str):
        return fallback_upload_id(parsed)
    if attributes.get("upload_id"):
        return fallback_upload_id({"upload_id": attributes["upload_id"]})
    return fallback_upload_id({"poison_message": (data or b"").decode("utf-8", "replace")})


def dead_letter_message(poison: Poison) -> PubsubMessage:
    return PubsubMessage(poison.data, {**poison.attributes, "dead_letter_reason": poison.reason[:1000],
                                       "upload_id": poison.upload_id})


def poison_verdict(poison: Poison) -> Verdict:
    return error_verdict(poison.upload_id, ErrorCode.INVALID_EVENT, poison.reason)


class _StreamStoreDoFn(_StoreWriter):
    """Opens the stream store (`moderation.stream_store`) once per worker."""

    def __init__(self, db_url: str, store_path: str = STREAM_STORE) -> None:
        super().__init__(db_url, store_path)


class SkipScored(_StreamStoreDoFn):
    """Drop events whose upload already has a verdict: a re-delivery must not cost a second scoring."""

    def __init__(self, db_url: str, store_path: str = STREAM_STORE) -> None:
        super().__init__(db_url, store_path)
        self.skipped = Metrics.counter("stream", "redelivered_skipped")

    def process(self, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if self.store.scored([fallback_upload_id(manifest)]):
            self.skipped.inc()
            return
        yield manifest


class WriteMetric(_StreamStoreDoFn):
    """One row per (window, counter); a re-fired window overwrites its row."""

    def process(self, named: tuple[str, int], win: Any = beam.DoFn.WindowParam) -> Iterator[tuple[str, int]]:
        name, value = named
        Metrics.counter("stream", f"window_{name}").inc(int(value))
        start = dt.datetime.fromtimestamp(float(win.start), dt.UTC)
        self.store.write_metric(start, round(float(win.end) - float(win.start)), name, int(value))
        yield named


def verdict_counter(v: Verdict) -> tuple[str, int]:
    return ("errors" if v.decision is Decision.ERROR else "verdicts", 1)


def build_scoring(messages: beam.PCollection, cfg: PipelineConfig, opts: StreamOptions) -> beam.PCollection:
    """Everything after the source (tests feed `TestStream` here); returns the verdicts."""
    windowed = messages | "Window" >> beam.WindowInto(window.FixedWindows(opts.window_s))
    parsed = windowed | "ParseEvent" >> beam.ParDo(ParseEvent()).with_outputs(POISON, main="ok")
    rows = parsed.ok | "SkipScored" >> beam.ParDo(SkipScored(cfg.db_url))
    poison = parsed[POISON]
    if opts.dead_letter_topic:
        _ = (poison | "DeadLetterMessage" >> beam.Map(dead_letter_message)
             | "WriteDeadLetter" >> beam.io.WriteToPubSub(opts.dead_letter_topic, with_attributes=True))
    verdicts = (
        [rows | "Score" >> ScoreUploads(cfg, streaming=True), poison | "PoisonVerdict" >> beam.Map(poison_verdict)]
        | "Verdicts" >> beam.Flatten()
    )
    _ = verdicts | "UpsertCases" >> beam.Map(lambda v: [v]) | "File" >> beam.ParDo(UpsertCases(cfg.db_url))
    _ = rows | "UploadRows" >> beam.Map(lambda r: [r]) | "UpsertUploads" >> beam.ParDo(UpsertUploads(cfg.db_url))
    _ = (
        [rows | "CountUploads" >> beam.Map(lambda _: ("uploads", 1)),
         verdicts | "CountVerdicts" >> beam.Map(verdict_counter)]
        | "Counters" >> beam.Flatten()
        | "Metrics" >> WindowedCounters(cfg.db_url, opts.metrics_window_s)
    )
    return verdicts


class WindowedCounters(beam.PTransform):  # type: ignore[misc]
    """(name, 1) events → per-window sums → the stream_metrics table (and Beam counters)."""

    def __init__(self, db_url: str, window_s: int, store_path: str = STREAM_STORE) -> None:
        super().__init__()
        self.db_url, self.window_s, self.store_path = db_url, window_s, store_path

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        return (
            events
            | "MetricWindows" >> beam.WindowInto(window.FixedWindows(self.window_s))
            | "SumPerWindow" >> beam.CombinePerKey(sum)
            | "WriteMetrics" >> beam.ParDo(WriteMetric(self.db_url, self.store_path))
        )


def build(p: beam.Pipeline, subscription: str, cfg: PipelineConfig, opts: StreamOptions) -> beam.PCollection:
    # A named subscription, not a topic: a topic read makes a temporary subscription whose deletion
    # hangs at exit when the endpoint is gone (PLATFORM-NOTES).
    messages = (p | "ReadUploads" >> beam.io.ReadFromPubSub(subscription=subscription, with_attributes=True)
                | "StampArrival" >> beam.ParDo(StampArrival()))
    return build_scoring(messages, cfg, opts)


class StampArrival(beam.DoFn):  # type: ignore[misc]
    """Give each message its arrival time as event time.

    The scoring windows batch work; they are not about when an upload was published.
    The local runner's Pub/Sub read sets its watermark to the time of each pull, so a
    message that waited in the subscription (a burst) carried a publish time behind the
    watermark, was late for its one-second window and was dropped by the windowed join.
    """

    def process(self, message: PubsubMessage, ts: Any = beam.DoFn.TimestampParam) -> Iterator[Any]:
        yield window.TimestampedValue(message, max(float(ts), time.time()))
