"""Jinja2 environment, filters, and the one `render` every page goes through (nav, flashes, CSRF token)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from moderation.review import Role, User
from moderation.web import explain
from moderation.web.auth import at_least, csrf_token, pop_flashes

TEMPLATES = Path(__file__).parent / "templates"


def age(seconds: float | None) -> str:
    """Compact age: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    if seconds is None:
        return "–"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def score(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def clock(seconds: float) -> str:
    s = max(float(seconds), 0.0)
    return f"{int(s // 60)}:{s % 60:04.1f}"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(age=age, when=when, score=score, clock=clock)
    env.globals.update(explain=explain, Role=Role)
    return templates


def render(request: Request, name: str, user: User | None, status_code: int = 200, **context: Any) -> Response:
    """Render a page with what every page needs: the viewer, their nav, flashes and the CSRF token."""
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "user": user,
        "is_lead": user is not None and at_least(user, Role.LEAD),
        "is_admin": user is not None and at_least(user, Role.ADMIN),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
