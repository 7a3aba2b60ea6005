"""Object stores: the local directory (atomic, size-limited) and GCS through fake-gcs-server."""

from __future__ import annotations

import datetime as dt
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from features import io as features_io
from features.decode import decode_audio
from tests.audio_factory import tone, write_audio
from trackguard.emulators import GcsEmulator, gcs_emulator_available
from trackguard.objectstore import (
    CHUNK_BYTES,
    GcsStore,
    LocalDirStore,
    ObjectNotFound,
    ObjectTooLarge,
    open_store,
    validate_key,
)

BAD_KEYS = ["", "/abs", "a/../b", "..", "a\\b", "a b", "é.wav", "a//b", "a/", ".hidden", "a/.tmp-x", "k" * 513,
            "a?b", "a%2e"]
GOOD_KEYS = ["a", "up/2026/x_1.wav", "A-b.c/d", "k" * 512]


def _wav_bytes(tmp_path: Path, seconds: float = 3.0) -> bytes:
    return write_audio(tmp_path / "t.wav", tone(16000, seconds), 16000).read_bytes()


class _Failing(io.RawIOBase):
    """A source that delivers ``n`` bytes and then breaks, like a dropped upload connection."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionError("client went away")
        k = min(self.left, size if size > 0 else self.left)
        self.left -= k
        return b"x" * k


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected_everywhere(key: str, tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "objs")
    for call in (lambda: store.put_bytes(key, b"x"), lambda: store.stat(key), lambda: store.uri(key),
                 lambda: store.delete(key), lambda: store.read_head(key)):
        with pytest.raises(ValueError):
            call()
    assert [p for p in (tmp_path / "objs").rglob("*")] == []
    with pytest.raises(ValueError):
        GcsStore("bucket-x", client=_NoNetworkClient()).uri(key)


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_accepted(key: str) -> None:
    assert validate_key(key) == key


# ---------------------------------------------------------------- local store


def test_local_roundtrip_and_uri_is_decodable(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "objs")
    data = _wav_bytes(tmp_path)
    info = store.put_bytes("up/a.wav", data, "audio/wav")
    assert info.size == len(data) and info.content_type == "audio/wav"
    assert info.uri == (tmp_path / "objs" / "up" / "a.wav").resolve().as_uri()
    assert info.uri.startswith("file:///")
    assert LocalDirStore(tmp_path / "objs").stat("up/a.wav") == info  # content type survives a new instance
    assert store.read_head("up/a.wav", 4) == b"RIFF"
    assert store.read_head("up/a.wav", 10**9) == data
    assert decode_audio(info.uri).duration_s == pytest.approx(3.0, abs=0.01)
    assert store.signed_put_url("up/a.wav", 60, "audio/wav") is None


def test_local_missing_overwrite_and_delete(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    assert store.stat("nope") is None
    with pytest.raises(ObjectNotFound):
        store.read_head("nope")
    with pytest.raises(FileNotFoundError):  # ObjectNotFound is one
        store.read_head("nope")
    store.put_bytes("k", b"one", "text/plain")
    info = store.put_bytes("k", b"second")
    assert store.read_head("k") == b"second" and info.content_type is None
    assert store.stat("k") == info  # the old content type went with the old bytes
    store.put_bytes("dir/x", b"1")
    assert store.stat("dir") is None  # a "directory" is not an object
    assert store.stat("dir/x/under-a-file") is None
    store.delete("dir/x/under-a-file")
    with pytest.raises(ObjectNotFound):
        store.read_head("dir")
    store.delete("k")
    store.delete("k")  # idempotent
    assert store.stat("k") is None


def test_local_max_bytes_leaves_nothing_and_keeps_previous(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    assert store.put_file("k", io.BytesIO(b"a" * 100), max_bytes=100).size == 100  # exactly the limit is fine
    with pytest.raises(ObjectTooLarge) as err:
        store.put_file("k", io.BytesIO(b"b" * 101), "audio/wav", max_bytes=100)
    assert err.value.max_bytes == 100
    assert store.read_head("k", 200) == b"a" * 100 and store.stat("k").content_type is None  # type: ignore[union-attr]
    with pytest.raises(ObjectTooLarge):
        store.put_file("new", io.BytesIO(b"c" * (3 * CHUNK_BYTES)), max_bytes=CHUNK_BYTES + 1)
    assert store.stat("new") is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["k"]  # no temp files, no metadata left behind


def test_local_interrupted_upload_is_invisible(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    store.put_bytes("k", b"old")
    with pytest.raises(ConnectionError):
        store.put_file("k", _Failing(3 * CHUNK_BYTES + 5))  # type: ignore[arg-type]
    assert store.read_head("k") == b"old"
    with pytest.raises(ConnectionError):
        store.put_file("fresh/k", _Failing(10))  # type: ignore[arg-type]
    assert store.stat("fresh/k") is None
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_local_put_file_streams_in_chunks(tmp_path: Path) -> None:
    sizes: list[int] = []

    class Recording(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            sizes.append(-1 if size is None else size)
            return super().read(size)

    data = bytes(range(256)) * (CHUNK_BYTES // 64)  # 4 chunks
    assert LocalDirStore(tmp_path).put_file("big", Recording(data)).size == len(data)
    assert sizes and all(s == CHUNK_BYTES for s in sizes)  # never "read everything"
    assert (tmp_path / "big").read_bytes() == data


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "a")), LocalDirStore)
    store = open_store((tmp_path / "b").as_uri())
    assert isinstance(store, LocalDirStore) and store.root == (tmp_path / "b").resolve()
    for bad in ("s3://bucket/x", "file://remote-host/x", "gs://Bad_Bucket"):
        with pytest.raises(ValueError):
            open_store(bad)


# ---------------------------------------------------------------- GCS store (fake-gcs-server)


class _NoNetworkClient:
    """Enough of a storage client for key/URI checks that must not touch the network."""

    def bucket(self, name: str) -> Any:
        return object()


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsEmulator]:
    reason = gcs_emulator_available()
    if reason is not None:
        pytest.skip(reason)
    with GcsEmulator() as emu:
        emu.client().create_bucket("tg-uploads")
        yield emu


def _signing_credentials() -> Any:
    """A throwaway service-account key made here, so V4 signing works offline."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({
        "type": "service_account", "project_id": "tg-test", "private_key_id": "k1", "private_key": pem,
        "client_email": "uploader@tg-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # never used: signing is local
    })


