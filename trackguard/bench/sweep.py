"""`trackguard bench sweep`: per-stage and end-to-end throughput against a decode-only floor.

Data: the valid uploads of the synthetic demo corpus (medium, seed 7), drawn
with replacement up to N tracks under fresh upload ids (the audio files are
shared). For each N, in one run: decode only (the floor), featurize (decode +
vocal windows + stats + fingerprint), duplicate matching, each scorer on pre-featurized tracks in batches, and
the whole Beam sweep end to end into a scratch database.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from trackguard.bench.report import emit
from trackguard.home import Home


def _manifest(corpus: Path, n: int, out: Path) -> Path:
    manifest = pd.read_parquet(corpus / "manifest.parquet")
    labels = pd.read_parquet(corpus / "labels.parquet")
    valid = manifest[manifest["upload_id"].isin(labels[labels["expected_error_code"].isna()]["upload_id"])]
    rows = valid.sample(n=n, replace=n > len(valid), random_state=n).reset_index(drop=True)
    rows["upload_id"] = [f"bench-{n}-{i:06d}" for i in range(n)]
    path = out / f"manifest-{n}.parquet"
    rows.to_parquet(path)
    return path


def _stage_rows(manifest: Path, cfg: Any) -> tuple[list[dict[str, Any]], float]:
    from features.decode import decode_audio
    from features.fingerprint import fingerprint
    from models.duplicates import DuplicateCatalogue, for_query
    from pipelines.duplicates import duplicate_policy, duplicates_enabled, upload_fingerprint
    from pipelines.transforms import build_scorers, featurize
    from trackguard.contracts import validate_manifest_row

    rows = [validate_manifest_row(r) for r in pd.read_parquet(manifest).to_dict(orient="records")]
    t0 = time.perf_counter()
    audio_s = sum(decode_audio(r.audio_uri, target_sr=cfg.sample_rate).duration_s for r in rows)
    timings = {"decode (floor)": time.perf_counter() - t0}
    t0 = time.perf_counter()
    tracks = [featurize(r, cfg) for r in rows]
    timings["featurize (incl. fingerprint)"] = time.perf_counter() - t0
    if duplicates_enabled(cfg):
        t0 = time.perf_counter()
        for t in tracks:
            for_query(fingerprint(t.samples, t.sample_rate))
        timings["  of which fingerprint"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        DuplicateCatalogue(None, duplicate_policy(cfg)).match([upload_fingerprint(t) for t in tracks])
        timings["match duplicates"] = time.perf_counter() - t0
    for scorer in build_scorers(cfg):
        model = scorer.load_model()
        t0 = time.perf_counter()
        for i in range(0, len(tracks), 8):
            scorer.score_batch(tracks[i: i + 8], model)
        timings[f"score {scorer.slot}"] = time.perf_counter() - t0
    n = len(rows)
    return [{"tracks": n, "stage": k, "wall_s": v, "tracks_per_s": n / v, "rt_factor": audio_s / v}
            for k, v in timings.items()], audio_s


def bench_sweep(sizes: list[int], json_path: str | None = None, workers: int = 1) -> list[dict[str, Any]]:
    from trackguard.quiet import native_stderr_to

    log = Home.from_env().ensure().root / "logs" / "bench-stderr.log"
    print(f"(decoder and library notes go to {log})")
    with native_stderr_to(log):
        return _bench_sweep(sizes, json_path, workers)


def _bench_sweep(sizes: list[int], json_path: str | None, workers: int) -> list[dict[str, Any]]:
    from pipelines import sweep
    from pipelines.config import load_config
    from trackguard.demo import ensure_corpus

    home = Home.from_env().ensure()
    corpus = ensure_corpus(home, "medium", 7)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config()
        for n in sizes:
            manifest = _manifest(corpus, n, Path(tmp))
            stage_rows, audio_s = _stage_rows(manifest, cfg)
            floor = stage_rows[0]["wall_s"]
            db = f"sqlite:///{tmp}/bench-{n}.db"
            result = sweep.run(["--catalog", str(manifest), "--out", f"{tmp}/out-{n}", "--db-url", db,
                                "--catalogue", f"{tmp}/catalogue-{n}", "--workers", str(workers)])
            e2e = {"tracks": n, "stage": f"end-to-end sweep ({workers} worker)", "wall_s": result.seconds,
                   "tracks_per_s": n / result.seconds, "rt_factor": audio_s / result.seconds}
            for r in [*stage_rows, e2e]:
                r["x_floor_time"] = r["wall_s"] / floor
                rows.append(r)
    growth = {n: next(r["wall_s"] for r in rows if r["tracks"] == n and r["stage"].startswith("end-to-end")) / n
              for n in sizes}
    emit("bench sweep (synthetic demo corpus, medium seed 7, sampled with replacement)", rows, json_path,
         {"end_to_end_s_per_track_by_tracks": {str(k): round(v, 4) for k, v in growth.items()}})
    return rows
