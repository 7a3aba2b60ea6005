"""The upload API's business logic (`HookService`): register, receive audio, accept, publish, report status.

No FastAPI here (`moderation.web.hooks` is the HTTP edge); refusals are `HookError`
with the status and code the edge renders. An upload goes:

1. registered (``POST /v1/uploads``) — with its audio in the same multipart request,
   or as JSON first, the audio then PUT to a signed URL and ``.../complete`` called;
2. accepted — the audio is stored and sniffed as an audio container, the ledger row
   (`moderation.hook_ledger`) turns ``accepted`` and commits, the manifest goes into
   the reviewers' ``uploads`` table;
3. published — an `UploadEvent` on Pub/Sub. Publishing happens after the commit; when
   it fails (or there is no publisher) the upload stays accepted and
   `moderation.outbox.relay_outbox` publishes it later (the response says
   ``"event": "queued"``).

Every step is idempotent by upload_id: a re-delivered POST or a repeated complete
gets the current status (200) and never a second object or event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from features.sniff import CONTENT_TYPES, EXTENSIONS, SNIFF_BYTES, sniff_audio
from moderation.cases import CaseStore
from moderation.distributors import Distributor
from moderation.hook_ledger import ACCEPTED, AWAITING_AUDIO, HookLedger, HookRecord, Received, UploadConflict
from moderation.review import NotAllowedError, NotFoundError, Role, User
from moderation.service import ReviewService
from moderation.txn import now as utcnow
from moderation.web.hook_auth import HookError
from pipelines.events import EventPublisher, UploadEvent
from trackguard.contracts import MANIFEST_FIELDS, TrackguardError, validate_manifest_row
from trackguard.objectstore import ObjectInfo, ObjectStore, ObjectTooLarge, validate_key

log = logging.getLogger(__name__)
TOKEN_SALT = "trackguard.objects.put"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_CALLBACK_URL = 2048
UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")  # trackguard.contracts' rule: others cannot exist


class AudioPart(Protocol):
    """The audio of a multipart upload (Starlette's ``UploadFile`` is one)."""

    @property
    def file(self) -> BinaryIO: ...

    @property
    def content_type(self) -> str | None: ...


@dataclasses.dataclass(frozen=True)
class HookResult:
    status_code: int  # 200 current state (re-delivery), 201 registered, 202 accepted
    document: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ObjectGrant:
    """What a signed upload URL allows: one PUT of at most ``max_bytes`` to ``key``."""

    upload_id: str
    key: str
    max_bytes: int
    content_type: str
    expires: int  # Unix seconds


def iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """Identity of a delivery: the validated manifest without ``audio_uri`` (the service chooses that)."""
    ident = {k: v for k, v in manifest.items() if k != "audio_uri"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def key_part(name: str) -> str:
    """An id as an object key segment: object keys allow neither ':' nor '..', which ids may contain.

    Reversible (``_`` → ``__``, ``:`` → ``_c``, the second of two dots → ``_d``), so two
    ids never share a key; plain ids (the usual case) are unchanged.
    """
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch == "_":
            out.append("__")
        elif ch == ":":
            out.append("_c")
        elif ch == "." and i > 0 and name[i - 1] == ".":
            out.append("_d")
        else:
            out.append(ch)
    return "".join(out)


def object_key(distributor_id: str, upload_id: str, ext: str) -> str:
    """Where an upload's audio is stored; 400 when the ids are too long to form a key."""
    key = f"uploads/{key_part(distributor_id)}/{key_part(upload_id)}/audio{ext}"
    try:
        return validate_key(key)
    except ValueError as exc:
        raise HookError(400, "invalid_manifest", f"upload_id cannot be stored: {exc}") from exc


def _storable_text(values: Mapping[str, Any]) -> None:
    """Text every backend can store: PostgreSQL refuses NUL characters, and lone surrogates are not UTF-8."""
    for name in MANIFEST_FIELDS:  # other keys are not kept
        value = values.get(name)
        if isinstance(value, str) and ("\x00" in value or not _utf8(value)):
            raise HookError(400, "invalid_manifest", f"{name} contains a NUL character or invalid Unicode")


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_callback_url(url: Any) -> str | None:
    """None when absent; an absolute http(s) URL in printable ASCII (IDNs as punycode); else 400."""
    if url is None or url == "":
        return None
    try:
        ok = (isinstance(url, str) and len(url) <= MAX_CALLBACK_URL and url.isascii() and url.isprintable()
              and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        ok = False
    if not ok:
        raise HookError(400, "invalid_callback_url", "callback_url must be an absolute http(s) URL of at most "
                                                     f"{MAX_CALLBACK_URL} printable ASCII characters")
    return str(url)


class StatusDocuments:
    """The status document of an upload, as a distributor gets it (GET, POST responses, callbacks)."""

    def __init__(self, db_url: str) -> None:
        self.cases = CaseStore(db_url)
        self.review = ReviewService(db_url)

    def close(self) -> None:
        self.review.close()

    def document(self, record: HookRecord) -> dict[str, Any]:
        """upload_id, status (awaiting_audio | queued | scored), times, and the review state once accepted."""
        doc: dict[str, Any] = {"upload_id": record.upload_id, "status": record.public_status,
                               "created_at": iso(record.created_at), "accepted_at": iso(record.accepted_at),
                               "verdict": None, "case": None, "final_decision": None, "appeal": None}
        if record.status == ACCEPTED:
            doc |= self._review_status(record)
        return doc

    def _review_status(self, record: HookRecord) -> dict[str, Any]:
        """`ReviewService.verdict_status` as the distributor sees it (no voice-match score)."""
        viewer = User(id=0, username=f"hook:{record.distributor_id}", role=Role.DISTRIBUTOR,
                      distributor_id=record.distributor_id)
        try:
            found = self.review.verdict_status(record.upload_id, viewer)
        except (NotFoundError, NotAllowedError):  # the uploads row went missing (crash after accept): restore it
            self.cases.upsert_uploads([record.manifest])
            found = self.review.verdict_status(record.upload_id, viewer)
        return {k: found.get(k) for k in ("verdict", "case", "final_decision", "appeal")}


class HookService:
    """The upload API over one database, one object store and (optionally) an event publisher."""

    def __init__(self, db_url: str, store: ObjectStore, publisher: EventPublisher | None, *,
                 max_upload_bytes: int = 64 * 2**20, signed_url_ttl_s: int = 900, url_secret: str,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        if not url_secret:
            raise ValueError("url_secret is required (it signs the upload URLs)")
        self.ledger = HookLedger(db_url)
        self.docs = StatusDocuments(db_url)
        self.store = store
        self.publisher = publisher
        self.max_upload_bytes = int(max_upload_bytes)
        self.signed_url_ttl_s = int(signed_url_ttl_s)
        self.clock = clock
        self._tokens = URLSafeSerializer(url_secret, salt=TOKEN_SALT)

    def close(self) -> None:
        self.docs.close()

    def document(self, record: HookRecord) -> dict[str, Any]:
        return self.docs.document(record)

    # ------------------------------------------------------------------ manifest

    def _manifest(self, distributor: Distributor, raw: Any) -> tuple[dict[str, Any], str]:
        """The validated manifest row with ``distributor_id`` filled in, and its upload_id; 400/403 otherwise."""
        if not isinstance(raw, Mapping):
            raise HookError(400, "invalid_manifest", "manifest must be a JSON object")
        given = raw.get("distributor_id")
        if given not in (None, "") and given != distributor.distributor_id:
            raise HookError(403, "wrong_distributor", f"manifest distributor_id {str(given)[:128]!r} is not the "
                                                      f"signing key's distributor {distributor.distributor_id!r}")
        _storable_text(raw)
        filled = {**raw, "distributor_id": distributor.distributor_id, "audio_uri": "gs://placeholder/audio"}
        try:
            row = validate_manifest_row(filled).to_dict()
        except TrackguardError as exc:
            raise HookError(400, "invalid_manifest", f"{exc.code.value}: {exc.message}") from exc
        except OverflowError as exc:  # e.g. year 1 with a positive UTC offset: before datetime.min in UTC
            raise HookError(400, "invalid_manifest", "invalid_timestamp: uploaded_at is out of range") from exc
        return row, str(row["upload_id"])

    def _existing(self, distributor: Distributor, upload_id: str, digest: str) -> HookRecord | None:
        record = self.ledger.get(upload_id)
        if record is not None:
            try:
                self.ledger.check_same(record, distributor.distributor_id, digest)
            except UploadConflict as exc:
                raise HookError(409, "upload_id_conflict", str(exc)) from exc
        return record

    # ------------------------------------------------------------------ register / complete / status

    def register(self, distributor: Distributor, body: Mapping[str, Any], audio: AudioPart | None, *,
                 base_url: str = "") -> HookResult:
        """A new upload (201 awaiting audio, 202 accepted) or a re-delivery (200, current status)."""
        row, upload_id = self._manifest(distributor, body.get("manifest"))
        callback_url = check_callback_url(body.get("callback_url"))
        digest = manifest_hash(row)
        if audio is None:  # insert first, look up only on a conflict: one transaction for a new upload
            return self._register_for_put(distributor, row, digest, callback_url, body.get("content_type"), base_url)
        existing = self._existing(distributor, upload_id, digest)  # before storing audio a re-delivery repeats
        if existing is not None and existing.status == AWAITING_AUDIO:
            return self._audio_for_registered(existing, audio)  # registered as JSON, the audio came by multipart
        if existing is not None:
            return HookResult(200, self._redelivered(existing, base_url))
        return self._register_with_audio(distributor, row, digest, callback_url, audio)

    def _redelivered(self, record: HookRecord, base_url: str) -> dict[str, Any]:
        doc = self.document(record)
        if record.status == AWAITING_AUDIO:
            doc |= self._upload_instructions(record, record.content_type or DEFAULT_CONTENT_TYPE, base_url)
        return doc

    @staticmethod
    def _sniffed(audio: AudioPart) -> str:
        head = audio.file.read(SNIFF_BYTES)
        audio.file.seek(0)
        container = sniff_audio(head)
        if container is None:
            raise HookError(415, "not_audio", "the audio part is not a known audio container (WAV, FLAC, OGG, MP3, "
                                              "AAC, MP4/M4A, AIFF, Matroska/WebM)")
        return container

    def _audio_for_registered(self, record: HookRecord, audio: AudioPart) -> HookResult:
        container = self._sniffed(audio)
        content_type = audio.content_type or DEFAULT_CONTENT_TYPE
        info = self._put(record.object_key, audio.file, content_type)
        accepted, changed = self.ledger.accept(record.upload_id, Received(info.size, content_type, container),
                                               self.clock())
        return HookResult(202, self._after_accept(accepted)) if changed else HookResult(200, self.document(accepted))

    def _register_with_audio(self, distributor: Distributor, row: dict[str, Any], digest: str,
                             callback_url: str | None, audio: AudioPart) -> HookResult:
        container = self._sniffed(audio)
        key = object_key(distributor.distributor_id, row["upload_id"], EXTENSIONS[container])
        content_type = audio.content_type or DEFAULT_CONTENT_TYPE
        info = self._put(key, audio.file, content_type)
        row["audio_uri"] = info.uri
        received = Received(info.size, content_type, container)
        try:
            record, created = self.ledger.register(
                upload_id=row["upload_id"], distributor_id=distributor.distributor_id, manifest=row,
                manifest_hash=digest, object_key=key, audio_uri=info.uri, callback_url=callback_url,
                at=self.clock(), received=received)
        except UploadConflict as exc:  # lost a race with a different delivery of the same upload_id
            raise HookError(409, "upload_id_conflict", str(exc)) from exc
        if not created:
            return HookResult(200, self.document(record))
        return HookResult(202, self._after_accept(record))

    def _put(self, key: str, data: BinaryIO, content_type: str) -> ObjectInfo:
        try:
            return self.store.put_file(key, data, content_type, max_bytes=self.max_upload_bytes)
        except ObjectTooLarge as exc:
            raise HookError(413, "payload_too_large", f"audio is larger than {self.max_upload_bytes} bytes") from exc

    def _register_for_put(self, distributor: Distributor, row: dict[str, Any], digest: str, callback_url: str | None,
                          declared: Any, base_url: str) -> HookResult:
        content_type = declared if isinstance(declared, str) and declared else DEFAULT_CONTENT_TYPE
        if len(content_type) > 128 or not (content_type.isascii() and content_type.isprintable()):
            raise HookError(400, "invalid_manifest", "content_type must be printable ASCII, at most 128 characters")
        container = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        key = object_key(distributor.distributor_id, row["upload_id"], EXTENSIONS.get(container or "", ""))
        row["audio_uri"] = self.store.uri(key)
        record, created = self._register_row(distributor, row, digest, key, callback_url, content_type)
        if not created:
            return HookResult(200, self._redelivered(record, base_url))
        return HookResult(201, self.document(record) | self._upload_instructions(record, content_type, base_url))

    def _register_row(self, distributor: Distributor, row: dict[str, Any], digest: str, key: str,
                      callback_url: str | None, content_type: str) -> tuple[HookRecord, bool]:
        try:
            record, created = self.ledger.register(
                upload_id=row["upload_id"], distributor_id=distributor.distributor_id, manifest=row,
                manifest_hash=digest, object_key=key, audio_uri=row["audio_uri"], callback_url=callback_url,
                at=self.clock(), content_type=content_type)
        except UploadConflict as exc:
            raise HookError(409, "upload_id_conflict", str(exc)) from exc
        return record, created

    def complete(self, distributor: Distributor, upload_id: str) -> HookResult:
        """Accept the audio PUT to the signed URL: 202 the first time, 200 (current status) afterwards."""
        record = self._owned(distributor, upload_id)
        if record.status == ACCEPTED:
            return HookResult(200, self.document(record))
        info = self.store.stat(record.object_key)
        if info is None:
            raise HookError(409, "audio_missing", "no audio at the upload URL yet: PUT it first, then complete")
        if info.size > self.max_upload_bytes:
            self.store.delete(record.object_key)
            raise HookError(413, "payload_too_large", f"audio is larger than {self.max_upload_bytes} bytes")
        container = sniff_audio(self.store.read_head(record.object_key, SNIFF_BYTES))
        if container is None:
            self.store.delete(record.object_key)  # the distributor may PUT again and complete again
            raise HookError(415, "not_audio", "the uploaded object is not a known audio container; it was deleted")
        accepted, changed = self.ledger.accept(upload_id, Received(info.size, info.content_type, container),
                                               self.clock())
        if not changed:
            return HookResult(200, self.document(accepted))
        return HookResult(202, self._after_accept(accepted))

    def status(self, distributor: Distributor, upload_id: str) -> dict[str, Any]:
        return self.document(self._owned(distributor, upload_id))

    def _owned(self, distributor: Distributor, upload_id: str) -> HookRecord:
        record = self.ledger.get(upload_id) if UPLOAD_ID.match(upload_id) else None  # (PostgreSQL refuses NULs)
        if record is None or record.distributor_id != distributor.distributor_id:  # no existence leak
            raise HookError(404, "unknown_upload", f"no upload {upload_id[:128]!r} of distributor "
                                                   f"{distributor.distributor_id!r}")
        return record

    # ------------------------------------------------------------------ after acceptance

    def _after_accept(self, record: HookRecord) -> dict[str, Any]:
        """The accepted row has committed: reviewers' metadata, then the event (the outbox covers a failure)."""
        self.docs.cases.upsert_uploads([record.manifest])
        event = "published" if self.publish(record) else "queued"
        return self.document(self.ledger.get(record.upload_id) or record) | {"event": event}

    def publish(self, record: HookRecord) -> bool:
        """Publish the upload's event and record it; False (logged) when there is no publisher or it failed."""
        if self.publisher is None:
            return False
        assert record.accepted_at is not None
        event = UploadEvent(upload_id=record.upload_id, manifest=dict(record.manifest),
                            accepted_at=record.accepted_at)
        try:
            self.publisher.publish(event)
        except Exception as exc:  # PublishError or a client failure: the relay retries from the ledger
            log.warning("publishing upload %s failed, left for the outbox relay: %s", record.upload_id, exc)
            return False
        self.ledger.mark_published(record.upload_id, self.clock())
        return True

    # ------------------------------------------------------------------ signed upload URLs

    def _upload_instructions(self, record: HookRecord, content_type: str, base_url: str) -> dict[str, Any]:
        expires = int(self.clock().timestamp()) + self.signed_url_ttl_s
        url = self.store.signed_put_url(record.object_key, self.signed_url_ttl_s, content_type)
        if url is None:  # no native signed URLs (local directory): the app's own PUT route
            token = self._tokens.dumps({"upload_id": record.upload_id, "key": record.object_key, "exp": expires,
                                        "max_bytes": self.max_upload_bytes, "content_type": content_type})
            url = f"{base_url.rstrip('/')}/v1/objects/{token}"
        return {"upload_url": url, "upload_method": "PUT", "upload_headers": {"Content-Type": content_type},
                "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(),
                "complete_url": f"{base_url.rstrip('/')}/v1/uploads/{record.upload_id}/complete"}

    def check_object_token(self, token: str, content_type: str | None, length: int | None) -> ObjectGrant:
        """Refuse a PUT before its body is read: bad or expired token, wrong type, too long, already accepted."""
        try:
            claims = self._tokens.loads(token)
            grant = ObjectGrant(str(claims["upload_id"]), str(claims["key"]), int(claims["max_bytes"]),
                                str(claims["content_type"]), int(claims["exp"]))
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise HookError(403, "invalid_upload_url", "this upload URL is not valid") from exc
        if grant.expires < self.clock().timestamp():
            raise HookError(403, "upload_url_expired", "this upload URL has expired: POST the registration again "
                                                       "for a fresh one")
        if (content_type or "").split(";")[0].strip().lower() != grant.content_type.split(";")[0].strip().lower():
            raise HookError(415, "unsupported_media_type", f"Content-Type must be {grant.content_type!r}, as "
                                                           "registered")
        if length is not None and length > grant.max_bytes:
            raise HookError(413, "payload_too_large", f"audio is larger than {grant.max_bytes} bytes")
        record = self.ledger.get(grant.upload_id)
        if record is None or record.object_key != grant.key:
            raise HookError(403, "invalid_upload_url", "this upload URL is not valid")
        if record.status == ACCEPTED:
            raise HookError(409, "already_accepted", "this upload was completed; its audio cannot change")
        return grant

    def put_signed_object(self, token: str, stream: BinaryIO, content_type: str | None,
                          length: int | None) -> ObjectInfo:
        """Store the body of a PUT to a local signed upload URL (size enforced while streaming)."""
        grant = self.check_object_token(token, content_type, length)
        try:
            return self.store.put_file(grant.key, stream, grant.content_type, max_bytes=grant.max_bytes)
        except ObjectTooLarge as exc:
            raise HookError(413, "payload_too_large", f"audio is larger than {grant.max_bytes} bytes") from exc
