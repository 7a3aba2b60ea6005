"""`trackguard eval spam`: score a trained spam model on a labelled corpus and write its report.

Every labelled upload is scored the way `models.spam.SpamScorer` scores it at
serving time (encode → raw margin → Platt calibration → SHAP contributions →
reasons), so the report's reasons are the ones a reviewer would see.

Only part of a corpus is honest evidence: training splits uploads by time (the
earliest 60 % train, the next 20 % calibrate and pick the threshold, the latest
20 % are only evaluated). ``split="test"`` applies the same `time_split` to the
evaluated corpus and keeps its latest 20 %; on the training corpus those are
exactly the uploads the model never fitted or calibrated on. ``split="all"`` is
meant for a corpus the model never saw (another seed); on the training corpus it
includes training uploads and the report says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.metadata import ProtectedNames, metadata_features
from models.artifact import ArtifactCard, load_card
from models.spam import BOOSTER_FILE, CATEGORICAL_FEATURES, calibrate, encode, reasons_from_contrib, visible
from models.train_spam import (
    SPEC_DEFAULTS,
    labelled_feature_table,
    load_corpus,
    profiles_from,
    protected_names_from,
    rules_baseline,
    time_split,
)
from trackguard.contracts import TrackguardError, validate_manifest_row

SPLITS = ("test", "all")
CONTRIB_PREFIX = "contrib_"  # scores.parquet column per feature: its SHAP contribution (margin units)
SCORE_COLUMNS = (
    "upload_id",
    "uploaded_at",
    "split",
    "is_spam",
    "spam_type",
    "kind",
    "score",
    "margin",
    "flagged",
    "rules_flag",
    "reasons",
)


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Model outputs for a batch of uploads, row-aligned with the input."""

    margin: np.ndarray  # raw LightGBM margin (log-odds before calibration)
    score: np.ndarray  # calibrated probability of spam
    contrib: np.ndarray  # (n, n_features) SHAP contributions in margin units; bias column dropped
    reasons: list[list[str]]


def load_spam_artifact(artifact_dir: Path) -> tuple[ArtifactCard, Any]:
    """The card (file hashes verified) and its LightGBM booster."""
    import lightgbm as lgb

    card = load_card(Path(artifact_dir))
    return card, lgb.Booster(model_file=str(Path(artifact_dir) / BOOSTER_FILE))


