"""Put the plan together: sections → time order → upload ids and paths → render jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trackguard.corpus.abuse import add_spam
from trackguard.corpus.broken import add_bad_inputs
from trackguard.corpus.jobs import DuplicateJob, NoiseJob, SongJob, SongOutput
from trackguard.corpus.legit import add_clean, add_clones, add_references
from trackguard.corpus.plan import Planner, SongRender
from trackguard.corpus.spec import SizeSpec


@dataclasses.dataclass
class Plan:
    planner: Planner
    phase1: list[SongJob | NoiseJob]  # independent renders (songs, noise, references)
    phase2: list[DuplicateJob]  # need their source upload's file


def _assign_ids(p: Planner) -> None:
    audio = p.root / "audio"
    ordered = sorted(p.uploads.values(), key=lambda u: (u.t, u.key))
    for n, upload in enumerate(ordered, start=1):
        stem = f"u{n:06d}"
        upload.upload_id = stem + str(upload.overrides.get("upload_id_suffix", ""))
        upload.path = str(audio / f"{stem}.{upload.ext}") if upload.ext else ""
    p.uploads = {u.key: u for u in ordered}


def _song_job(render: SongRender, paths: dict[str, str]) -> SongJob:
    outputs = tuple(SongOutput(paths.get(key, key), family) for key, family in render.outputs)
    return SongJob(render.seed, render.song, render.voice, render.style, render.a_cappella, render.mix,
                   render.delivery, outputs)


def build_plan(seed: int, size: SizeSpec, root: Path) -> Plan:
    p = Planner(seed, size, root)
    add_clean(p)
    add_clones(p)
    add_spam(p)
    add_bad_inputs(p)
    add_references(p)
    _assign_ids(p)
    paths = {key: u.path for key, u in p.uploads.items()}
    phase1: list[SongJob | NoiseJob] = [_song_job(r, paths) for r in p.songs.values()]
    phase1 += [_song_job(ref.render, paths) for ref in p.references]
    phase1 += [NoiseJob(n.seed, n.kind, n.seconds, n.mix, n.delivery, paths[n.key]) for n in p.noises]
    phase2 = [DuplicateJob(d.seed, paths[d.source_key], d.transform, d.delivery, paths[d.key]) for d in p.duplicates]
    return Plan(p, phase1, phase2)
