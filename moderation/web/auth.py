"""Sessions, CSRF and role checks, as FastAPI dependencies.

The session is Starlette's signed cookie (itsdangerous): it holds the user id, a
CSRF token, the sign-in time and flash messages, never a password or role (the
role is read from the database on every request, so a demotion takes effect at
once). Pages redirect to /login without a session; the JSON API answers 401.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Request

from moderation.review import ReviewService, Role, User
from trackguard.home import Home

SESSION_MAX_AGE_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Distributors are API-only (bearer tokens); every page needs at least a reviewer.
RANK = {Role.DISTRIBUTOR: 0, Role.REVIEWER: 1, Role.LEAD: 2, Role.ADMIN: 3}


class LoginRequired(Exception):
    """No (valid) session or token: pages redirect to /login, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role (or a CSRF check) does not allow this."""

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(message)
        self.message, self.code = message, code


def load_secret_key(home: Home | None = None) -> str:
    """``TRACKGUARD_SECRET_KEY``, else a key generated once and kept 0600 under TRACKGUARD_HOME."""
    env = os.environ.get("TRACKGUARD_SECRET_KEY")
    if env:
        return env
    path = (home or Home.from_env()).root / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two servers starting at once must not each write a different key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it to generate a new secret key")
    return key


def now(request: Request) -> float:
    """Session time on the service's clock, the same clock that stamps sign-outs (tests move it)."""
    return service_of(request).now().timestamp()


def service_of(request: Request) -> ReviewService:
    svc: ReviewService = request.app.state.service
    return svc


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the login form needs one before sign-in)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def start_session(request: Request, user: User) -> None:
    """Sign in: a fresh session (new CSRF token), so nothing from before sign-in carries over."""
    request.session.clear()
    request.session.update({"uid": user.id, "iat": now(request), "gen": user.session_generation,
                            "csrf": secrets.token_urlsafe(32)})


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session["flash"] = [*request.session.get("flash", []), [kind, message]]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    return [(k, m) for k, m in request.session.pop("flash", [])]


def token_matches(expected: object, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


async def check_csrf(request: Request) -> None:
    """Unsafe methods must echo the session's token (form field or header), else 403."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not token_matches(request.session.get("csrf"), given):
        raise Forbidden("The form's security token is missing or wrong. Reload the page and try again.", "csrf")


def session_user(request: Request) -> User | None:
    """The signed-in user, or None (no session, older than 12 h, signed out since, or user gone)."""
    uid, iat = request.session.get("uid"), request.session.get("iat")
    if not isinstance(uid, int) or not isinstance(iat, int | float) or now(request) - iat > SESSION_MAX_AGE_S:
        return None  # the cookie's own max-age slides with every write; this bound is absolute
    user = service_of(request).get_user(uid)
    if user is None or request.session.get("gen", 0) != user.session_generation:
        return None  # a copy of a cookie from before sign-out (or a password change) is dead
    return user


def require(role: Role) -> Callable[[Request], Awaitable[User]]:
    """Page dependency: a session of at least ``role`` (and a valid CSRF token on POST)."""

    async def dependency(request: Request) -> User:
        user = session_user(request)
        if user is None:
            raise LoginRequired()
        await check_csrf(request)
        if user.role is Role.DISTRIBUTOR or RANK[user.role] < RANK[role]:
            raise Forbidden(f"This page needs the {role.value} role; you are signed in as {user.role.value}.")
        return user

    dependency.__name__ = f"require_{role.value}"
    return dependency


def at_least(user: User, role: Role) -> bool:
    return user.role is not Role.DISTRIBUTOR and RANK[user.role] >= RANK[role]
