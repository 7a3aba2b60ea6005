"""A reference client of the distributor upload API (stdlib only): what a distributor's engineer would write.

Every request is signed as `trackguard.signing` specifies; one keep-alive
connection per client (use one client per thread). Used by the end-to-end tests
and by `trackguard bench hook` / `bench stream`.

    client = HookClient("http://127.0.0.1:8080", key_id, secret)
    status, doc = client.upload(manifest, Path("track.wav").read_bytes())
    status, doc = client.status(manifest["upload_id"])
"""

from __future__ import annotations

import http.client
import json
import secrets
import urllib.parse
from typing import Any

from trackguard import signing

Response = tuple[int, dict[str, Any]]


class HookClient:
    def __init__(self, base_url: str, key_id: str, secret: str, timeout_s: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.key_id, self.secret, self.timeout_s = key_id, secret, timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self.last_headers: dict[str, str] = {}

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def request(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
                signed: bool = True) -> Response:
        headers = signing.signed_headers(self.key_id, self.secret, method, path, body) if signed else {}
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a keep-alive connection the server closed is re-opened once
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                self.last_headers = {k.lower(): v for k, v in response.getheaders()}
                return response.status, (json.loads(raw) if raw else {})
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def upload(self, manifest: dict[str, Any], audio: bytes, filename: str = "track.wav",
               audio_type: str = "audio/wav", callback_url: str | None = None) -> Response:
        """Register and send the audio in one multipart request (the embedded default)."""
        fields = {"manifest": json.dumps(manifest)}
        if callback_url:
            fields["callback_url"] = callback_url
        body, content_type = multipart(fields, ("audio", filename, audio_type, audio))
        return self.request("POST", "/v1/uploads", body, content_type)

    def register(self, manifest: dict[str, Any], callback_url: str | None = None) -> Response:
        """Register only: the answer carries a signed URL to PUT the audio to, then call `complete`."""
        doc: dict[str, Any] = {"manifest": manifest}
        if callback_url:
            doc["callback_url"] = callback_url
        return self.request("POST", "/v1/uploads", json.dumps(doc).encode(), "application/json")

    def complete(self, upload_id: str) -> Response:
        return self.request("POST", f"/v1/uploads/{urllib.parse.quote(upload_id, safe='')}/complete")

    def status(self, upload_id: str) -> Response:
        return self.request("GET", f"/v1/uploads/{urllib.parse.quote(upload_id, safe='')}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def multipart(fields: dict[str, str], file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    """multipart/form-data bytes (the signature covers exactly these) and their content type."""
    boundary = "tg-" + secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    name, filename, content_type, data = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
