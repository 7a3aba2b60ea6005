"""Per-artist detector normalisation: an enrolled artist's own reference recordings say how
synthetic their real voice looks to the detector, and uploads sung in that voice are judged
against that level.

Why: the detector's bona fide scores sit at a voice-dependent level. On the synthetic
corpora every false flag of the shipped model at its threshold was one voice's (README,
"Synthetic-voice detector"), and its reference takes scored high as well (the voices'
mean reference logit and mean bona fide upload logit correlate at 0.90-0.95). An artist
whose real voice looks synthetic would otherwise see their own releases routed as
impersonations of themselves.

The artist's *reference level* is the mean pooled logit of their reference recordings
(scored like uploads). The offset subtracted from an upload's pooled logit is
``slope · max(0, level − anchor)``. ``anchor`` is the highest reference level among the
voices the detector was trained and calibrated on (`fit_artist_norm`): only an artist whose
own recordings look more synthetic than any voice the detector was developed on is
treated differently, and ``slope`` 1 removes exactly that excess (references are scored as
uploads are, so the excess is taken at face value). It never raises a score. A rule with a
low anchor (the median voice) and a slope fitted on dev voices was tried first: it lowered
almost every voice a little and cost recall broadly (README, "Per-artist normalisation").
Both numbers are stored in the artifact's ``calibration`` beside the logistic ``a``/``b``.
A clone of the artist's voice is lowered by the same offset, so this trades recall on that
voice for false flags on it.

Core functions take arrays; `reference_logits` is the thin wrapper that takes paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.detector import calibrate


@dataclasses.dataclass(frozen=True)
class ArtistNorm:
    anchor: float  # highest reference level of the detector's own voices: no offset at or below it
    slope: float = 1.0  # share of an artist's excess over the anchor subtracted from their uploads' logits

    @classmethod
    def from_calibration(cls, calibration: Mapping[str, float]) -> ArtistNorm | None:
        """The normalisation stored with a detector artifact (None: it was never fitted)."""
        if "artist_slope" not in calibration or "artist_anchor" not in calibration:
            return None
        return cls(float(calibration["artist_anchor"]), float(calibration["artist_slope"]))

    def to_calibration(self) -> dict[str, float]:
        return {"artist_slope": self.slope, "artist_anchor": self.anchor}

    def offset(self, level: float | None) -> float:
        """Logit offset for an artist whose references score ``level`` (0 without a level)."""
        if level is None or not np.isfinite(level):
            return 0.0
        return self.slope * max(0.0, float(level) - self.anchor)


def reference_levels(voices: Sequence[str], logits: Sequence[float]) -> dict[str, float]:
    """Each voice's reference level: the mean pooled logit of its reference recordings."""
    by_voice: dict[str, list[float]] = {}
    for voice, logit in zip(voices, logits, strict=True):
        by_voice.setdefault(str(voice), []).append(float(logit))
    return {v: float(np.mean(x)) for v, x in sorted(by_voice.items())}


def normalised_logits(logits: np.ndarray, voices: Sequence[str], levels: Mapping[str, float],
                      norm: ArtistNorm) -> np.ndarray:
    """Each track's pooled logit minus its voice's offset (voices without a level are left alone)."""
    offsets = np.array([norm.offset(levels.get(str(v))) for v in voices], dtype=np.float64)
    return np.asarray(logits, dtype=np.float64) - offsets


def reference_logits(model: Any, uris: Sequence[str], cache_dir: Path) -> list[float | None]:
    """Pooled detector logit of each reference recording, scored as the detector scores an upload
    (best vocal windows, top-k mean); None where it does not decode."""
    from models.train_detector import load_windows, pool_tracks, window_logits

    spec = model.card.spec
    max_windows, k = int(spec["max_windows"]), int(spec["pooling_k"])
    decoded, windows, _ = load_windows(pd.DataFrame({"audio_uri": list(uris)}), cache_dir, spec, max_windows, None)
    pooled = pool_tracks(window_logits(model.net, windows, max_windows), k)
    out: list[float | None] = [None] * len(uris)
    for i, value in zip(decoded.index, pooled, strict=True):
        out[int(i)] = float(value)
    return out


@dataclasses.dataclass(frozen=True)
class ArtistScoreNorm:
    """What the decide step needs: one detector's normalisation and calibration, and the enrolled
    artists' reference levels measured with that detector (`VoiceprintStore.detector_levels`)."""

    norm: ArtistNorm
    calibration: Mapping[str, float]
    levels: Mapping[str, float]
    model_id: str

    def adjusted_score(self, logit: float, artist_id: str | None) -> float | None:
        """The calibrated score of ``logit`` after the artist's offset (None: no level for that artist)."""
        if artist_id is None or artist_id not in self.levels:
            return None
        shifted = float(logit) - self.norm.offset(self.levels[artist_id])
        return float(calibrate(torch.tensor(shifted, dtype=torch.float64), self.calibration))
