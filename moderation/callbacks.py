"""Signed callbacks to distributors once an upload is scored (`CallbackDispatcher`).

A callback is a POST of the upload's status document (the same JSON as
``GET /v1/uploads/{id}``) to the ``callback_url`` given at registration, signed
with the distributor's newest usable key (`trackguard.signing.sign_callback`).
Any 2xx means delivered. Anything else (another status, a redirect — never
followed —, a timeout, a refused connection) is retried with exponential backoff
and jitter, up to ``max_attempts`` attempts in all; then it is given up and the
last error stays on the ledger row. The document can always be polled instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Callable

from moderation.distributors import DistributorStore
from moderation.hook_ledger import HookLedger, HookRecord
from moderation.hooks import StatusDocuments
from moderation.txn import now as utcnow
from trackguard import signing

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 5.0
MAX_DELAY_S = 3600.0
Sender = Callable[[str, bytes, dict[str, str]], int]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: following it could send the signed body somewhere else."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST with a 5 s timeout; the response status (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=SEND_TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class CallbackDispatcher:
    """Delivers due callbacks; call `run_once` periodically (one dispatcher per database is enough)."""

    def __init__(self, db_url: str, distributors: DistributorStore, *, send: Sender | None = None,
                 clock: Callable[[], dt.datetime] = utcnow, max_attempts: int = 8, base_delay_s: float = 2.0,
                 rng: random.Random | None = None) -> None:
        self.ledger = HookLedger(db_url)
        self.docs = StatusDocuments(db_url)
        self.distributors = distributors
        self.send: Sender = send or http_post
        self.clock = clock
        self.max_attempts = int(max_attempts)
        self.base_delay_s = float(base_delay_s)
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.docs.close()

    def run_once(self, limit: int = 100) -> int:
        """Attempt every due callback once; returns how many were delivered."""
        delivered = 0
        for record in self.ledger.callbacks_due(self.clock(), self.max_attempts, limit):
            delivered += self._attempt(record)
        return delivered

    def delay_s(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based): base · 2^(attempt-1), jittered to 50–100 %."""
        return min(MAX_DELAY_S, self.base_delay_s * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0)

    def _attempt(self, record: HookRecord) -> int:
        assert record.callback_url is not None
        at = self.clock()
        try:
            body, headers = self._signed(record, at)
            status = self.send(record.callback_url, body, headers)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # unreachable, timed out, no usable key: all retried the same way
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.ledger.callback_result(record.upload_id, at=at, delivered=True)
            return 1
        attempt = record.callback_attempts + 1
        next_at = at + dt.timedelta(seconds=self.delay_s(attempt)) if attempt < self.max_attempts else None
        if next_at is None:
            log.warning("callback for %s given up after %d attempts: %s", record.upload_id, attempt, error)
        self.ledger.callback_result(record.upload_id, at=at, delivered=False, error=error, next_at=next_at)
        return 0

    def _signed(self, record: HookRecord, at: dt.datetime) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(self.docs.document(record), sort_keys=True, separators=(",", ":")).encode()
        key = self.distributors.callback_key(record.distributor_id)
        timestamp = int(at.timestamp())
        return body, {"Content-Type": "application/json", signing.CALLBACK_KEY_ID: key.key_id,
                      signing.CALLBACK_TIMESTAMP: str(timestamp),
                      signing.CALLBACK_SIGNATURE: signing.sign_callback(key.secret, timestamp, body)}
