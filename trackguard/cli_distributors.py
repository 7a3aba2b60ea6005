"""`trackguard distributors ...`: hook keys of distributors (add, list, rotate, revoke, enable, disable).

Secrets are printed once, at issue, on stdout (``--json`` for scripts); nothing
else ever shows them. Moderation code is imported inside the handlers, as in
`trackguard.cli`, so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from trackguard.home import Home

Handler = Callable[[argparse.Namespace], int]


def _store(a: argparse.Namespace) -> Any:
    from moderation.distributors import DistributorStore

    return DistributorStore(a.db_url or Home.from_env().db_url)


def _refusals(handler: Handler) -> Handler:
    """An unknown distributor or key is a message, not a traceback."""
    def run(a: argparse.Namespace) -> int:
        try:
            return handler(a)
        except LookupError as err:
            print(f"trackguard: error: {err.args[0] if err.args else err}", file=sys.stderr)
            return 2

    return run


def _print_key(key: Any, as_json: bool, headline: str) -> None:
    if as_json:
        print(json.dumps({"distributor_id": key.distributor_id, "key_id": key.key_id, "secret": key.secret}))
        return
    print(headline)
    print(f"key_id: {key.key_id}")
    print(f"secret: {key.secret}")
    print("(the secret is shown once: hand it to the distributor over a secure channel)", file=sys.stderr)


def _add(a: argparse.Namespace) -> int:
    key = _store(a).add(a.distributor_id, a.name, rate_per_s=a.rate_per_s, burst=a.burst, actor=a.actor)
    _print_key(key, a.json, f"added distributor {a.distributor_id} ({a.rate_per_s:g} requests/s, burst {a.burst})")
    return 0


def _key_state(k: dict[str, Any], at: dt.datetime) -> str:
    if k["revoked_at"] is not None:
        return "revoked"
    if k["expires_at"] is None:
        return "active"
    return "expired" if k["expires_at"] <= at else f"expires {k['expires_at'].isoformat(timespec='seconds')}"


def _list(a: argparse.Namespace) -> int:
    store = _store(a)
    at = dt.datetime.now(dt.UTC)
    for d in store.list():
        keys = ", ".join(f"{k['key_id']} ({_key_state(k, at)})" for k in store.keys(d.distributor_id))
        print(f"{d.distributor_id}\t{d.name}\t{d.rate_per_s:g}/s\tburst {d.burst}\t"
              f"{'active' if d.active else 'inactive'}\tkeys: {keys or '-'}")
    return 0


def _rotate(a: argparse.Namespace) -> int:
    key = _store(a).rotate(a.distributor_id, grace_s=a.grace_s, actor=a.actor)
    _print_key(key, a.json, f"new key for {a.distributor_id}; older keys stay valid for {a.grace_s} s")
    return 0


def _revoke(a: argparse.Namespace) -> int:
    _store(a).revoke(a.key_id, actor=a.actor)
    print(f"revoked {a.key_id}")
    return 0


def _set_active(active: bool) -> Handler:
    def run(a: argparse.Namespace) -> int:
        _store(a).set_active(a.distributor_id, active, actor=a.actor)
        print(f"{a.distributor_id}: {'enabled' if active else 'disabled'}")
        return 0

    return run


def _common(p: argparse.ArgumentParser, handler: Handler) -> None:
    p.add_argument("--actor", default="cli", help="who made the change (audited)")
    p.add_argument("--db-url", default=None, help="database URL (default: SQLite under TRACKGUARD_HOME)")
    p.set_defaults(func=_refusals(handler))


def add_parsers(sub: Any) -> None:
    """Register ``distributors`` and its subcommands on the top-level subparsers."""
    ds = sub.add_parser("distributors", help="distributors of the signed upload hooks and their keys"
                        ).add_subparsers(required=True)
    p = ds.add_parser("add", help="register a distributor and issue its first key (secret printed once)")
    p.add_argument("distributor_id")
    p.add_argument("--name", required=True)
    p.add_argument("--rate-per-s", type=float, default=20.0, help="sustained requests per second (per app process)")
    p.add_argument("--burst", type=int, default=40, help="requests allowed at once above the rate")
    p.add_argument("--json", action="store_true", help="print {distributor_id, key_id, secret} as JSON")
    _common(p, _add)
    p = ds.add_parser("list", help="distributors, limits and key states (no secrets)")
    p.add_argument("--db-url", default=None, help="database URL (default: SQLite under TRACKGUARD_HOME)")
    p.set_defaults(func=_list)
    p = ds.add_parser("rotate", help="issue a new key; older keys keep working for --grace-s seconds")
    p.add_argument("distributor_id")
    p.add_argument("--grace-s", type=int, default=86400)
    p.add_argument("--json", action="store_true", help="print {distributor_id, key_id, secret} as JSON")
    _common(p, _rotate)
    p = ds.add_parser("revoke", help="refuse a key from now on")
    p.add_argument("key_id")
    _common(p, _revoke)
    for name, active in (("enable", True), ("disable", False)):
        p = ds.add_parser(name, help=f"{name} a distributor (a disabled one gets 403 on every hook request)")
        p.add_argument("distributor_id")
        _common(p, _set_active(active))
