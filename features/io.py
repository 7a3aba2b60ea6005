"""Open audio by URI: plain paths, ``file://`` and ``gs://``.

Only this module knows about storage backends; decoders receive a binary stream.
The GCS client is imported lazily so that local runs never need google-cloud.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any, BinaryIO, cast

from trackguard.contracts import ErrorCode, TrackguardError

_GCS_CHUNK = 8 * 1024 * 1024  # BlobReader fetch size: few round trips, bounded memory
_client_lock = threading.Lock()
_gcs_client: Any = None


def set_storage_client(client: Any) -> None:
    """Inject a ``google.cloud.storage.Client`` (tests, emulators, custom credentials)."""
    global _gcs_client
    with _client_lock:
        _gcs_client = client


def _storage_client() -> Any:
    global _gcs_client
    with _client_lock:
        if _gcs_client is None:
            from google.cloud import storage  # type: ignore[attr-defined]  # lazy: heavy, only for gs://

            # With STORAGE_EMULATOR_HOST set the client goes anonymous by itself.
            _gcs_client = storage.Client()
        return _gcs_client


def local_path(uri: str) -> str | None:
    """The filesystem path of a plain path or ``file://`` URI; None for remote URIs."""
    if uri.startswith("file://"):
        parsed = urllib.parse.urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise TrackguardError(ErrorCode.INVALID_URI, f"file:// URI names a remote host: {uri!r}")
        return urllib.parse.unquote(parsed.path)
    if "://" in uri:
        if uri.startswith("gs://"):
            return None
        raise TrackguardError(
            ErrorCode.INVALID_URI, f"unsupported URI scheme in {uri!r} (use a path, file:// or gs://)"
        )
    return uri


def file_identity(uri: str) -> str:
    """``size:mtime_ns`` of a local file (so caches keyed on it notice a replaced file), else ``nostat``.

    Remote objects (gs://) get ``nostat``: upload objects are immutable, the URI alone is the key.
    """
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    try:
        st = os.stat(path)
    except OSError:
        return "nostat"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _split_gs(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name:
        raise TrackguardError(ErrorCode.INVALID_URI, f"gs:// URI needs a bucket and an object name: {uri!r}")
    return bucket, name


def _gcs_blob(uri: str) -> Any:
    bucket_name, name = _split_gs(uri)
    # get_blob returns None for a missing object and pins the generation, so a
    # concurrent overwrite cannot mix two versions into one read.
    blob = _storage_client().bucket(bucket_name).get_blob(name)
    if blob is None:
        raise TrackguardError(ErrorCode.AUDIO_MISSING, f"object {uri} does not exist")
    return blob


def _missing_local(path: str) -> TrackguardError:
    if os.path.isdir(path):
        return TrackguardError(ErrorCode.AUDIO_MISSING, f"{path} is a directory, not an audio file")
    return TrackguardError(ErrorCode.AUDIO_MISSING, f"audio file {path} does not exist")


def open_uri(uri: str) -> BinaryIO:
    """Open ``uri`` for binary reading (seekable). Missing object → AUDIO_MISSING."""
    path = local_path(uri)
    if path is None:
        blob = _gcs_blob(uri)
        return cast(BinaryIO, blob.open("rb", chunk_size=_GCS_CHUNK))
    try:
        return open(path, "rb")  # the caller owns and closes the stream
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise _missing_local(path) from exc


def open_with_size(uri: str) -> tuple[BinaryIO, int]:
    """``(open_uri(uri), uri_size(uri))`` with one metadata lookup instead of two for ``gs://``."""
    path = local_path(uri)
    if path is None:
        blob = _gcs_blob(uri)
        return cast(BinaryIO, blob.open("rb", chunk_size=_GCS_CHUNK)), int(blob.size or 0)
    f = open_uri(uri)
    return f, os.fstat(f.fileno()).st_size


def uri_size(uri: str) -> int:
    """Size in bytes of the object at ``uri``. Missing object → AUDIO_MISSING."""
    path = local_path(uri)
    if path is None:
        return int(_gcs_blob(uri).size or 0)
    if not os.path.isfile(path):
        raise _missing_local(path)
    return os.path.getsize(path)
