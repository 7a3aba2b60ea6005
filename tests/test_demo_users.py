"""The demo's sign-ins: created once, kept private, reused on re-runs, and they really sign in."""

from __future__ import annotations

import stat
from pathlib import Path

from moderation.review import ReviewService, Role
from trackguard.demo_users import DEMO_USERS, ensure_demo_users, sign_in_help
from trackguard.home import Home


def test_demo_users_are_idempotent_and_sign_in(tg_home: Path, sqlite_url: str) -> None:
    home = Home.from_env().ensure()
    service = ReviewService(sqlite_url)
    first = ensure_demo_users(home, service)
    again = ensure_demo_users(home, service)
    assert first == again
    assert len(service.list_users()) == len(DEMO_USERS) + 1  # plus the API-only distributor
    reviewer = service.authenticate("demo-reviewer", first["demo-reviewer"])
    assert reviewer is not None and reviewer.role is Role.REVIEWER
    assert service.authenticate("demo-reviewer", first["demo-lead"]) is None
    mode = stat.S_IMODE((home.root / "demo-users.json").stat().st_mode)
    assert mode == 0o600
    assert first["demo-reviewer"] in sign_in_help(home, first)


def test_lost_password_file_resets_passwords(tg_home: Path, sqlite_url: str) -> None:
    home = Home.from_env().ensure()
    service = ReviewService(sqlite_url)
    old = ensure_demo_users(home, service)
    (home.root / "demo-users.json").unlink()
    new = ensure_demo_users(home, service)
    assert service.authenticate("demo-lead", new["demo-lead"]) is not None
    assert service.authenticate("demo-lead", old["demo-lead"]) is None
