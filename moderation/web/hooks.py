"""The distributor upload API over HTTP (`install_hooks`): ``/v1/uploads`` (signed) and ``/v1/objects/{token}``.

pydantic lives here only: it describes requests and responses in the OpenAPI
document and parses the JSON parts strictly, so that what the schema allows and
what the service accepts agree; the manifest is then validated by
`trackguard.contracts` in `moderation.hooks.HookService`.

Request bodies are read by this module, not by FastAPI, so that the size limit
comes first: ``Content-Length`` is checked before a byte is read and the bytes
actually received are counted too; only then does the signature check
(`moderation.web.hook_auth.signed_distributor`) hash the raw body, multipart
bytes exactly as sent.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from moderation.distributors import Distributor
from moderation.hooks import HookResult, HookService
from moderation.web.hook_auth import HookAuth, HookError, install_hook_error_handler, signed_distributor
from trackguard import signing
from trackguard.contracts import MAX_TEXT_LEN

SMALL_BODY_BYTES = 1 << 20  # JSON registrations, complete, GET: nothing legitimate comes near this
MULTIPART_OVERHEAD_BYTES = 1 << 20  # the manifest part and the multipart framing around the audio
SPOOL_BYTES = 8 << 20  # a PUT body is kept in memory up to this, then on disk


class ErrorOut(BaseModel):
    error: str = Field(description="stable code, e.g. invalid_manifest, upload_id_conflict, not_audio")
    message: str


# The schema says what the service accepts, so that schema-valid requests are not refused for their form:
UPLOAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # trackguard.contracts' rule
STORABLE = r"[^\x00]"  # PostgreSQL refuses NUL characters (lone surrogates are already refused as invalid JSON)
# Whitespace-only text counts as missing (str.strip); spelled out: \s differs between regex dialects.
SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^{STORABLE}*[^\x00{SPACE}]{STORABLE}*$"
CALLBACK_URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
CONTENT_TYPE_PATTERN = r"^[ -~]*$"  # printable ASCII
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LEN, pattern=TEXT_PATTERN)]
OptionalText = Annotated[str | None, Field(max_length=MAX_TEXT_LEN, pattern=rf"^{STORABLE}*$")]
CallbackUrl = Annotated[str | None, Field(max_length=2048, pattern=CALLBACK_URL_PATTERN,
                                          description="http(s) URL that receives the signed status document once "
                                                      "the upload is scored")]


class ManifestIn(BaseModel):
    """One upload as delivered (the catalogue manifest contract); ``audio_uri`` is set by trackguard.

    Parsed strictly (JSON types as documented, e.g. ``declared_ai`` a boolean), then
    validated by `trackguard.contracts.validate_manifest_row`.
    """

    model_config = ConfigDict(extra="allow", strict=True, regex_engine="python-re")
    upload_id: str = Field(pattern=UPLOAD_ID_PATTERN, description="unique; the idempotency key")
    title: Text
    artist_name: Text
    uploader_id: Text
    uploaded_at: dt.datetime = Field(description="ISO-8601 (RFC 3339); naive times are UTC")
    distributor_id: OptionalText = Field(None, description="must be the signing key's distributor, or absent")
    claimed_artist_id: OptionalText = None
    isrc: OptionalText = None
    genre: OptionalText = None
    language: OptionalText = None
    declared_ai: bool | None = Field(None, description="the distributor's AI-disclosure flag")


class RegistrationIn(BaseModel):
    """JSON registration: the audio follows by PUT to ``upload_url``, then ``POST complete_url``."""

    model_config = ConfigDict(strict=True, regex_engine="python-re")
    manifest: ManifestIn
    callback_url: CallbackUrl = None
    content_type: str | None = Field(None, max_length=128, pattern=CONTENT_TYPE_PATTERN,
                                     description="Content-Type the audio PUT will carry, e.g. audio/flac")


class MultipartRegistrationIn(BaseModel):
    """Multipart registration with the audio: accepted at once (202)."""

    manifest: ManifestIn = Field(description="a part with Content-Type application/json")
    audio: bytes = Field(json_schema_extra={"format": "binary"}, description="the audio file (a file part)")
    callback_url: CallbackUrl = None


class CaseDoc(BaseModel):
    id: int
    queue: str
    status: str
    evidence_version: int


class FinalDecisionDoc(BaseModel):
    action: str
    reason: str
    decided_at: str
    evidence_version: int


class AppealDoc(BaseModel):
    id: int
    status: str
    filed_at: str
    reason: str


class UploadStatusOut(BaseModel):
    """The status document (also the body of callbacks)."""

    upload_id: str
    status: Literal["awaiting_audio", "queued", "scored"] = Field(
        description="awaiting_audio → queued (accepted, not scored yet) → scored (verdict present)")
    created_at: dt.datetime
    accepted_at: dt.datetime | None
    verdict: dict[str, Any] | None = Field(description="the verdict contract; voice_similarity is withheld")
    case: CaseDoc | None
    final_decision: FinalDecisionDoc | None
    appeal: AppealDoc | None
    event: Literal["published", "queued"] | None = Field(
        None, description="on acceptance: the upload event was published, or is queued for the outbox relay")


class RegisteredOut(UploadStatusOut):
    upload_url: str
    upload_method: Literal["PUT"]
    upload_headers: dict[str, str]
    expires_at: dt.datetime
    complete_url: str


class ObjectStoredOut(BaseModel):
    upload_id: str
    size_bytes: int


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


SIGNATURE_HEADERS = [
    {"name": signing.KEY_ID, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "the distributor key id"},
    {"name": signing.TIMESTAMP, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Unix seconds; within 5 minutes of the server clock"},
    {"name": signing.NONCE, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "fresh per request, 1-128 printable ASCII characters"},
    {"name": signing.CONTENT_SHA256, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "hex SHA-256 of the exact body bytes"},
    {"name": signing.SIGNATURE, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "hex HMAC-SHA256 of the string to sign (see trackguard.signing)"},
]
SIGNED = {"parameters": SIGNATURE_HEADERS}
SIGNED_ERRORS = _errors(400, 401, 403, 404, 409, 429)


def hooks_of(request: Request) -> HookService:
    hooks = getattr(request.app.state, "hooks", None)
    if not isinstance(hooks, HookService):
        raise RuntimeError("app.state.hooks is not set: install the upload API with install_hooks")
    return hooks


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise HookError(400, "invalid_request", "Content-Length must be a whole number")
    return int(raw)


def _too_large(limit: int) -> HookError:
    return HookError(413, "payload_too_large", f"the request body is larger than {limit} bytes")


async def limited_body(request: Request) -> None:
    """Read the body under the route's limit, before the signature check hashes it (it then reads this copy)."""
    is_upload = request.method == "POST" and request.url.path.rstrip("/") == "/v1/uploads"
    limit = hooks_of(request).max_upload_bytes + MULTIPART_OVERHEAD_BYTES if is_upload else SMALL_BODY_BYTES
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    request._body = bytes(body)  # Starlette's cache of the body: request.body() and form() read it from here


