"""`trackguard train artist-norm`: measure a detector's per-artist normalisation anchor.

The anchor is the highest reference level (`models.artist_norm`) among the voices the
detector was trained and calibrated on: the primary corpus's artists minus the voices of the
artifact's test split (``split.json``), whose references are never scored here. The slope is
1 (see `models.artist_norm`). Both go into the artifact's ``calibration``; the levels behind
the anchor go into its ``metrics["artist_norm"]``. The weights are untouched, so the model id
is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from models.artifact import save_card
from models.artist_norm import ArtistNorm, reference_levels, reference_logits
from models.detector import load_detector
from models.train_detector import detector_tracks, load_split, read_corpus, require_split_corpus
from trackguard.home import Home


def corpus_references(corpus_dir: Path, voices: set[str] | None = None) -> pd.DataFrame:
    """One row per reference recording of the corpus's artists (``voice``, ``uri``), optionally of some voices."""
    artists = pd.read_parquet(Path(corpus_dir) / "artists.parquet")
    rows = [{"voice": str(a.artist_id), "uri": str(u)} for a in artists.itertuples() for u in a.reference_uris
            if voices is None or str(a.artist_id) in voices]
    return pd.DataFrame(rows, columns=["voice", "uri"])


def corpus_reference_levels(model: Any, corpus_dir: Path, voices: set[str] | None = None) -> dict[str, float]:
    """Reference level of each (chosen) voice of a corpus, from its reference recordings."""
    refs = corpus_references(corpus_dir, voices)
    logits = reference_logits(model, refs["uri"].tolist(), Home.from_env().cache / "detector-windows")
    scored = [(v, x) for v, x in zip(refs["voice"], logits, strict=True) if x is not None]
    return reference_levels([v for v, _ in scored], [x for _, x in scored])


def developed_voices(artifact_dir: Path, corpus_dir: Path) -> set[str]:
    """The corpus's voices outside the artifact's test split: the ones it was trained and calibrated on.
    Only the corpus it was split on can tell them (`require_split_corpus`)."""
    require_split_corpus(corpus_dir, artifact_dir, "its test voices are unknown there: fit the anchor on that corpus")
    test_ids = set(load_split(artifact_dir).get("test", []))
    tracks = detector_tracks(*read_corpus(corpus_dir))
    test_voices = set(tracks.loc[tracks.index.isin(test_ids), "artist"].astype(str))
    return set(pd.read_parquet(Path(corpus_dir) / "artists.parquet")["artist_id"].astype(str)) - test_voices


def fit_artist_norm(artifact_dir: Path, corpus_dir: Path) -> dict[str, Any]:
    model = load_detector(artifact_dir, "cpu")
    levels = corpus_reference_levels(model, corpus_dir, developed_voices(artifact_dir, corpus_dir))
    if not levels:
        raise ValueError(f"cannot fit the per-artist normalisation of {artifact_dir}: no reference recording of "
                         f"its train or dev voices decodes in {corpus_dir}")
    top = max(levels, key=lambda v: levels[v])
    norm = ArtistNorm(anchor=levels[top])
    card = model.card
    card.calibration = {**card.calibration, **norm.to_calibration()}
    card.metrics["artist_norm"] = {
        "anchor": norm.anchor, "slope": norm.slope, "anchor_voice": top, "n_reference_voices": len(levels),
        "reference_levels": levels, "command": f"trackguard train artist-norm --artifact {artifact_dir} "
                                               f"--corpus {corpus_dir}",
    }
    save_card(Path(artifact_dir), card)
    return dict(card.metrics["artist_norm"])
