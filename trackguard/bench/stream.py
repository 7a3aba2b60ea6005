"""`trackguard bench stream`: seconds from "upload accepted" to "verdict available", through the real path.

Hook app → object store → Pub/Sub emulator → streaming worker (Beam, local runner)
→ verdict, all as separate processes on this machine (`trackguard.stack`). The
models are the ones under TRACKGUARD_HOME (`make demo` trains them: CPU tier).
Uploads are synthetic: corpus vocals tiled to the requested length, 44.1 kHz mono
WAV, each with a distinct upload id. Latency = verdicts.updated_at − hook_uploads.accepted_at
(both written by the server, same clock). Runs: a steady rate per track length
(cost vs input size), and a burst of N uploads posted at once (queueing).
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import sqlalchemy as sa

from trackguard.bench.report import emit
from trackguard.home import Home
from trackguard.hook_client import HookClient

SAMPLE_RATE = 44_100


def tiled_track(source: Path, seconds: float, seed: int) -> bytes:
    samples, sr = sf.read(source, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if sr != SAMPLE_RATE:
        idx = np.arange(0, len(mono), sr / SAMPLE_RATE)
        mono = np.interp(idx, np.arange(len(mono)), mono).astype(np.float32)
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(mono)))
    track = np.tile(mono, reps)[: int(seconds * SAMPLE_RATE)]
    track = track * (0.9 + 0.1 * np.random.default_rng(seed).random())  # distinct bytes per upload
    buf = io.BytesIO()
    sf.write(buf, track, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _readable(paths: list[Path]) -> list[Path]:
    """Clean sources only: the corpus also holds deliberately corrupt files (for the error path)."""
    out = []
    for path in paths:
        try:
            if sf.info(str(path)).duration >= 10:
                out.append(path)
        except RuntimeError:
            continue
    return out


def _manifest(i: int, distributor: str) -> dict[str, Any]:
    return {"upload_id": f"bs-{uuid.uuid4().hex[:10]}", "title": f"Bench Track {i}", "artist_name": f"Artist {i % 7}",
            "uploader_id": f"uploader-{i % 11}", "distributor_id": distributor,
            "uploaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _latencies(db_url: str, ids: list[str], timeout_s: float) -> tuple[list[float], int]:
    engine = sa.create_engine(db_url)
    query = sa.text("SELECT h.upload_id, h.accepted_at, v.updated_at FROM hook_uploads h "
                    "JOIN verdicts v ON v.upload_id = h.upload_id")
    deadline = time.monotonic() + timeout_s
    rows: dict[str, float] = {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            for uid, accepted, verdict in conn.execute(query):
                if uid in ids:
                    rows[uid] = (_ts(verdict) - _ts(accepted))
        if len(rows) == len(ids):
            break
        time.sleep(1.0)
    engine.dispose()
    return list(rows.values()), len(ids) - len(rows)


def _ts(value: Any) -> float:
    import datetime as dt

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


def _row(run: str, track_s: float, n: int, lat: list[float], missing: int, wall_s: float) -> dict[str, Any]:
    arr = np.array(lat) if lat else np.array([np.nan])
    return {"run": run, "track_s": track_s, "uploads": n, "verdicts": len(lat), "missing": missing,
            "p50_s": round(float(np.percentile(arr, 50)), 2), "p95_s": round(float(np.percentile(arr, 95)), 2),
            "p99_s": round(float(np.percentile(arr, 99)), 2), "max_s": round(float(np.max(arr)), 2),
            "tracks_per_s": round(len(lat) / wall_s, 3) if wall_s > 0 else None,
            "audio_rt_factor": round(len(lat) * track_s / wall_s, 1) if wall_s > 0 else None}


def bench_stream(track_s: str, steady: int, rate: float, burst: int, db_url: str | None,
                 json_path: str | None) -> list[dict[str, Any]]:
    from moderation.distributors import DistributorStore
    from trackguard.stack import LocalStack

    models = Home.from_env().models
    sources = _readable(sorted((Home.from_env().corpora).glob("*/audio/*.wav")))[:20]
    if not (models / "spam").exists() or not sources:
        raise FileNotFoundError(f"no trained models or demo corpus under {Home.from_env().root}: run `make demo` first")
    lengths = [float(x) for x in track_s.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-stream-") as tmp:
        home = Path(tmp)
        (home / "models").symlink_to(models.resolve())
        url = db_url or f"sqlite:///{home / 'bench.db'}"
        src_db = Home.from_env().root / "trackguard.db"
        if db_url is None and src_db.exists():
            shutil.copy(src_db, home / "bench.db")  # the enrolled voiceprints of the demo
        key = DistributorStore(url).add(f"bench-{uuid.uuid4().hex[:6]}", "Bench", rate_per_s=1000, burst=1000)
        with LocalStack(home, url, republish_after_s=600) as stack:
            client = HookClient(stack.base_url, key.key_id, key.secret, timeout_s=120)
            for seconds in lengths:
                audio = [tiled_track(sources[i % len(sources)], seconds, i) for i in range(min(steady, 10))]
                ids, start = [], time.perf_counter()
                for i in range(steady):
                    time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                    manifest = _manifest(i, key.distributor_id)
                    status, _ = client.upload(manifest, audio[i % len(audio)])
                    if status in (201, 202):
                        ids.append(manifest["upload_id"])
                lat, missing = _latencies(url, ids, timeout_s=300)
                rows.append(_row(f"steady {rate}/s", seconds, steady, lat, missing, time.perf_counter() - start))
            if burst:
                rows.append(_burst(stack.base_url, key, url, burst, max(lengths), sources))
    target = next((r for r in rows if r["run"].startswith("steady") and r["track_s"] == 180), None)
    extra = {"database": url.split(":")[0], "models": str(models), "data": "synthetic (demo corpus vocals, tiled)",
             "target": "steady 0.5 upload/s, 3-min tracks: p95 < 10 s",
             "target_met": None if target is None else bool(target["p95_s"] < 10 and target["missing"] == 0)}
    emit("stream: upload accepted → verdict available (hook → Pub/Sub emulator → Beam worker)", rows, json_path,
         extra)
    return rows


def _burst(base_url: str, key: Any, url: str, n: int, seconds: float, sources: list[Path]) -> dict[str, Any]:
    audio = [tiled_track(sources[i % len(sources)], seconds, 1000 + i) for i in range(10)]
    start = time.perf_counter()

    def post(i: int) -> str | None:
        client = HookClient(base_url, key.key_id, key.secret, timeout_s=300)
        manifest = _manifest(i, key.distributor_id)
        status, _ = client.upload(manifest, audio[i % len(audio)])
        client.close()
        return manifest["upload_id"] if status in (201, 202) else None

    with cf.ThreadPoolExecutor(4) as pool:
        ids = [u for u in pool.map(post, range(n)) if u]
    lat, missing = _latencies(url, ids, timeout_s=max(600.0, n * 5.0))
    return _row(f"burst {n}", seconds, n, lat, missing, time.perf_counter() - start)
