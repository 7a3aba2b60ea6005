"""Accounts on real SQLite and PostgreSQL: argon2id hashes, rehash, refusals, API tokens, the `users` commands."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from moderation import users
from moderation.review import ConflictError, InvalidUserError, NotFoundError, ReviewService, Role
from moderation.schema import api_tokens
from moderation.schema import users as users_table
from tests.review_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    cheap_argon2_fixture,
    clock_fixture,
    db_url_fixture,
    service_fixture,
)
from trackguard import cli


def _hash_of(service: ReviewService, username: str) -> str:
    with service.engine.connect() as conn:
        return str(conn.execute(select(users_table.c.password_hash).where(users_table.c.username == username))
                   .scalar_one())


def test_login_and_hash(service: ReviewService) -> None:
    alice = service.create_user("alice", PASSWORD, Role.REVIEWER)
    assert service.authenticate("alice", PASSWORD) == alice
    assert service.authenticate("alice", PASSWORD + "!") is None
    assert service.authenticate("nobody", PASSWORD) is None
    assert _hash_of(service, "alice").startswith("$argon2id$")
    assert PASSWORD not in _hash_of(service, "alice")
    assert service.get_user(alice.id) == alice and service.list_users() == [alice]


def test_hash_is_upgraded_when_parameters_change(service: ReviewService) -> None:
    service.create_user("alice", PASSWORD, Role.REVIEWER)
    cheap = _hash_of(service, "alice")
    stronger = users.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    with users.hasher(stronger):
        assert service.authenticate("alice", PASSWORD) is not None
    upgraded = _hash_of(service, "alice")
    assert upgraded != cheap and "m=2048,t=2,p=1" in upgraded
    with users.hasher(stronger):
        assert service.authenticate("alice", PASSWORD) is not None
        assert _hash_of(service, "alice") == upgraded  # no rehash when nothing changed


def test_account_rules(service: ReviewService) -> None:
    for bad in ("A", "x", "has space", "Upper", "é" * 3, "a" * 65):
        with pytest.raises(InvalidUserError):
            service.create_user(bad, PASSWORD, Role.REVIEWER)
    with pytest.raises(InvalidUserError):
        service.create_user("shorty", "1234567", Role.REVIEWER)
    with pytest.raises(InvalidUserError):
        service.create_user("dist", PASSWORD, Role.DISTRIBUTOR)  # needs a distributor id
    with pytest.raises(InvalidUserError):
        service.create_user("rev", PASSWORD, Role.REVIEWER, distributor_id="d1")
    service.create_user("ok.name-1_x", PASSWORD, Role.ADMIN)
    with pytest.raises(ConflictError):
        service.create_user("ok.name-1_x", PASSWORD, Role.REVIEWER)
    assert [u.username for u in service.list_users()] == ["ok.name-1_x"]


def test_tokens_and_deactivation(service: ReviewService) -> None:
    dist = service.create_user("dist-1", PASSWORD, Role.DISTRIBUTOR, distributor_id="d1")
    token = service.issue_api_token("dist-1", actor="admin")
    assert len(token) >= 40 and service.user_for_token(token) == dist
    assert service.user_for_token(token + "x") is None and service.user_for_token("") is None
    with service.engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_sha256, api_tokens.c.last_used_at)).one()
    assert stored.token_sha256 == users.token_digest(token) and stored.last_used_at is not None
    with pytest.raises(NotFoundError):
        service.issue_api_token("nobody", actor="admin")
    service.set_password("dist-1", "a new password", actor="admin")
    assert service.authenticate("dist-1", PASSWORD) is None and service.authenticate("dist-1", "a new password")
    service.deactivate_user("dist-1", actor="admin")
    assert service.user_for_token(token) is None and service.authenticate("dist-1", "a new password") is None
    assert service.get_user(dist.id) is None
    actions = [e.action for e in service.audit_log(subject_type="user", subject_id="dist-1")]
    assert actions == ["user_deactivate", "user_password", "user_token", "user_create"]


def test_users_commands(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "lena", "--role", "lead", "--password-stdin", "--db-url", db_url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "dd", "--role", "distributor", "--distributor-id", "d9", "--password-stdin",
                     "--db-url", db_url]) == 0
    assert cli.main(["users", "list", "--db-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "lena\tlead" in out and "dd\tdistributor\td9" in out
    assert cli.main(["users", "token", "dd", "--db-url", db_url]) == 0
    token = capsys.readouterr().out.strip()
    svc = ReviewService(db_url)
    try:
        found = svc.user_for_token(token)
        assert found is not None and found.username == "dd"
        assert svc.authenticate("lena", PASSWORD) is not None
    finally:
        svc.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["users", "add", "x1", "--role", "reviewer", "--password-stdin", "--db-url", db_url]) == 2
