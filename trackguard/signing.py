"""Request signing for distributor upload hooks, and the signature on trackguard's callbacks.

This text is the specification distributors implement against.

Keys
----
Each distributor holds one or more keys: a public ``key_id`` (``tgk_`` + 16 hex
digits) and a shared ``secret`` (43 URL-safe characters), issued by trackguard and
shown once. During a rotation the old and the new key are both accepted for a
grace period (a day by default); a revoked key is refused at once.

Signing a request
-----------------
Send these headers on every request to ``/v1/uploads...``:

==========================  ==========================================================
``X-TG-Key-Id``             the key id
``X-TG-Timestamp``          the current time, whole Unix seconds (UTC), e.g. ``1767225600``
``X-TG-Nonce``              a fresh random string per request, at most 128 printable ASCII
                            characters without spaces (32 hex digits recommended)
``X-TG-Content-SHA256``     lower-case hex SHA-256 of the exact body bytes (of the empty
                            string for a request without a body:
                            ``e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855``)
``X-TG-Signature``          lower-case hex HMAC-SHA256(secret, string to sign)
==========================  ==========================================================

The string to sign is UTF-8 text, lines joined by a single ``\\n`` (no trailing newline)::

    TG-HMAC-SHA256
    <METHOD, upper case>
    <path, plus "?" and the query string exactly as sent, when there is one>
    <timestamp, as in the header>
    <nonce, as in the header>
    <content sha256, as in the header>

The secret's UTF-8 bytes are the HMAC key. Example (Python)::

    msg = "\\n".join(["TG-HMAC-SHA256", "POST", "/v1/uploads", "1767225600", nonce, body_sha]).encode()
    sig = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()

The server refuses (JSON ``{"error": code, "message": ...}``): missing headers
(401 ``unsigned``), a timestamp more than 5 minutes from the server's clock (401
``stale_timestamp``; the message gives the server time), an unknown, revoked or
expired key (401 ``unknown_key``), a deactivated distributor (403
``distributor_inactive``), a body whose hash differs from the header (400
``content_hash_mismatch``), a wrong signature (401 ``bad_signature``), a nonce
already used with this key (409 ``replayed_request``; retry with a new nonce and
a new signature), and too many requests (429 ``rate_limited`` with
``Retry-After`` in seconds). A request refused with 429 has used up its nonce:
sign every retry anew, with a fresh nonce and timestamp. Limits are counted per
distributor (all its keys together).

Callbacks
---------
trackguard signs each callback POST with the distributor's newest usable key:
``X-TG-Callback-Key-Id`` (which key), ``X-TG-Callback-Timestamp`` (Unix seconds)
and ``X-TG-Callback-Signature`` = hex HMAC-SHA256(secret, ``"<timestamp>." + body``).
Verify it with `verify_callback` (or the same two lines in any language) and
reject old timestamps on your side.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SCHEME = "TG-HMAC-SHA256"
KEY_ID = "X-TG-Key-Id"
TIMESTAMP = "X-TG-Timestamp"
NONCE = "X-TG-Nonce"
CONTENT_SHA256 = "X-TG-Content-SHA256"
SIGNATURE = "X-TG-Signature"
REQUIRED_HEADERS = (KEY_ID, TIMESTAMP, NONCE, CONTENT_SHA256, SIGNATURE)

CALLBACK_SIGNATURE = "X-TG-Callback-Signature"
CALLBACK_TIMESTAMP = "X-TG-Callback-Timestamp"
CALLBACK_KEY_ID = "X-TG-Callback-Key-Id"

MAX_NONCE = 128


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(method: str, path: str, timestamp: int, nonce: str, content_sha256: str) -> bytes:
    """The signed text; ``path`` includes ``?query`` when the request has one."""
    return "\n".join([SCHEME, method.upper(), path, str(int(timestamp)), nonce, content_sha256]).encode()


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, timestamp: int, nonce: str, content_sha256: str) -> str:
    return _hmac(secret, string_to_sign(method, path, timestamp, nonce, content_sha256))


def verify(secret: str, method: str, path: str, timestamp: int, nonce: str, content_sha256: str,
           signature: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess was right."""
    expected = sign(secret, method, path, timestamp, nonce, content_sha256)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes = b"", *,
                   timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """Every header a signed request needs (the client side of the scheme; tests and SDKs use it)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    digest = body_sha256(body)
    return {KEY_ID: key_id, TIMESTAMP: str(ts), NONCE: nonce, CONTENT_SHA256: digest,
            SIGNATURE: sign(secret, method, path, ts, nonce, digest)}


def sign_callback(secret: str, timestamp: int, body: bytes) -> str:
    return _hmac(secret, f"{int(timestamp)}.".encode() + body)


def verify_callback(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign_callback(secret, timestamp, body).encode(), signature.strip().lower().encode())
