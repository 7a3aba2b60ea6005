"""`trackguard bench hook`: the upload API under an open-loop load on loopback.

A real `trackguard serve` process (uvicorn) and a load generator in this process:
requests are scheduled at a fixed rate and each latency is measured from its
*scheduled* start (so a server that falls behind is charged for the queueing,
not hidden by a generator that waits). Operations:

- ``register``: signed JSON registration (the signed-URL flow: ledger row, nonce,
  signed upload URL) — the target is p99 < 50 ms at 200 requests/s;
- ``status``: signed ``GET /v1/uploads/{id}``;
- ``floor``: an unsigned request refused at the door (401): the HTTP + framework cost
  with no signature check and no database, the baseline the others are compared to.

Each operation runs against one app process and against ``serve --workers 2`` (the
``--workers`` list), so the table shows what the second process buys on the same cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trackguard.bench.report import emit
from trackguard.hook_client import HookClient

Operation = Callable[[HookClient, int], int]


def _register(client: HookClient, i: int) -> int:
    manifest = {"upload_id": f"bench-{uuid.uuid4().hex[:12]}", "title": f"Track {i}", "artist_name": "Bench Artist",
                "uploader_id": f"up-{i % 50}", "uploaded_at": "2026-11-20T10:00:00Z"}
    return client.register(manifest)[0]


def _status(client: HookClient, i: int) -> int:
    return client.status(f"bench-missing-{i}")[0]  # signed, looked up, 404: the read path without a verdict


def _floor(client: HookClient, i: int) -> int:
    return client.request("GET", f"/v1/uploads/floor-{i}", signed=False)[0]


OPERATIONS: dict[str, tuple[Operation, set[int]]] = {
    "floor": (_floor, {401}), "status": (_status, {404}), "register": (_register, {201, 202})}


def run_load(base_url: str, key_id: str, secret: str, op: Operation, ok: set[int], rate: float, seconds: float,
             threads: int) -> dict[str, Any]:
    n = max(1, int(rate * seconds))
    local = threading.local()
    clients: list[HookClient] = []

    def client() -> HookClient:
        if not hasattr(local, "client"):
            local.client = HookClient(base_url, key_id, secret)
            clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    start = time.perf_counter() + 0.2

    def one(i: int) -> tuple[float, int]:
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        status = op(client(), i)
        return time.perf_counter() - scheduled, status

    with cf.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    for c in clients:
        c.close()
    lat = np.array([r[0] for r in results])
    good = sum(1 for r in results if r[1] in ok)
    return {"offered_per_s": rate, "requests": n, "accepted_per_s": round(good / elapsed, 1),
            "ok_share": round(good / n, 4), "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 2),
            "max_ms": round(float(lat.max()) * 1000, 2)}


def bench_hook(rates: list[float], seconds: float, threads: int, db_url: str | None, json_path: str | None,
               workers: list[int] | None = None) -> list[dict[str, Any]]:
    """Every operation at every rate, against `trackguard serve --workers W` for each W in ``workers``."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-hook-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        for count in workers or [1]:
            rows += _rows_for_workers(Path(tmp) / f"w{count}", url, count, rates, seconds, threads)
    floor = {(r["app_workers"], r["offered_per_s"]): r["p99_ms"] for r in rows if r["operation"] == "floor"}
    for r in rows:
        r["p99_vs_floor"] = round(r["p99_ms"] / max(floor[(r["app_workers"], r["offered_per_s"])], 1e-9), 2)
    met = [r["app_workers"] for r in rows if r["operation"] == "register" and r["offered_per_s"] == 200
           and r["p99_ms"] < 50 and r["ok_share"] == 1.0]
    extra = {"database": url.split(":")[0], "threads": threads, "seconds_per_rate": seconds,
             "target": "register p99 < 50 ms at 200 requests/s",
             "target_met_with_app_workers": met}
    emit("upload hook: open-loop load on loopback (latency from the scheduled start)", rows, json_path, extra)
    return rows


def _rows_for_workers(home: Path, url: str, workers: int, rates: list[float], seconds: float,
                      threads: int) -> list[dict[str, Any]]:
    from moderation.distributors import DistributorStore
    from trackguard.stack import LocalStack

    home.mkdir(parents=True)
    key = DistributorStore(url).add(f"bench-{uuid.uuid4().hex[:6]}", "Bench", rate_per_s=100_000, burst=100_000)
    stack = LocalStack(home, url, app_workers=workers)
    stack.emulator.start()  # registration publishes nothing, but the app wants a broker to talk to
    stack.start_app()
    rows = []
    try:
        for name, (op, ok) in OPERATIONS.items():
            run_load(stack.base_url, key.key_id, key.secret, op, ok, 20, 1.0, threads)  # warm-up
            for rate in rates:
                rows.append({"app_workers": workers, "operation": name,
                             **run_load(stack.base_url, key.key_id, key.secret, op, ok, rate, seconds, threads)})
    finally:
        stack.stop()
    return rows
