"""Train the detector's vocal separator on the corpus's vocal stems (`train detector --separator`).

The separator learns from the detector's own training windows: each decoded upload
window is paired with the same span of its vocal stem (`trackguard corpus make --stems`
writes the vocal exactly as it was mixed into the upload). It therefore sees the
train split's voices and songs only, bona fide and clones alike, so it passes a
clone's artefacts through like any other vocal; the dev split's windows give the
held-out figure recorded on the card.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from features.spectral import power_spectrum
from models.separator import SEPARATOR_DEFAULTS, SeparatorFit, fit_separator, stem_windows

log = logging.getLogger(__name__)

HELD_OUT_WINDOWS_PER_TRACK = 2


def with_stems(tracks: pd.DataFrame, corpus_dir: Path) -> pd.DataFrame:
    """``tracks`` with each upload's audio replaced by its vocal stem; uploads without one are left out.
    Raises ValueError when none has a stem."""
    from trackguard.corpus.jobs import stem_path

    stems = tracks["audio_uri"].map(lambda uri: stem_path(str(uri)) if "://" not in str(uri) else None)
    has = stems.map(lambda p: p is not None and p.exists())
    if not has.any():
        raise ValueError(f"{corpus_dir} has no vocal stems: make it with `trackguard corpus make --stems`")
    return tracks[has].assign(audio_uri=stems[has].map(str))


def stem_pairs(tracks: pd.DataFrame, windows: Sequence[Any], per_track: int, sr: int) -> tuple[Tensor, Tensor]:
    """Upload windows and their vocal-stem windows, [N, T] each, over the tracks that have a stem
    (``windows``: `models.train_detector.TrackWindows`, one per row of ``tracks``)."""
    from features.decode import decode_audio
    from features.io import local_path
    from trackguard.corpus.jobs import stem_path

    mixes, vocals = [], []
    for uri, w in zip(tracks["audio_uri"], windows, strict=True):
        local = local_path(str(uri))
        path = stem_path(local) if local else None  # stems are local files beside a local corpus
        if path is None or not path.exists():
            continue
        stem = decode_audio(str(path), target_sr=sr, min_duration_s=0.0).samples
        mixes.append(w.windows[:per_track])
        vocals.append(stem_windows(stem, w.starts[:per_track], sr, w.windows.shape[1]))
    if not mixes:
        return torch.zeros(0, 0), torch.zeros(0, 0)
    return torch.from_numpy(np.concatenate(mixes)), torch.from_numpy(np.concatenate(vocals))


def train_separator(
    train: tuple[pd.DataFrame, Sequence[Any]],
    dev: tuple[pd.DataFrame, Sequence[Any]],
    per_track: int,
    spec: Mapping[str, Any],
    options: Mapping[str, Any],
    seed: int,
) -> SeparatorFit:
    """Fit a separator on the train split's stems; score it on the dev split's. ``options``: the
    `VocalMask` arguments plus ``epochs``. Raises ValueError when no training track has a stem."""
    sr = int(spec["sample_rate"])
    n_mels, win_ms, hop_ms = int(spec["n_mels"]), float(spec.get("win_ms", 25.0)), float(spec.get("hop_ms", 10.0))

    def power(wave: Tensor) -> Tensor:
        return power_spectrum(wave, sr, n_mels, win_ms, hop_ms)

    mix, vocal = stem_pairs(*train, per_track, sr)
    if len(mix) == 0:
        raise ValueError("no training upload has a vocal stem: make the corpora with `trackguard corpus make --stems`")
    held_out = stem_pairs(*dev, HELD_OUT_WINDOWS_PER_TRACK, sr)
    log.info("separator: %d train windows, %d held-out windows with stems", len(mix), len(held_out[0]))
    return fit_separator(mix, vocal, power, separator_arch(options), epochs=int(options.get("epochs", 6)), seed=seed,
                         held_out=held_out)


def separator_arch(options: Mapping[str, Any]) -> dict[str, int]:
    """The `VocalMask` constructor arguments among ``options`` (what the detector's net_kwargs store)."""
    return {k: int(options.get(k, v)) for k, v in SEPARATOR_DEFAULTS.items()}
