"""Shared pieces of the review-workflow tests: a settable clock, the service on both backends, people, cases.

Passwords of test accounts are hashed with real argon2id at cheap parameters
(`moderation.users.hasher`), so creating a few dozen accounts takes milliseconds.
Test modules import the ``*_fixture`` functions; pytest knows them by their short names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from moderation import users
from moderation.cases import CaseStore
from moderation.review import Claim, ReviewService, Role, User
from trackguard.contracts import Decision, Queue, Verdict

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse"


class Clock:
    """The service's notion of now; tests move it to expire leases or age cases past their SLA."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(name="cheap_argon2", autouse=True)
def cheap_argon2_fixture() -> Iterator[None]:
    with users.hasher(CHEAP):
        yield


@pytest.fixture(name="db_url", params=["sqlite", "postgres"])
def db_url_fixture(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


@pytest.fixture(name="service")
def service_fixture(db_url: str, clock: Clock) -> Iterator[ReviewService]:
    svc = ReviewService(db_url, clock=clock, lease_s=60)
    yield svc
    svc.close()  # before the PostgreSQL fixture drops the database


@dataclasses.dataclass(frozen=True)
class People:
    alice: User  # reviewer
    bob: User  # reviewer
    lena: User  # lead
    lars: User  # lead
    adam: User  # admin
    dist: User  # distributor d1
    other: User  # distributor d2


@pytest.fixture(name="people")
def people_fixture(service: ReviewService) -> People:
    def make(name: str, role: Role, distributor_id: str | None = None) -> User:
        return service.create_user(name, PASSWORD, role, distributor_id=distributor_id, actor="test")

    return People(make("alice", Role.REVIEWER), make("bob", Role.REVIEWER), make("lena", Role.LEAD),
                  make("lars", Role.LEAD), make("adam", Role.ADMIN), make("dist-1", Role.DISTRIBUTOR, "d1"),
                  make("dist-2", Role.DISTRIBUTOR, "d2"))


def flagged(uid: str, queue: Queue = Queue.SPAM, priority: int = 50, **fields: object) -> Verdict:
    return Verdict(uid, Decision.REVIEW, queue, priority, ["test"], **fields)  # type: ignore[arg-type]


def file_cases(url: str, *verdicts: Verdict, distributor: str = "d1") -> CaseStore:
    """File the verdicts as cases, one upsert each (so creation order is filing order), with manifest rows."""
    store = CaseStore(url)
    for v in verdicts:
        store.upsert_verdicts([v])
    store.upsert_uploads([{"upload_id": v.upload_id, "distributor_id": distributor, "uploader_id": "label-1",
                           "title": f"title {v.upload_id}", "uploaded_at": "2025-01-01T00:00:00Z"} for v in verdicts])
    return store


def claim(service: ReviewService, user: User, queue: str | None = None) -> Claim:
    got = service.claim_next(user, queue)
    assert got is not None, f"{user.username} found nothing to claim"
    return got
