"""Signed hook requests through a small FastAPI app: every refusal with its status and code, replay, rotation,
revocation and rate limits, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from moderation.distributors import Distributor, DistributorStore, IssuedKey, request_nonces
from moderation.ratelimit import gcra
from moderation.web.hook_auth import HookAuth, install_hook_error_handler, signed_distributor
from tests.review_support import Clock, db_url_fixture  # noqa: F401  (fixtures)
from trackguard import signing

BODY = b'{"title": "a song", "artist_name": "someone"}'


@dataclasses.dataclass
class Hook:
    client: TestClient
    store: DistributorStore
    clock: Clock
    key: IssuedKey

    def send(self, method: str = "POST", path: str = "/v1/uploads", body: bytes = BODY, *,
             key: IssuedKey | None = None, sign_path: str | None = None, sign_method: str | None = None,
             override: dict[str, str] | None = None) -> tuple[int, dict[str, object], dict[str, str]]:
        """Sign (as the client would) and send; ``override`` replaces single headers afterwards."""
        k = key or self.key
        headers = signing.signed_headers(k.key_id, k.secret, sign_method or method, sign_path or path, body,
                                         timestamp=int(self.clock().timestamp()))
        headers.update(override or {})
        return self.request(method, path, body, headers)

    def request(self, method: str, path: str, body: bytes,
                headers: dict[str, str]) -> tuple[int, dict[str, object], dict[str, str]]:
        r = self.client.request(method, path, content=body, headers=headers)
        return r.status_code, r.json(), dict(r.headers)


def make_app(auth: HookAuth) -> FastAPI:
    app = FastAPI()
    app.state.hook_auth = auth
    install_hook_error_handler(app)

    @app.api_route("/v1/uploads{rest:path}", methods=["GET", "POST", "PUT"])
    async def uploads(request: Request, distributor: Distributor = Depends(signed_distributor)) -> dict[str, str]:
        return {"distributor_id": distributor.distributor_id, "on_state": request.state.distributor.distributor_id}

    return app


@pytest.fixture(name="hook")
def hook_fixture(db_url: str) -> Iterator[Hook]:
    clock = Clock()
    store = DistributorStore(db_url, clock=clock)
    key = store.add("d1", "Distro One", rate_per_s=0.5, burst=3)
    auth = HookAuth(store, clock=clock, window_s=300)
    with TestClient(make_app(auth)) as client:
        yield Hook(client, store, clock, key)
    store.close()


def test_a_signed_request_is_accepted(hook: Hook) -> None:
    status, body, _ = hook.send("POST", "/v1/uploads?callback=yes&x=1")
    assert (status, body) == (200, {"distributor_id": "d1", "on_state": "d1"})
    status, body, _ = hook.send("GET", "/v1/uploads/u-1", b"")
    assert status == 200


def test_percent_encoded_paths_verify_as_sent(hook: Hook) -> None:
    assert hook.send("PUT", "/v1/uploads/a%20b/complete")[0] == 200


def test_missing_headers_are_listed(hook: Hook) -> None:
    status, body, _ = hook.request("POST", "/v1/uploads", BODY, {signing.KEY_ID: hook.key.key_id})
    assert (status, body["error"]) == (401, "unsigned")
    for name in (signing.TIMESTAMP, signing.NONCE, signing.CONTENT_SHA256, signing.SIGNATURE):
        assert name in str(body["message"])
    assert signing.KEY_ID not in str(body["message"])
    status, body, _ = hook.send(override={signing.NONCE: "has space"})
    assert (status, body["error"]) == (401, "unsigned")


def test_stale_timestamps_are_refused_with_the_server_time(hook: Hook) -> None:
    for offset_s in (-301, 301, 3600):
        ts = int(hook.clock().timestamp()) + offset_s
        headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY, timestamp=ts)
        status, body, _ = hook.request("POST", "/v1/uploads", BODY, headers)
        assert (status, body["error"]) == (401, "stale_timestamp"), offset_s
        assert str(int(hook.clock().timestamp())) in str(body["message"])


def test_timestamps_inside_the_window_and_garbage(hook: Hook) -> None:
    for offset_s in (-299, 299):
        ts = int(hook.clock().timestamp()) + offset_s
        headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY, timestamp=ts)
        assert hook.request("POST", "/v1/uploads", BODY, headers)[0] == 200
    status, body, _ = hook.send(override={signing.TIMESTAMP: "1.5e9"})
    assert (status, body["error"]) == (401, "stale_timestamp")


def test_unknown_revoked_and_inactive(hook: Hook) -> None:
    stranger = IssuedKey("d1", "tgk_ffffffffffffffff", "whatever")
    status, body, _ = hook.send(key=stranger)
    assert (status, body["error"]) == (401, "unknown_key")
    hook.store.set_active("d1", False)
    status, body, _ = hook.send()
    assert (status, body["error"]) == (403, "distributor_inactive")
    hook.store.set_active("d1", True)
    assert hook.send()[0] == 200
    hook.store.revoke(hook.key.key_id)
    status, body, _ = hook.send()
    assert (status, body["error"]) == (401, "unknown_key")  # immediately


def test_body_must_match_its_hash(hook: Hook) -> None:
    headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY,
                                     timestamp=int(hook.clock().timestamp()))
    status, body, _ = hook.request("POST", "/v1/uploads", BODY + b"tampered", headers)
    assert (status, body["error"]) == (400, "content_hash_mismatch")


def test_tampered_requests_have_bad_signatures(hook: Hook) -> None:
    other = b'{"title": "another"}'
    now = int(hook.clock().timestamp())
    results = {
        "method": hook.send("PUT", "/v1/uploads", sign_method="POST"),
        "path": hook.send("POST", "/v1/uploads/other", sign_path="/v1/uploads"),
        "query": hook.send("POST", "/v1/uploads?priority=9", sign_path="/v1/uploads?priority=1"),
        "secret": hook.send(key=dataclasses.replace(hook.key, secret="not-the-secret")),
        # a consistent new body and hash, but the signature covers the old hash
        "hash-and-body": hook.send(body=other, override={signing.SIGNATURE: hook_signature(hook, BODY)}),
        "timestamp": hook.send(override={signing.TIMESTAMP: str(now - 10)}),
        "nonce": hook.send(override={signing.NONCE: "swapped-nonce"}),
        "key-id": hook.send(override={signing.KEY_ID: hook.store.rotate("d1").key_id}),  # signed with the other key
    }
    assert {name: (r[0], r[1]["error"]) for name, r in results.items()} == {
        name: (401, "bad_signature") for name in results}


def hook_signature(hook: Hook, body: bytes) -> str:
    return signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", body,
                                  timestamp=int(hook.clock().timestamp()))[signing.SIGNATURE]


def test_replays_are_refused_and_a_fresh_nonce_is_accepted(hook: Hook) -> None:
    headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY,
                                     timestamp=int(hook.clock().timestamp()))
    assert hook.request("POST", "/v1/uploads", BODY, headers)[0] == 200
    status, body, _ = hook.request("POST", "/v1/uploads", BODY, headers)
    assert (status, body["error"]) == (409, "replayed_request")
    assert hook.send()[0] == 200  # the same request signed again with a new nonce


def test_rotation_grace_then_only_the_new_key(hook: Hook) -> None:
    old = hook.key
    new = hook.store.rotate("d1", grace_s=600)
    assert hook.send(key=old)[0] == 200 and hook.send(key=new)[0] == 200
    hook.clock.advance(601)
    status, body, _ = hook.send(key=old)
    assert (status, body["error"]) == (401, "unknown_key")
    assert hook.send(key=new)[0] == 200


def test_rate_limit_429_with_retry_after_then_recovers(hook: Hook) -> None:
    assert [hook.send()[0] for _ in range(3)] == [200, 200, 200]  # the burst
    status, body, headers = hook.send()
    assert (status, body["error"]) == (429, "rate_limited")
    assert headers["retry-after"] == "2"  # one token at 0.5/s
    hook.clock.advance(1.0)
    assert hook.send()[0] == 429
    hook.clock.advance(1.0)
    assert hook.send()[0] == 200
    assert hook.send()[0] == 429


def test_old_nonces_are_purged(hook: Hook) -> None:
    headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY,
                                     timestamp=int(hook.clock().timestamp()))
    assert hook.request("POST", "/v1/uploads", BODY, headers)[0] == 200
    with hook.store.engine.connect() as conn:
        assert conn.execute(request_nonces.select()).all() != []
    hook.clock.advance(601)  # past twice the window, and more than a minute since the last purge
    assert hook.send()[0] == 200
    with hook.store.engine.connect() as conn:
        nonces = {r.nonce for r in conn.execute(request_nonces.select())}
    assert headers[signing.NONCE] not in nonces and len(nonces) == 1


def test_gcra_is_a_token_bucket() -> None:
    tat, now = None, 1000.0
    admitted = []
    for _ in range(3):  # burst 2 at 10/s: two at once, the third 0.1 s later
        new, wait = gcra(tat, now, 10, 2)
        admitted.append(wait)
        tat = new if new is not None else tat
    assert admitted[:2] == [0.0, 0.0] and admitted[2] == pytest.approx(0.1)
    assert gcra(tat, now + 0.1, 10, 2)[1] == 0.0  # one token back after 1/rate
    assert gcra(tat, now - 5, 10, 2)[1] > 0  # a clock going backwards refills nothing
    assert gcra(None, now, 10, 2) == (now + 0.1, 0.0)  # a distributor never seen has a full bucket
    with pytest.raises(ValueError):
        gcra(None, now, 0, 2)


def test_one_limit_across_app_processes(hook: Hook) -> None:
    """Two apps on one database (``serve --workers 2``, or two instances) share the distributor's bucket."""
    other = HookAuth(DistributorStore(hook.store.url, clock=hook.clock), clock=hook.clock, window_s=300)
    with TestClient(make_app(other)) as second:
        statuses = []
        for i in range(4):  # burst 3, alternating between the two apps
            headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY,
                                             timestamp=int(hook.clock().timestamp()))
            client = hook.client if i % 2 == 0 else second
            statuses.append(client.request("POST", "/v1/uploads", content=BODY, headers=headers).status_code)
    assert statuses == [200, 200, 200, 429]


