"""Lead and admin pages: the audit log with its chain check, user management, artist records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from moderation.review import ReviewError, Role, User
from moderation.web.auth import flash, require, service_of
from moderation.web.pages import redirect
from moderation.web.templating import render

router = APIRouter(include_in_schema=False)
Lead = Annotated[User, Depends(require(Role.LEAD))]
Admin = Annotated[User, Depends(require(Role.ADMIN))]
FormStr = Annotated[str, Form()]
AUDIT_PAGE = 200


@router.get("/audit")
def audit(request: Request, user: Lead) -> Response:
    svc = service_of(request)
    return render(request, "audit.html", user, entries=svc.audit_log(limit=AUDIT_PAGE), check=svc.verify_audit())


@router.get("/admin/users")
def users(request: Request, user: Admin) -> Response:
    return render(request, "users.html", user, users=service_of(request).list_users(), roles=list(Role))


@router.post("/admin/users")
def create_user(request: Request, user: Admin, username: FormStr = "", password: FormStr = "",
                role: FormStr = "", distributor_id: FormStr = "") -> Response:
    svc = service_of(request)
    roles = [r.value for r in Role]
    error = None if role in roles else f"Choose a role ({', '.join(roles)})."
    if error is None:
        try:
            svc.create_user(username.strip(), password, Role(role), distributor_id=distributor_id.strip() or None,
                            actor=user.username)
        except ReviewError as exc:  # invalid_user (rules), conflict (name taken)
            error = f"Could not create {username!r}: {exc}"
    if error is not None:
        return render(request, "users.html", user, status_code=400, users=svc.list_users(), roles=list(Role),
                      error=error, form={"username": username, "role": role, "distributor_id": distributor_id})
    flash(request, f"Created {role} account {username.strip()!r}.", "success")
    return redirect("/admin/users")


@router.post("/admin/users/token")
def issue_token(request: Request, user: Admin, username: FormStr = "") -> Response:
    """Shown once on this response (never flashed: the session cookie is signed, not encrypted)."""
    svc = service_of(request)
    try:
        token = svc.issue_api_token(username, actor=user.username)
    except (ReviewError, KeyError, ValueError) as exc:
        return render(request, "users.html", user, status_code=400, users=svc.list_users(), roles=list(Role),
                      error=f"No token issued for {username!r}: {exc}")
    page = render(request, "users.html", user, users=svc.list_users(), roles=list(Role),
                  issued={"username": username, "token": token})
    page.headers["Cache-Control"] = "no-store"  # the token must not linger in a cache
    return page


@router.get("/artists/{artist_id}")
def artist(request: Request, artist_id: str, user: Lead) -> Response:
    record = request.app.state.artist_of(artist_id)
    if record is None:
        return render(request, "error.html", user, status_code=404, title=f"Artist {artist_id}",
                      message=f"No artist {artist_id!r} is enrolled (never enrolled, or opted out and erased).")
    try:
        references = service_of(request).reference_recordings(artist_id, user)
    except ReviewError as exc:
        return render(request, "error.html", user, status_code=403, title=f"Artist {artist_id}", message=str(exc))
    return render(request, "artist.html", user, artist=record, references=references)
