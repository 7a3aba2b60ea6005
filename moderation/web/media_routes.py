"""Audio and waveform endpoints: session and role checked like pages, bodies from `media`'s disk cache.

Starlette's FileResponse answers HTTP Range requests (206, Content-Range), which is
what lets Chromium seek in an <audio> element. Audio is private: ``Cache-Control:
private`` keeps it out of shared caches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.responses import Response

from moderation.review import CaseDetail, NotAllowedError, NotFoundError, ReviewError, Role, User
from moderation.web import media
from moderation.web.auth import require, service_of
from trackguard.contracts import TrackguardError

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[User, Depends(require(Role.REVIEWER))]
Lead = Annotated[User, Depends(require(Role.LEAD))]
PRIVATE = {"Cache-Control": "private, max-age=600"}


def _not_found(message: str) -> Response:
    return PlainTextResponse(message, status_code=404, headers={"Cache-Control": "no-store"})


def _refused(exc: ReviewError) -> Response:
    status = 404 if isinstance(exc, NotFoundError) else 403
    return PlainTextResponse(str(exc) or exc.code, status_code=status)


def _case(request: Request, case_id: int, user: User) -> CaseDetail | Response:
    try:
        detail: CaseDetail = request.app.state.lookup.recent(case_id, user)
    except (NotFoundError, NotAllowedError) as exc:
        return _refused(exc)
    if detail.upload is None or not detail.upload.get("audio_uri"):
        return _not_found(f"Case {case_id}: the sweep recorded no metadata for upload {detail.summary.upload_id}, "
                          "so its audio cannot be located.")
    return detail


def _wav(uri: str, cache_dir: Path, what: str) -> Path | Response:
    try:
        return media.decoded_wav(uri, cache_dir)
    except TrackguardError as exc:
        return _not_found(f"Audio of {what} is not available ({exc.code.value}): {exc.message}")


def _wav_response(request: Request, uri: str, what: str) -> Response:
    wav = _wav(uri, request.app.state.cache_dir, what)
    return wav if isinstance(wav, Response) else FileResponse(wav, media_type="audio/wav", headers=PRIVATE)


@router.get("/cases/{case_id}/audio")
def case_audio(request: Request, case_id: int, user: Reviewer) -> Response:
    detail = _case(request, case_id, user)
    if isinstance(detail, Response):
        return detail
    assert detail.upload is not None  # checked by _case
    return _wav_response(request, str(detail.upload["audio_uri"]), f"upload {detail.summary.upload_id}")


@router.get("/uploads/{upload_id}/audio")
def upload_audio(request: Request, upload_id: str, user: Reviewer) -> Response:
    """Any swept upload's audio, e.g. the original of a duplicate that has no case of its own."""
    try:
        info = service_of(request).upload_info(upload_id, user)
    except ReviewError as exc:
        return _refused(exc)
    if info is None or not info.get("audio_uri"):
        return _not_found(f"The sweep recorded no metadata for upload {upload_id}, so its audio cannot be located.")
    return _wav_response(request, str(info["audio_uri"]), f"upload {upload_id}")


@router.get("/cases/{case_id}/waveform.png")
def case_waveform(request: Request, case_id: int, user: Reviewer) -> Response:
    detail = _case(request, case_id, user)
    if isinstance(detail, Response):
        return detail
    assert detail.upload is not None
    try:
        png = media.cached_waveform(str(detail.upload["audio_uri"]), detail.summary.upload_id,
                                    detail.summary.evidence_version, detail.verdict.get("synthetic_segments") or [],
                                    request.app.state.cache_dir)
    except TrackguardError as exc:
        return _not_found(f"No waveform for upload {detail.summary.upload_id} ({exc.code.value}): {exc.message}")
    return FileResponse(png, media_type="image/png", headers=PRIVATE)


@router.get("/artists/{artist_id}/reference/{n}")
def reference_audio(request: Request, artist_id: str, n: int, user: Lead) -> Response:
    """A reference (enrolment) recording; every play from the start is audited before any byte is sent.

    The sources come from the registry record, not `reference_recordings` (which audits a listing): one
    play makes several Range requests, and only its first is an audited event.
    """
    record = request.app.state.artist_of(artist_id)
    sources: list[str] = list(record["sources"]) if record else []
    if not 0 <= n < len(sources):
        return _not_found(f"Artist {artist_id} has no reference recording #{n}.")
    wav = _wav(sources[n], request.app.state.cache_dir, f"reference recording #{n} of {artist_id}")
    if isinstance(wav, Response):
        return wav
    if _starts_playback(request.headers.get("range")):
        try:
            service_of(request).record_reference_play(user, artist_id, sources[n])
        except ReviewError as exc:
            return _refused(exc)
    return FileResponse(wav, media_type="audio/wav", headers=PRIVATE)


def _starts_playback(range_header: str | None) -> bool:
    """A request from the beginning is a play; later Range requests are the same play seeking or buffering."""
    if range_header is None:
        return True
    first = range_header.partition("=")[2].split(",")[0].strip()
    return first.startswith("0-") or first == ""
