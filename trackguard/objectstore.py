"""Where uploaded audio lives: a local directory (embedded default) or a GCS bucket.

Both stores speak one small protocol and hand out the URI the decoder reads
(``file:///abs/path`` or ``gs://bucket/key``), so the pipeline never knows which
store an upload went to. Keys are validated strictly: they come from our own
upload API, and a bad key must never escape the store's root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from trackguard.atomicfile import replacing

CHUNK_BYTES = 1 << 20  # streaming unit: bounded memory for any upload size
MAX_KEY_CHARS = 512
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_SPOOL_MEMORY_BYTES = 8 << 20  # GCS uploads are staged up to this size in memory, then on disk


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    uri: str  # what features.decode.decode_audio reads


class ObjectTooLarge(Exception):
    """The upload exceeded ``max_bytes``; nothing was stored."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"object {key!r} is larger than {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class ObjectNotFound(FileNotFoundError):
    """``read_head`` of a key that holds no object."""


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo: ...

    def put_file(self, key: str, src: BinaryIO, content_type: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def read_head(self, key: str, n: int = 4096) -> bytes: ...

    def uri(self, key: str) -> str: ...

    def delete(self, key: str) -> None: ...

    def signed_put_url(self, key: str, expires_s: int, content_type: str) -> str | None: ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object name, else raise ValueError.

    Besides the charset, segments may not be empty or start with "." (that also
    rules out "." and ".."): hidden names are reserved for the local store's
    temp files and metadata, and the same rule holds for GCS so a key that works
    locally works in production.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise ValueError(f"object key longer than {MAX_KEY_CHARS} characters")
    if "\\" in key or key.startswith("/") or ".." in key:
        raise ValueError(f"object key {key!r} contains '..', a backslash or a leading '/'")
    if not _KEY_CHARS.fullmatch(key):
        raise ValueError(f"object key {key!r} may contain only A-Z a-z 0-9 . _ / -")
    if any(seg == "" or seg.startswith(".") for seg in key.split("/")):
        raise ValueError(f"object key {key!r} has an empty or hidden ('.'-prefixed) path segment")
    return key


def _copy_limited(src: BinaryIO, dst: BinaryIO, key: str, max_bytes: int | None) -> int:
    """Copy in chunks; raise ObjectTooLarge as soon as more than ``max_bytes`` arrived."""
    total = 0
    while chunk := src.read(CHUNK_BYTES):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise ObjectTooLarge(key, max_bytes)
        dst.write(chunk)
    return total


class LocalDirStore:
    """Objects as files under ``root``; writes are atomic (temp file in the same dir + ``os.replace``).

    The content type is kept in a hidden sidecar tree (``root/.meta``), written
    before the object appears, so ``stat`` never sees an object without it.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta(self, key: str) -> Path:
        return self.root / ".meta" / f"{validate_key(key)}.ctype"

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        return self.put_file(key, io.BytesIO(data), content_type)

    def put_file(self, key: str, src: BinaryIO, content_type: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        path = self._path(key)
        with replacing(path, fsync=True) as out:  # the ledger will say "stored": make it true after a crash
            size = _copy_limited(src, out, key, max_bytes)
            self._write_meta(key, content_type)  # before the object appears
        return ObjectInfo(key, size, content_type, path.as_uri())

    def _write_meta(self, key: str, content_type: str | None) -> None:
        meta = self._meta(key)
        if content_type is None:
            meta.unlink(missing_ok=True)
            return
        with replacing(meta) as out:
            out.write(content_type.encode())

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            content_type: str | None = self._meta(key).read_text()
        except FileNotFoundError:
            content_type = None
        return ObjectInfo(key, size, content_type, path.as_uri())

    def read_head(self, key: str, n: int = 4096) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return f.read(n)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object {key!r}") from exc

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def delete(self, key: str) -> None:
        for path in (self._path(key), self._meta(key)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()

    def signed_put_url(self, key: str, expires_s: int, content_type: str) -> str | None:
        validate_key(key)
        return None  # no native signed URLs: the app serves its own signed PUT route


class GcsStore:
    """Objects in a GCS bucket (optionally under a prefix), via google-cloud-storage.

    With ``STORAGE_EMULATOR_HOST`` set, the default client talks to the emulator
    anonymously. ``signed_put_url`` needs credentials that can sign (a service
    account key, or ``signing_credentials`` passed in); without them it returns None.
    """

    def __init__(self, bucket: str, client: Any | None = None, signing_credentials: Any | None = None,
                 *, prefix: str = "") -> None:
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        self.prefix = f"{validate_key(prefix)}/" if prefix else ""
        if client is None:
            from google.cloud import storage  # type: ignore[attr-defined]  # lazy: heavy, only for gs://

            client = storage.Client()
        self.bucket_name = bucket
        self.client = client
        self._bucket = client.bucket(bucket)
        self.signing_credentials = signing_credentials

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _info(self, key: str, blob: Any) -> ObjectInfo:
        return ObjectInfo(key, int(blob.size or 0), blob.content_type, self.uri(key))

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        blob = self._bucket.blob(self._name(key))
        blob.upload_from_string(data, content_type=content_type or "application/octet-stream")
        return ObjectInfo(key, len(data), blob.content_type, self.uri(key))

    def put_file(self, key: str, src: BinaryIO, content_type: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        """Stage locally (memory, then disk) while counting, then upload: an oversize body never reaches GCS."""
        blob = self._bucket.blob(self._name(key))
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY_BYTES) as spool:
            size = _copy_limited(src, spool, key, max_bytes)  # type: ignore[arg-type]
            spool.seek(0)
            blob.upload_from_file(spool, size=size, content_type=content_type or "application/octet-stream")
        return ObjectInfo(key, size, blob.content_type, self.uri(key))

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self._bucket.get_blob(self._name(key))
        return None if blob is None else self._info(key, blob)

    def read_head(self, key: str, n: int = 4096) -> bytes:
        from google.api_core import exceptions

        if n <= 0:
            return b""
        blob = self._bucket.blob(self._name(key))
        try:
            return bytes(blob.download_as_bytes(start=0, end=n - 1))
        except exceptions.NotFound as exc:
            raise ObjectNotFound(f"no object {key!r}") from exc
        except exceptions.RequestRangeNotSatisfiable:
            return b""  # an empty object has no byte 0

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def delete(self, key: str) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.NotFound):
            self._bucket.blob(self._name(key)).delete()

    def _signer(self) -> Any | None:
        if self.signing_credentials is not None:
            return self.signing_credentials
        from google.auth.credentials import Signing

        creds = getattr(self.client, "_credentials", None)
        return creds if isinstance(creds, Signing) else None

    def signed_put_url(self, key: str, expires_s: int, content_type: str) -> str | None:
        import datetime as dt

        signer = self._signer()
        if signer is None:
            return None
        blob = self._bucket.blob(self._name(key))
        return str(blob.generate_signed_url(
            version="v4", method="PUT", expiration=dt.timedelta(seconds=expires_s),
            content_type=content_type, credentials=signer,
        ))


def open_store(url: str) -> ObjectStore:
    """``file:///abs/dir`` or a plain path → LocalDirStore; ``gs://bucket[/prefix]`` → GcsStore."""
    if url.startswith("gs://"):
        bucket, _, prefix = url[len("gs://"):].partition("/")
        return GcsStore(bucket, prefix=prefix)
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URL names a remote host: {url!r}")
        return LocalDirStore(urllib.parse.unquote(parsed.path))
    if "://" in url:
        raise ValueError(f"unsupported object store URL {url!r} (use a path, file:///dir or gs://bucket[/prefix])")
    return LocalDirStore(url)
