"""`trackguard serve --workers 2`: two app processes on one port share nonces, rate limits and uploads
(real processes on SQLite), and `trackguard bench hook` measures them."""

from __future__ import annotations

import concurrent.futures as cf
import json
import uuid
from pathlib import Path

import pytest

from moderation.distributors import DistributorStore
from trackguard.bench.hook import bench_hook
from trackguard.emulators import pubsub_emulator_available
from trackguard.hook_client import HookClient
from trackguard.stack import LocalStack


def _manifest(i: int) -> dict[str, str]:
    return {"upload_id": f"w-{i}-{uuid.uuid4().hex[:8]}", "title": f"Track {i}", "artist_name": "Someone",
            "uploader_id": "u1", "uploaded_at": "2026-11-20T10:00:00Z"}


def test_two_workers_enforce_one_rate_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    key = DistributorStore(url).add("d1", "D1", rate_per_s=0.01, burst=6)  # no refill during the test
    stack = LocalStack(tmp_path, url, app_workers=2)
    stack.start_app()
    try:
        def register(i: int) -> int:
            client = HookClient(stack.base_url, key.key_id, key.secret)  # a connection each: both workers serve
            try:
                return client.register(_manifest(i))[0]
            finally:
                client.close()

        with cf.ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(register, range(16)))
    finally:
        stack.stop()
    # per-process buckets would admit up to 12 (6 in each worker)
    assert statuses == [201] * 6 + [429] * 10, statuses


@pytest.mark.skipif(pubsub_emulator_available() is not None,
                    reason=f"Pub/Sub emulator unavailable: {pubsub_emulator_available()}")
def test_bench_hook_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "hook.json"
    rows = bench_hook([20.0], 0.5, 4, None, str(out), workers=[2])
    assert {r["operation"] for r in rows} == {"floor", "status", "register"}
    assert all(r["ok_share"] == 1.0 and r["app_workers"] == 2 for r in rows)
    figures = json.loads(out.read_text())
    assert {"p99_ms", "accepted_per_s", "p99_vs_floor"} <= set(figures["rows"][0])
