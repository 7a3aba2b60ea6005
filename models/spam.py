"""Spam scorer: LightGBM over metadata, audio statistics and uploader history.

The feature vector is built by `feature_values`, used by training and scoring
alike so the two cannot drift. Reasons come from LightGBM's per-prediction SHAP
contributions (``pred_contrib=True``): the features that pushed this upload's
margin up the most, phrased for a reviewer.

Artifact layout (see `models.artifact`): ``spam.txt`` (the booster) and
``artifact.json`` whose ``spec`` holds ``features``, ``categorical``,
``categories`` (value vocabulary per categorical feature), ``protected_names``,
``profiles`` (profile id → name), ``name_max_distance``, ``short_band_s``,
``top_reasons`` and ``reason_min_contrib``; ``calibration`` holds Platt
parameters ``a``, ``b`` (p = sigmoid(a·margin + b)); ``threshold`` is the
operating point chosen on the dev split.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.history import HISTORY_FEATURES
from features.metadata import METADATA_FEATURES, ZERO_WIDTH, MetadataFeatures, ProtectedNames, metadata_features
from models.artifact import ArtifactCard, load_card
from models.base import SpamOutput, TrackInput, TrackScorer, register
from models.duplicates import DUPLICATE_FEATURES, DuplicateFinding
from trackguard.contracts import ManifestRow

log = logging.getLogger(__name__)
BOOSTER_FILE = "spam.txt"
# Audio statistics from features.stats.audio_stats the model uses (duration is its own feature).
AUDIO_STAT_KEYS = (
    "loudness_lufs",
    "peak_dbfs",
    "rms_dbfs",
    "silence_ratio",
    "leading_silence_s",
    "trailing_silence_s",
    "spectral_flatness",
    "spectral_centroid_hz",
    "zcr",
    "dynamic_range_db",
)
CATEGORICAL_FEATURES = ("distributor_id", "genre")
FEATURES = (*METADATA_FEATURES, "duration_s", *AUDIO_STAT_KEYS, *HISTORY_FEATURES, *DUPLICATE_FEATURES,
            *CATEGORICAL_FEATURES)


def feature_values(
    row: ManifestRow,
    stats: Mapping[str, float],
    duration_s: float,
    history: Mapping[str, float],
    protected: ProtectedNames | None,
    profiles: Mapping[str, str] | None,
    duplicates: Mapping[str, float] | None = None,
) -> tuple[dict[str, Any], MetadataFeatures]:
    """One upload's raw feature values (categoricals as strings) plus its name-match context.

    ``duplicates``: `DuplicateFinding.features()`; missing (NaN) when the upload was not matched.
    """
    meta = metadata_features(row.title, row.artist_name, row.claimed_artist_id, row.declared_ai, protected, profiles)
    values: dict[str, Any] = dict(meta.values)
    values["duration_s"] = float(duration_s)
    for key in AUDIO_STAT_KEYS:
        values[key] = float(stats.get(key, math.nan))
    for key in HISTORY_FEATURES:
        value = history.get(key)
        values[key] = math.nan if value is None else float(value)
    for key in DUPLICATE_FEATURES:
        values[key] = float((duplicates or {}).get(key, math.nan))
    values["distributor_id"] = row.distributor_id or None
    values["genre"] = row.genre or None
    return values, meta


def encode(
    rows: Sequence[Mapping[str, Any]], features: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Float matrix for LightGBM; a categorical becomes its index in the training vocabulary.

    Unseen or missing categories become NaN, which LightGBM routes as missing
    rather than guessing a neighbouring category.
    """
    lookup = {name: {v: float(i) for i, v in enumerate(vocab)} for name, vocab in categories.items()}
    out = np.full((len(rows), len(features)), np.nan, dtype=np.float64)
    for i, values in enumerate(rows):
        for j, name in enumerate(features):
            value = values.get(name)
            if name in lookup:
                out[i, j] = lookup[name].get(value, math.nan) if value is not None else math.nan
            elif value is not None:
                out[i, j] = float(value)
    return out


