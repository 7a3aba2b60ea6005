"""The signed upload API end to end, on SQLite and PostgreSQL: multipart and signed-URL flows, re-delivery,
every refusal (and that it changed nothing), the outbox relay, and one run against the real Pub/Sub emulator.

Requests are signed for real (`trackguard.signing`) over the exact bytes sent. The
shared pieces (`HookWorld`, `RecordingPublisher`, the ``*_fixture`` functions) are
imported by tests/test_callbacks.py and tests/test_hooks_schemathesis.py too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from starlette.testclient import httpx  # the httpx (or httpx2) module the TestClient itself uses

from moderation.cases import CaseStore
from moderation.db import Base
from moderation.distributors import DistributorStore, IssuedKey
from moderation.hook_ledger import HookLedger
from moderation.hooks import HookService, key_part, object_key
from moderation.outbox import relay_outbox
from moderation.review import ReviewService
from moderation.schema import uploads
from moderation.web.app import create_app
from moderation.web.hook_auth import HookAuth
from pipelines.events import PublishError, UploadEvent
from tests.audio_factory import tone, write_audio, write_bad_file
from tests.review_support import (  # noqa: F401  (fixtures)
    Clock,
    cheap_argon2_fixture,
    clock_fixture,
    db_url_fixture,
    flagged,
)
from trackguard import signing
from trackguard.objectstore import LocalDirStore

MAX_BYTES = 256 * 1024  # small, so the size limits are cheap to exceed


class RecordingPublisher:
    """An `EventPublisher` that keeps what it was given; ``fail`` makes it refuse like a dead broker."""

    def __init__(self) -> None:
        self.events: list[UploadEvent] = []
        self.fail = False

    def publish(self, event: UploadEvent) -> str:
        if self.fail:
            raise PublishError("broker unreachable (test)")
        event.to_message()  # must serialise, as a real publisher would
        self.events.append(event)
        return str(len(self.events))

    def close(self) -> None:
        pass


@dataclasses.dataclass
class HookWorld:
    db_url: str
    root: Path
    hooks: HookService
    distributors: DistributorStore
    publisher: RecordingPublisher
    client: TestClient
    key: IssuedKey  # distributor d1
    other: IssuedKey  # distributor d2
    clock: Clock

    def send(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
             key: IssuedKey | None = None, signed: bool = True) -> httpx.Response:
        key = key or self.key
        headers = signing.signed_headers(key.key_id, key.secret, method, path, body) if signed else {}
        if content_type:
            headers["Content-Type"] = content_type
        return self.client.request(method, path, content=body, headers=headers)

    def post_json(self, doc: dict[str, Any], key: IssuedKey | None = None) -> httpx.Response:
        return self.send("POST", "/v1/uploads", json.dumps(doc).encode(), "application/json", key)

    def post_multipart(self, manifest: dict[str, Any] | str, audio: bytes, key: IssuedKey | None = None,
                       callback_url: str | None = None, audio_type: str = "audio/wav") -> httpx.Response:
        body, content_type = multipart(manifest, audio, callback_url, audio_type)
        return self.send("POST", "/v1/uploads", body, content_type, key)

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file() and ".meta" not in p.parts
                      and not p.name.startswith("."))

    def uploads_rows(self) -> list[str]:
        with sa.create_engine(self.db_url).connect() as conn:
            return list(conn.execute(sa.select(uploads.c.upload_id)).scalars())


def multipart(manifest: dict[str, Any] | str, audio: bytes, callback_url: str | None = None,
              audio_type: str = "audio/wav") -> tuple[bytes, str]:
    """Multipart bytes exactly as a client would send them (so the signature covers them)."""
    data = {"manifest": manifest if isinstance(manifest, str) else json.dumps(manifest)}
    if callback_url:
        data["callback_url"] = callback_url
    request = httpx.Request("POST", "http://testserver/v1/uploads", data=data,
                            files={"audio": ("track.wav", audio, audio_type)})
    return request.read(), request.headers["content-type"]


def manifest(upload_id: str | None = None, **fields: Any) -> dict[str, Any]:
    row = {"upload_id": upload_id or f"up-{uuid.uuid4().hex[:8]}", "title": "Night Drive", "artist_name": "Nova",
           "uploader_id": "label-7", "uploaded_at": "2026-11-20T10:00:00Z", "declared_ai": False}
    return row | fields


@pytest.fixture(name="wav_bytes", scope="module")
def wav_bytes_fixture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_audio(tmp_path_factory.mktemp("audio") / "t.wav", tone(16000, 1.0), 16000).read_bytes()


@pytest.fixture(name="hook_world")
def hook_world_fixture(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[HookWorld]:
    root = tmp_path / "objects"
    publisher = RecordingPublisher()
    hooks = HookService(db_url, LocalDirStore(root), publisher, max_upload_bytes=MAX_BYTES, signed_url_ttl_s=600,
                        url_secret="test-url-secret", clock=clock)
    distributors = DistributorStore(db_url)
    key = distributors.add("d1", "Distributor One", rate_per_s=1000, burst=1000)
    other = distributors.add("d2", "Distributor Two", rate_per_s=1000, burst=1000)
    review = ReviewService(db_url)
    app = create_app(review, secret_key="k", secure_cookies=False, db_url=db_url,
                     hooks=(hooks, HookAuth(distributors)))
    with TestClient(app) as client:
        yield HookWorld(db_url, root, hooks, distributors, publisher, client, key, other, clock)
    hooks.close()
    distributors.close()
    review.close()


def assert_untouched(world: HookWorld, upload_id: str) -> None:
    assert world.hooks.ledger.get(upload_id) is None
    assert world.stored_files() == []
    assert world.publisher.events == []
    assert upload_id not in world.uploads_rows()


# ---------------------------------------------------------------------- multipart


def test_multipart_upload_is_stored_accepted_published_and_scored(hook_world: HookWorld, wav_bytes: bytes) -> None:
    m = manifest("mp-1")
    r = hook_world.post_multipart(m, wav_bytes)
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["upload_id"] == "mp-1" and doc["status"] == "queued" and doc["event"] == "published"
    assert doc["verdict"] is None and doc["accepted_at"] is not None

    [stored] = hook_world.stored_files()
    assert stored.read_bytes() == wav_bytes
    assert stored == hook_world.root / object_key("d1", "mp-1", ".wav")
    [event] = hook_world.publisher.events
    assert event.upload_id == "mp-1" and event.manifest["audio_uri"] == stored.as_uri()
    assert event.manifest["distributor_id"] == "d1" and event.manifest["title"] == "Night Drive"
    record = hook_world.hooks.ledger.get("mp-1")
    assert record is not None and record.container == "wav" and record.size_bytes == len(wav_bytes)
    assert record.publish_count == 1 and record.published_at is not None
    assert "mp-1" in hook_world.uploads_rows()  # reviewers see the manifest

    CaseStore(hook_world.db_url).upsert_verdicts([flagged("mp-1", voice_similarity=0.93)])
    got = hook_world.send("GET", "/v1/uploads/mp-1").json()
    assert got["status"] == "scored" and got["verdict"]["decision"] == "review"
    assert got["verdict"]["voice_similarity"] is None  # biometric: withheld from distributors
    assert got["case"]["queue"] == "spam" and got["case"]["status"] == "open"


def test_redelivery_returns_the_current_status_without_a_second_object_or_event(hook_world: HookWorld,
                                                                                wav_bytes: bytes) -> None:
    m = manifest("again-1")
    first = hook_world.post_multipart(m, wav_bytes)
    assert first.status_code == 202
    second = hook_world.post_multipart(m, wav_bytes[:-100] + b"\0" * 100)  # a retry, even with other bytes
    assert second.status_code == 200, second.text
    assert {k: v for k, v in second.json().items() if k != "event"} == {
        k: v for k, v in first.json().items() if k != "event"}
    assert len(hook_world.publisher.events) == 1
    [stored] = hook_world.stored_files()
    assert stored.read_bytes() == wav_bytes


def test_same_upload_id_with_another_manifest_or_distributor_conflicts(hook_world: HookWorld,
                                                                      wav_bytes: bytes) -> None:
    assert hook_world.post_multipart(manifest("c-1"), wav_bytes).status_code == 202
    changed = hook_world.post_multipart(manifest("c-1", title="Another Title"), wav_bytes)
    assert changed.status_code == 409 and changed.json()["error"] == "upload_id_conflict"
    stolen = hook_world.post_multipart(manifest("c-1"), wav_bytes, key=hook_world.other)
    assert stolen.status_code == 409 and stolen.json()["error"] == "upload_id_conflict"
    assert len(hook_world.publisher.events) == 1 and len(hook_world.stored_files()) == 1
    record = hook_world.hooks.ledger.get("c-1")
    assert record is not None and record.manifest["title"] == "Night Drive"


def test_publish_failure_still_accepts_and_the_relay_publishes_later(hook_world: HookWorld, wav_bytes: bytes) -> None:
    hook_world.publisher.fail = True
    r = hook_world.post_multipart(manifest("late-1"), wav_bytes)
    assert r.status_code == 202 and r.json()["event"] == "queued" and r.json()["status"] == "queued"
    record = hook_world.hooks.ledger.get("late-1")
    assert record is not None and record.published_at is None and record.publish_count == 0

    assert relay_outbox(hook_world.hooks.ledger, hook_world.publisher, hook_world.clock()) == 0  # still down
    hook_world.publisher.fail = False
    assert relay_outbox(hook_world.hooks.ledger, hook_world.publisher, hook_world.clock()) == 1
    assert [e.upload_id for e in hook_world.publisher.events] == ["late-1"]
    assert relay_outbox(hook_world.hooks.ledger, hook_world.publisher, hook_world.clock()) == 0  # recently published


# ---------------------------------------------------------------------- signed-URL flow


def _register_for_put(world: HookWorld, upload_id: str, content_type: str = "audio/wav") -> dict[str, Any]:
    r = world.post_json({"manifest": manifest(upload_id), "content_type": content_type})
    assert r.status_code == 201, r.text
    return r.json()


def _put(world: HookWorld, doc: dict[str, Any], body: bytes, content_type: str | None = None) -> httpx.Response:
    path = httpx.URL(doc["upload_url"]).raw_path.decode()
    return world.client.put(path, content=body, headers={"Content-Type": content_type or
                                                         doc["upload_headers"]["Content-Type"]})


def test_signed_url_flow_register_put_complete(hook_world: HookWorld, wav_bytes: bytes) -> None:
    doc = _register_for_put(hook_world, "url-1")
    assert doc["status"] == "awaiting_audio" and doc["upload_method"] == "PUT"
    assert doc["complete_url"].endswith("/v1/uploads/url-1/complete")
    assert hook_world.publisher.events == []

    early = hook_world.send("POST", "/v1/uploads/url-1/complete")
    assert early.status_code == 409 and early.json()["error"] == "audio_missing"
    again = hook_world.post_json({"manifest": manifest("url-1"), "content_type": "audio/wav"})
    assert again.status_code == 200 and again.json()["upload_url"]  # a lost response: same upload, fresh URL

    put = _put(hook_world, doc, wav_bytes)
    assert put.status_code == 200 and put.json() == {"upload_id": "url-1", "size_bytes": len(wav_bytes)}
    done = hook_world.send("POST", "/v1/uploads/url-1/complete")
    assert done.status_code == 202 and done.json()["status"] == "queued" and done.json()["event"] == "published"
    repeat = hook_world.send("POST", "/v1/uploads/url-1/complete")
    assert repeat.status_code == 200 and repeat.json()["status"] == "queued"
    assert [e.upload_id for e in hook_world.publisher.events] == ["url-1"]
    late = _put(hook_world, doc, b"RIFF" + bytes(100))
    assert late.status_code == 409 and late.json()["error"] == "already_accepted"
    [stored] = hook_world.stored_files()
    assert stored.read_bytes() == wav_bytes


def test_signed_url_refusals(hook_world: HookWorld, wav_bytes: bytes) -> None:
    doc = _register_for_put(hook_world, "url-2")
    wrong_type = _put(hook_world, doc, wav_bytes, content_type="text/plain")
    assert wrong_type.status_code == 415 and wrong_type.json()["error"] == "unsupported_media_type"
    token = doc["upload_url"].rsplit("/", 1)[1]
    forged = hook_world.client.put(f"/v1/objects/{token[:-2]}xx", content=wav_bytes,
                                   headers={"Content-Type": "audio/wav"})
    assert forged.status_code == 403 and forged.json()["error"] == "invalid_upload_url"
    big = _put(hook_world, doc, bytes(MAX_BYTES + 1))
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
    streamed = hook_world.client.put(httpx.URL(doc["upload_url"]).raw_path.decode(),
                                     content=iter([bytes(MAX_BYTES // 2)] * 3), headers={"Content-Type": "audio/wav"})
    assert streamed.status_code == 413  # no Content-Length: the streamed count decides
    assert hook_world.stored_files() == []
    hook_world.clock.advance(601)
    expired = _put(hook_world, doc, wav_bytes)
    assert expired.status_code == 403 and expired.json()["error"] == "upload_url_expired"
    assert hook_world.stored_files() == []


def test_audio_for_a_json_registration_may_come_by_multipart(hook_world: HookWorld, wav_bytes: bytes) -> None:
    _register_for_put(hook_world, "url-mp")
    r = hook_world.post_multipart(manifest("url-mp"), wav_bytes)
    assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["event"] == "published"
    assert hook_world.post_multipart(manifest("url-mp"), wav_bytes).status_code == 200
    assert len(hook_world.publisher.events) == 1 and len(hook_world.stored_files()) == 1


def test_complete_refuses_a_non_audio_object_and_deletes_it(hook_world: HookWorld, tmp_path: Path) -> None:
    doc = _register_for_put(hook_world, "url-3")
    text = write_bad_file(tmp_path / "lyrics.mp3", "text_as_mp3").read_bytes()
    assert _put(hook_world, doc, text).status_code == 200
    r = hook_world.send("POST", "/v1/uploads/url-3/complete")
    assert r.status_code == 415 and r.json()["error"] == "not_audio"
    assert hook_world.stored_files() == [] and hook_world.publisher.events == []
    record = hook_world.hooks.ledger.get("url-3")
    assert record is not None and record.status == "awaiting_audio"


# ---------------------------------------------------------------------- refusals change nothing


def test_refusals_of_the_request_change_nothing(hook_world: HookWorld, wav_bytes: bytes, tmp_path: Path) -> None:
    """400 invalid_manifest (with the field), 403 wrong_distributor, 415 not_audio / unsupported_media_type:
    each leaves no ledger row, no object, no event and no reviewer metadata. One world for all: cheaper."""
    bad = manifest("bad-1")
    del bad["title"]
    r = hook_world.post_multipart(bad, wav_bytes)
    assert r.status_code == 400 and r.json()["error"] == "invalid_manifest" and "title" in r.json()["message"]
    for when in ("yesterday", "0001-01-01T00:00:00+01:00"):  # the second is before datetime.min in UTC
        ts = hook_world.post_multipart(manifest("bad-1", uploaded_at=when), wav_bytes)
        assert ts.status_code == 400 and "uploaded_at" in ts.json()["message"], ts.text
    garbled = hook_world.post_multipart("{not json", wav_bytes)
    assert garbled.status_code == 400 and garbled.json()["error"] == "invalid_manifest"
    assert_untouched(hook_world, "bad-1")

    r = hook_world.post_multipart(manifest("wd-1", distributor_id="d2"), wav_bytes)
    assert r.status_code == 403 and r.json()["error"] == "wrong_distributor"
    assert_untouched(hook_world, "wd-1")

    text = write_bad_file(tmp_path / "lyrics.mp3", "text_as_mp3").read_bytes()
    r = hook_world.post_multipart(manifest("na-1"), text, audio_type="audio/mpeg")
    assert r.status_code == 415 and r.json()["error"] == "not_audio"
    html = hook_world.post_multipart(manifest("na-1"), b"<html><body>502 Bad Gateway</body></html>")
    assert html.status_code == 415
    assert_untouched(hook_world, "na-1")

    r = hook_world.send("POST", "/v1/uploads", b"upload_id=x", "application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"

    for url in ("ftp://example.org/cb", "javascript:alert(1)", "/relative"):
        r = hook_world.post_multipart(manifest("cb-1"), wav_bytes, callback_url=url)
        assert r.status_code == 400 and r.json()["error"] == "invalid_callback_url"
    assert_untouched(hook_world, "cb-1")


def test_size_limits_by_content_length_by_streamed_count_and_on_the_audio(hook_world: HookWorld,
                                                                         wav_bytes: bytes) -> None:
    huge = MAX_BYTES + (1 << 20) + 1
    by_header = hook_world.client.post("/v1/uploads", content=iter([b"x"]),
                                       headers={"Content-Length": str(huge), "Content-Type": "application/json"})
    assert by_header.status_code == 413 and by_header.json()["error"] == "payload_too_large"
    chunk = bytes(1 << 18)
    streamed = hook_world.client.post("/v1/uploads", content=iter([chunk] * (huge // len(chunk) + 1)),
                                      headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413  # chunked, no Content-Length
    too_long = wav_bytes + bytes(MAX_BYTES)  # under the request limit, over the audio limit
    r = hook_world.post_multipart(manifest("big-1"), too_long)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert_untouched(hook_world, "big-1")


def test_unsigned_and_foreign_requests(hook_world: HookWorld, wav_bytes: bytes) -> None:
    body, content_type = multipart(manifest("us-1"), wav_bytes)
    unsigned = hook_world.send("POST", "/v1/uploads", body, content_type, signed=False)
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "unsigned"
    headers = signing.signed_headers(hook_world.key.key_id, hook_world.key.secret, "POST", "/v1/uploads", body)
    tampered = hook_world.client.post("/v1/uploads", content=body[:-10] + b"x" * 10,
                                      headers={**headers, "Content-Type": content_type})
    assert tampered.status_code == 400 and tampered.json()["error"] == "content_hash_mismatch"
    assert_untouched(hook_world, "us-1")

    assert hook_world.post_multipart(manifest("us-2"), wav_bytes).status_code == 202
    for path in ("/v1/uploads/us-2", "/v1/uploads/nobody-has-this", "/v1/uploads/us%002", "/v1/uploads/%C3%A9"):
        r = hook_world.send("GET", path, key=hook_world.other)
        assert r.status_code == 404 and r.json()["error"] == "unknown_upload"
    foreign_complete = hook_world.send("POST", "/v1/uploads/us-2/complete", key=hook_world.other)
    assert foreign_complete.status_code == 404


def test_existing_bearer_routes_still_answer(hook_world: HookWorld, wav_bytes: bytes) -> None:
    assert hook_world.post_multipart(manifest("old-1"), wav_bytes).status_code == 202
    r = hook_world.client.get("/v1/uploads/old-1/verdict")
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    paths = set(hook_world.client.get("/v1/openapi.json").json()["paths"])
    assert {"/v1/uploads", "/v1/uploads/{upload_id}", "/v1/uploads/{upload_id}/complete", "/v1/objects/{token}",
            "/v1/uploads/{upload_id}/verdict", "/v1/uploads/{upload_id}/appeals"} <= paths


# ---------------------------------------------------------------------- outbox relay


def test_relay_publishes_unpublished_and_stale_uploads_but_not_scored_ones(hook_world: HookWorld,
                                                                          wav_bytes: bytes) -> None:
    hook_world.publisher.fail = True
    for uid in ("r-never", "r-scored"):
        assert hook_world.post_multipart(manifest(uid), wav_bytes).status_code == 202
    hook_world.publisher.fail = False
    assert hook_world.post_multipart(manifest("r-fresh"), wav_bytes).status_code == 202
    CaseStore(hook_world.db_url).upsert_verdicts([flagged("r-scored")])
    ledger, pub = hook_world.hooks.ledger, hook_world.publisher
    pub.events.clear()
    now = hook_world.clock()

    assert relay_outbox(ledger, pub, now + dt.timedelta(seconds=60), republish_after_s=120) == 1
    assert [e.upload_id for e in pub.events] == ["r-never"]  # r-fresh was published 60 s ago: not stale yet
    later = now + dt.timedelta(seconds=121)
    assert relay_outbox(ledger, pub, later, republish_after_s=120) == 1  # r-fresh is stale now, r-never is not
    assert [e.upload_id for e in pub.events] == ["r-never", "r-fresh"]
    record = ledger.get("r-fresh")
    assert record is not None and record.publish_count == 2
    assert relay_outbox(ledger, pub, later + dt.timedelta(seconds=1000), republish_after_s=120) == 2
    assert "r-scored" not in {e.upload_id for e in pub.events}
    assert relay_outbox(ledger, pub, later + dt.timedelta(seconds=1000), limit=0) == 0


def test_ledger_table_matches_migration_0006(db_url: str) -> None:
    engine = HookLedger(db_url).engine
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if "hook_uploads" in repr(d)]
    assert ours == [], ours


def test_object_keys_keep_distinct_ids_distinct() -> None:
    ids = ["a:b", "a_b", "a__b", "a_cb", "a..b", "a._db", "a.b"]
    assert len({key_part(i) for i in ids}) == len(ids)
    assert all(".." not in key_part(i) and ":" not in key_part(i) for i in ids)
    assert key_part("plain-id.01") == "plain-id.01"


# ---------------------------------------------------------------------- the real Pub/Sub emulator


@pytest.fixture(scope="module")
def pubsub_project() -> Iterator[str]:
    from trackguard.emulators import PubSubEmulator, pubsub_emulator_available

    reason = pubsub_emulator_available()
    if reason is not None:
        pytest.skip(f"Pub/Sub emulator not usable: {reason}")
    mp = pytest.MonkeyPatch()
    with PubSubEmulator() as emulator:
        for name, value in emulator.env().items():
            mp.setenv(name, value)
        yield "trackguard-test"
    mp.undo()


def test_upload_event_reaches_the_pubsub_emulator(pubsub_project: str, sqlite_url: str, tmp_path: Path,
                                                  wav_bytes: bytes) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from pipelines.events import SUBSCRIPTION, PubSubPublisher, ensure_topology, subscription_path

    ensure_topology(pubsub_project)
    publisher = PubSubPublisher(pubsub_project, timeout_s=10)
    hooks = HookService(sqlite_url, LocalDirStore(tmp_path / "objects"), publisher, url_secret="s")
    distributors = DistributorStore(sqlite_url)
    key = distributors.add("d1", "One")
    review = ReviewService(sqlite_url)
    app = create_app(review, secret_key="k", secure_cookies=False, db_url=sqlite_url,
                     hooks=(hooks, HookAuth(distributors)))
    try:
        body, content_type = multipart(manifest("ps-1"), wav_bytes)
        with TestClient(app) as client:
            headers = signing.signed_headers(key.key_id, key.secret, "POST", "/v1/uploads", body)
            r = client.post("/v1/uploads", content=body, headers={**headers, "Content-Type": content_type})
        assert r.status_code == 202 and r.json()["event"] == "published", r.text
        subscriber = pubsub_v1.SubscriberClient()
        try:
            pulled = subscriber.pull(subscription=subscription_path(pubsub_project, SUBSCRIPTION),
                                     max_messages=10, timeout=20)
            [message] = [m.message for m in pulled.received_messages]
            subscriber.acknowledge(subscription=subscription_path(pubsub_project, SUBSCRIPTION),
                                   ack_ids=[m.ack_id for m in pulled.received_messages])
        finally:
            subscriber.close()
        event = UploadEvent.from_message(message.data, dict(message.attributes))
        assert event.upload_id == "ps-1" and event.manifest["audio_uri"].startswith("file://")
        assert message.attributes["distributor_id"] == "d1"
    finally:
        publisher.close()
        hooks.close()
        distributors.close()
        review.close()

