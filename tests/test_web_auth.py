"""Sign-in, sessions, CSRF and role checks on every route of the web app and the /v1 API.

`ROUTES` lists every route with the least role it needs; `test_route_table_is_complete`
fails when a route is added without being listed here (and so without being checked).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from moderation.web.auth import load_secret_key
from tests.web_helpers import PASSWORD, World, build_world, csrf_of, login
from trackguard.home import Home

PUBLIC, DISTRIBUTOR, ANY_API, REVIEWER, LEAD, ADMIN = "public", "distributor", "any", "reviewer", "lead", "admin"
# (method, path template) -> who may use it. ANY_API: every signed-in account, distributors included.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): REVIEWER,
    ("GET", "/"): REVIEWER,
    ("GET", "/queues/{queue}"): REVIEWER,
    ("POST", "/queues/{queue}/claim"): REVIEWER,
    ("GET", "/cases/{case_id}"): REVIEWER,
    ("POST", "/cases/{case_id}/claim"): REVIEWER,
    ("POST", "/cases/{case_id}/release"): REVIEWER,
    ("POST", "/cases/{case_id}/decide"): REVIEWER,
    ("POST", "/cases/{case_id}/renew"): REVIEWER,
    ("GET", "/cases/{case_id}/audio"): REVIEWER,
    ("GET", "/uploads/{upload_id}/audio"): REVIEWER,
    ("GET", "/cases/{case_id}/waveform.png"): REVIEWER,
    ("GET", "/audit"): LEAD,
    ("GET", "/artists/{artist_id}"): LEAD,
    ("GET", "/artists/{artist_id}/reference/{n}"): LEAD,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/token"): ADMIN,
    ("GET", "/v1/openapi.json"): PUBLIC,  # the schema, no data
    ("GET", "/v1/queues"): REVIEWER,
    ("GET", "/v1/queues/{queue}/cases"): REVIEWER,
    ("POST", "/v1/queues/{queue}/claim"): REVIEWER,
    ("GET", "/v1/cases/{case_id}"): REVIEWER,
    ("POST", "/v1/cases/{case_id}/decision"): REVIEWER,
    ("POST", "/v1/cases/{case_id}/release"): REVIEWER,
    ("GET", "/v1/uploads/{upload_id}/verdict"): ANY_API,
    ("POST", "/v1/uploads/{upload_id}/appeals"): DISTRIBUTOR,
    ("GET", "/v1/audit/verify"): LEAD,
}
GUARDED = sorted(k for k, who in ROUTES.items() if who != PUBLIC)
PAGE_POSTS = sorted(k for k in GUARDED if k[0] == "POST" and not k[1].startswith("/v1"))
API_POSTS = sorted(k for k in GUARDED if k[0] == "POST" and k[1].startswith("/v1"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("web-auth"))


def concrete(world: World, path: str) -> str:
    values = {"queue": "impersonation", "case_id": str(world.case_id("up-imp")), "artist_id": "art-1", "n": "0",
              "upload_id": "up-imp"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_route_table_is_complete(world: World) -> None:
    served = {(m, ctx.path) for ctx in iter_route_contexts(world.app.routes)
              for m in getattr(ctx.original_route, "methods", None) or () if m != "HEAD"}
    assert served == set(ROUTES), f"unlisted: {served - set(ROUTES)}; gone: {set(ROUTES) - served}"


def test_no_session_redirects_pages_and_401s_api(world: World) -> None:
    client = world.client()
    for method, path in GUARDED:
        r = client.request(method, concrete(world, path))
        if path.startswith("/v1"):
            assert r.status_code == 401 and r.json()["error"] == "unauthenticated", (method, path)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path, r.status_code)


def test_lower_roles_get_403_everywhere(world: World) -> None:
    rank = {REVIEWER: 1, LEAD: 2, ADMIN: 3}
    for username, level in (("rita", 1), ("lee", 2)):
        client = world.client()
        csrf = login(client, username)
        for method, path in GUARDED:
            need = ROUTES[(method, path)]
            if (need in rank and rank[need] <= level) or need == ANY_API:
                continue
            data = {"csrf_token": csrf} if method == "POST" else None
            headers = {"X-CSRF-Token": csrf} if path.startswith("/v1") else {}
            r = client.request(method, concrete(world, path), data=data, headers=headers)
            assert r.status_code == 403, (username, method, path, r.status_code)
            assert "forbidden" in r.text or "role" in r.text


def test_reviewer_pages_hide_lead_links(world: World) -> None:
    client = world.client()
    login(client, "rita")
    page = client.get(f"/cases/{world.case_id('up-imp')}").text
    assert 'id="nav-audit"' not in page and "/artists/art-1" not in page
    lead = world.client()
    login(lead, "lee")
    page = lead.get(f"/cases/{world.case_id('up-imp')}").text
    assert 'id="nav-audit"' in page and 'href="/artists/art-1"' in page


def test_distributor_token_cannot_reach_reviewer_api(world: World) -> None:
    token = world.service.issue_api_token("dora", actor="ada")
    client = world.client()
    client.headers["Authorization"] = f"Bearer {token}"
    for method, path in GUARDED:
        if not path.startswith("/v1") or ROUTES[(method, path)] in (ANY_API, DISTRIBUTOR):
            continue
        r = client.request(method, concrete(world, path), json={})
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (method, path, r.status_code)


def test_every_page_post_refuses_missing_or_wrong_csrf(world: World) -> None:
    client = world.client()
    csrf = login(client, "ada")
    for method, path in PAGE_POSTS:
        url = concrete(world, path)
        for data in ({}, {"csrf_token": "wrong-" + csrf}):
            r = client.request(method, url, data=data)
            assert r.status_code == 403, (path, data, r.status_code)
            assert "security token" in r.text
    assert client.get("/").status_code == 200  # still signed in: the refusals did not end the session


def test_session_api_posts_need_the_csrf_header(world: World) -> None:
    client = world.client()
    login(client, "ada")
    for method, path in API_POSTS:
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            r = client.request(method, concrete(world, path), json={"lease_token": "x", "action": "dismiss",
                                                                      "reason": "r"}, headers=headers)
            assert r.status_code == 403 and r.json()["error"] == "csrf", (path, headers, r.status_code)


def test_login_form_needs_csrf(world: World) -> None:
    client = world.client()
    client.get("/login")
    r = client.post("/login", data={"username": "rita", "password": PASSWORD})
    assert r.status_code == 403
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": "nope"})
    assert r.status_code == 403
    assert client.get("/").status_code == 303


def test_wrong_password_then_right_one(world: World) -> None:
    client = world.client()
    csrf = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "rita", "password": "wrong password", "csrf_token": csrf})
    assert r.status_code == 401 and "Wrong username or password" in r.text
    r = client.post("/login", data={"username": "nobody", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 401
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": csrf,
                                    "next": "/queues/spam"})
    assert r.status_code == 303 and r.headers["location"] == "/queues/spam"
    assert client.get("/").status_code == 200


def test_sign_in_rotates_session_and_csrf(world: World) -> None:
    client = world.client()
    before = csrf_of(client.get("/login").text)
    cookie_before = client.cookies.get("tg_session")
    client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": before})
    after = csrf_of(client.get("/").text)
    assert after != before and client.cookies.get("tg_session") != cookie_before
    r = client.post("/queues/spam/claim", data={"csrf_token": before})  # the pre-login token is dead
    assert r.status_code == 403


def test_open_redirect_is_refused(world: World) -> None:
    client = world.client()
    csrf = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": csrf,
                                    "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_distributor_cannot_sign_in_to_web(world: World) -> None:
    client = world.client()
    csrf = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "dora", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 403 and "API" in r.text
    assert client.get("/").status_code == 303


def test_logout_ends_the_session(world: World) -> None:
    client = world.client()
    csrf = login(client, "rita")
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_signing_out_kills_copied_cookies_and_other_sessions(world: World) -> None:
    client, other = world.client(), world.client()
    csrf = login(client, "rita")
    login(other, "rita")  # the same reviewer on a second browser
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    thief = world.client()
    thief.cookies.update(copied)
    assert thief.get("/").status_code == 303, "a cookie copied before sign-out still works"
    assert other.get("/").status_code == 303, "sign-out did not end the user's other sessions"
    again = world.client()
    login(again, "rita")
    assert again.get("/").status_code == 200


def test_cookie_flags(tmp_path: Path) -> None:
    world = build_world(tmp_path, secure_cookies=True)
    client = TestClient(world.app, base_url="https://testserver", follow_redirects=False)
    csrf = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": csrf})
    header = r.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "secure", "max-age=43200", "path=/"):
        assert flag in header, header
    assert client.get("/").status_code == 200


def test_session_expires_after_12_hours(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import moderation.web.auth as auth

    client = world.client()
    login(client, "rita")
    start = world.service.now().timestamp()
    monkeypatch.setattr(auth, "now", lambda _request: start + 12 * 3600 + 5)
    assert client.get("/").status_code == 303


def test_security_headers(world: World) -> None:
    r = world.client().get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "cdn" not in r.text.lower() and "https://" not in r.text


def test_secret_key_from_env_or_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path / "home")
    monkeypatch.setenv("TRACKGUARD_SECRET_KEY", "from-env")
    assert load_secret_key(home) == "from-env"
    monkeypatch.delenv("TRACKGUARD_SECRET_KEY")
    first = load_secret_key(home)
    assert len(first) >= 32 and load_secret_key(home) == first
    assert (home.root / "secret_key").stat().st_mode & 0o777 == 0o600


def test_serve_builds_the_app(tg_home: Path, sqlite_url: str) -> None:
    from moderation.web.server import build_app
    from trackguard.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "9000", "--insecure-cookies", "--db-url", sqlite_url])
    assert args.func.__name__ == "_serve" and args.port == 9000 and args.insecure_cookies
    client = TestClient(build_app(sqlite_url, secure_cookies=False), follow_redirects=False)
    assert client.get("/login").status_code == 200 and client.get("/").status_code == 303
    assert (tg_home / "secret_key").exists()
