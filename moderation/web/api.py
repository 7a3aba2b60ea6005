"""JSON API under /v1 for reviewer tools and distributors; pydantic lives only here, at the edge.

Auth: ``Authorization: Bearer <token>`` (tokens from `ReviewService.issue_api_token`),
or the web session cookie plus an ``X-CSRF-Token`` header on unsafe methods (so the
page's own scripts can call it). Errors are ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from moderation.review import Action, Role, User
from moderation.web.auth import (
    CSRF_HEADER,
    RANK,
    SAFE_METHODS,
    Forbidden,
    LoginRequired,
    service_of,
    session_user,
    token_matches,
)

bearer = HTTPBearer(auto_error=False, description="API token issued by an admin (`Bearer <token>`)")


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(Model):
    error: str
    message: str


class QueueOut(Model):
    queue: str
    open: int
    claimed: int
    oldest_age_s: float | None
    sla_s: float
    sla_breaches: int


class CaseOut(Model):
    id: int
    upload_id: str
    queue: str
    priority: int
    status: str
    min_role: Role
    created_at: dt.datetime
    age_s: float
    claimed_by: str | None
    lease_until: dt.datetime | None
    evidence_version: int
    resolution: Action | None


class ClaimOut(Model):
    case_id: int
    upload_id: str
    queue: str
    reviewer: str
    lease_token: str
    lease_until: dt.datetime


class DecisionIn(Model):
    lease_token: str
    action: Action
    reason: str


class ReleaseIn(Model):
    lease_token: str


class DecisionOut(Model):
    id: int
    case_id: int
    action: Action
    reason: str
    reviewer: str
    decided_at: dt.datetime
    evidence_version: int
    appeal_id: int | None


class AppealIn(Model):
    reason: str


class AppealOut(Model):
    id: int
    case_id: int
    decision_id: int
    distributor_id: str
    filed_by: str
    reason: str
    filed_at: dt.datetime
    status: str


class AuditEntryOut(Model):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


class CaseDetailOut(Model):
    summary: CaseOut
    verdict: dict[str, Any]
    upload: dict[str, Any] | None
    evidence_versions: list[dict[str, Any]]
    decisions: list[DecisionOut]
    appeals: list[AppealOut]
    history: list[AuditEntryOut]


class AuditVerifyOut(Model):
    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None


async def api_user(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> User:
    """Bearer token first; else the web session, which must echo its CSRF token in a header to change anything."""
    if creds is not None:
        user = service_of(request).user_for_token(creds.credentials)
        if user is None:
            raise LoginRequired()
        return user
    if request.headers.get("authorization"):
        raise LoginRequired()  # a malformed Authorization header is not silently ignored
    user = session_user(request)
    if user is None:
        raise LoginRequired()
    if request.method not in SAFE_METHODS and not token_matches(request.session.get("csrf"),
                                                              request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"Session requests that change state need the {CSRF_HEADER} header.", "csrf")
    return user


def api_role(role: Role) -> Callable[[User], Awaitable[User]]:
    async def dependency(user: Annotated[User, Depends(api_user)]) -> User:
        if user.role is Role.DISTRIBUTOR or RANK[user.role] < RANK[role]:
            raise Forbidden(f"This endpoint needs the {role.value} role; this token's account is {user.role.value}.")
        return user

    dependency.__name__ = f"api_{role.value}"
    return dependency


async def _appellant(user: Annotated[User, Depends(api_user)]) -> User:
    if user.role not in (Role.DISTRIBUTOR, Role.ADMIN):
        raise Forbidden("Appeals are filed by the upload's distributor (or an admin).")
    return user


AnyUser = Annotated[User, Depends(api_user)]
Reviewer = Annotated[User, Depends(api_role(Role.REVIEWER))]
Lead = Annotated[User, Depends(api_role(Role.LEAD))]
Appellant = Annotated[User, Depends(_appellant)]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409)}
router = APIRouter(prefix="/v1", tags=["v1"], responses=ERRORS)


@router.get("/queues", response_model=list[QueueOut])
def queues(request: Request, user: Reviewer) -> list[QueueOut]:
    return [QueueOut.model_validate(q) for q in service_of(request).queue_stats()]


@router.get("/queues/{queue}/cases", response_model=list[CaseOut])
def queue_cases(request: Request, queue: str, user: Reviewer, status: Literal["open", "decided", "all"] = "open",
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> list[CaseOut]:
    cases = service_of(request).list_cases(queue, status=status, limit=limit, offset=offset)
    return [CaseOut.model_validate(c) for c in cases]


@router.post("/queues/{queue}/claim", response_model=ClaimOut, responses={204: {"description": "queue empty"}})
def claim(request: Request, queue: str, user: Reviewer) -> ClaimOut | Response:
    got = service_of(request).claim_next(user, queue)
    return Response(status_code=204) if got is None else ClaimOut.model_validate(got)


@router.get("/cases/{case_id}", response_model=CaseDetailOut)
def case(request: Request, case_id: int, user: Reviewer) -> CaseDetailOut:
    return CaseDetailOut.model_validate(service_of(request).case_detail(case_id, user))


@router.post("/cases/{case_id}/decision", response_model=DecisionOut, status_code=201)
def decision(request: Request, case_id: int, body: DecisionIn, user: Reviewer) -> DecisionOut:
    record = service_of(request).decide(user, case_id, body.lease_token, body.action, body.reason)
    return DecisionOut.model_validate(record)


@router.post("/cases/{case_id}/release", status_code=204)
def release(request: Request, case_id: int, body: ReleaseIn, user: Reviewer) -> Response:
    service_of(request).release(user, case_id, body.lease_token)
    return Response(status_code=204)


@router.get("/uploads/{upload_id}/verdict", response_model=dict[str, Any])
def verdict(request: Request, upload_id: str, user: AnyUser) -> dict[str, Any]:
    """An upload's verdict and review status; distributors see their own uploads only."""
    return service_of(request).verdict_status(upload_id, user)


@router.post("/uploads/{upload_id}/appeals", response_model=AppealOut, status_code=201)
def appeal(request: Request, upload_id: str, body: AppealIn, user: Appellant) -> AppealOut:
    return AppealOut.model_validate(service_of(request).file_appeal(user, upload_id, body.reason))


@router.get("/audit/verify", response_model=AuditVerifyOut)
def audit_verify(request: Request, user: Lead) -> AuditVerifyOut:
    return AuditVerifyOut.model_validate(service_of(request).verify_audit())
