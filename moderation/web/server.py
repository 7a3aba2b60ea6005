"""`trackguard serve`: build the app for a database and run it under uvicorn."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import sys
from typing import Any

from fastapi import FastAPI

from moderation.distributors import DistributorStore
from moderation.hooks import HookService
from moderation.review import ReviewService
from moderation.web.app import create_app
from moderation.web.auth import load_secret_key
from moderation.web.hook_auth import HookAuth
from pipelines.events import EventPublisher, PubSubPublisher
from trackguard.home import Home
from trackguard.objectstore import open_store

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_app(db_url: str | None = None, *, secure_cookies: bool = True, hooks: bool = True,
              object_store: str | None = None, pubsub_project: str | None = None) -> FastAPI:
    """The one app; ``hooks`` switches the distributor upload API on (its own role, same process)."""
    home = Home.from_env().ensure()
    url = db_url or home.db_url
    secret = load_secret_key(home)
    upload_api = build_hooks(url, home, secret, object_store, pubsub_project) if hooks else None
    return create_app(ReviewService(url), secret_key=secret, secure_cookies=secure_cookies, db_url=url,
                      hooks=upload_api)


def build_hooks(db_url: str, home: Home, secret: str, object_store: str | None,
                pubsub_project: str | None) -> tuple[HookService, HookAuth]:
    """The upload API's parts: object store (local dir by default), publisher (None: the relay publishes)."""
    store = open_store(object_store or os.environ.get("TRACKGUARD_OBJECT_STORE") or str(home.root / "objects"))
    url_secret = hmac.new(secret.encode(), b"trackguard upload urls", hashlib.sha256).hexdigest()
    publisher = event_publisher(home, pubsub_project)
    return (HookService(db_url, store, publisher, url_secret=url_secret), HookAuth(DistributorStore(db_url)))


def event_publisher(home: Home, project: str | None) -> EventPublisher | None:
    """Pub/Sub as configured: a named project, ``PUBSUB_EMULATOR_HOST``, or the emulator `trackguard stream` runs."""
    from trackguard.stream_cmd import LOCAL_PROJECT, running_emulator

    if not project and not os.environ.get("PUBSUB_EMULATOR_HOST"):
        host = running_emulator(home)
        if host is None:
            print("  upload API: no Pub/Sub configured yet; accepted uploads wait in the outbox until "
                  "`trackguard stream` relays them", flush=True)
            return None
        os.environ["PUBSUB_EMULATOR_HOST"] = host
    return PubSubPublisher(project or os.environ.get("TRACKGUARD_PUBSUB_PROJECT") or LOCAL_PROJECT)


APP_CONFIG_ENV = "TRACKGUARD_SERVE_CONFIG"  # build_app's arguments for each worker process, as JSON


def app_from_env() -> FastAPI:
    """uvicorn's app factory in each worker process of ``serve --workers N`` (arguments from `APP_CONFIG_ENV`)."""
    app = build_app(**json.loads(os.environ[APP_CONFIG_ENV]))
    freeze_heap()
    return app


def freeze_heap() -> None:
    """Move everything built at start-up (imports, models of the app) out of the garbage collector's view.

    Otherwise each full collection walks the whole start-up heap while holding the
    GIL: pauses of tens of milliseconds, seen as the p99 tail of `trackguard bench hook`.
    """
    gc.collect()
    gc.freeze()


def serve(host: str = "127.0.0.1", port: int = 8080, db_url: str | None = None, *, insecure_cookies: bool = False,
          verbose: bool = False, hooks: bool = True, object_store: str | None = None,
          pubsub_project: str | None = None, workers: int = 1) -> None:
    """Run the app; ``workers`` > 1: that many processes on one socket (uvicorn's supervisor).

    Worker processes share nothing in memory: nonces, rate-limit buckets and the
    ledger are in the database, so limits and replay checks hold across them.
    """
    import uvicorn
    from sqlalchemy.engine import make_url

    config: dict[str, Any] = {"db_url": db_url, "secure_cookies": not insecure_cookies, "hooks": hooks,
                              "object_store": object_store, "pubsub_project": pubsub_project}
    app = build_app(**config)  # also in the parent when forking workers: it migrates the database once, up front
    shown_db = make_url(db_url or Home.from_env().db_url).render_as_string(hide_password=True)
    print(f"trackguard review app: http://{host}:{port}/  (database {shown_db})", flush=True)
    if not insecure_cookies:
        print("  session cookies are Secure: browsers send them over HTTPS only. Put the app behind TLS, or pass "
              "--insecure-cookies for plain http on localhost.", flush=True)
    elif host not in LOCAL_HOSTS:
        print(f"  warning: --insecure-cookies on {host}: sessions travel in clear text on the network.",
              file=sys.stderr, flush=True)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info" if verbose else "warning",
                               "proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"}
    if workers <= 1:
        freeze_heap()
        uvicorn.run(app, **options)
        return
    os.environ[APP_CONFIG_ENV] = json.dumps(config)  # the workers inherit the environment (and an emulator found)
    print(f"  {workers} worker processes", flush=True)
    uvicorn.run("moderation.web.server:app_from_env", factory=True, workers=workers, **options)
