"""Upload events: the message format, and publish/pull/dead-letter/restart through Google's Pub/Sub emulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.events import (
    DEAD_LETTER_SUBSCRIPTION,
    DEAD_LETTER_TOPIC,
    SUBSCRIPTION,
    TOPIC,
    InvalidEvent,
    PublishError,
    PubSubPublisher,
    UploadEvent,
    ensure_topology,
    subscription_path,
    topic_path,
)
from trackguard.emulators import PubSubEmulator, free_port, pubsub_emulator_available

REPO = Path(__file__).resolve().parents[1]
ACCEPTED = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def _manifest(upload_id: Any = "up-1", **extra: Any) -> dict[str, Any]:
    row = {"upload_id": upload_id, "audio_uri": "gs://tg-uploads/up-1.wav", "title": "Song",
           "artist_name": "A", "claimed_artist_id": None, "distributor_id": "dist-7", "uploader_id": "u9",
           "uploaded_at": "2026-05-01T12:00:00+00:00", "declared_ai": False}
    row.update(extra)
    return row


# ---------------------------------------------------------------- message format


def test_message_roundtrip() -> None:
    event = UploadEvent("up-1", _manifest(), ACCEPTED)
    data, attrs = event.to_message()
    assert json.loads(data) == _manifest()
    assert attrs == {"upload_id": "up-1", "distributor_id": "dist-7", "accepted_at": "2026-05-01T12:30:15.123456+00:00",
                     "event_type": "upload.accepted"}
    assert UploadEvent.from_message(data, attrs) == event


def test_times_are_utc_and_datetimes_serialise() -> None:
    cet = dt.timezone(dt.timedelta(hours=2))
    event = UploadEvent("up-1", _manifest(uploaded_at=dt.datetime(2026, 5, 1, 14, 0, tzinfo=cet)),
                        dt.datetime(2026, 5, 1, 14, 30, tzinfo=cet))
    data, attrs = event.to_message()
    assert attrs["accepted_at"] == "2026-05-01T12:30:00+00:00"
    assert json.loads(data)["uploaded_at"] == "2026-05-01T12:00:00+00:00"
    naive = UploadEvent("up-1", _manifest(), dt.datetime(2026, 5, 1, 12, 30))
    assert naive.accepted_at.tzinfo is dt.UTC
    assert UploadEvent.from_message(data, {**attrs, "accepted_at": "2026-05-01T12:30:00Z"}).accepted_at == \
        dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)


def test_missing_optional_attributes_are_fine() -> None:
    data, attrs = UploadEvent("up-1", _manifest(), ACCEPTED).to_message()
    event = UploadEvent.from_message(data, {"accepted_at": attrs["accepted_at"]})
    assert event.upload_id == "up-1"


@pytest.mark.parametrize(("data", "attrs", "reason", "upload_id"), [
    (b"not json", {}, "not JSON", None),
    (b"\xff\xfe", {"upload_id": "up-1"}, "not JSON", "up-1"),
    (b"[1, 2]", {}, "JSON list, not an object", None),
    (b'"text"', {}, "not an object", None),
    (json.dumps(_manifest(upload_id=None)).encode(), {}, "'upload_id'", None),
    (json.dumps(_manifest(upload_id=7)).encode(), {}, "'upload_id'", None),
    (json.dumps(_manifest(audio_uri="")).encode(), {}, "'audio_uri'", "up-1"),
    (json.dumps({"upload_id": "up-1"}).encode(), {}, "'audio_uri'", "up-1"),
    (json.dumps(_manifest()).encode(), {"upload_id": "up-2"}, "differs", "up-1"),
    (json.dumps(_manifest()).encode(), {"event_type": "upload.deleted"}, "event_type", None),
    (json.dumps(_manifest()).encode(), {}, "accepted_at is missing", "up-1"),
    (json.dumps(_manifest()).encode(), {"accepted_at": "yesterday"}, "not an ISO-8601", "up-1"),
])
def test_invalid_events(data: bytes, attrs: dict[str, str], reason: str, upload_id: str | None) -> None:
    attrs = {"accepted_at": ACCEPTED.isoformat(), **attrs} if "accepted_at" not in reason else attrs
    with pytest.raises(InvalidEvent) as err:
        UploadEvent.from_message(data, attrs)
    assert reason in err.value.reason
    assert err.value.upload_id == upload_id
    assert isinstance(err.value, ValueError)


def test_paths() -> None:
    assert topic_path("p1", TOPIC) == "projects/p1/topics/uploads"
    assert subscription_path("p1", SUBSCRIPTION) == "projects/p1/subscriptions/uploads-stream"


def test_ensure_topology_rejects_attempts_pubsub_would_refuse() -> None:
    for n in (4, 101):
        with pytest.raises(ValueError):
            ensure_topology("p-x", max_delivery_attempts=n)


# ---------------------------------------------------------------- the real emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    reason = pubsub_emulator_available()
    if reason is not None:
        pytest.skip(reason)
    with PubSubEmulator(data_dir=tmp_path_factory.mktemp("pubsub")) as emu:
        yield emu


@pytest.fixture()
def project(emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh project on the shared emulator (the emulator accepts any project), with the env pointing at it."""
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    return f"tg-{uuid.uuid4().hex[:8]}"