def calibrate(margin: np.ndarray, calibration: Mapping[str, float]) -> np.ndarray:
    """Platt scaling of the raw margin; identity-on-sigmoid when uncalibrated."""
    a, b = float(calibration.get("a", 1.0)), float(calibration.get("b", 0.0))
    return 1.0 / (1.0 + np.exp(-(a * np.asarray(margin, dtype=np.float64) + b)))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _n(v: float, noun: str) -> str:
    return f"{v:.0f} {noun}" + ("" if round(v) == 1 else "s")


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _uploads(v: float, who: str, window: str) -> str:
    if v == 0:
        return f"no other uploads from this {who} in the previous {window}"
    return f"{_n(v, 'upload')} from this {who} in the previous {window}"


def visible(text: str) -> str:
    """Invisible characters spelled out, so a reviewer sees why two names differ."""
    return "".join(f"<U+{ord(ch):04X}>" if ch in ZERO_WIDTH else ch for ch in text)


def _describe_meta(name: str, v: float, ctx: Mapping[str, Any]) -> str | None:
    artist = ctx.get("artist_name", "")
    texts: dict[str, str | None] = {
        "title_keyword_count": f"title has {_n(v, 'generic keyword')}" if v >= 1 else None,
        "title_keyword_share": f"{_pct(v)} of the title's words are generic keywords" if v > 0 else None,
        "title_repeated_token_ratio": f"title repeats words ({_pct(v)} of its words are repeats)" if v > 0 else None,
        "title_tokens": f"title is {v:.0f} words long",
        "title_len": f"title is {v:.0f} characters long",
        "title_digits": f"title has {_n(v, 'digit')}" if v >= 1 else None,
        "title_has_year": "title contains a year" if v else None,
        "title_hours_claim": "title promises hours of audio" if v else None,
        "title_caps_share": f"{_pct(v)} of the title's words are in capitals" if v > 0 else None,
        "title_version_tag": "title carries a re-upload tag (sped up / slowed / nightcore ...)" if v else None,
        "title_separator_count": f"title has {_n(v, 'separator symbol')}" if v >= 1 else None,
        "artist_keyword_count": f"artist name '{artist}' is made of generic keywords" if v >= 1 else None,
        "artist_digits": f"artist name '{artist}' carries a number" if v >= 1 else None,
        "artist_len": f"artist name is {v:.0f} characters long",
        "artist_non_latin_mix": f"artist name '{artist}' mixes Latin with Cyrillic/Greek letters" if v else None,
        "artist_zero_width": f"artist name '{artist}' contains invisible (zero-width) characters" if v else None,
        "artist_is_protected": f"artist name '{artist}' is an enrolled artist's name" if v else None,
        "declared_ai": "declared AI-generated by the distributor" if v else None,
    }
    if name in ("artist_confusable", "artist_name_distance"):
        other = ctx.get("confusable_with")
        return f"artist name '{artist}' is confusable with enrolled artist '{other}'" if other else None
    if name == "profile_mismatch":
        profile = ctx.get("claimed_profile_name")
        return f"delivered to the profile of '{profile}' but credited to '{artist}'" if v and profile else None
    return texts.get(name, f"{name} = {v:.3g}")


def _describe_history(name: str, v: float) -> str | None:
    texts = {
        "uploader_count_1h": _uploads(v, "uploader", "hour"),
        "uploader_count_24h": _uploads(v, "uploader", "24 hours"),
        "uploader_count_7d": _uploads(v, "uploader", "7 days"),
        "uploader_prior_uploads": f"uploader has {_n(v, 'earlier upload')}" if v else "first upload from this uploader",
        "uploader_short_share": f"{_pct(v)} of this uploader's earlier tracks are 30–32 s long",
        "distributor_count_24h": _uploads(v, "distributor", "24 hours"),
        "seconds_since_prev": f"uploaded {_span(v)} after this uploader's previous upload",
        "title_prior_count": f"same title and artist delivered {_n(v, 'time')} before" if v >= 1 else None,
        "title_prior_any_artist": f"same title delivered {_n(v, 'time')} before" if v >= 1 else None,
        "artist_new_uploader": "first delivery for this artist from this uploader (others delivered before)"
        if v
        else None,
    }
    return texts.get(name, f"{name} = {v:.3g}")