Signed = Annotated[Distributor, Depends(signed_distributor)]
router = APIRouter(prefix="/v1", tags=["uploads"], dependencies=[Depends(limited_body)])
objects_router = APIRouter(prefix="/v1", tags=["uploads"])


def _respond(result: HookResult) -> JSONResponse:
    model = RegisteredOut if "upload_url" in result.document else UploadStatusOut
    return JSONResponse(model.model_validate(result.document).model_dump(mode="json"),
                        status_code=result.status_code)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())[:2000]


def _json_registration(body: bytes) -> dict[str, Any]:
    try:
        registration = RegistrationIn.model_validate_json(body)
    except ValidationError as exc:
        raise HookError(400, "invalid_manifest", _problems(exc)) from exc
    return registration.model_dump()


async def _multipart_registration(request: Request) -> tuple[dict[str, Any], UploadFile]:
    form = await request.form(max_files=1, max_fields=4)
    manifest, audio, callback = form.get("manifest"), form.get("audio"), form.get("callback_url")
    if not isinstance(audio, UploadFile):
        raise HookError(400, "invalid_request", "multipart uploads need a file part named 'audio'")
    if not isinstance(manifest, str):
        raise HookError(400, "invalid_manifest", "multipart uploads need a text part 'manifest' (JSON)")
    try:
        parsed = ManifestIn.model_validate_json(manifest)
    except ValidationError as exc:
        raise HookError(400, "invalid_manifest", _problems(exc)) from exc
    return {"manifest": parsed.model_dump(), "callback_url": callback if isinstance(callback, str) else None}, audio