def feature_records(table: pd.DataFrame, features: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a feature table as dicts, with missing categoricals as None.

    A DataFrame turns a missing category into NaN; `describe` would then write
    "genre 'nan'" as a reason, while the serving path (`feature_values`) has None.
    """
    cols = [f for f in features if f in table.columns]
    records: list[dict[str, Any]] = table[cols].to_dict("records")
    for rec in records:
        for name in CATEGORICAL_FEATURES:
            value = rec.get(name)
            if value is not None and not isinstance(value, str) and pd.isna(value):
                rec[name] = None
    return records


def predict_with_reasons(
    booster: Any,
    card: ArtifactCard,
    rows: Sequence[Mapping[str, Any]],
    contexts: Sequence[Mapping[str, Any]] | None = None,
) -> Predictions:
    """Score ``rows`` (raw feature values) as `SpamScorer.score_batch` does, reasons included.

    ``contexts`` (one per row: artist_name, confusable_with, claimed_profile_name)
    only change the wording of name-related reasons; without them those reasons
    are left out rather than guessed.
    """
    spec = card.spec
    features: list[str] = list(spec["features"])
    x = encode(rows, features, spec.get("categories", {}))
    margin = np.asarray(booster.predict(x, raw_score=True), dtype=np.float64).reshape(-1)
    contrib = np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64).reshape(len(rows), -1)
    score = calibrate(margin, card.calibration)
    top_k = int(spec.get("top_reasons", SPEC_DEFAULTS["top_reasons"]))
    min_contrib = float(spec.get("reason_min_contrib", SPEC_DEFAULTS["reason_min_contrib"]))
    band = {"short_band_s": tuple(spec.get("short_band_s", (30.0, 32.0)))}
    reasons = [
        reasons_from_contrib(
            contrib[i], features, rows[i], {**band, **(contexts[i] if contexts else {})}, top_k, min_contrib
        )
        for i in range(len(rows))
    ]
    return Predictions(margin, score, contrib[:, : len(features)], reasons)


def reason_contexts(
    manifest: pd.DataFrame, artists: pd.DataFrame, spec: Mapping[str, Any], ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Per upload in ``ids``: the names a reason quotes, built as `SpamScorer._output` builds them.

    Protected names and profiles come from the corpus's artists, as in
    `labelled_feature_table`, so the quoted lookalike is the one the feature saw.
    """
    distance = float(spec.get("name_max_distance", SPEC_DEFAULTS["name_max_distance"]))
    protected = ProtectedNames(protected_names_from(artists), distance)
    profiles = profiles_from(artists)
    by_id: dict[str, dict[str, Any]] = {}
    for raw in manifest.to_dict("records"):
        try:
            row = validate_manifest_row(raw)
        except TrackguardError:
            continue
        if row.upload_id in by_id:
            continue
        meta = metadata_features(
            row.title, row.artist_name, row.claimed_artist_id, row.declared_ai, protected, profiles
        )
        by_id[row.upload_id] = {
            "artist_name": visible(row.artist_name),
            "confusable_with": meta.confusable_with,
            "claimed_profile_name": meta.claimed_profile_name,
        }
    return [by_id.get(str(uid), {}) for uid in ids]


def score_table(
    table: pd.DataFrame,
    labels: pd.DataFrame,
    card: ArtifactCard,
    booster: Any,
    contexts: Sequence[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per upload of ``table`` (raw features, index upload_id) with labels, scores and reasons.

    ``split`` is `time_split` over these uploads; the SHAP contribution of each model
    feature is kept as a ``contrib_<feature>`` column so importance can be recomputed
    on any subset.
    """
    labels = labels.loc[table.index]
    features: list[str] = list(card.spec["features"])
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ValueError(f"feature table lacks the model's features {missing}")
    pred = predict_with_reasons(booster, card, feature_records(table, features), contexts)
    threshold = float(card.threshold if card.threshold is not None else 0.5)
    spam_type = labels["spam_type"].astype(object)
    scores = pd.DataFrame(
        {
            "upload_id": table.index.astype(str),
            "uploaded_at": pd.to_datetime(table["uploaded_at"], utc=True).to_numpy(),
            "split": time_split(table["uploaded_at"]).to_numpy(dtype=object),
            "is_spam": labels["is_spam"].to_numpy(dtype=bool),
            "spam_type": spam_type.where(spam_type.notna(), None).to_numpy(),
            "kind": labels["kind"].astype(str).to_numpy(),
            "score": pred.score,
            "margin": pred.margin,
            "flagged": pred.score >= threshold,
            "rules_flag": rules_baseline(table),
            # the sweep routes a catalogue match to `duplicates` whatever the score: the system's other flag
            "duplicate_of": table["duplicate_of"].astype(object).where(table["duplicate_of"].notna(), None).to_numpy()
            if "duplicate_of" in table
            else None,
            "reasons": pred.reasons,
        }
    )
    contrib = pd.DataFrame(pred.contrib, columns=[CONTRIB_PREFIX + f for f in features])
    return pd.concat([scores, contrib], axis=1)


def score_corpus(artifact_dir: Path, corpus_dir: Path, cache_dir: Path | None = None) -> pd.DataFrame:
    """Score every labelled upload of a corpus with a saved artifact (see `score_table` for the columns).

    Audio statistics come from the shared cache (decoded once per upload).
    """
    card, booster = load_spam_artifact(Path(artifact_dir))
    return _score_corpus(card, booster, Path(corpus_dir), cache_dir)


def _score_corpus(card: ArtifactCard, booster: Any, corpus_dir: Path, cache_dir: Path | None) -> pd.DataFrame:
    table, labels = labelled_feature_table(corpus_dir, card.spec, cache_dir)
    manifest, _, artists = load_corpus(corpus_dir)
    contexts = reason_contexts(manifest, artists, card.spec, list(table.index.astype(str)))
    return score_table(table, labels, card, booster, contexts)


def gain_importance(booster: Any) -> dict[str, float]:
    """Total split gain per feature: what the trees relied on while training (not per upload)."""
    names = list(booster.feature_name())
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    return {n: float(g) for n, g in zip(names, gain, strict=True)}


def trained_on(card: ArtifactCard, corpus_dir: Path) -> bool:
    """Whether the card says it was trained on this corpus (compared by resolved path)."""
    return str(Path(corpus_dir).resolve()) in (card.training_data or "")


def split_note(split: str, same_corpus: bool, card: ArtifactCard) -> str:
    """What the evaluated uploads are, and how far the figures can be trusted."""
    if same_corpus and split == "test":
        return (
            "This is the corpus the model was trained on; only its **test split** (the latest 20 % of "
            "uploads by time) is evaluated, which the model was neither trained nor calibrated on."
        )
    if same_corpus:
        return (
            "**Warning: this is the corpus the model was trained on and `--split all` includes its training "
            "(earliest 60 %) and dev/calibration (next 20 %) uploads: these figures are optimistic.** "
            "Use `--split test` for an honest estimate."
        )
    where = f"The model was trained on other data ({card.training_data}), judged by path"
    if split == "test":
        return f"{where}; the latest 20 % of this corpus's uploads by time are evaluated."
    return f"{where}; every labelled upload of this corpus is evaluated."


def evaluate_spam(
    artifact_dir: Path, corpus_dir: Path, out_dir: Path, split: str = "test", cache_dir: Path | None = None
) -> dict[str, Any]:
    """Score the corpus, keep ``split``, and write scores.parquet plus the report to ``out_dir``."""
    from trackguard.reports.spam_report import write_spam_report

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    artifact_dir, corpus_dir, out_dir = Path(artifact_dir), Path(corpus_dir), Path(out_dir)
    card, booster = load_spam_artifact(artifact_dir)
    scored = _score_corpus(card, booster, corpus_dir, cache_dir)
    scores = scored if split == "all" else scored[scored["split"] == split].reset_index(drop=True)
    same = trained_on(card, corpus_dir)
    name = corpus_dir.resolve().name
    meta = {
        "model_id": card.model_id,
        "threshold": card.threshold,
        "target_precision": card.metrics.get("target_precision"),
        "data": (
            f"Synthetic trackguard corpus `{name}` ({corpus_dir.resolve()}), generated by `trackguard corpus make`: "
            f"{split} split, {len(scores)} of its {len(scored)} labelled uploads. Every figure below is measured "
            "on synthetic data."
        ),
        "command": f"trackguard eval spam --corpus {corpus_dir} --artifact {artifact_dir} --out {out_dir} "
        f"--split {split}",
        "split": split,
        "split_note": split_note(split, same, card),
        "trained_on_this_corpus": same,
        "training_data": card.training_data,
        "corpus": name,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out_dir / "scores.parquet")
    title = f"Spam model evaluation: {card.model_id} on synthetic corpus {name} ({split} split)"
    return write_spam_report(scores, out_dir, title=title, meta=meta, gain=gain_importance(booster))
