"""Distributors and their hook keys (`moderation.distributors`), on SQLite and PostgreSQL, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from moderation import audit
from moderation.db import Base
from moderation.distributors import Distributor, DistributorStore, NonceReplayed
from tests.review_support import Clock, db_url_fixture  # noqa: F401  (fixtures)
from trackguard import cli

OURS = {"distributors", "distributor_keys", "request_nonces"}


@pytest.fixture(name="store")
def store_fixture(db_url: str, clock: Clock) -> Iterator[DistributorStore]:
    s = DistributorStore(db_url, clock=clock)
    yield s
    s.close()


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


def test_add_get_list(store: DistributorStore) -> None:
    key = store.add("d1", "Distro One", rate_per_s=5, burst=7)
    store.add("d0", "Distro Zero")
    assert key.distributor_id == "d1" and key.key_id.startswith("tgk_") and len(key.key_id) == 20
    assert len(key.secret) >= 40 and key.secret not in repr(key)
    d1 = store.get("d1")
    assert d1 is not None and (d1.name, d1.rate_per_s, d1.burst, d1.active) == ("Distro One", 5.0, 7, True)
    assert store.get("nobody") is None
    assert [d.distributor_id for d in store.list()] == ["d0", "d1"]
    with pytest.raises(ValueError, match="exists"):
        store.add("d1", "again")
    for bad in ("", "has space", "x" * 129):
        with pytest.raises(ValueError):
            store.add(bad, "bad id")
    with pytest.raises(ValueError):
        store.add("d2", "no rate", rate_per_s=0)


def test_key_lookup_and_revoke(store: DistributorStore, clock: Clock) -> None:
    key = store.add("d1", "Distro One")
    found = store.key(key.key_id, clock())
    assert found is not None and found[0].distributor_id == "d1" and found[1] == key.secret
    assert store.key("tgk_0000000000000000", clock()) is None
    store.revoke(key.key_id)
    assert store.key(key.key_id, clock()) is None  # at once, not after a grace period
    store.revoke(key.key_id)  # idempotent
    with pytest.raises(LookupError):
        store.revoke("tgk_nope")
    with pytest.raises(LookupError):
        store.callback_key("d1")  # no usable key left


def test_rotation_keeps_old_keys_for_the_grace_period(store: DistributorStore, clock: Clock) -> None:
    old = store.add("d1", "Distro One")
    new = store.rotate("d1", grace_s=3600)
    assert new.key_id != old.key_id and new.secret != old.secret
    assert store.callback_key("d1") == new
    assert store.key(old.key_id, clock()) is not None and store.key(new.key_id, clock()) is not None
    later = clock() + dt.timedelta(seconds=3601)
    assert store.key(old.key_id, later) is None
    assert store.key(new.key_id, later) is not None
    clock.advance(3601)
    assert store.callback_key("d1") == new
    with pytest.raises(LookupError):
        store.rotate("nobody")


def test_a_second_rotation_does_not_extend_an_earlier_grace(store: DistributorStore, clock: Clock) -> None:
    first = store.add("d1", "Distro One")
    store.rotate("d1", grace_s=100)
    third = store.rotate("d1", grace_s=10_000, now=clock() + dt.timedelta(seconds=50))
    at_150 = clock() + dt.timedelta(seconds=150)
    assert store.key(first.key_id, at_150) is None  # still expires at 100 s
    assert store.key(third.key_id, at_150) is not None
    states = {k["key_id"]: k for k in store.keys("d1")}
    assert len(states) == 3 and states[third.key_id]["expires_at"] is None


def test_inactive_distributor_keys_still_resolve(store: DistributorStore, clock: Clock) -> None:
    """The hook tells a suspended distributor (403) from an unknown key (401), so the lookup still finds it."""
    key = store.add("d1", "Distro One")
    store.set_active("d1", False)
    found = store.key(key.key_id, clock())
    assert found is not None and found[0].active is False
    store.set_active("d1", True)
    assert store.get("d1").active  # type: ignore[union-attr]
    with pytest.raises(LookupError):
        store.set_active("nobody", False)


def fresh(store: DistributorStore, key_id: str, nonce: str, at: dt.datetime) -> bool:
    """`admit`'s nonce check: True for a nonce not used before with the key (a limit never reached here)."""
    owner = Distributor("nonce-test", "Nonce test", rate_per_s=1e6, burst=10**6, active=True)
    try:
        assert store.admit(key_id, nonce, owner, at) == 0.0
    except NonceReplayed:
        return False
    return True


