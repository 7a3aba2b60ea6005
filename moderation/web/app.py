"""The reviewer web app and the /v1 JSON API as one FastAPI application (`create_app`).

Everything it serves is local (templates, CSS, JS): it works offline and loads
nothing from a CDN. The OpenAPI document is at /v1/openapi.json; the interactive
docs are left out because FastAPI's Swagger UI loads its assets from a CDN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.voiceprints import VoiceprintStore
from moderation.review import (
    ConflictError,
    InvalidDecisionError,
    NotAllowedError,
    NotFoundError,
    ReviewError,
    ReviewService,
    StaleLeaseError,
)
from moderation.web import admin, api, media_routes, pages
from moderation.web.auth import SESSION_MAX_AGE_S, Forbidden, LoginRequired, session_user
from moderation.web.lookup import CaseLookup
from moderation.web.templating import make_templates, render
from trackguard.home import Home

if TYPE_CHECKING:
    from moderation.hooks import HookService
    from moderation.web.hook_auth import HookAuth

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "tg_session"
# Same-origin everything; inline style attributes only (segment overlays are positioned by percent).
CSP = ("default-src 'self'; img-src 'self'; media-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
API_STATUS = {StaleLeaseError: 409, ConflictError: 409, NotAllowedError: 403, NotFoundError: 404,
              InvalidDecisionError: 400}


class SecurityHeaders:
    """Adds CSP and friends to every response (pure ASGI: no buffering of streamed audio)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/v1/") or request.url.path == "/v1"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request):
            return _error(401, "unauthenticated", "Sign in, or send 'Authorization: Bearer <token>'.")
        target = request.url.path if request.method == "GET" else "/"
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return _error(403, exc.code, exc.message)
        return render(request, "error.html", session_user(request), status_code=403, title="Not allowed",
                      message=exc.message)

    @app.exception_handler(ReviewError)
    async def review_error(request: Request, exc: ReviewError) -> Response:
        status = next((s for cls, s in API_STATUS.items() if isinstance(exc, cls)), 400)
        if _is_api(request):
            return _error(status, exc.code, str(exc) or exc.code)
        return render(request, "error.html", session_user(request), status_code=status, title="Refused",
                      message=str(exc) or exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        if _is_api(request):
            return _error(400, "invalid_request", problems)
        return render(request, "error.html", session_user(request), status_code=400, title="Bad request",
                      message=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or exc.status_code not in (404, 405):
            return _error(exc.status_code, "not_found" if exc.status_code == 404 else "http_error", str(exc.detail))
        return render(request, "error.html", session_user(request), status_code=exc.status_code,
                      title="Not found" if exc.status_code == 404 else "Not allowed here", message=str(exc.detail))


def _artist_lookup(db_url: str) -> Callable[[str], dict[str, Any] | None]:
    """The registry record of an artist (policy, consent, sources; never vectors), None when not enrolled."""
    store = VoiceprintStore(db_url)

    def artist_of(artist_id: str) -> dict[str, Any] | None:
        try:
            return store.artist(artist_id)
        except KeyError:
            return None

    return artist_of


def create_app(service: ReviewService, *, secret_key: str, secure_cookies: bool = True, db_url: str,
               hooks: tuple[HookService, HookAuth] | None = None) -> FastAPI:
    """The app; ``secure_cookies=False`` only for plain http on localhost (the cookie is then not Secure).

    ``hooks``: the distributor upload API (`moderation.web.hooks`), served when given.
    """
    app = FastAPI(title="trackguard review and upload API", version="1", openapi_url="/v1/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Queues, cases, decisions, verdicts and appeals of trackguard, and the distributors' "
                              "signed upload API (/v1/uploads: register, upload audio, complete, status).")
    app.state.service = service
    app.state.lookup = CaseLookup(service)
    app.state.templates = make_templates()
    app.state.artist_of = _artist_lookup(db_url)
    app.state.cache_dir = Home.from_env().cache
    _install_handlers(app)
    for router in (pages.router, admin.router, media_routes.router, api.router):
        app.include_router(router)
    if hooks is not None:
        from moderation.web.hooks import install_hooks

        install_hooks(app, *hooks)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE_S, same_site="strict", https_only=secure_cookies)
    app.add_middleware(SecurityHeaders)
    return app