def _describe_duplicates(name: str, v: float) -> str | None:
    texts = {
        "duplicate_prior_matches": f"near-duplicate of {_n(v, 'earlier upload')}" if v >= 1 else None,
        "duplicate_match_score": f"{_pct(v)} of an earlier upload's fingerprint survives in this one"
        if v > 0
        else None,
        "uploader_duplicate_share": f"{_pct(v)} of this uploader's earlier uploads were near-duplicates"
        if v > 0
        else None,
    }
    return texts.get(name)


def _describe_audio(name: str, v: float, ctx: Mapping[str, Any]) -> str:
    lo, hi = ctx.get("short_band_s", (30.0, 32.0))
    if name == "duration_s":
        if lo <= v < hi:
            return f"{v:.1f} s long — just over the {lo:.0f} s royalty threshold"
        return f"{v:.1f} s long"
    texts = {
        "silence_ratio": f"{_pct(v)} of the audio is silence",
        "leading_silence_s": f"{v:.1f} s of silence before the audio starts",
        "trailing_silence_s": f"{v:.1f} s of silence after the audio ends",
        "spectral_flatness": f"noise-like spectrum (flatness {v:.2f})",
        "loudness_lufs": f"loudness {v:.1f} LUFS",
        "dynamic_range_db": f"dynamic range {v:.1f} dB",
        "peak_dbfs": f"peak level {v:.1f} dBFS",
        "rms_dbfs": f"RMS level {v:.1f} dBFS",
        "spectral_centroid_hz": f"spectral centroid {v:.0f} Hz",
        "zcr": f"zero-crossing rate {v:.3f}",
    }
    return texts.get(name, f"{name.replace('_', ' ')} {v:.3g}")


def describe(name: str, value: Any, ctx: Mapping[str, Any]) -> str | None:
    """Plain-language phrase for one feature value, or None when the value explains nothing.

    None covers flags that are off and missing values: a tree can give them a
    positive contribution, but "the name is *not* confusable" is no reason to
    review an upload.
    """
    if name == "distributor_id":
        return f"delivered by distributor '{value}'" if value else None
    if name in CATEGORICAL_FEATURES:
        return f"{name.replace('_', ' ')} '{value}'" if value else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    v = float(value)
    if name in METADATA_FEATURES:
        return _describe_meta(name, v, ctx)
    if name in HISTORY_FEATURES:
        return _describe_history(name, v)
    if name in DUPLICATE_FEATURES:
        return _describe_duplicates(name, v)
    return _describe_audio(name, v, ctx)


def reasons_from_contrib(
    contrib: np.ndarray,
    features: Sequence[str],
    values: Mapping[str, Any],
    ctx: Mapping[str, Any],
    top_k: int = 3,
    min_contrib: float = 0.1,
) -> list[str]:
    """The top positive contributions (margin units) as reviewer-readable reasons.

    ``contrib`` has one entry per feature; a trailing bias term, as LightGBM
    returns it, is ignored. Contributions below ``min_contrib`` are noise.
    """
    order = np.argsort(-np.asarray(contrib[: len(features)], dtype=np.float64), kind="stable")
    out: list[str] = []
    for j in order:
        if contrib[j] < min_contrib or len(out) >= top_k:
            break
        text = describe(features[j], values.get(features[j]), ctx)
        if text and text not in out:
            out.append(text)
    return out


@dataclasses.dataclass
class SpamModel:
    booster: Any  # lightgbm.Booster
    card: ArtifactCard
    protected: ProtectedNames
    profiles: dict[str, str]
    warned_missing: set[str] = dataclasses.field(default_factory=set)

    @property
    def spec(self) -> dict[str, Any]:
        return self.card.spec

    def check_history(self, history: Mapping[str, Any]) -> None:
        """Warn once per missing history feature: a silent NaN there is training/serving skew."""
        if not history:
            return  # no history at all for this upload (e.g. unit use): nothing to diagnose
        missing = {f for f in HISTORY_FEATURES if f in self.spec["features"] and f not in history}
        for name in sorted(missing - self.warned_missing):
            log.warning("spam model uses history feature %r but the history side input lacks it", name)
        self.warned_missing |= missing


