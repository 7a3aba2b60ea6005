"""`trackguard bench voices`' encoder-weights part: ECAPA as loaded (subnormal weights set to zero,
`models.speaker.flush_subnormal_weights`) against ECAPA as published, on the same uploads.

Both encoders embed every track the verifier's way, alternating track by track; the
part prints how many weights were subnormal, both speeds, their ratio and the largest
difference between the two embeddings of any window (zero means the change is free).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from trackguard.bench.voices import Track, time_alternating, timing_row, windowed_embedding

ZEROED = "windowed 3 × 2 s, subnormal weights zeroed (as loaded)"
PUBLISHED = "windowed 3 × 2 s, weights as published"


def subnormal_weight_rows(tracks: Sequence[Track], model_dir: str | None = None, repeats: int = 2) -> dict[str, Any]:
    from models.speaker import flush_subnormal_weights, load_speaker_encoder

    published = load_speaker_encoder(model_dir, flush_subnormals=False)
    zeroed = copy.deepcopy(published)  # what the loader would return: one load from disk, the count for free
    n_subnormal = flush_subnormal_weights(zeroed.mods)
    seconds, embs = time_alternating(tracks, {ZEROED: partial(windowed_embedding, zeroed),
                                              PUBLISHED: partial(windowed_embedding, published)}, repeats)
    rows = [timing_row(name, tracks, seconds[name]) for name in (ZEROED, PUBLISHED)]
    n_weights = sum(t.numel() for t in [*published.mods.parameters(), *published.mods.buffers()])
    return {
        "rows": rows,
        "subnormal_weights": n_subnormal,
        "weights": n_weights,
        "speed_ratio_zeroed_over_published": rows[0]["tracks_per_s"] / rows[1]["tracks_per_s"],
        "max_abs_embedding_difference": max(float(np.abs(a - b).max()) for a, b in zip(*embs.values(), strict=True)),
    }
