"""The streaming path end to end, with real processes: Pub/Sub emulator, hook app (`trackguard serve`),
streaming worker (`trackguard stream`, Beam on the local runner).

Signed uploads are posted through the reference client; verdicts must appear through
`GET /v1/uploads/{id}`. Then the faults: the worker is SIGKILLed mid-flight and
restarted, the app is restarted, the emulator is restarted under the worker (it
forgets topics and messages). After each, every accepted upload has exactly one
verdict and at most one case, and nothing was lost.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from moderation.distributors import DistributorStore, IssuedKey
from trackguard.emulators import pubsub_emulator_available
from trackguard.hook_client import HookClient
from trackguard.stack import LocalStack

pytestmark = pytest.mark.skipif(pubsub_emulator_available() is not None,
                                reason=f"Pub/Sub emulator unavailable: {pubsub_emulator_available()}")
VERDICT_TIMEOUT_S = 120


class Stack:
    def __init__(self, stack: LocalStack, key: IssuedKey, corpus: Path) -> None:
        self.stack, self.key = stack, key
        self.client = HookClient(stack.base_url, key.key_id, key.secret)
        rows = pd.read_parquet(corpus / "manifest.parquet").to_dict("records")
        labels = pd.read_parquet(corpus / "labels.parquet").set_index("upload_id")
        clean = [r for r in rows if pd.isna(labels.loc[r["upload_id"], "expected_error_code"])]
        self.sources = clean

    def post(self, n: int, offset: int = 0) -> list[str]:
        """n signed multipart uploads of corpus tracks under fresh upload ids; returns the accepted ids."""
        ids = []
        for row in self.sources[offset:offset + n]:
            manifest = _manifest(row, self.key.distributor_id)
            status, doc = self.client.upload(manifest, Path(row["audio_uri"].removeprefix("file://")).read_bytes())
            assert status in (201, 202), doc
            ids.append(manifest["upload_id"])
        return ids

    def wait_scored(self, ids: list[str], timeout_s: float = VERDICT_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        docs: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(docs) < len(ids) and time.monotonic() < deadline:
            for uid in set(ids) - set(docs):
                status, doc = self.client.status(uid)
                assert status == 200, doc
                if doc["status"] == "scored":
                    docs[uid] = doc
            time.sleep(0.5)
        missing = sorted(set(ids) - set(docs))
        assert not missing, f"no verdict after {timeout_s} s for {missing}; see {self.stack.home}/worker.log"
        return docs

    def counts(self, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        engine = sa.create_engine(self.stack.db_url)
        with engine.connect() as conn:
            verdicts = dict(conn.execute(sa.text(
                "SELECT upload_id, COUNT(*) FROM verdicts GROUP BY upload_id")).fetchall())
            cases = dict(conn.execute(sa.text("SELECT upload_id, COUNT(*) FROM cases GROUP BY upload_id")).fetchall())
        engine.dispose()
        return {u: verdicts.get(u, 0) for u in ids}, {u: cases.get(u, 0) for u in ids}


def _manifest(row: dict[str, Any], distributor_id: str) -> dict[str, Any]:
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "audio_uri"}
    out = {k: v for k, v in out.items() if v is not None and not (isinstance(v, float) and v != v)}
    return {**out, "upload_id": f"{row['upload_id']}-{uuid.uuid4().hex[:6]}", "distributor_id": distributor_id}


@pytest.fixture(scope="module")
def stack(trained_home: Path, small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stream-home")
    (home / "models").symlink_to(trained_home / "models")
    shutil.copy(trained_home / "enrolled.db", home / "stream.db")
    db_url = f"sqlite:///{home / 'stream.db'}"
    key = DistributorStore(db_url).add("dist-e2e", "E2E Distribution")
    with LocalStack(home, db_url, republish_after_s=8.0) as local:
        yield Stack(local, key, small_corpus)


def test_signed_uploads_get_their_verdicts(stack: Stack) -> None:
    ids = stack.post(4)
    docs = stack.wait_scored(ids)
    for doc in docs.values():
        verdict = doc["verdict"]
        assert verdict["decision"] in ("pass", "review", "block")
        assert verdict["voice_similarity"] is None  # biometric: never shown to distributors
        assert {m["slot"] for m in verdict["model_versions"]} == {"detector", "verifier", "spam"}
    verdicts, cases = stack.counts(ids)
    assert set(verdicts.values()) == {1}
    assert all(c <= 1 for c in cases.values())
    flagged = [u for u, d in docs.items() if d["verdict"]["queue"]]
    assert all(cases[u] == 1 for u in flagged)


def test_redelivery_returns_the_same_status_and_no_second_case(stack: Stack) -> None:
    ids = stack.post(1, offset=4)
    first = stack.wait_scored(ids)[ids[0]]
    row = stack.sources[4]
    manifest = {**_manifest(row, stack.key.distributor_id), "upload_id": ids[0]}
    status, doc = stack.client.upload(manifest, Path(row["audio_uri"].removeprefix("file://")).read_bytes())
    assert status == 200 and doc["status"] == "scored" and doc["verdict"] == first["verdict"]
    assert stack.counts(ids)[0] == {ids[0]: 1}


def test_worker_killed_mid_flight_then_restarted_loses_nothing(stack: Stack) -> None:
    ids = stack.post(5, offset=5)
    stack.stack.kill_worker()  # events were read (and, on the local runner, acked) or are still queued
    ids += stack.post(2, offset=10)  # accepted while no worker runs
    stack.stack.start_worker()
    stack.wait_scored(ids)
    verdicts, cases = stack.counts(ids)
    assert set(verdicts.values()) == {1}, verdicts
    assert all(c <= 1 for c in cases.values()), cases


def test_app_restart_and_emulator_restart_lose_nothing(stack: Stack) -> None:
    ids = stack.post(2, offset=12)
    stack.stack.restart_app()
    ids += stack.post(2, offset=14)
    stack.stack.emulator.restart()  # Google's emulator keeps nothing: topics, subscription and messages are gone
    ids += stack.post(2, offset=16)  # publishing fails now; the outbox keeps them
    stack.wait_scored(ids, timeout_s=180)
    verdicts, cases = stack.counts(ids)
    assert set(verdicts.values()) == {1}, verdicts
    assert all(c <= 1 for c in cases.values()), cases
