"""Signed callbacks to a real local HTTP server: delivered once and verifiable, retried with backoff, given up.

On SQLite and PostgreSQL. The server answers with the statuses a test queues up
and records every request (headers and exact body bytes).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from moderation.callbacks import CallbackDispatcher
from moderation.cases import CaseStore
from tests.review_support import (  # noqa: F401  (fixtures)
    cheap_argon2_fixture,
    clock_fixture,
    db_url_fixture,
    flagged,
)
from tests.test_hooks_api import HookWorld, hook_world_fixture, manifest, wav_bytes_fixture  # noqa: F401  (fixtures)
from trackguard import signing


class Receiver:
    """A callback endpoint on 127.0.0.1: answers ``statuses`` in turn (then 200) and records requests
    (header names lower-cased, body bytes as received)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tg-callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _dispatcher(world: HookWorld, **kwargs: object) -> Iterator[CallbackDispatcher]:
    d = CallbackDispatcher(world.db_url, world.distributors, clock=world.clock, rng=random.Random(5),
                           **kwargs)  # type: ignore[arg-type]
    yield d
    d.close()


@pytest.fixture()
def dispatcher(hook_world: HookWorld) -> Iterator[CallbackDispatcher]:
    yield from _dispatcher(hook_world, max_attempts=3, base_delay_s=2.0)


def _scored_upload(world: HookWorld, upload_id: str, url: str, audio: bytes) -> None:
    r = world.post_multipart(manifest(upload_id), audio, callback_url=url)
    assert r.status_code == 202, r.text
    CaseStore(world.db_url).upsert_verdicts([flagged(upload_id, voice_similarity=0.9)])


def test_callback_is_delivered_once_signed_with_the_status_document(hook_world: HookWorld, receiver: Receiver,
                                                                    dispatcher: CallbackDispatcher,
                                                                    wav_bytes: bytes) -> None:
    r = hook_world.post_multipart(manifest("cb-ok"), wav_bytes, callback_url=receiver.url)
    assert r.status_code == 202
    assert dispatcher.run_once() == 0 and receiver.requests == []  # not scored yet: nothing to say
    CaseStore(hook_world.db_url).upsert_verdicts([flagged("cb-ok", voice_similarity=0.9)])

    assert dispatcher.run_once() == 1
    [(headers, body)] = receiver.requests
    ts, signature = int(headers[signing.CALLBACK_TIMESTAMP.lower()]), headers[signing.CALLBACK_SIGNATURE.lower()]
    assert headers[signing.CALLBACK_KEY_ID.lower()] == hook_world.key.key_id
    assert headers["content-type"] == "application/json"
    assert signing.verify_callback(hook_world.key.secret, ts, body, signature)
    assert not signing.verify_callback(hook_world.other.secret, ts, body, signature)
    doc, polled = json.loads(body), hook_world.send("GET", "/v1/uploads/cb-ok").json()
    times = ("created_at", "accepted_at")
    assert {k: v for k, v in doc.items() if k not in times} == {k: v for k, v in polled.items()
                                                              if k not in (*times, "event")}
    assert all(dt.datetime.fromisoformat(doc[k]) == dt.datetime.fromisoformat(polled[k]) for k in times)
    assert doc["upload_id"] == "cb-ok" and doc["status"] == "scored" and doc["verdict"]["voice_similarity"] is None
    assert doc["case"]["queue"] == "spam"

    hook_world.clock.advance(3600)
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 1  # delivered: never again
    record = hook_world.hooks.ledger.get("cb-ok")
    assert record is not None and record.callback_delivered_at is not None and record.callback_attempts == 1


def test_failures_back_off_exponentially_then_give_up(hook_world: HookWorld, receiver: Receiver,
                                                     dispatcher: CallbackDispatcher, wav_bytes: bytes) -> None:
    receiver.statuses = [500, 500, 500, 500]
    _scored_upload(hook_world, "cb-fail", receiver.url, wav_bytes)
    start = hook_world.clock()

    assert dispatcher.run_once() == 0 and len(receiver.requests) == 1
    record = hook_world.hooks.ledger.get("cb-fail")
    assert record is not None and record.callback_attempts == 1 and record.callback_last_error == "HTTP 500"
    assert record.callback_next_at is not None
    first_delay = (record.callback_next_at - start).total_seconds()
    assert 1.0 <= first_delay <= 2.0  # base 2 s, jittered to 50-100 %

    assert dispatcher.run_once() == 0 and len(receiver.requests) == 1  # not due yet
    hook_world.clock.advance(2.0)
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 2
    record = hook_world.hooks.ledger.get("cb-fail")
    assert record is not None and record.callback_next_at is not None
    second_delay = (record.callback_next_at - hook_world.clock()).total_seconds()
    assert 2.0 <= second_delay <= 4.0

    hook_world.clock.advance(4.0)
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 3
    record = hook_world.hooks.ledger.get("cb-fail")
    assert record is not None and record.callback_attempts == 3 and record.callback_next_at is None  # given up
    assert record.callback_delivered_at is None and record.callback_last_error == "HTTP 500"
    hook_world.clock.advance(86400)
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 3


def test_a_retry_after_errors_delivers_and_redirects_are_not_followed(hook_world: HookWorld, receiver: Receiver,
                                                                     dispatcher: CallbackDispatcher,
                                                                     wav_bytes: bytes) -> None:
    receiver.statuses = [503, 302]
    _scored_upload(hook_world, "cb-late", receiver.url, wav_bytes)
    assert dispatcher.run_once() == 0
    hook_world.clock.advance(2.0)
    assert dispatcher.run_once() == 0  # the 302: a failure, and its Location was not visited
    record = hook_world.hooks.ledger.get("cb-late")
    assert record is not None and record.callback_last_error == "HTTP 302"
    hook_world.clock.advance(4.0)
    assert dispatcher.run_once() == 1 and len(receiver.requests) == 3
    record = hook_world.hooks.ledger.get("cb-late")
    assert record is not None and record.callback_attempts == 3 and record.callback_delivered_at is not None


def test_unreachable_endpoint_is_an_error_like_any_other(hook_world: HookWorld, dispatcher: CallbackDispatcher,
                                                        wav_bytes: bytes) -> None:
    _scored_upload(hook_world, "cb-down", "http://127.0.0.1:9/nothing-listens", wav_bytes)
    assert dispatcher.run_once() == 0
    record = hook_world.hooks.ledger.get("cb-down")
    assert record is not None and record.callback_attempts == 1 and record.callback_next_at is not None
    assert record.callback_last_error is not None and "Error" in record.callback_last_error


def test_uploads_without_callback_url_are_never_sent(hook_world: HookWorld, wav_bytes: bytes) -> None:
    sent: list[str] = []

    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(url)
        return 200

    assert hook_world.post_multipart(manifest("no-cb"), wav_bytes).status_code == 202
    CaseStore(hook_world.db_url).upsert_verdicts([flagged("no-cb")])
    for d in _dispatcher(hook_world, send=send):
        assert d.run_once() == 0
    assert sent == []


def test_delay_grows_and_is_capped() -> None:
    d = CallbackDispatcher.__new__(CallbackDispatcher)
    d.base_delay_s, d.rng = 2.0, random.Random(1)
    delays = [d.delay_s(n) for n in range(1, 20)]
    assert all(2.0 * 2 ** (n - 1) * 0.5 <= delays[n - 1] for n in range(1, 8))
    assert max(delays) <= 3600.0
    assert delays[3] > delays[0]
