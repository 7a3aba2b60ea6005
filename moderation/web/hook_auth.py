"""Authentication of the distributor upload hooks: signed requests (`trackguard.signing`) → a `Distributor`.

`signed_distributor` is the FastAPI dependency of every ``/v1/uploads`` route. It
reads the app's `HookAuth` from ``request.app.state.hook_auth`` and checks, in
this order, each failure a `HookError` with its own status and code:

1. the five ``X-TG-*`` headers are present (401 ``unsigned``);
2. the timestamp is whole seconds within ±``window_s`` of the server clock (401 ``stale_timestamp``);
3. the key exists and is neither revoked nor expired (401 ``unknown_key``), its
   distributor is active (403 ``distributor_inactive``);
4. the body hashes to ``X-TG-Content-SHA256`` (400 ``content_hash_mismatch``);
5. the signature matches, compared in constant time (401 ``bad_signature``);
6. the nonce was not used before with this key (409 ``replayed_request``);
7. the distributor's token bucket has a token (429 ``rate_limited``, ``Retry-After``).

6 and 7 are one database transaction (`DistributorStore.admit`), so they hold
across app processes and instances sharing the database.

Hashing the body before checking the signature costs a hash of up to the
upload size for a forged request; it keeps each refusal specific, and the
timestamp and key checks before it turn away anonymous traffic cheaply.
Nonces are remembered for twice the window (a request older than the window is
refused at step 2 anyway) and purged every `PURGE_EVERY` requests or
`PURGE_INTERVAL_S` seconds, whichever comes first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from moderation.distributors import Distributor, DistributorStore, NonceReplayed
from moderation.txn import now as utcnow
from trackguard import signing

TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
NONCE_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: fits the nonce column
KEY_ID_MAX = 64
PURGE_EVERY = 1000
PURGE_INTERVAL_S = 60.0


class HookError(Exception):
    """A refused hook request, rendered as JSON ``{"error": code, "message": message}`` with ``headers``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


def hook_error_response(exc: HookError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=exc.headers)


def install_hook_error_handler(app: FastAPI) -> None:
    """Render `HookError` as its JSON body (the upload API installs this too; installing twice is harmless)."""
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HookError)
        return hook_error_response(exc)

    app.add_exception_handler(HookError, handle)


class HookAuth:
    """Verifies signed hook requests against a `DistributorStore` (nonces and rate limits live in the database)."""

    def __init__(self, store: DistributorStore, *, clock: Callable[[], dt.datetime] = utcnow,
                 window_s: int = 300) -> None:
        self.store = store
        self.clock = clock
        self.window_s = int(window_s)
        self._lock = threading.Lock()
        self._requests = 0
        self._last_purge: dt.datetime | None = None

    def verify(self, method: str, paths: list[str], headers: Mapping[str, str], body: bytes) -> Distributor:
        """The checks of the module docstring; ``paths``: the signed path forms to accept (as sent, decoded)."""
        values = self._headers(headers)
        at = self.clock()
        timestamp = self._timestamp(values[signing.TIMESTAMP], at)
        key_id = values[signing.KEY_ID]
        found = self.store.key(key_id, at) if len(key_id) <= KEY_ID_MAX else None
        if found is None:
            raise HookError(401, "unknown_key", f"key {key_id[:KEY_ID_MAX]!r} is unknown, revoked or expired")
        owner, secret = found
        if not owner.active:
            raise HookError(403, "distributor_inactive", f"distributor {owner.distributor_id!r} is deactivated")
        digest = values[signing.CONTENT_SHA256].strip().lower()
        if signing.body_sha256(body) != digest:
            raise HookError(400, "content_hash_mismatch", "the body's SHA-256 differs from X-TG-Content-SHA256")
        nonce, signature = values[signing.NONCE], values[signing.SIGNATURE]
        # Evaluate every candidate path (no short circuit) so timing does not depend on which form matched.
        matches = [signing.verify(secret, method, p, timestamp, nonce, digest, signature) for p in paths]
        if not any(matches):
            raise HookError(401, "bad_signature", "the signature does not match (see trackguard.signing for the "
                                                  "string to sign)")
        self._maybe_purge(at)
        try:
            wait = self.store.admit(key_id, nonce, owner, at)
        except NonceReplayed as exc:
            raise HookError(409, "replayed_request", "this nonce was already used with this key; sign the retry "
                                                     "with a new nonce") from exc
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise HookError(429, "rate_limited", f"over {owner.rate_per_s:g} requests/s (burst {owner.burst}); "
                                                 f"retry in {seconds} s with a new nonce",
                            {"Retry-After": str(seconds)})
        return owner

    @staticmethod
    def _headers(headers: Mapping[str, str]) -> dict[str, str]:
        values = {name: headers.get(name) for name in signing.REQUIRED_HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise HookError(401, "unsigned", f"missing signature headers: {', '.join(missing)}")
        if not NONCE_RE.match(values[signing.NONCE] or ""):
            raise HookError(401, "unsigned", "X-TG-Nonce must be 1 to 128 printable ASCII characters, no spaces")
        return {name: str(value) for name, value in values.items()}

    def _timestamp(self, raw: str, at: dt.datetime) -> int:
        server = int(at.timestamp())
        if not TIMESTAMP_RE.match(raw.strip()):
            raise HookError(401, "stale_timestamp", f"X-TG-Timestamp must be whole Unix seconds; server time is "
                                                    f"{server}")
        timestamp = int(raw.strip())
        if abs(timestamp - at.timestamp()) > self.window_s:
            raise HookError(401, "stale_timestamp", f"X-TG-Timestamp {timestamp} is more than {self.window_s} s "
                                                    f"from the server time {server} ({at.isoformat()})")
        return timestamp

    def _maybe_purge(self, at: dt.datetime) -> None:
        with self._lock:
            self._requests += 1
            due = (self._last_purge is None or self._requests >= PURGE_EVERY
                   or (at - self._last_purge).total_seconds() >= PURGE_INTERVAL_S)
            if due:
                self._requests, self._last_purge = 0, at
        if due:
            self.store.purge_nonces(at - dt.timedelta(seconds=2 * self.window_s))


def signed_paths(request: Request) -> list[str]:
    """The path as sent on the wire (percent-encoding kept) and as decoded, each with ``?query`` when present."""
    raw = request.scope.get("raw_path")
    forms = [raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path, request.url.path]
    query = request.scope.get("query_string", b"").decode("latin-1")
    paths = [f"{p}?{query}" if query else p for p in forms]
    return list(dict.fromkeys(paths))


async def signed_distributor(request: Request) -> Distributor:
    """FastAPI dependency: the verified distributor (also put on ``request.state.distributor``)."""
    auth = getattr(request.app.state, "hook_auth", None)
    if not isinstance(auth, HookAuth):
        raise RuntimeError("app.state.hook_auth is not set: install the hooks with a HookAuth")
    body = await request.body()
    # The store does blocking database I/O: keep it off the event loop.
    owner = await run_in_threadpool(auth.verify, request.method, signed_paths(request), request.headers, body)
    request.state.distributor = owner
    request.state.key_id = request.headers.get(signing.KEY_ID)
    return owner
