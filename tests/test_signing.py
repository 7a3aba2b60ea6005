"""The request-signing scheme (`trackguard.signing`): what is signed, and that any change breaks the signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from trackguard import signing

SECRET = "s3cret-for-tests"
TS = 1_767_225_600
NONCE = "0123456789abcdef0123456789abcdef"
BODY = b'{"title": "a song"}'


def _ok(method: str = "POST", path: str = "/v1/uploads?x=1", ts: int = TS, nonce: str = NONCE,
        body: bytes = BODY, secret: str = SECRET, signature: str | None = None) -> bool:
    """Verify the reference request's signature against a request that may differ in one part."""
    if signature is None:
        signature = signing.sign(SECRET, "POST", "/v1/uploads?x=1", TS, NONCE, signing.body_sha256(BODY))
    return signing.verify(secret, method, path, ts, nonce, signing.body_sha256(body), signature)


def test_string_to_sign_is_the_documented_layout() -> None:
    digest = signing.body_sha256(b"")
    assert digest == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    text = signing.string_to_sign("post", "/v1/uploads?a=1&b=2", TS, NONCE, digest)
    assert text == f"TG-HMAC-SHA256\nPOST\n/v1/uploads?a=1&b=2\n{TS}\n{NONCE}\n{digest}".encode()


def test_signature_is_hmac_sha256_hex_of_the_string_to_sign() -> None:
    """An independent implementation (what a distributor writes from the docstring) agrees."""
    digest = hashlib.sha256(BODY).hexdigest()
    msg = "\n".join(["TG-HMAC-SHA256", "PUT", "/v1/uploads/u1/complete", str(TS), NONCE, digest]).encode()
    expected = hmac.new(SECRET.encode(), msg, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, "PUT", "/v1/uploads/u1/complete", TS, NONCE, digest) == expected


def test_roundtrip_verifies() -> None:
    assert _ok()
    sig = signing.sign(SECRET, "POST", "/v1/uploads?x=1", TS, NONCE, signing.body_sha256(BODY))
    assert _ok(signature=sig.upper())  # hex case does not matter


@pytest.mark.parametrize("change", [
    {"method": "PUT"}, {"path": "/v1/uploads"}, {"path": "/v1/uploads?x=2"}, {"path": "/v1/uploadz?x=1"},
    {"body": BODY + b" "}, {"ts": TS + 1}, {"nonce": NONCE[:-1] + "0"}, {"secret": SECRET + "x"},
])
def test_any_tampering_breaks_the_signature(change: dict[str, object]) -> None:
    assert not _ok(**change)  # type: ignore[arg-type]


def test_garbage_signatures_are_refused_not_raised() -> None:
    for bad in ("", "zz", "é" * 64, "0" * 64):
        assert not _ok(signature=bad)


def test_signed_headers_carry_everything_the_server_needs() -> None:
    headers = signing.signed_headers("tgk_0011223344556677", SECRET, "post", "/v1/uploads", BODY, timestamp=TS)
    assert set(headers) == set(signing.REQUIRED_HEADERS)
    assert headers[signing.TIMESTAMP] == str(TS) and headers[signing.KEY_ID] == "tgk_0011223344556677"
    assert len(headers[signing.NONCE]) == 32 and headers[signing.CONTENT_SHA256] == hashlib.sha256(BODY).hexdigest()
    assert signing.verify(SECRET, "POST", "/v1/uploads", TS, headers[signing.NONCE], headers[signing.CONTENT_SHA256],
                          headers[signing.SIGNATURE])
    again = signing.signed_headers("tgk_0011223344556677", SECRET, "POST", "/v1/uploads", BODY, timestamp=TS)
    assert again[signing.NONCE] != headers[signing.NONCE]  # a fresh nonce per request


def test_callback_signature_covers_timestamp_and_body() -> None:
    sig = signing.sign_callback(SECRET, TS, BODY)
    assert sig == hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.verify_callback(SECRET, TS, BODY, sig)
    assert not signing.verify_callback(SECRET, TS + 1, BODY, sig)
    assert not signing.verify_callback(SECRET, TS, BODY + b"x", sig)
    assert not signing.verify_callback("other", TS, BODY, sig)
