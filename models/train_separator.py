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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from features.spectral import power_spectrum
from features.windows import Window, stack_windows
from models.separator import SEPARATOR_DEFAULTS, SEPARATOR_EPOCHS, SeparatorFit, fit_separator
from trackguard.corpus.stems import existing_stem

if TYPE_CHECKING:  # train_detector imports this module
    from models.train_detector import TrackWindows

log = logging.getLogger(__name__)

HELD_OUT_WINDOWS_PER_TRACK = 2


def with_stems(tracks: pd.DataFrame, corpus_dir: Path) -> pd.DataFrame:
    """``tracks`` with each upload's audio replaced by its vocal stem; uploads without one are left out.
    Raises ValueError when none has a stem."""
    stems = tracks["audio_uri"].map(lambda uri: existing_stem(str(uri)))
    has = stems.notna()
    if not has.any():
        raise ValueError(f"{corpus_dir} has no vocal stems: make it with `trackguard corpus make --stems`")
    return tracks[has].assign(audio_uri=stems[has].map(str))


def stem_pairs(tracks: pd.DataFrame, windows: Sequence[TrackWindows], per_track: int, sr: int) -> tuple[Tensor, Tensor]:
    """Upload windows and their vocal-stem windows, [N, T] each, over the tracks that have a stem
    (``windows``: one per row of ``tracks``)."""
    from features.decode import decode_audio

    mixes, vocals = [], []
    for uri, w in zip(tracks["audio_uri"], windows, strict=True):
        path = existing_stem(str(uri))
        if path is None:
            continue
        stem = decode_audio(str(path), target_sr=sr, min_duration_s=0.0).samples
        mixes.append(w.windows[:per_track])
        win_s = w.windows.shape[1] / sr
        spans = [Window(float(t), float(t) + win_s, 1.0) for t in w.starts[:per_track]]
        vocals.append(stack_windows(stem, sr, spans, win_s))  # cut exactly as the upload's windows were
    if not mixes:
        return torch.zeros(0, 0), torch.zeros(0, 0)
    return torch.from_numpy(np.concatenate(mixes)), torch.from_numpy(np.concatenate(vocals))


def train_separator(
    train: tuple[pd.DataFrame, Sequence[TrackWindows]],
    dev: tuple[pd.DataFrame, Sequence[TrackWindows]],
    per_track: int,
    stft: Mapping[str, Any],
    options: Mapping[str, Any],
    seed: int,
) -> SeparatorFit:
    """Fit a separator on the train split's stems; score it on the dev split's. ``stft``: the detector
    front end's settings (`models.detector_nets.lcnn_stft`); ``options``: the `VocalMask` arguments
    plus ``epochs``. Raises ValueError when no training track has a stem."""
    sr = int(stft["sample_rate"])

    def power(wave: Tensor) -> Tensor:
        return power_spectrum(wave, sr, int(stft["n_mels"]), float(stft["win_ms"]), float(stft["hop_ms"]))

    mix, vocal = stem_pairs(*train, per_track, sr)
    if len(mix) == 0:
        raise ValueError("no training upload has a vocal stem: make the corpora with `trackguard corpus make --stems`")
    held_out = stem_pairs(*dev, HELD_OUT_WINDOWS_PER_TRACK, sr)
    log.info("separator: %d train windows, %d held-out windows with stems", len(mix), len(held_out[0]))
    epochs = int(options.get("epochs", SEPARATOR_EPOCHS))
    return fit_separator(mix, vocal, power, separator_arch(options), epochs=epochs, seed=seed, held_out=held_out)


def separator_arch(options: Mapping[str, Any]) -> dict[str, int]:
    """The `VocalMask` constructor arguments among ``options`` (what the detector's net_kwargs store)."""
    return {k: int(options.get(k, v)) for k, v in SEPARATOR_DEFAULTS.items()}