def _pull(subscriber: Any, project: str, sub: str, want: int = 1, wait_s: float = 10.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + wait_s
    from google.api_core.exceptions import DeadlineExceeded

    while len(got) < want and (left := deadline - time.monotonic()) > 0:
        try:
            resp = subscriber.pull(subscription=subscription_path(project, sub), max_messages=10,
                                   timeout=max(0.5, min(5.0, left)))
        except DeadlineExceeded:
            continue
        got.extend(resp.received_messages)
    return got


def _subscriber() -> Any:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    return pubsub_v1.SubscriberClient()


def test_publish_pull_roundtrip(project: str) -> None:
    ensure_topology(project, ack_deadline_s=10)
    ensure_topology(project, ack_deadline_s=10)  # idempotent
    publisher = PubSubPublisher(project, timeout_s=10)
    sub = _subscriber()
    try:
        event = UploadEvent("up-1", _manifest(), ACCEPTED)
        message_id = publisher.publish(event)
        assert message_id
        [received] = _pull(sub, project, SUBSCRIPTION)
        assert received.message.message_id == message_id
        assert UploadEvent.from_message(received.message.data, received.message.attributes) == event
        sub.acknowledge(subscription=subscription_path(project, SUBSCRIPTION), ack_ids=[received.ack_id])
    finally:
        publisher.close()
        sub.close()


def test_dead_letter_after_max_delivery_attempts(project: str) -> None:
    ensure_topology(project, ack_deadline_s=10, max_delivery_attempts=5)
    sub = _subscriber()
    publisher = PubSubPublisher(project)
    try:
        stream = sub.get_subscription(subscription=subscription_path(project, SUBSCRIPTION))
        assert stream.dead_letter_policy.dead_letter_topic == topic_path(project, DEAD_LETTER_TOPIC)
        assert stream.dead_letter_policy.max_delivery_attempts == 5 and stream.ack_deadline_seconds == 10
        publisher.publish(UploadEvent("up-dl", _manifest("up-dl"), ACCEPTED))
        attempts = []
        for _ in range(5):  # the pipeline keeps failing on it: nack every delivery
            [m] = _pull(sub, project, SUBSCRIPTION)
            attempts.append(m.delivery_attempt)
            sub.modify_ack_deadline(subscription=subscription_path(project, SUBSCRIPTION), ack_ids=[m.ack_id],
                                    ack_deadline_seconds=0)
        assert attempts == [1, 2, 3, 4, 5]
        # the emulator forwards to the dead-letter topic when the next delivery is due, i.e. on the next pull
        # of the stream subscription (real Pub/Sub forwards in the background); it is not delivered a 6th time
        assert _pull(sub, project, SUBSCRIPTION, wait_s=1.0) == []
        [dead] = _pull(sub, project, DEAD_LETTER_SUBSCRIPTION)
        assert dead.message.attributes["upload_id"] == "up-dl"
        assert dead.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        assert UploadEvent.from_message(dead.message.data, dead.message.attributes).upload_id == "up-dl"
    finally:
        publisher.close()
        sub.close()


def test_publish_error_when_no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    publisher = PubSubPublisher("tg-none", timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(PublishError, match="up-x"):
        publisher.publish(UploadEvent("up-x", _manifest("up-x"), ACCEPTED))
    assert time.monotonic() - started < 10
    publisher.close()


def test_publish_error_when_topic_missing(project: str) -> None:
    publisher = PubSubPublisher(project, topic="no-such-topic", timeout_s=5)
    with pytest.raises(PublishError, match="NotFound"):
        publisher.publish(UploadEvent("up-1", _manifest(), ACCEPTED))
    publisher.close()


def _emulator_pids(port: int) -> list[int]:
    """Processes (gcloud wrapper or java) whose command line names this port."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "pubsub" in cmd and (f"--port={port}" in cmd or f"127.0.0.1:{port}" in cmd):
            pids.append(int(entry.name))
    return pids


def test_restart_loses_everything_and_the_publisher_recovers(emulator: PubSubEmulator, project: str) -> None:
    """What is true of Google's emulator: no persistence, --data-dir notwithstanding.

    Unacked messages, topics and subscriptions are all gone after a restart, so
    "nothing lost" depends on the outbox relay re-publishing after ensure_topology.
    """
    ensure_topology(project, ack_deadline_s=10)
    publisher = PubSubPublisher(project, timeout_s=5)
    sub = _subscriber()
    try:
        publisher.publish(UploadEvent("up-r", _manifest("up-r"), ACCEPTED))  # never acked
        port, data_dir = emulator.port, emulator.data_dir
        emulator.restart()
        assert (emulator.port, emulator.data_dir) == (port, data_dir)
        assert len(_emulator_pids(port)) >= 1
        from google.api_core.exceptions import NotFound

        with pytest.raises(NotFound):
            sub.get_subscription(subscription=subscription_path(project, SUBSCRIPTION), timeout=10)
        with pytest.raises(PublishError):  # the topic is gone too
            publisher.publish(UploadEvent("up-r", _manifest("up-r"), ACCEPTED))
        ensure_topology(project, ack_deadline_s=10)
        assert _pull(sub, project, SUBSCRIPTION, wait_s=1.0) == []  # the unacked message did not survive
        publisher.publish(UploadEvent("up-r", _manifest("up-r"), ACCEPTED))  # same client, new connection
        [again] = _pull(sub, project, SUBSCRIPTION)
        assert again.message.attributes["upload_id"] == "up-r"
        assert sorted(p.name for p in data_dir.iterdir() if p.suffix != ".log") == ["env.yaml"]  # nothing persisted
    finally:
        publisher.close()
        sub.close()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    if pubsub_emulator_available() is not None:
        pytest.skip(str(pubsub_emulator_available()))
    emu = PubSubEmulator(data_dir=tmp_path / "ps")
    emu.start()
    assert emu.start() is emu  # idempotent: still one process group
    pids = _emulator_pids(emu.port)
    assert len(pids) >= 2  # the gcloud wrapper and its JVM
    emu.stop()
    assert _emulator_pids(emu.port) == []
    assert not emu.running


def test_atexit_stops_a_forgotten_emulator(tmp_path: Path) -> None:
    if pubsub_emulator_available() is not None:
        pytest.skip(str(pubsub_emulator_available()))
    port = free_port()
    script = textwrap.dedent(f"""
        from trackguard.emulators import PubSubEmulator
        PubSubEmulator(port={port}, data_dir={str(tmp_path / 'ps')!r}).start()
        print("started", flush=True)
    """)  # exits without stop(): atexit must clean up
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "started" in out.stdout, out.stderr
    assert _emulator_pids(port) == []
