"""`trackguard serve`: build the app for a database and run it under uvicorn."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from moderation.review import ReviewService
from moderation.web.app import create_app
from moderation.web.auth import load_secret_key
from trackguard.home import Home

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_app(db_url: str | None = None, *, secure_cookies: bool = True) -> FastAPI:
    home = Home.from_env().ensure()
    url = db_url or home.db_url
    return create_app(ReviewService(url), secret_key=load_secret_key(home), secure_cookies=secure_cookies, db_url=url)


def serve(host: str = "127.0.0.1", port: int = 8080, db_url: str | None = None, *, insecure_cookies: bool = False,
          verbose: bool = False) -> None:
    import uvicorn
    from sqlalchemy.engine import make_url

    app = build_app(db_url, secure_cookies=not insecure_cookies)
    shown_db = make_url(db_url or Home.from_env().db_url).render_as_string(hide_password=True)
    print(f"trackguard review app: http://{host}:{port}/  (database {shown_db})", flush=True)
    if not insecure_cookies:
        print("  session cookies are Secure: browsers send them over HTTPS only. Put the app behind TLS, or pass "
              "--insecure-cookies for plain http on localhost.", flush=True)
    elif host not in LOCAL_HOSTS:
        print(f"  warning: --insecure-cookies on {host}: sessions travel in clear text on the network.",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info" if verbose else "warning",
                proxy_headers=True, forwarded_allow_ips="127.0.0.1")
