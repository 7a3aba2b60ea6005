"""Demo sign-ins for the reviewer app: one user per role, with passwords kept under TRACKGUARD_HOME.

The passwords are random per installation (never a constant in the code) and kept
in ``$TRACKGUARD_HOME/demo-users.json`` (mode 0600), so re-running `make demo`
reuses them and prints the same sign-in.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from moderation.review import ReviewService, Role
from trackguard.home import Home

DEMO_USERS: dict[str, Role] = {
    "demo-reviewer": Role.REVIEWER,
    "demo-reviewer-2": Role.REVIEWER,
    "demo-lead": Role.LEAD,
    "demo-admin": Role.ADMIN,
}
DEMO_DISTRIBUTOR = ("demo-distributor", "dist-demo")  # username, distributor_id


def _load(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(passwords, fh, indent=2)


def ensure_demo_users(home: Home, service: ReviewService) -> dict[str, str]:
    """Create the demo users that are missing; returns username → password."""
    path = home.root / "demo-users.json"
    passwords = _load(path)
    existing = {u.username for u in service.list_users()}
    wanted: dict[str, tuple[Role, str | None]] = {name: (role, None) for name, role in DEMO_USERS.items()}
    wanted[DEMO_DISTRIBUTOR[0]] = (Role.DISTRIBUTOR, DEMO_DISTRIBUTOR[1])
    for name, (role, distributor_id) in wanted.items():
        if name in existing and name in passwords:
            continue
        passwords[name] = secrets.token_urlsafe(12)
        if name in existing:  # the password file was lost: set a new one
            service.set_password(name, passwords[name], actor="demo")
        else:
            service.create_user(name, passwords[name], role, distributor_id=distributor_id, actor="demo")
    _save(path, passwords)
    return passwords


def sign_in_help(home: Home, passwords: dict[str, str], port: int = 8080) -> str:
    lines = [
        "open the reviewer app:",
        f"  .venv/bin/trackguard serve --insecure-cookies --port {port}     # then http://127.0.0.1:{port}/",
        "sign in as:",
    ]
    for name, role in DEMO_USERS.items():
        lines.append(f"  {name:<17} {role.value:<9} password {passwords[name]}")
    lines.append(f"(passwords are kept in {home.root / 'demo-users.json'}; `--insecure-cookies` because it is "
                 "plain http on this machine)")
    return "\n".join(lines)
