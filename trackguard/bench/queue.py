"""`trackguard bench queue`: claim + decide throughput of the review queue under concurrent reviewers.

For each backend and reviewer count, a fresh database (a temporary SQLite file, or
a temporary PostgreSQL database created and dropped on the server) is filled with
N open cases (synthetic verdicts spread over the queues and priorities), and R
reviewer threads each loop ``claim_next`` → ``decide(dismiss, "bench")`` through
`ReviewService` until the queue is empty. Reported: cycles/s over the wall time of
the loop, claim and decide latency percentiles, and correctness checked from the
database afterwards: every case decided exactly once (``double_claims`` counts
cases with more than one decision, ``undecided`` those with none) and the audit
chain verifies. Planner statistics are refreshed (``ANALYZE``) after the fill, as
autovacuum keeps them in a running system. Reviewer accounts are throwaway, so their passwords are hashed with
cheap argon2id parameters (account creation is not what is measured).
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from argon2 import PasswordHasher
from sqlalchemy import create_engine, func, select, text

from trackguard.bench.report import emit

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
QUEUES = ("impersonation", "profile-mismatch", "undisclosed-ai", "spam", "duplicates", "errors")


def _fill(url: str, n: int, seed: int = 0) -> None:
    from moderation.cases import CaseStore
    from trackguard.contracts import Decision, Queue, Verdict

    rng = random.Random(seed)
    verdicts = [Verdict(f"bench-{i:06d}", Decision.REVIEW, Queue(rng.choice(QUEUES)), rng.choice((10, 50, 100)),
                        ["bench"], spam_score=rng.random()) for i in range(n)]
    store = CaseStore(url)
    for i in range(0, n, 500):
        store.upsert_verdicts(verdicts[i:i + 500])
    with store.engine.begin() as conn:  # planner statistics, as autovacuum would have them in a running system
        conn.execute(text("ANALYZE"))


def _reviewers(service: Any, r: int) -> list[Any]:
    from moderation.review import Role
    from moderation.users import hasher

    with hasher(BENCH_HASHER):
        return [service.create_user(f"bench-reviewer-{i:03d}", "bench-password", Role.REVIEWER) for i in range(r)]


def _loop(service: Any, reviewer: Any, start: threading.Barrier, out: dict[str, Any]) -> None:
    from moderation.review import Action

    claims: list[float] = []
    decides: list[float] = []
    start.wait()
    try:
        while True:
            t0 = time.perf_counter()
            claim = service.claim_next(reviewer)
            t1 = time.perf_counter()
            claims.append(t1 - t0)
            if claim is None:
                break
            service.decide(reviewer, claim.case_id, claim.lease_token, Action.DISMISS, "bench")
            decides.append(time.perf_counter() - t1)
    except Exception as exc:  # reported in the row; the other reviewers carry on
        out.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
    out.setdefault("claims", []).extend(claims)
    out.setdefault("decides", []).extend(decides)


def _checks(url: str, n: int) -> dict[str, Any]:
    from moderation.audit import verify
    from moderation.schema import decisions

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            per_case = select(decisions.c.case_id, func.count().label("n")).group_by(decisions.c.case_id).subquery()
            double = conn.execute(select(func.count()).select_from(per_case).where(per_case.c.n > 1)).scalar_one()
            decided = conn.execute(select(func.count()).select_from(per_case)).scalar_one()
    finally:
        engine.dispose()
    check = verify(url)
    return {"double_claims": int(double), "undecided": n - int(decided), "audit_ok": check.ok,
            "audit_entries": check.entries}


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def run_once(url: str, backend: str, reviewers: int, n: int) -> dict[str, Any]:
    """Fill ``url`` with ``n`` cases and drain them with ``reviewers`` threads; one result row."""
    from moderation.service import ReviewService

    _fill(url, n)
    service = ReviewService(url)
    people = _reviewers(service, reviewers)
    start = threading.Barrier(reviewers + 1)
    out: dict[str, Any] = {}
    threads = [threading.Thread(target=_loop, args=(service, p, start, out)) for p in people]
    for t in threads:
        t.start()
    start.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    service.close()
    cycles = len(out.get("decides", []))
    row = {"backend": backend, "reviewers": reviewers, "cases": n, "cycles": cycles, "wall_s": wall,
           "cycles_per_s": cycles / wall if wall > 0 else float("nan"), "claim_p50_ms": _ms(out["claims"], 50),
           "claim_p99_ms": _ms(out["claims"], 99), "decide_p50_ms": _ms(out["decides"], 50),
           "decide_p99_ms": _ms(out["decides"], 99), "client_cpu_ms_per_cycle": 1000 * cpu / max(cycles, 1),
           **_checks(url, n)}
    row["errors"] = len(out.get("errors", []))
    if out.get("errors"):
        print(f"{backend} × {reviewers}: first error: {out['errors'][0]}")
    return row


def _sqlite(reviewers: int, n: int) -> dict[str, Any]:
    from moderation.txn import dispose_review_engine
    from trackguard.sql import dispose_engine

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench-queue.db'}"
        try:
            return run_once(url, "sqlite", reviewers, n)
        finally:
            dispose_review_engine(url)
            dispose_engine(url)


def _postgres(admin_url: str, reviewers: int, n: int) -> dict[str, Any]:
    from moderation.txn import dispose_review_engine
    from trackguard.sql import dispose_engine

    name = f"tg_bench_queue_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        return run_once(url, "postgres", reviewers, n)
    finally:
        dispose_review_engine(url)
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_queue(reviewers: Sequence[int], cases: int = 2000, backends: Sequence[str] = ("sqlite", "postgres"),
                pg_url: str | None = None, json_path: str | None = None) -> list[dict[str, Any]]:
    """Every backend × reviewer count; prints the table (and writes ``json_path``); returns the rows."""
    rows = []
    for backend in backends:
        for r in reviewers:
            if backend == "sqlite":
                rows.append(_sqlite(r, cases))
            elif backend == "postgres":
                rows.append(_postgres(pg_url or DEFAULT_PG_URL, r, cases))
            else:
                raise ValueError(f"unknown backend {backend!r} (sqlite, postgres)")
    extra = {"data": f"{cases} synthetic open cases per run over {len(QUEUES)} queues, priorities 10/50/100; each "
                     "reviewer thread loops claim_next → decide(dismiss) through ReviewService until empty",
             "checks": "double_claims = cases decided more than once, undecided = cases never decided (both must be "
                       "0); audit_ok = the hash chain verifies"}
    emit("bench queue (claim + decide cycles under concurrent reviewers)", rows, json_path, extra)
    return rows
