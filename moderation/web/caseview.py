"""What the case page shows, worked out from a `CaseDetail` (no HTML here, no I/O besides the audio probe)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moderation.review import CaseDetail, CaseSummary, ReviewService, User
from moderation.web import media
from trackguard.contracts import TrackguardError

MAX_SPAM_REASONS = 5


@dataclasses.dataclass(frozen=True)
class Segment:
    start: float
    end: float
    score: float
    left_pct: float | None  # position on the waveform; None when the duration is unknown
    width_pct: float | None


@dataclasses.dataclass(frozen=True)
class AudioState:
    duration_s: float | None
    error: str | None  # why there is no audio (file gone, undecodable)


@dataclasses.dataclass(frozen=True)
class CaseView:
    detail: CaseDetail
    verdict: dict[str, Any]
    audio: AudioState
    segments: list[Segment]
    artist: dict[str, Any] | None  # the matched artist's registry record (policy, partners), None if not enrolled
    duplicate_case_id: int | None
    duplicate_upload: dict[str, Any] | None  # the original's metadata, when the sweep recorded it
    spam_reasons: list[str]
    lease_token: str | None  # set only when this viewer holds a live lease and this browser knows its token
    held_elsewhere: bool  # the viewer holds the lease, but from another session/browser

    @property
    def summary(self) -> CaseSummary:
        return self.detail.summary


def probe_audio(detail: CaseDetail, cache_dir: Path) -> AudioState:
    """Decode (or find cached) the upload's audio once, to know its duration for the overlay."""
    upload = detail.upload
    if upload is None or not upload.get("audio_uri"):
        return AudioState(None, "The sweep did not record this upload's metadata, so its audio cannot be located.")
    try:
        return AudioState(media.duration_s(media.decoded_wav(str(upload["audio_uri"]), cache_dir)), None)
    except TrackguardError as exc:
        return AudioState(None, f"Audio unavailable ({exc.code.value}): {exc.message}")


def segments(verdict: dict[str, Any], duration: float | None) -> list[Segment]:
    out = []
    for seg in verdict.get("synthetic_segments") or []:
        start, end = float(seg["start_s"]), float(seg["end_s"])
        left = width = None
        if duration:
            left = min(max(start / duration * 100.0, 0.0), 100.0)
            width = max(min(end, duration) / duration * 100.0 - left, 0.3)
        out.append(Segment(start, end, float(seg.get("score") or 0.0), left, width))
    return out


def build(detail: CaseDetail, viewer: User, session_leases: dict[str, str], service: ReviewService,
          artist_of: Callable[[str], dict[str, Any] | None], cache_dir: Path) -> CaseView:
    verdict = detail.verdict or {}
    audio = probe_audio(detail, cache_dir)
    mine = detail.summary.claimed_by == viewer.username and detail.summary.status == "open"
    token = session_leases.get(str(detail.summary.id)) if mine else None
    matched = verdict.get("matched_artist_id")
    dup = verdict.get("duplicate_of")
    return CaseView(
        detail=detail, verdict=verdict, audio=audio, segments=segments(verdict, audio.duration_s),
        artist=artist_of(matched) if matched else None,
        duplicate_case_id=service.case_id_for_upload(dup) if dup else None,
        duplicate_upload=service.upload_info(dup, viewer) if dup else None,
        spam_reasons=list(verdict.get("spam_reasons") or [])[:MAX_SPAM_REASONS],
        lease_token=token, held_elsewhere=mine and token is None,
    )
