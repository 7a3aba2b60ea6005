"""Upload events on Pub/Sub: the message format, a blocking publisher, and the topic layout.

An accepted upload becomes one message on ``uploads``: the data is the manifest
row as JSON (so the streaming pipeline scores it exactly like a sweep row), the
attributes carry what routing and dashboards need without parsing the body.
Messages that keep failing go to ``uploads-dead-letter`` after
``max_delivery_attempts``. The Pub/Sub client honours ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Protocol

TOPIC = "uploads"
DEAD_LETTER_TOPIC = "uploads-dead-letter"
SUBSCRIPTION = "uploads-stream"
DEAD_LETTER_SUBSCRIPTION = "uploads-dead-letter-sub"
EVENT_TYPE = "upload.accepted"


class InvalidEvent(ValueError):
    """A message that is not a usable upload event; ``upload_id`` is set when it could be read."""

    def __init__(self, reason: str, upload_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.upload_id = upload_id


class PublishError(RuntimeError):
    """The broker did not confirm the message in time (or refused it)."""


def topic_path(project: str, name: str) -> str:
    return f"projects/{project}/topics/{name}"


def subscription_path(project: str, name: str) -> str:
    return f"projects/{project}/subscriptions/{name}"


def _utc(t: dt.datetime) -> dt.datetime:
    # a naive timestamp is taken as UTC: every clock in this project is UTC
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"manifest value of type {type(value).__name__} is not JSON serialisable")


@dataclasses.dataclass(frozen=True)
class UploadEvent:
    upload_id: str
    manifest: dict[str, Any]  # a manifest row (trackguard.contracts.MANIFEST_FIELDS), audio_uri = stored object
    accepted_at: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepted_at", _utc(self.accepted_at))

    def to_message(self) -> tuple[bytes, dict[str, str]]:
        data = json.dumps(self.manifest, sort_keys=True, separators=(",", ":"), default=_json_default)
        attributes = {
            "upload_id": self.upload_id,
            "distributor_id": str(self.manifest.get("distributor_id") or ""),
            "accepted_at": self.accepted_at.isoformat(),
            "event_type": EVENT_TYPE,
        }
        return data.encode(), attributes

    @classmethod
    def from_message(cls, data: bytes, attributes: Mapping[str, str]) -> UploadEvent:
        attrs = dict(attributes or {})
        attr_id = attrs.get("upload_id") or None
        event_type = attrs.get("event_type")
        if event_type is not None and event_type != EVENT_TYPE:
            raise InvalidEvent(f"event_type {event_type!r} is not {EVENT_TYPE!r}", attr_id)
        manifest = _decode_manifest(data, attr_id)
        upload_id = _required_str(manifest, "upload_id", attr_id)
        if attr_id is not None and attr_id != upload_id:
            raise InvalidEvent(f"attribute upload_id {attr_id!r} differs from manifest upload_id {upload_id!r}",
                               upload_id)
        _required_str(manifest, "audio_uri", upload_id)
        return cls(upload_id, manifest, _accepted_at(attrs.get("accepted_at"), upload_id))


def _decode_manifest(data: bytes, upload_id: str | None) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"message data is not JSON: {exc}", upload_id) from exc
    if not isinstance(manifest, dict):
        raise InvalidEvent(f"message data is a JSON {type(manifest).__name__}, not an object", upload_id)
    return manifest


def _required_str(manifest: Mapping[str, Any], name: str, upload_id: str | None) -> str:
    value = manifest.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"manifest field {name!r} must be a non-empty string", upload_id)
    return value


def _accepted_at(raw: str | None, upload_id: str) -> dt.datetime:
    if not raw:
        raise InvalidEvent("attribute accepted_at is missing", upload_id)
    try:
        return _utc(dt.datetime.fromisoformat(raw))
    except ValueError as exc:
        raise InvalidEvent(f"attribute accepted_at {raw!r} is not an ISO-8601 timestamp", upload_id) from exc


class EventPublisher(Protocol):
    def publish(self, event: UploadEvent) -> str: ...

    def close(self) -> None: ...


class PubSubPublisher:
    """Publishes upload events and waits for the broker's message id (the outbox needs to know)."""

    def __init__(self, project: str, topic: str = TOPIC, timeout_s: float = 10.0) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._client = pubsub_v1.PublisherClient()
        self.topic = topic_path(project, topic)
        self.timeout_s = timeout_s

    def publish(self, event: UploadEvent) -> str:
        from google.api_core.retry import Retry

        data, attributes = event.to_message()
        try:
            # bound the client's own retries too, so a dead broker does not retry in the background forever
            future = self._client.publish(self.topic, data, retry=Retry(timeout=self.timeout_s),
                                          timeout=self.timeout_s, **attributes)
            return str(future.result(timeout=self.timeout_s))
        except Exception as exc:  # any failure means "not published": the outbox tries again
            raise PublishError(f"publishing {event.upload_id} to {self.topic} failed: "
                               f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._client.stop()


def _create_ignoring_exists(create: Any, **request: Any) -> None:
    from google.api_core.exceptions import AlreadyExists

    with contextlib.suppress(AlreadyExists):
        create(request=request)


def ensure_topology(project: str, ack_deadline_s: int = 60, max_delivery_attempts: int = 5) -> None:
    """Create (idempotently) the topics, the stream subscription with its dead-letter policy, and the DLQ sub.

    An existing stream subscription gets its ack deadline and dead-letter policy
    updated, so changing the settings and re-running takes effect.
    """
    if not 5 <= max_delivery_attempts <= 100:
        raise ValueError("Pub/Sub allows max_delivery_attempts between 5 and 100")
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]
    from google.protobuf import field_mask_pb2

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for name in (TOPIC, DEAD_LETTER_TOPIC):
            _create_ignoring_exists(publisher.create_topic, name=topic_path(project, name))
        stream = pubsub_v1.types.Subscription(
            name=subscription_path(project, SUBSCRIPTION), topic=topic_path(project, TOPIC),
            ack_deadline_seconds=ack_deadline_s,
            dead_letter_policy=pubsub_v1.types.DeadLetterPolicy(
                dead_letter_topic=topic_path(project, DEAD_LETTER_TOPIC),
                max_delivery_attempts=max_delivery_attempts),
        )
        try:
            subscriber.create_subscription(request=stream)
        except AlreadyExists:
            mask = field_mask_pb2.FieldMask(paths=["ack_deadline_seconds", "dead_letter_policy"])
            subscriber.update_subscription(request={"subscription": stream, "update_mask": mask})
        _create_ignoring_exists(subscriber.create_subscription,
                                name=subscription_path(project, DEAD_LETTER_SUBSCRIPTION),
                                topic=topic_path(project, DEAD_LETTER_TOPIC), ack_deadline_seconds=ack_deadline_s)
    finally:
        subscriber.close()
        publisher.stop()
