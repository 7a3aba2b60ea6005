"""`trackguard train copy-margin`: how far a bona fide re-upload's detector logit moves from its original's.

The copy rule (`pipelines.decide.synthetic_over_original`) calls a copy of a catalogued upload
synthetic when its pooled logit is a margin above the original's. A bona fide re-upload —
pitch-shifted, sped up, re-encoded, with noise or a gain change — carries the same vocal, yet the
detector's logit moves a little, and by how much depends on the detector. So the margin is a
per-model default, measured like the synthetic threshold: each bona fide upload of the artifact's
dev split (voices it was calibrated on, songs it did not train on) is put through every re-upload
transform of the corpus generator (`trackguard.corpus.transforms`), and the margin is the rise
that at most ``max_flag_rate`` of those copies reach. It is stored in the artifact's calibration
(``copy_margin_logit``); the weights are untouched, so the model id is unchanged.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.decode import decode_audio
from models.artifact import save_card
from models.artist_norm import reference_logits
from models.detector import load_detector
from models.train_detector import detector_tracks, load_split, read_corpus, require_split_corpus
from trackguard.corpus import encode, transforms

SR = 16_000  # the detector's rate: copies are made at it, as the pipeline decodes every upload to it
REENCODES = {"reencode_mp3": encode.Delivery("mp3", SR, 1, "64k"), "reencode_ogg": encode.Delivery("ogg", SR, 1, "q1")}


def bona_fide_originals(artifact_dir: Path, corpus_dir: Path, split: str) -> list[str]:
    """Audio paths of the corpus's bona fide vocal uploads in the artifact's ``split`` (or ``all``)."""
    tracks = detector_tracks(*read_corpus(corpus_dir))
    tracks = tracks[~tracks["is_synthetic"].astype(bool)]
    if split != "all":
        require_split_corpus(corpus_dir, artifact_dir, f"it has no {split!r} split: use --split all")
        tracks = tracks[tracks.index.isin(set(load_split(artifact_dir).get(split, [])))]
    return [str(u) for u in tracks["audio_uri"]]


def make_copies(original: str, out_dir: Path, seed: int) -> dict[str, Path]:
    """Every re-upload transform of one original, written at the detector's rate."""
    x = decode_audio(original, target_sr=SR).samples.astype(np.float32)[:, None]
    rng = np.random.default_rng(seed)
    out: dict[str, Path] = {}
    for name in transforms.TRANSFORMS:
        delivery = REENCODES.get(name, encode.Delivery("wav", SR, 1, "float"))
        path = out_dir / f"{seed:05d}-{name}.{delivery.fmt}"
        encode.write(path, transforms.apply(name, x, SR, rng), delivery)
        out[name] = path
    return out


def transform_rises(model: Any, originals: list[str], work: Path) -> pd.DataFrame:
    """One row per (original, transform): the copy's pooled logit minus the original's."""
    copies = [make_copies(o, work, i) for i, o in enumerate(originals)]
    paths = originals + [str(p) for c in copies for p in c.values()]
    logits = reference_logits(model, paths, work / "cache")
    base = dict(zip(originals, logits[: len(originals)], strict=True))
    rows, i = [], len(originals)
    for original, made in zip(originals, copies, strict=True):
        for name in made:
            copy, orig = logits[i], base[original]
            i += 1
            if copy is not None and orig is not None:
                rows.append({"original": original, "transform": name, "rise_logit": copy - orig})
    return pd.DataFrame(rows, columns=["original", "transform", "rise_logit"])


def margin_for(rises: np.ndarray, max_flag_rate: float) -> float:
    """The smallest margin (to 0.1 logit, rounded up) that at most ``max_flag_rate`` of the rises reach."""
    if len(rises) == 0:
        raise ValueError("no copy could be scored")
    ordered = np.sort(rises)[::-1]
    allowed = min(int(np.floor(max_flag_rate * len(rises))), len(rises) - 1)  # copies that may reach it
    bound = ordered[allowed]  # the largest rise that must stay under it
    # never below 0.1: a copy that scores no higher than its original is no evidence of a new vocal
    return max(0.1, float(np.floor(bound * 10.0) / 10.0 + 0.1))


def fit_copy_margin(artifact_dir: Path, corpus_dir: Path, split: str = "dev",
                    max_flag_rate: float = 0.01) -> dict[str, Any]:
    model = load_detector(artifact_dir, "cpu")
    originals = bona_fide_originals(artifact_dir, corpus_dir, split)
    if not originals:
        raise ValueError(f"no bona fide vocal upload of split {split!r} of {artifact_dir} in {corpus_dir}")
    with tempfile.TemporaryDirectory(prefix="tg-copies-") as tmp:
        rises = transform_rises(model, originals, Path(tmp))
    margin = margin_for(rises["rise_logit"].to_numpy(dtype=np.float64), max_flag_rate)
    per = rises.groupby("transform")["rise_logit"]
    card = model.card
    card.calibration = {**card.calibration, "copy_margin_logit": margin}
    card.metrics["copy_margin"] = {
        "margin_logit": margin, "max_flag_rate": max_flag_rate, "n_originals": len(originals),
        "n_copies": len(rises), "max_rise_logit": float(rises["rise_logit"].max()),
        "median_rise_logit": float(rises["rise_logit"].median()),
        "max_rise_logit_per_transform": {str(k): float(v) for k, v in per.max().items()},
        "command": f"trackguard train copy-margin --artifact {artifact_dir} --corpus {corpus_dir} --split {split} "
                   f"--max-flag-rate {max_flag_rate}",
    }
    save_card(Path(artifact_dir), card)
    return dict(card.metrics["copy_margin"])
