"""Reviewer pages: sign-in, queue overview, queue lists, the case page and its form actions.

Every form action answers with a redirect (post/redirect/get) and a flash message,
so reloading a page never repeats a claim or a decision. Lease tokens live in the
session: a reviewer's browser holds the tokens of the cases it claimed.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from moderation.review import (
    Action,
    Claim,
    InvalidDecisionError,
    NotAllowedError,
    NotFoundError,
    ReviewError,
    Role,
    StaleLeaseError,
    User,
)
from moderation.web import caseview
from moderation.web.auth import check_csrf, flash, require, service_of, session_user, start_session
from moderation.web.templating import render

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[User, Depends(require(Role.REVIEWER))]
FormStr = Annotated[str, Form()]
MAX_LEASES_IN_SESSION = 20


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``next=//evil.example`` must not turn sign-in into an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _leases(request: Request) -> dict[str, str]:
    return dict(request.session.get("leases", {}))


def _remember(request: Request, claim: Claim) -> None:
    leases = {k: v for k, v in _leases(request).items() if k != str(claim.case_id)}
    leases[str(claim.case_id)] = claim.lease_token
    # The cookie carries these: keep the newest few (older claims have long expired anyway).
    request.session["leases"] = dict(list(leases.items())[-MAX_LEASES_IN_SESSION:])


def _forget(request: Request, case_id: int) -> None:
    request.session["leases"] = {k: v for k, v in _leases(request).items() if k != str(case_id)}


def stale_message(case_id: int) -> str:
    return (f"Your claim on case {case_id} is no longer valid: it expired, was released, or another reviewer "
            "took the case. Nothing was recorded. Claim the case again to decide it.")


def explain_error(exc: ReviewError, case_id: int) -> str:
    if isinstance(exc, StaleLeaseError):
        return stale_message(case_id)
    prefix = {NotAllowedError: "Not allowed", NotFoundError: "Not found",
              InvalidDecisionError: "Decision not recorded"}.get(type(exc), "Refused")
    return f"{prefix}: {exc}" if str(exc) else prefix


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if session_user(request) is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", None, next=safe_next(next))


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(request: Request, username: FormStr = "", password: FormStr = "", next: FormStr = "/") -> Response:
    user = service_of(request).authenticate(username, password) if username and password else None
    if user is None:
        return render(request, "login.html", None, status_code=401, next=safe_next(next),
                      error="Wrong username or password.", username=username)
    if user.role is Role.DISTRIBUTOR:
        return render(request, "login.html", None, status_code=403, next=safe_next(next), username=username,
                      error="Distributor accounts use the JSON API with a token, not the review web app.")
    start_session(request, user)
    return redirect(safe_next(next))


@router.post("/logout")
def logout(request: Request, user: Reviewer) -> Response:
    svc = service_of(request)
    for case_id, token in _leases(request).items():  # hand back what this browser held
        with contextlib.suppress(ReviewError):  # already expired or decided: nothing to hand back
            svc.release(user, int(case_id), token)
    svc.end_sessions(user.username, actor=user.username)  # every copy of this user's cookies stops working
    request.session.clear()
    flash(request, "Signed out.")
    return redirect("/login")


@router.get("/")
def overview(request: Request, user: Reviewer) -> Response:
    return render(request, "overview.html", user, stats=service_of(request).queue_stats())


@router.get("/queues/{queue}")
def queue_page(request: Request, queue: str, user: Reviewer) -> Response:
    cases = service_of(request).list_cases(queue, status="open", limit=200)
    return render(request, "queue.html", user, queue=queue, cases=cases)


@router.post("/queues/{queue}/claim")
def claim_next(request: Request, queue: str, user: Reviewer, back: FormStr = "/") -> Response:
    try:
        claim = service_of(request).claim_next(user, queue)
    except ReviewError as exc:
        flash(request, f"Could not claim from {queue}: {exc}", "error")
        return redirect(safe_next(back))
    if claim is None:
        flash(request, f"Queue {queue} is empty: no open case you can claim.", "info")
        return redirect(safe_next(back))
    _remember(request, claim)
    return redirect(f"/cases/{claim.case_id}")


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: int, user: Reviewer) -> Response:
    svc, state = service_of(request), request.app.state
    try:
        detail = state.lookup.fresh(case_id, user)
    except (NotFoundError, NotAllowedError) as exc:
        return _refused(request, user, exc, case_id)
    view = caseview.build(detail, user, _leases(request), svc, state.artist_of, state.cache_dir)
    return render(request, "case.html", user, case=view, actions=list(Action))


def _refused(request: Request, user: User, exc: ReviewError, case_id: int) -> Response:
    status = 404 if isinstance(exc, NotFoundError) else 403
    return render(request, "error.html", user, status_code=status, title=f"Case {case_id}",
                  message=explain_error(exc, case_id))


@router.post("/cases/{case_id}/claim")
def claim_case(request: Request, case_id: int, user: Reviewer) -> Response:
    try:
        _remember(request, service_of(request).claim_case(user, case_id))
    except ReviewError as exc:
        flash(request, explain_error(exc, case_id), "error")
    return redirect(f"/cases/{case_id}")


@router.post("/cases/{case_id}/release")
def release(request: Request, case_id: int, user: Reviewer, lease_token: FormStr = "") -> Response:
    try:
        service_of(request).release(user, case_id, lease_token)
        flash(request, f"Released case {case_id} back to its queue.")
    except ReviewError as exc:
        flash(request, explain_error(exc, case_id), "error")
    _forget(request, case_id)
    return redirect(f"/cases/{case_id}")


@router.post("/cases/{case_id}/decide")
def decide(request: Request, case_id: int, user: Reviewer, lease_token: FormStr = "", action: FormStr = "",
           reason: FormStr = "") -> Response:
    try:
        chosen = Action(action)
    except ValueError:
        flash(request, f"Choose one of the decisions ({', '.join(a.value for a in Action)}).", "error")
        return redirect(f"/cases/{case_id}")
    try:
        record = service_of(request).decide(user, case_id, lease_token, chosen, reason)
    except ReviewError as exc:
        if isinstance(exc, StaleLeaseError):
            _forget(request, case_id)
        flash(request, explain_error(exc, case_id), "error")
        return redirect(f"/cases/{case_id}")
    _forget(request, case_id)
    flash(request, f"Decision recorded on case {case_id}: {record.action.value}.", "success")
    return redirect(f"/cases/{case_id}")


@router.post("/cases/{case_id}/renew")
def renew(request: Request, case_id: int, user: Reviewer) -> Response:
    """Called by the page's script while the reviewer works, so a long look at a case keeps its lease."""
    token = _leases(request).get(str(case_id), "")
    try:
        claim = service_of(request).renew(user, case_id, token)
    except ReviewError as exc:
        body: dict[str, Any] = {"error": exc.code, "message": explain_error(exc, case_id)}
        return JSONResponse(body, status_code=409 if isinstance(exc, StaleLeaseError) else 403)
    _remember(request, claim)
    return JSONResponse({"lease_until": claim.lease_until.isoformat()})
