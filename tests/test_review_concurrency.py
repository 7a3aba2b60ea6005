"""Many reviewers at once on real databases: no case is claimed or decided twice, none is lost, the audit verifies."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from moderation.review import Action, InvalidDecisionError, ReviewService, Role, StaleLeaseError, User
from moderation.schema import decisions
from tests.review_support import cheap_argon2_fixture, file_cases, flagged  # noqa: F401  (fixtures)
from trackguard.contracts import Queue

QUEUES = (Queue.SPAM, Queue.IMPERSONATION, Queue.DUPLICATES)


def drain(url: str, reviewers: int, cases: int) -> None:
    """File ``cases`` cases, let ``reviewers`` threads claim and decide until none is left, then check the books."""
    file_cases(url, *[flagged(f"u{i:04d}", QUEUES[i % 3], priority=i % 7) for i in range(cases)])
    service = ReviewService(url)
    try:
        people = [service.create_user(f"rev-{i:02d}", "a password", Role.REVIEWER) for i in range(reviewers)]
        claimed: dict[str, list[int]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(reviewers)

        def work(user: User) -> None:
            mine = claimed.setdefault(user.username, [])
            start.wait()
            try:
                while (c := service.claim_next(user)) is not None:
                    mine.append(c.case_id)
                    service.decide(user, c.case_id, c.lease_token, Action.DISMISS, "looks fine")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(u,)) for u in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        every_claim = [case for ids in claimed.values() for case in ids]
        assert len(every_claim) == len(set(every_claim)) == cases  # never claimed twice, none left out
        with service.engine.connect() as conn:
            per_case = Counter(conn.execute(select(decisions.c.case_id)).scalars())
        assert len(per_case) == cases and set(per_case.values()) == {1}  # every case decided exactly once
        assert service.list_cases() == []
        check = service.verify_audit()
        assert check.ok and check.entries == reviewers + 2 * cases  # user creations, claims, decisions
    finally:
        service.close()


@pytest.mark.postgres
def test_fifty_reviewers_on_postgres(pg_url: str) -> None:
    drain(pg_url, reviewers=50, cases=300)


def test_ten_reviewers_on_sqlite(sqlite_url: str) -> None:
    drain(sqlite_url, reviewers=10, cases=150)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_for_one_case_has_one_winner(backend: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    file_cases(url, flagged("only"))
    service = ReviewService(url)
    try:
        people = [service.create_user(f"rev-{i:02d}", "a password", Role.REVIEWER) for i in range(12)]
        case_id = service.case_id_for_upload("only")
        assert case_id is not None
        outcomes: list[str] = []
        start = threading.Barrier(len(people))

        def grab(user: User) -> None:
            start.wait()
            try:
                c = service.claim_case(user, case_id)
                service.decide(user, c.case_id, c.lease_token, Action.UPHOLD, "mine")
                outcomes.append("won")
            except (StaleLeaseError, InvalidDecisionError):  # held by the winner, or already decided by them
                outcomes.append("lost")

        threads = [threading.Thread(target=grab, args=(u,)) for u in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["lost"] * (len(people) - 1) + ["won"]
        assert service.verify_audit().ok
    finally:
        service.close()


def test_bench_queue_reports_its_checks(capsys: pytest.CaptureFixture[str]) -> None:
    from trackguard.bench.queue import bench_queue

    [row] = bench_queue([3], cases=40, backends=["sqlite"])
    assert row["cycles"] == 40 and row["double_claims"] == 0 and row["undecided"] == 0 and row["audit_ok"]
    assert row["cycles_per_s"] > 0 and row["claim_p99_ms"] >= row["claim_p50_ms"] > 0
    assert "cycles_per_s" in capsys.readouterr().out