def test_a_replay_takes_no_token(hook: Hook) -> None:
    headers = signing.signed_headers(hook.key.key_id, hook.key.secret, "POST", "/v1/uploads", BODY,
                                     timestamp=int(hook.clock().timestamp()))
    assert hook.request("POST", "/v1/uploads", BODY, headers)[0] == 200
    assert [hook.request("POST", "/v1/uploads", BODY, headers)[0] for _ in range(3)] == [409, 409, 409]
    assert [hook.send()[0] for _ in range(3)] == [200, 200, 429]  # burst 3: the replays took nothing

def test_missing_hook_auth_is_a_setup_error() -> None:
    app = FastAPI()

    @app.get("/v1/uploads")
    async def route(distributor: Distributor = Depends(signed_distributor)) -> dict[str, str]:
        return {}

    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(RuntimeError, match="hook_auth"):
        client.get("/v1/uploads")


def test_check_order_key_before_body_hash(hook: Hook) -> None:
    """An unknown key is reported as such even when the body does not match its hash either."""
    stranger = IssuedKey("d1", "tgk_ffffffffffffffff", "whatever")
    headers = signing.signed_headers(stranger.key_id, stranger.secret, "POST", "/v1/uploads", BODY,
                                     timestamp=int(hook.clock().timestamp()))
    status, body, _ = hook.request("POST", "/v1/uploads", b"different", headers)
    assert (status, body["error"]) == (401, "unknown_key")
