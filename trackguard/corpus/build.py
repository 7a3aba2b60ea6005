"""`make_corpus`: plan, render in worker processes, break the bad inputs, write tables and card."""

from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeGuard

from trackguard.corpus import badinputs, card, tables
from trackguard.corpus.assemble import build_plan
from trackguard.corpus.jobs import Job, Rendered, SongJob, run_job
from trackguard.corpus.plan import Planner
from trackguard.corpus.provenance import tool_versions
from trackguard.corpus.rng import rng_for
from trackguard.corpus.spec import SIZES
from trackguard.corpus.stems import STEMS_DIR, UPLOADS_DIR

OUTPUTS = ("audio", STEMS_DIR, "references", "manifest.parquet", "labels.parquet", "artists.parquet", "corpus.json",
           "CORPUS.md")


def _render_all(jobs: Sequence[Job], pool: Executor | None) -> dict[str, Rendered]:
    """Render jobs, longest first; results do not depend on scheduling (each job has its own seed)."""
    ordered = sorted(jobs, key=lambda j: -j.cost())
    done: dict[str, Rendered] = {}
    for results in (pool.map(run_job, ordered) if pool is not None else map(run_job, ordered)):
        done.update((r.path, r) for r in results)
    return done


def _pool(workers: int) -> Executor | None:
    if workers <= 1:
        return None
    # spawn: the parent may hold threads (pyarrow, torch) that make fork unsafe
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _break_files(p: Planner) -> dict[str, float]:
    """Write or damage the bad-input files; returns durations of files that were not rendered."""
    durations: dict[str, float] = {}
    for key, code in sorted(p.bad_ops.items()):
        u = p.uploads[key]
        path, rng = Path(u.path), rng_for(p.seed, "bad-op", key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if code == "audio_empty":
            badinputs.write_empty(path)
        elif code == "audio_undecodable":
            badinputs.write_undecodable(path, rng)
        elif code == "audio_nonfinite" and u.delivery:
            badinputs.write_nonfinite(path, rng, u.delivery.sr)
            durations[key] = badinputs.NONFINITE_S
        elif code == "audio_too_short" and u.delivery:
            badinputs.write_too_short(path, rng, u.delivery.sr)
            durations[key] = badinputs.TOO_SHORT_S
    for u in p.uploads.values():
        if u.label["expected_error_code"] == "audio_truncated":
            badinputs.truncate(Path(u.path))
    return durations


def _is_upload_song(job: Job) -> TypeGuard[SongJob]:
    """A song rendered into uploads (not an artist's reference take): what gets a vocal stem."""
    return isinstance(job, SongJob) and all(Path(o.path).parent.name == UPLOADS_DIR for o in job.outputs)


def _clear(root: Path) -> None:
    """Remove a previous build's outputs, so nothing stale survives into this one."""
    for name in OUTPUTS:
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def make_corpus(out_dir: Path, seed: int, size: str, workers: int = 2, stems: bool = False) -> dict[str, Any]:
    """Build the labelled synthetic corpus of ``size`` (small|medium|detector|large) into ``out_dir``.

    Returns a summary: counts per kind, spam type and generator family, seconds of
    audio, and the build time. The same seed and size give the same bytes. ``stems``
    also writes the vocal stem of every upload with a vocal (`trackguard.corpus.stems`);
    the uploads are the same bytes with or without it.
    """
    if size not in SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZES)}")
    started = time.perf_counter()
    spec = SIZES[size]
    root = Path(out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    _clear(root)
    (root / "audio").mkdir()
    plan = build_plan(seed, spec, root)
    phase1 = [dataclasses.replace(j, stems=True) if stems and _is_upload_song(j) else j for j in plan.phase1]
    pool = _pool(workers)
    try:
        rendered = _render_all(phase1, pool)
        durations = _break_files(plan.planner)
        rendered.update(_render_all(plan.phase2, pool))  # duplicates need their source files
    finally:
        if pool is not None:
            pool.shutdown()
    p = plan.planner
    uploads = list(p.uploads.values())
    labels = [tables.label_row(u, p, rendered, durations) for u in uploads]
    artists = tables.artist_rows(p)
    tables.write(root / "manifest.parquet", [tables.manifest_row(u) for u in uploads], tables.MANIFEST_SCHEMA)
    tables.write(root / "labels.parquet", labels, tables.LABEL_SCHEMA)
    tables.write(root / "artists.parquet", artists, tables.ARTIST_SCHEMA)
    ref_seconds = sum(rendered[r.path].duration_s for r in p.references)
    comp = card.composition(labels, artists, ref_seconds)
    tools = tool_versions()
    card.write_json(root / "corpus.json", seed, spec, comp, tools)
    card.write_markdown(root / "CORPUS.md", seed, spec, comp, artists, tools)
    return {"out_dir": str(root), "seed": seed, "size": size, **comp, "stems": stems,
            "build_seconds": round(time.perf_counter() - started, 2)}
