"""`trackguard artists detector-levels`: score each enrolled artist's reference recordings with the
detector and store their level (`models.artist_norm`) for that detector model.

Run after enrolment and again after a new detector is installed: a level is tied to the model id
that measured it, and the sweep uses only the current model's levels. An artist whose references
no longer decode keeps no level (and is reported), so their uploads are judged like anyone's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from models.artist_norm import ArtistNorm, reference_logits
from models.detector import load_detector
from models.voiceprints import VoiceprintStore
from trackguard.home import Home


@dataclasses.dataclass(frozen=True)
class ArtistLevel:
    artist_id: str
    level: float | None  # None: no reference decoded
    n_references: int
    offset: float  # the logit offset the sweep will subtract for this artist


def store_detector_levels(db_url: str, artifact_dir: Path, actor: str) -> list[ArtistLevel]:
    """Score every enrolled artist's enrolment recordings and store the mean pooled logit per artist."""
    if not actor or not actor.strip():
        raise ValueError("say who computed the levels: pass --actor WHO (it goes in the registry's audit)")
    model = load_detector(artifact_dir, "cpu")
    norm = ArtistNorm.from_calibration(model.card.calibration)
    if norm is None:
        raise ValueError(f"{artifact_dir} has no per-artist normalisation: fit it first with "
                         "`trackguard train artist-norm --artifact DIR --corpus CORPUS_IT_TRAINED_ON`")
    store = VoiceprintStore(db_url)
    cache = Home.from_env().cache / "detector-windows"
    out = []
    for artist_id, sources in sorted(store.reference_sources().items()):
        logits = [x for x in reference_logits(model, sources, cache) if x is not None]
        level = float(np.mean(logits)) if logits else None
        if level is not None:
            store.set_detector_level(artist_id, model.card.model_id, level, len(logits), actor)
        out.append(ArtistLevel(artist_id, level, len(logits), norm.offset(level)))
    return out