def test_gcs_roundtrip_stat_head_delete(gcs: GcsEmulator) -> None:
    store = GcsStore("tg-uploads", client=gcs.client(), prefix="/incoming/")
    info = store.put_bytes("u1/a.wav", b"RIFF" + b"\0" * 100, "audio/wav")
    assert info.uri == "gs://tg-uploads/incoming/u1/a.wav" and info.size == 104
    assert store.stat("u1/a.wav") == info
    assert gcs.client().bucket("tg-uploads").get_blob("incoming/u1/a.wav") is not None  # prefix really applied
    assert store.read_head("u1/a.wav", 4) == b"RIFF"
    assert store.read_head("u1/a.wav", 0) == b""
    store.put_bytes("empty", b"")
    assert store.read_head("empty") == b"" and store.stat("empty").size == 0  # type: ignore[union-attr]
    assert store.stat("missing") is None
    with pytest.raises(ObjectNotFound):
        store.read_head("missing")
    store.delete("u1/a.wav")
    store.delete("u1/a.wav")
    assert store.stat("u1/a.wav") is None


def test_gcs_max_bytes_never_reaches_bucket(gcs: GcsEmulator) -> None:
    store = GcsStore("tg-uploads", client=gcs.client())
    assert store.put_file("lim/ok", io.BytesIO(b"a" * 64), "audio/flac", max_bytes=64).content_type == "audio/flac"
    with pytest.raises(ObjectTooLarge):
        store.put_file("lim/big", io.BytesIO(b"a" * (CHUNK_BYTES + 1)), max_bytes=CHUNK_BYTES)
    assert store.stat("lim/big") is None
    with pytest.raises(ConnectionError):
        store.put_file("lim/cut", _Failing(100))  # type: ignore[arg-type]
    assert store.stat("lim/cut") is None


def test_gcs_signed_put_url_accepted_by_emulator(gcs: GcsEmulator) -> None:
    anonymous = GcsStore("tg-uploads", client=gcs.client())
    assert anonymous.signed_put_url("signed/a.wav", 60, "audio/wav") is None  # cannot sign: no URL
    store = GcsStore("tg-uploads", client=gcs.client(), signing_credentials=_signing_credentials())
    url = store.signed_put_url("signed/a.wav", 900, "audio/wav")
    assert url is not None
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert f"{parsed.scheme}://{parsed.netloc}" == gcs.endpoint  # the client's endpoint: no host rewrite needed
    assert parsed.path == "/tg-uploads/signed/a.wav"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["900"]
    assert "content-type" in query["X-Goog-SignedHeaders"][0]
    req = urllib.request.Request(url, data=b"RIFF-signed", method="PUT", headers={"Content-Type": "audio/wav"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    info = store.stat("signed/a.wav")
    assert info is not None and info.size == 11 and info.content_type == "audio/wav"


def test_gcs_signed_url_for_production_endpoint() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    client = storage.Client(project="tg-test", credentials=AnonymousCredentials())
    store = GcsStore("tg-uploads", client=client, signing_credentials=_signing_credentials(), prefix="p")
    url = store.signed_put_url("u/a.wav", 600, "audio/wav")
    assert url is not None and url.startswith("https://storage.googleapis.com/tg-uploads/p/u/a.wav?")
    assert "X-Goog-Signature=" in url


def test_decode_audio_reads_gs_uri_from_emulator(gcs: GcsEmulator, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder's default client goes anonymous by itself under STORAGE_EMULATOR_HOST (no 25 s probe)."""
    for name, value in gcs.env().items():
        monkeypatch.setenv(name, value)
    store = open_store("gs://tg-uploads/dec")
    assert isinstance(store, GcsStore)
    info = store.put_bytes("x.wav", _wav_bytes(tmp_path, 2.5), "audio/wav")
    features_io.set_storage_client(None)  # make features.io build its default client under the env
    try:
        started = time.monotonic()
        audio = decode_audio(info.uri)
        assert time.monotonic() - started < 5.0
    finally:
        features_io.set_storage_client(None)
    assert info.uri == "gs://tg-uploads/dec/x.wav"
    assert audio.duration_s == pytest.approx(2.5, abs=0.01) and audio.source_format == "wav"


def test_gcs_emulator_stop_frees_port(tmp_path: Path) -> None:
    if gcs_emulator_available() is not None:
        pytest.skip(str(gcs_emulator_available()))
    emu = GcsEmulator(workdir=tmp_path / "gcs")
    emu.start()
    assert emu.start() is emu and emu.running  # idempotent
    emu.stop()
    assert not emu.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{emu.endpoint}/storage/v1/b?project=x", timeout=2)
    started = dt.datetime.now()
    emu.restart()
    assert emu.running and (dt.datetime.now() - started).total_seconds() < 10
    emu.close()
    assert (tmp_path / "gcs").exists()  # a caller-provided directory is the caller's