def test_nonces_are_remembered_per_key_and_purged(store: DistributorStore, clock: Clock) -> None:
    t0 = clock()
    assert fresh(store, "tgk_a", "n1", t0)
    assert not fresh(store, "tgk_a", "n1", t0 + dt.timedelta(seconds=1))
    assert fresh(store, "tgk_b", "n1", t0)  # another key may use the same nonce
    assert fresh(store, "tgk_a", "n2", t0 + dt.timedelta(seconds=10))
    assert store.purge_nonces(t0 + dt.timedelta(seconds=5)) == 2
    assert fresh(store, "tgk_a", "n1", t0 + dt.timedelta(seconds=20))  # forgotten after the purge
    assert not fresh(store, "tgk_a", "n2", t0 + dt.timedelta(seconds=20))


def test_nonce_race_has_exactly_one_winner(store: DistributorStore, clock: Clock) -> None:
    threads_per_nonce, rounds = 4, 10
    for r in range(rounds):
        start = threading.Barrier(threads_per_nonce)
        results: list[bool] = []
        errors: list[BaseException] = []

        def attempt(nonce: str = f"race-{r}", start: threading.Barrier = start, results: list[bool] = results,
                    errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                results.append(fresh(store, "tgk_race", nonce, clock()))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=attempt) for _ in range(threads_per_nonce)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results) == [False] * (threads_per_nonce - 1) + [True]


def test_admin_actions_are_audited_without_secrets(store: DistributorStore, db_url: str) -> None:
    k1 = store.add("d1", "Distro One", actor="ops-alice")
    k2 = store.rotate("d1", grace_s=60)
    store.revoke(k1.key_id, actor="ops-bob")
    store.set_active("d1", False)
    with store.engine.connect() as conn:
        entries = audit.entries(conn, subject_type="distributor", subject_id="d1", newest_first=False)
    assert [(e.actor, e.action) for e in entries] == [
        ("ops-alice", "distributor_add"), ("cli", "distributor_key_rotate"), ("ops-bob", "distributor_key_revoke"),
        ("cli", "distributor_deactivate")]
    assert entries[1].details["key_id"] == k2.key_id and entries[1].details["old_key_ids"] == [k1.key_id]
    dumped = json.dumps([e.details for e in entries])
    assert k1.secret not in dumped and k2.secret not in dumped and "secret" not in dumped
    assert audit.verify(db_url).ok


def test_migration_matches_the_table_definitions(store: DistributorStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diff if any(name in repr(d) for name in OURS)]
    assert ours == [], ours


def test_cli_add_list_rotate_revoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["distributors", "add", "acme", "--name", "ACME Music", "--rate-per-s", "3", "--burst", "5",
                     "--db-url", db_url]) == 0
    out = capsys.readouterr()
    lines = dict(line.split(": ", 1) for line in out.out.splitlines()[1:])
    first_key, secret = lines["key_id"], lines["secret"]
    assert "shown once" in out.err
    store = DistributorStore(db_url)
    found = store.key(first_key, dt.datetime.now(dt.UTC))
    assert found is not None and found[1] == secret and found[0].rate_per_s == 3.0 and found[0].burst == 5

    assert cli.main(["distributors", "rotate", "acme", "--grace-s", "60", "--json", "--db-url", db_url]) == 0
    new = json.loads(capsys.readouterr().out)
    assert new["distributor_id"] == "acme" and new["key_id"] != first_key
    assert store.callback_key("acme").secret == new["secret"]

    assert cli.main(["distributors", "revoke", first_key, "--db-url", db_url]) == 0
    assert store.key(first_key, dt.datetime.now(dt.UTC)) is None

    assert cli.main(["distributors", "list", "--db-url", db_url]) == 0
    listing = capsys.readouterr().out
    assert "acme\tACME Music\t3/s\tburst 5\tactive" in listing
    assert f"{first_key} (revoked)" in listing and f"{new['key_id']} (active)" in listing
    assert secret not in listing and new["secret"] not in listing

    assert cli.main(["distributors", "disable", "acme", "--db-url", db_url]) == 0
    assert store.get("acme").active is False  # type: ignore[union-attr]
    assert cli.main(["distributors", "revoke", "tgk_missing", "--db-url", db_url]) == 2
    assert "no key" in capsys.readouterr().err
    assert cli.main(["distributors", "add", "acme", "--name", "dup", "--db-url", db_url]) == 2
    store.close()