@register("spam", "lgbm")
class SpamScorer(TrackScorer[SpamModel]):
    """LightGBM spam classifier; params may override ``protected_names`` and ``profiles``,
    and supply ``history`` (upload_id → history feature dict) when tracks carry none."""

    needs_audio = False

    def load_model(self) -> SpamModel:
        import lightgbm as lgb

        if not self.artifact_path:
            raise ValueError("SpamScorer needs an artifact_path (train one with models.train_spam)")
        card = load_card(Path(self.artifact_path))
        booster = lgb.Booster(model_file=str(Path(self.artifact_path) / BOOSTER_FILE))
        names = self.params.get("protected_names", card.spec.get("protected_names", []))
        protected = ProtectedNames(names, float(card.spec.get("name_max_distance", 0.15)))
        profiles = dict(self.params.get("profiles", card.spec.get("profiles", {})))
        return SpamModel(booster, card, protected, profiles)

    def model_id(self, model: SpamModel) -> str:
        return model.card.model_id

    @staticmethod
    def _duplicate(track: TrackInput) -> DuplicateFinding | None:
        finding = (getattr(track, "extra", None) or {}).get("duplicate")
        return finding if isinstance(finding, DuplicateFinding) else None

    def _history(self, track: TrackInput) -> Mapping[str, float]:
        extra = getattr(track, "extra", None) or {}
        if extra.get("history") is not None:
            return dict(extra["history"])
        return dict((self.params.get("history") or {}).get(track.row.upload_id, {}))

    def score_batch(self, batch: Sequence[TrackInput], model: SpamModel) -> list[SpamOutput]:
        if not batch:
            return []
        spec = model.spec
        features: list[str] = list(spec["features"])
        rows, metas = [], []
        for track in batch:
            history = self._history(track)
            model.check_history(history)
            finding = self._duplicate(track)
            values, meta = feature_values(
                track.row, track.stats, track.duration_s, history, model.protected, model.profiles,
                finding.features() if finding else None,
            )
            rows.append(values)
            metas.append(meta)
        x = encode(rows, features, spec.get("categories", {}))
        margin = np.asarray(model.booster.predict(x, raw_score=True), dtype=np.float64)
        contrib = np.asarray(model.booster.predict(x, pred_contrib=True), dtype=np.float64)
        scores = calibrate(margin, model.card.calibration)
        return [
            self._output(track, rows[i], metas[i], contrib[i], float(scores[i]), float(margin[i]), spec)
            for i, track in enumerate(batch)
        ]

    def _output(
        self,
        track: TrackInput,
        values: dict[str, Any],
        meta: MetadataFeatures,
        contrib: np.ndarray,
        score: float,
        margin: float,
        spec: Mapping[str, Any],
    ) -> SpamOutput:
        features: list[str] = list(spec["features"])
        ctx = {
            "artist_name": visible(track.row.artist_name),
            "confusable_with": meta.confusable_with,
            "claimed_profile_name": meta.claimed_profile_name,
            "short_band_s": tuple(spec.get("short_band_s", (30.0, 32.0))),
        }
        reasons = reasons_from_contrib(
            contrib, features, values, ctx, int(spec.get("top_reasons", 3)), float(spec.get("reason_min_contrib", 0.1))
        )
        top = np.argsort(-contrib[: len(features)])[: int(spec.get("top_reasons", 3))]
        evidence = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
        evidence["margin"] = margin
        evidence["contributions"] = {features[j]: round(float(contrib[j]), 4) for j in top if contrib[j] > 0}
        finding = self._duplicate(track)
        duplicate_reason = finding.reason() if finding else None
        if finding is not None and duplicate_reason:
            # the match itself is the strongest evidence: first, with the span a reviewer can check
            reasons = [duplicate_reason, *(r for r in reasons if not r.startswith("near-duplicate of"))]
            evidence["duplicate"] = dataclasses.asdict(finding)
        return SpamOutput(
            score=score,
            reasons=reasons,
            duplicate_of=finding.duplicate_of if finding else None,
            duplicate_ratio=finding.normalised_score if finding and finding.duplicate_of else None,
            features=evidence,
        )