REGISTER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/RegistrationIn"}},
    "multipart/form-data": {"schema": {"$ref": "#/components/schemas/MultipartRegistrationIn"},
                            "encoding": {"manifest": {"contentType": "application/json"},
                                         "audio": {"contentType": "application/octet-stream"}}},
}}}


@router.post("/uploads", status_code=202, response_model=UploadStatusOut,
             responses={200: {"model": UploadStatusOut, "description": "already registered: current status"},
                        201: {"model": RegisteredOut, "description": "registered; PUT the audio to upload_url"},
                        **SIGNED_ERRORS, **_errors(413, 415)},
             openapi_extra={**SIGNED, **REGISTER_BODY})
async def register_upload(request: Request, distributor: Signed) -> JSONResponse:
    """Register an upload: multipart with its audio (202 accepted), or JSON first (201, then PUT + complete)."""
    hooks, media = hooks_of(request), _media_type(request)
    if media == "application/json":
        body = _json_registration(await request.body())
        result = await run_in_threadpool(hooks.register, distributor, body, None, base_url=str(request.base_url))
    elif media == "multipart/form-data":
        body, audio = await _multipart_registration(request)
        try:
            result = await run_in_threadpool(hooks.register, distributor, body, audio)
        finally:
            await audio.close()
    else:
        raise HookError(415, "unsupported_media_type", "send application/json or multipart/form-data")
    return _respond(result)


@router.post("/uploads/{upload_id}/complete", status_code=202, response_model=UploadStatusOut,
             responses={200: {"model": UploadStatusOut, "description": "already accepted: current status"},
                        **SIGNED_ERRORS, **_errors(413, 415)}, openapi_extra=SIGNED)
def complete_upload(request: Request, upload_id: str, distributor: Signed) -> JSONResponse:
    """The audio is at the upload URL: sniff it, accept the upload, publish its event."""
    return _respond(hooks_of(request).complete(distributor, upload_id))


@router.get("/uploads/{upload_id}", response_model=UploadStatusOut, responses=SIGNED_ERRORS, openapi_extra=SIGNED)
def upload_status(request: Request, upload_id: str, distributor: Signed) -> JSONResponse:
    """The status document of one of the distributor's uploads (404 for anyone else's)."""
    return _respond(HookResult(200, hooks_of(request).status(distributor, upload_id)))


PUT_BODY = {"requestBody": {"required": True, "description": "the audio bytes, with the Content-Type registered",
                            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}}}


@objects_router.put("/objects/{token}", response_model=ObjectStoredOut,
                    responses=_errors(400, 403, 409, 413, 415), openapi_extra=PUT_BODY)
async def put_object(request: Request, token: str) -> ObjectStoredOut:
    """The signed upload URL of the local object store (GCS hands out its own signed URLs instead)."""
    hooks, content_type, length = hooks_of(request), request.headers.get("content-type"), _declared_length(request)
    grant = await run_in_threadpool(hooks.check_object_token, token, content_type, length)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > grant.max_bytes:
                raise _too_large(grant.max_bytes)
            spool.write(chunk)
        spool.seek(0)
        info = await run_in_threadpool(hooks.put_signed_object, token, spool, content_type, size)  # type: ignore[arg-type]
    return ObjectStoredOut(upload_id=grant.upload_id, size_bytes=info.size)


def _with_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add request-body models to the OpenAPI components (the routes read their bodies themselves)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_hooks(app: FastAPI, hooks: HookService, auth: HookAuth) -> None:
    """Add the upload API to ``app``: its routes, the HookError rendering, and its state."""
    app.state.hooks = hooks
    app.state.hook_auth = auth
    install_hook_error_handler(app)
    app.include_router(router)
    app.include_router(objects_router)
    _with_schemas(app, RegistrationIn, MultipartRegistrationIn)
