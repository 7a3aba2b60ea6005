"""Per-distributor rate limits shared by every app process: GCRA over one row per distributor.

The generic cell rate algorithm is the token bucket kept as a single number, the
*theoretical arrival time* (``tat``, Unix seconds): each admitted request moves it
``1/rate`` later, and a request is refused while that would put it more than
``burst/rate`` ahead of now. One float per distributor, so the state fits a table
row (``rate_buckets``, migration 0008) and `take` runs inside the transaction that
records the request's nonce (`moderation.distributors.DistributorStore.admit`):
``serve --workers N`` and several app instances on one database enforce one limit,
not N. The row is read ``FOR UPDATE`` (PostgreSQL) or under SQLite's single writer.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Float, String, Table, bindparam, insert, select, update

from moderation.db import Base

# Mirrors migration 0008 (on Base.metadata so that autogenerate sees no difference).
rate_buckets = Table(
    "rate_buckets", Base.metadata,
    Column("distributor_id", String(128), primary_key=True),
    Column("tat", Float, nullable=False),  # theoretical arrival time, Unix seconds
)
_TAT = (select(rate_buckets.c.tat).where(rate_buckets.c.distributor_id == bindparam("distributor_id"))
        .with_for_update())
_SET = update(rate_buckets).where(rate_buckets.c.distributor_id == bindparam("key"))  # SET tat from the parameters
_NEW = insert(rate_buckets)


def gcra(tat: float | None, now: float, rate_per_s: float, burst: int) -> tuple[float | None, float]:
    """(new tat, 0.0) when a request at ``now`` is admitted; (None, seconds until it would be) when not.

    ``tat`` None: a distributor never seen (a full bucket). A clock that went
    backwards refills nothing: the stored ``tat`` is never moved earlier.
    """
    if not rate_per_s > 0 or burst < 1:
        raise ValueError("rate_per_s must be > 0 and burst >= 1")
    interval = 1.0 / rate_per_s
    new_tat = max(tat if tat is not None else now, now) + interval
    ahead = new_tat - now - burst * interval  # > 0: the bucket has no whole token
    if ahead > 1e-9:
        return None, ahead
    return new_tat, 0.0


def take(conn: Connection, distributor_id: str, rate_per_s: float, burst: int, now: float) -> float:
    """Take one token in the caller's write transaction: 0.0, or the seconds to wait (nothing taken)."""
    tat = conn.execute(_TAT, {"distributor_id": distributor_id}).scalar()
    new_tat, wait = gcra(tat, now, rate_per_s, burst)
    if new_tat is None:
        return wait
    if tat is None:  # (`add_bucket` makes the row with the distributor; this is for rows lost some other way)
        conn.execute(_NEW, {"distributor_id": distributor_id, "tat": new_tat})
    else:
        conn.execute(_SET, {"key": distributor_id, "tat": new_tat})
    return 0.0


def add_bucket(conn: Connection, distributor_id: str) -> None:
    """A full bucket for a new distributor (so that `take` always finds a row to lock)."""
    conn.execute(_NEW, {"distributor_id": distributor_id, "tat": 0.0})
