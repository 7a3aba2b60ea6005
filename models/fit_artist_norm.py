"""`trackguard train artist-norm`: fit a detector's per-artist normalisation on its dev voices.

The dev voices are the ones the artifact calibrated on (``split.json``'s dev uploads; with
``--extra-corpus``, the extra corpora's dev uploads it recorded too), so nothing of the
test split is used. ``anchor`` is the median reference level over the primary corpus's
train and dev voices (test voices' references are not looked at); ``slope`` is the one of
`models.artist_norm.SLOPES` with the lowest minDCF on the dev uploads, each normalised by
its voice's reference level. Both go into the artifact's ``calibration``; the dev table goes
into its ``metrics["artist_norm"]``. The weights are untouched, so the model id is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.artifact import save_card
from models.artist_norm import ArtistNorm, fit_slope, reference_levels, reference_logits
from models.detector import load_detector
from models.train_detector import detector_tracks, load_split, load_windows, pool_tracks, read_corpus, window_logits
from trackguard.home import Home


def dev_tracks(artifact_dir: Path, corpus_dir: Path, extra_corpora: Sequence[Path]) -> pd.DataFrame:
    """The artifact's dev uploads, found in the corpora it was trained with."""
    dev = set(load_split(artifact_dir).get("dev", []))
    parts = [detector_tracks(*read_corpus(corpus_dir))]
    for extra in extra_corpora:
        tracks = detector_tracks(*read_corpus(extra))
        tracks.index = f"{Path(extra).resolve().name}/" + tracks.index.astype(str)
        parts.append(tracks)
    tracks = pd.concat(parts)
    tracks = tracks[tracks.index.isin(dev)]
    if tracks.empty:
        raise ValueError(f"none of {artifact_dir}'s dev uploads are in {corpus_dir} or the extra corpora: "
                         "pass the corpora it was trained with (its card's command names them)")
    return tracks


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


def fit_artist_norm(artifact_dir: Path, corpus_dir: Path, extra_corpora: Sequence[Path] = ()) -> dict[str, Any]:
    model = load_detector(artifact_dir, "cpu")
    spec = model.card.spec
    tracks = dev_tracks(artifact_dir, corpus_dir, extra_corpora)
    cache = Home.from_env().cache / "detector-windows"
    tracks, windows, _ = load_windows(tracks, cache, spec, int(spec["max_windows"]), None)
    logits = pool_tracks(window_logits(model.net, windows, int(spec["max_windows"])), int(spec["pooling_k"]))
    test_voices = set(detector_tracks(*read_corpus(corpus_dir)).loc[
        lambda t: t.index.isin(set(load_split(artifact_dir).get("test", [])))]["artist"].astype(str))
    all_voices = set(pd.read_parquet(Path(corpus_dir) / "artists.parquet")["artist_id"].astype(str))
    levels = corpus_reference_levels(model, corpus_dir, all_voices - test_voices)
    anchor = float(np.median(list(levels.values())))
    y = tracks["is_synthetic"].to_numpy(dtype=bool)
    if y.all() or not y.any() or not levels:
        raise ValueError(f"cannot fit the per-artist normalisation of {artifact_dir}: its dev uploads need both "
                         f"bona fide and clone tracks ({int((~y).sum())} / {int(y.sum())}) and the corpus "
                         f"reference recordings ({len(levels)} voices scored)")
    voices = tracks["artist"].astype(str).tolist()
    slope, table = fit_slope(y, logits, voices, levels, anchor)
    norm = ArtistNorm(slope, anchor)
    card = model.card
    card.calibration = {**card.calibration, **norm.to_calibration()}
    card.metrics["artist_norm"] = {
        "slope": slope, "anchor": anchor, "dev_by_slope": table, "n_dev_tracks": len(tracks),
        "dev_voices": sorted(set(voices)), "n_reference_voices": len(levels),
        "command": _command(artifact_dir, corpus_dir, extra_corpora),
    }
    save_card(Path(artifact_dir), card)
    return dict(card.metrics["artist_norm"])


def _command(artifact_dir: Path, corpus_dir: Path, extra_corpora: Sequence[Path]) -> str:
    extra = "".join(f" --extra-corpus {e}" for e in extra_corpora)
    return f"trackguard train artist-norm --artifact {artifact_dir} --corpus {corpus_dir}{extra}"
