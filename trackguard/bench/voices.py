"""`trackguard bench voices`: the verifier's windowed embedding vs whole-track ECAPA, and matching at scale.

Two measurements, in one run on this machine:

- ``encode``: the same uploads of a labelled corpus (default: the demo corpus),
  decoded once (not timed), then embedded (a) the sweep verifier's way: of the
  vocal-activity windows, the 3 whose 2-s crops carry the most voice-band power,
  `models.voice_embeddings.embed_samples` (window and crop choice included in the
  time), and (b) by SpeechBrain's
  ``encode_batch`` on the whole track. Per method: tracks/s, real-time factor
  (seconds of audio per second of compute), p50/p95 seconds per track, and the EER
  of its track embeddings against the registry's voiceprints on the same trials
  (every upload × every enrolled artist), so "≥ 10× faster at equal or better EER"
  can be checked. Embeddings are not cached here: every track is computed. The
  methods alternate track by track and each track counts its best of two calls, so
  load from other processes on a shared machine hits both alike. Twenty tracks give
  about ten target trials, too few to rank EERs; `trackguard eval voices` scores the
  same whole-track baseline (variant ``raw_full``) on every upload of the corpus.
- ``matching``: synthetic random unit 192-d voiceprints (not voices: the cost of a
  float32 matrix product does not depend on the values; the share of AS-norm work
  skipped does, see below), a batch of 1,000 query embeddings matched against N
  enrolled by the verifier's own search (`models.voice_search.best_matches`, in
  chunks of enrolled rows so memory stays bounded): raw cosine, AS-norm with a
  1,000-voice cohort whose per-voiceprint statistics and search order are
  precomputed (timed separately as enrolment cost), and best-window pooling. The
  baseline is the same chunked search normalising every score (`exhaustive_top1`);
  the AS-norm row says whether both found the same top-1 for every query and which
  share of (query, block of 512 voiceprints) pieces needed normalising (random
  vectors: how much is skipped depends on the scores, so real voiceprints may differ).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.asnorm import DEFAULT_TOP_K, as_norm, cohort_stats
from models.voice_search import CHUNK_ROWS, Matches, best_matches, prepare, track_owners
from trackguard.bench.report import format_table, machine
from trackguard.home import Home

DIM = 192
N_QUERIES = 1000
COHORT = 1000
WINDOWS = 3  # window embeddings per track, as the verifier takes them (policy `n_windows`), for pooling best-window
DEMO_CORPUS = "demo-medium-seed7"
SR = 16_000


# --------------------------------------------------------------------------- matching (core)


def random_unit(n: int, dim: int = DIM, seed: int = 0, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """[n, dim] float32 rows uniform on the unit sphere (synthetic voiceprints), generated chunk by chunk."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk_rows):
        block = rng.standard_normal((min(chunk_rows, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start: start + len(block)] = block
    return out


def exhaustive_top1(queries: np.ndarray, matrix: np.ndarray, chunk_rows: int = CHUNK_ROWS,
                    query_stats: tuple[np.ndarray, np.ndarray] | None = None,
                    enrol: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: (index [m], score [m]) of each query's best voiceprint with *every* score normalised.

    Chunked like `best_matches` (one [m, chunk_rows] block at a time); raw cosine, or
    AS-norm when both statistics are given. Ties go to the lowest index.
    """
    if (query_stats is None) != (enrol is None):
        raise ValueError("AS-norm needs both the query and the enrolment statistics")
    best_idx = np.zeros(len(queries), dtype=np.int64)
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    for start in range(0, len(matrix), chunk_rows):
        scores = queries @ matrix[start: start + chunk_rows].T
        if query_stats is not None and enrol is not None:
            stop = start + scores.shape[1]
            scores = as_norm(scores, query_stats, (enrol[0][start:stop], enrol[1][start:stop]))
        idx = np.argmax(scores, axis=1)
        top = scores[np.arange(len(queries)), idx]
        better = top > best
        best_idx[better], best[better] = idx[better] + start, top[better]
    return best_idx, best


def _best_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest of ``repeats`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _asnorm_search(queries: np.ndarray, matrix: np.ndarray, owners: np.ndarray | None, cohort: np.ndarray,
                   top_k: int, stats: tuple[np.ndarray, np.ndarray], chunk_rows: int) -> Matches:
    """One timed AS-norm search: the batch's own cohort statistics, then `best_matches`."""
    return best_matches(queries, matrix, owners, cohort_stats(queries, cohort, top_k), stats, chunk_rows)


def _asnorm_exhaustive(queries: np.ndarray, matrix: np.ndarray, cohort: np.ndarray, top_k: int,
                       stats: tuple[np.ndarray, np.ndarray], chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's timed call: the batch's own cohort statistics, then `exhaustive_top1`."""
    return exhaustive_top1(queries, matrix, chunk_rows, cohort_stats(queries, cohort, top_k), stats)


def matching_rows(sizes: Sequence[int], n_queries: int = N_QUERIES, cohort_size: int = COHORT,
                  top_k: int = DEFAULT_TOP_K, chunk_rows: int = CHUNK_ROWS, seed: int = 0) -> list[dict[str, Any]]:
    """Per enrolled count N: a 1,000-query batch matched by the verifier's search (`best_matches`) raw, with
    AS-norm, and best-window, and by the exhaustive AS-norm baseline (best of 3 up to 1e5 voiceprints)."""
    queries = random_unit(n_queries, seed=seed + 1)
    window_queries = random_unit(n_queries * WINDOWS, seed=seed + 4)
    owners = track_owners([WINDOWS] * n_queries)
    cohort = random_unit(cohort_size, seed=seed + 2)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        matrix = random_unit(int(n), seed=seed + 3, chunk_rows=chunk_rows)
        repeats = 3 if n <= 100_000 else 1
        best_matches(queries[:8], matrix[: min(len(matrix), chunk_rows)])  # warm-up (BLAS threads)
        t0 = time.perf_counter()
        _, matrix, stats = prepare(matrix, cohort, top_k, chunk_rows)  # as the registry does at load
        stats_s = time.perf_counter() - t0
        raw_s, _ = _best_seconds(partial(best_matches, queries, matrix, chunk_rows=chunk_rows), repeats)
        # the queries' own cohort statistics are per batch, so they are inside every timed AS-norm call
        norm_s, found = _best_seconds(
            partial(_asnorm_search, queries, matrix, None, cohort, top_k, stats, chunk_rows), repeats)
        full_s, (full_idx, _) = _best_seconds(
            partial(_asnorm_exhaustive, queries, matrix, cohort, top_k, stats, chunk_rows), repeats)
        window_s, windowed = _best_seconds(
            partial(_asnorm_search, window_queries, matrix, owners, cohort, top_k, stats, chunk_rows), repeats)
        memory = int(matrix.nbytes)
        with_stats = memory + int(stats[0].nbytes + stats[1].nbytes)
        block = int(n_queries * min(chunk_rows, len(matrix)) * 4)
        common = {"enrolled": int(n), "queries": n_queries, "chunk_rows": min(chunk_rows, len(matrix)),
                  "memory_bytes": memory, "chunk_bytes": block}
        asnorm = f"AS-norm (cohort {cohort_size}, top-k {top_k})"
        rows.append({**common, "measure": "match raw cosine (top-1)", "s_per_1000_queries": raw_s * 1000 / n_queries,
                     "queries_per_s": n_queries / raw_s})
        rows.append({**common, "measure": f"match {asnorm}", "s_per_1000_queries": norm_s * 1000 / n_queries,
                     "queries_per_s": n_queries / norm_s, "memory_bytes": with_stats, "enrol_stats_s": stats_s,
                     "normalised_share": found.normalised_blocks / max(1, found.total_blocks),
                     "speedup_vs_exhaustive": full_s / norm_s,
                     "same_top1_as_exhaustive": bool(np.array_equal(found.index, full_idx))})
        rows.append({**common, "measure": f"baseline: {asnorm}, every score normalised",
                     "s_per_1000_queries": full_s * 1000 / n_queries, "queries_per_s": n_queries / full_s,
                     "memory_bytes": with_stats, "enrol_stats_s": stats_s})
        rows.append({**common, "measure": f"match {asnorm}, best of {WINDOWS} windows per query (pooling best-window)",
                     "s_per_1000_queries": window_s * 1000 / n_queries, "queries_per_s": n_queries / window_s,
                     "memory_bytes": with_stats, "chunk_bytes": block * WINDOWS, "enrol_stats_s": stats_s,
                     "normalised_share": windowed.normalised_blocks / max(1, windowed.total_blocks)})
        del matrix, stats
    return rows


# --------------------------------------------------------------------------- encoding (core)


@dataclasses.dataclass(frozen=True)
class Track:
    """One decoded upload: 16 kHz mono samples and whose voice it is."""

    upload_id: str
    samples: np.ndarray
    voice_artist_id: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / SR


def windowed_embedding(encoder: Any, track: Track) -> np.ndarray:
    """The verifier's window embeddings [3, d]: 3 × 2-s crops of vocal-activity windows, chosen as the sweep does."""
    from models.voice_embeddings import Windowing, embed_samples

    return embed_samples(track.upload_id, track.samples, SR, encoder, Windowing()).windows


def full_track_embedding(encoder: Any, track: Track) -> np.ndarray:
    """SpeechBrain's ``encode_batch`` on the whole track in one call (the baseline), L2-normalised, as [1, d]; the
    same function as `trackguard eval voices`'s ``raw_full`` variant."""
    from models.eval_voices import whole_track_embedding

    return whole_track_embedding(encoder, track.samples, SR)


METHODS: dict[str, Callable[[Any, Track], np.ndarray]] = {
    "windowed 3 × 2 s (verifier)": windowed_embedding,
    "full track encode_batch (SpeechBrain)": full_track_embedding,
}


def trial_eer(embeddings: Sequence[np.ndarray], voices: Sequence[str], artist_ids: Sequence[str],
              prints: np.ndarray) -> dict[str, Any]:
    """EER of raw cosine on every (track × enrolled artist) trial, with the counts; a track's embeddings [k, d]
    are pooled as the verifier pools them by default (`models.verifier.track_scores`, pooling mean)."""
    from models.verifier import RAW, track_scores
    from models.voiceprints import Voiceprints
    from trackguard.reports.voices_report import eer_block

    snapshot = Voiceprints(tuple(artist_ids), np.asarray(prints, dtype=np.float32), {})
    scores = np.stack([track_scores(np.asarray(e, dtype=np.float32).reshape(-1, snapshot.matrix.shape[1]),
                                    snapshot, RAW)[0] for e in embeddings])
    target = np.asarray(voices, dtype=object)[:, None] == np.asarray(artist_ids, dtype=object)[None, :]
    block = eer_block(target.reshape(-1), scores.reshape(-1))
    return {"eer": block["eer"], "n_target": block["n_target"], "n_impostor": block["n_impostor"]}


def encode_rows(tracks: Sequence[Track], encoder: Any, artist_ids: Sequence[str], prints: np.ndarray,
                repeats: int = 2) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time both methods on the same decoded tracks, with the EER of each on the same trials.

    The methods alternate track by track and each track's time is the best of
    ``repeats`` calls, so load from other processes on a shared machine hits both
    alike and a stall is not counted; one warm-up call per method comes first.
    Whole tracks differ in length, so the baseline also gets a second call on each
    new input shape: if anything this flatters it.
    """
    seconds, embs = time_alternating(tracks, {name: partial(method, encoder) for name, method in METHODS.items()},
                                     repeats)
    rows = [{**timing_row(name, tracks, seconds[name]),
             **trial_eer(embs[name], [t.voice_artist_id for t in tracks], artist_ids, prints)} for name in METHODS]
    windowed, full = rows
    ratio = windowed["tracks_per_s"] / full["tracks_per_s"]
    summary = {
        "timing": f"per track the best of {max(1, repeats)} calls, methods alternating track by track",
        "speed_ratio_windowed_over_full": ratio,
        "eer_windowed": windowed["eer"], "eer_full_track": full["eer"],
        "at_least_10x_faster": bool(ratio >= 10.0),
        "eer_equal_or_better": bool(windowed["eer"] <= full["eer"]),
    }
    return rows, summary


def time_alternating(tracks: Sequence[Track], calls: dict[str, Callable[[Track], np.ndarray]], repeats: int = 2,
                     ) -> tuple[dict[str, list[float]], dict[str, list[np.ndarray]]]:
    """Per call name, each track's best-of-``repeats`` seconds and its embedding; the calls alternate track by
    track (one warm-up call each first), so load from other processes hits them alike."""
    if not tracks:
        raise ValueError("no tracks to embed")
    for call in calls.values():
        call(tracks[0])  # warm-up: allocator, first-call overheads
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    embs: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    for track in tracks:
        for name, call in calls.items():
            best = float("inf")
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                emb = call(track)
                best = min(best, time.perf_counter() - t0)
            seconds[name].append(best)
            embs[name].append(emb)
    return seconds, embs


def timing_row(name: str, tracks: Sequence[Track], seconds: Sequence[float]) -> dict[str, Any]:
    audio_s, wall = float(sum(t.seconds for t in tracks)), float(sum(seconds))
    return {"measure": name, "tracks": len(tracks), "audio_s": audio_s, "wall_s": wall,
            "tracks_per_s": len(tracks) / wall, "rt_factor": audio_s / wall,
            "p50_s": float(np.percentile(seconds, 50)), "p95_s": float(np.percentile(seconds, 95))}


def pick_tracks(corpus_dir: Path, n: int) -> list[Track]:
    """``n`` decodable vocal uploads spread evenly over the corpus (sorted by id, every k-th), decoded at 16 kHz."""
    from features.decode import decode_audio
    from models.eval_voices import vocal_uploads
    from models.train_spam import load_corpus
    from trackguard.contracts import TrackguardError

    manifest, labels, _ = load_corpus(Path(corpus_dir))
    uploads = vocal_uploads(manifest, labels)
    picks: list[int] = sorted({round(float(x)) for x in np.linspace(0, len(uploads) - 1, min(n, len(uploads)))})
    tracks = []
    for i in picks if n > 0 else []:
        row = uploads.iloc[int(i)]
        try:
            audio = decode_audio(str(row["audio_uri"]), target_sr=SR)
        except TrackguardError:
            continue
        tracks.append(Track(str(row["upload_id"]), audio.samples, str(row["voice_artist_id"])))
    return tracks


# --------------------------------------------------------------------------- entry point


def bench_voices(tracks: int = 20, sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
                 json_path: str | None = None, corpus_dir: Path | None = None, db_url: str | None = None,
                 encoder: Any = None, chunk_rows: int = CHUNK_ROWS) -> dict[str, Any]:
    """Run both parts (``tracks=0`` or no ``sizes`` skips one), print the tables, write ``json_path``."""
    import json

    home = Home.from_env()
    out: dict[str, Any] = {"benchmark": "bench voices", "machine": machine(),
                           "torch_threads": torch.get_num_threads(), "load_average_at_start": _load(), "rows": []}
    if tracks > 0:
        out["encode"] = _encode_part(tracks, Path(corpus_dir or home.corpora / DEMO_CORPUS), db_url or home.db_url,
                                     encoder)
        out["rows"] += [{"part": "encode", **r} for r in out["encode"]["rows"]]
    if sizes:
        rows = matching_rows(list(sizes), chunk_rows=chunk_rows)
        out["matching"] = {"data": "synthetic random unit 192-d voiceprints, cohort and queries (float32; not "
                                   "voices: the matrix product's cost does not depend on the values, the share "
                                   "of AS-norm work skipped does)",
                           "rows": rows}
        out["rows"] += [{"part": "matching", **r} for r in rows]
        _print("bench voices: matching a 1,000-query batch against N enrolled voiceprints (synthetic random "
               "unit vectors)", rows, {"data": out["matching"]["data"]})
    out["load_average_at_end"] = _load()
    print(f"\nload average (1, 5, 15 min) at start {out['load_average_at_start']}, at end {out['load_average_at_end']}"
          f" on {os.cpu_count()} CPUs; torch threads {out['torch_threads']}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwrote {json_path}")
    return out


def _encode_part(n: int, corpus_dir: Path, db_url: str, encoder: Any) -> dict[str, Any]:
    from models.voiceprints import VoiceprintStore

    prints = VoiceprintStore(db_url).voiceprints()
    if not prints.artist_ids:
        raise ValueError("no enrolled artists in the registry: run `trackguard artists enroll-corpus` first")
    weights: dict[str, Any] | None = None
    chosen = pick_tracks(corpus_dir, n)
    if encoder is None:
        from models.speaker import load_speaker_encoder
        from trackguard.bench.encoder_weights import subnormal_weight_rows

        encoder = load_speaker_encoder()
        weights = subnormal_weight_rows(chosen)
    rows, summary = encode_rows(chosen, encoder, prints.artist_ids, prints.matrix)
    frame = pd.Series([t.seconds for t in chosen])
    extra = {
        "data": f"{len(chosen)} vocal uploads of the synthetic corpus {corpus_dir.name} (every k-th by id; "
                f"{frame.min():.1f}-{frame.max():.1f} s, {frame.sum():.0f} s in all), decoded once (not timed); "
                f"EER on {len(chosen)} × {len(prints.artist_ids)} enrolled-artist trials (raw cosine vs the "
                "registry's centroids)",
        "uploads": [t.upload_id for t in chosen],
        **summary,
        "eer_note": f"{rows[0]['n_target']} target trials: one moves the FRR by "
                    f"{1 / max(1, rows[0]['n_target']):.3f}, so EERs this close are not ranked by this run; "
                    "`trackguard eval voices` compares the same two embeddings (variants raw and raw_full) on "
                    "every vocal upload of the corpus",
    }
    _print("bench voices: windowed embedding (verifier) vs whole-track encode_batch, same uploads", rows, extra)
    if weights is not None:
        _print("bench voices: the verifier's windowed embedding with ECAPA's subnormal weights zeroed (as loaded) "
               "vs as published, same uploads", weights["rows"], {k: v for k, v in weights.items() if k != "rows"})
    return {"rows": rows, **extra, "encoder_weights": weights}


def _load() -> list[float] | None:
    """The OS load averages: other processes on a shared machine slow every timing here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _print(title: str, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    print(f"\n{title}\n")
    print(format_table(rows))
    for key, value in extra.items():
        if key != "uploads":
            print(f"{key}: {value}")
