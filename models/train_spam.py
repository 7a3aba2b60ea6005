"""Train, calibrate and evaluate the LightGBM spam model on a labelled corpus.

    python -m models.train_spam CORPUS_DIR OUT_DIR [--seed 0] [--target-precision 0.95]

The corpus is the generator's layout (``manifest.parquet``, ``labels.parquet``,
``artists.parquet``). Uploads are split by time — the earliest 60 % train, the
next 20 % calibrate and pick the threshold (dev), the latest 20 % are only
evaluated (test) — because spam campaigns drift and a random split would let the
model see the future of a campaign it is evaluated on. Audio statistics are cached
per upload, so a second run does not decode again.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.history import history_features
from features.io import file_identity
from features.metadata import ProtectedNames
from models.artifact import ArtifactCard, load_card, save_card
from models.calibration import fit_platt
from models.duplicates import DUPLICATE_FEATURES, DuplicateCatalogue, DuplicatePolicy, UploadFingerprint, findings_frame
from models.spam import AUDIO_STAT_KEYS, BOOSTER_FILE, CATEGORICAL_FEATURES, FEATURES, calibrate, encode, feature_values
from trackguard.contracts import TrackguardError, validate_manifest_row
from trackguard.home import Home

log = logging.getLogger(__name__)
VERSION = "0.1.0"
STATS_CACHE_VERSION = "1"  # bump when features.stats changes meaning
LGB_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_cat_to_onehot": 8,
    "min_data_per_group": 20,
    "cat_smooth": 10.0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,  # fixed so the trees are identical on every machine
    "verbose": -1,
}
NUM_ROUNDS = 200
SHORT_BAND_S = (30.0, 32.0)
SPEC_DEFAULTS: dict[str, Any] = {"name_max_distance": 0.15, "top_reasons": 3, "reason_min_contrib": 0.1}


# ---------------------------------------------------------------- corpus and audio


def load_corpus(corpus_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Manifest, labels and artists tables; relative audio paths resolve against the corpus."""
    manifest = pd.read_parquet(corpus_dir / "manifest.parquet")
    labels = pd.read_parquet(corpus_dir / "labels.parquet")
    artists_path = corpus_dir / "artists.parquet"
    artists = pd.read_parquet(artists_path) if artists_path.exists() else pd.DataFrame(columns=["name"])

    def resolve(uri: Any) -> Any:
        if isinstance(uri, str) and "://" not in uri and not os.path.isabs(uri):
            return str((corpus_dir / uri).resolve())
        return uri

    manifest["audio_uri"] = manifest["audio_uri"].map(resolve)
    return manifest, labels, artists


def protected_names_from(artists: pd.DataFrame) -> list[str]:
    """Names whose lookalikes count as impersonation: the opted-in artists."""
    if "opted_in" in artists:
        artists = artists[artists["opted_in"].fillna(False).astype(bool)]
    return sorted({str(n) for n in artists.get("name", pd.Series(dtype=str)).dropna()})


def profiles_from(artists: pd.DataFrame) -> dict[str, str]:
    """profile id → artist name; keyed by both profile_id and artist_id, since a
    manifest's claimed_artist_id may carry either."""
    out: dict[str, str] = {}
    for key in ("artist_id", "profile_id"):
        if key in artists:
            for k, name in zip(artists[key], artists["name"], strict=True):
                if isinstance(k, str) and k and isinstance(name, str):
                    out[k] = name
    return out


def _cache_key(uri: str, sample_rate: int) -> str:
    """Key on the URI plus the local file's size and mtime, so a replaced file is decoded again.

    Remote objects (gs://) are keyed on the URI alone: upload objects are immutable.
    """
    return hashlib.sha1(f"{STATS_CACHE_VERSION}|{uri}|{file_identity(uri)}|{sample_rate}".encode()).hexdigest()


def _decode_stats(uri: str, sample_rate: int, fingerprint_file: Path) -> dict[str, Any]:
    """Audio statistics of one upload; its (query-thinned) fingerprint goes to ``fingerprint_file``."""
    from features.decode import decode_audio
    from features.fingerprint import fingerprint, save_fingerprint
    from features.stats import audio_stats
    from models.duplicates import for_query

    try:
        audio = decode_audio(uri, target_sr=sample_rate)
    except TrackguardError as exc:
        return {"error_code": exc.code.value}
    stats = {k: float(v) for k, v in audio_stats(audio.samples, audio.sample_rate).items()}
    stats["duration_s"] = float(audio.duration_s)
    fingerprint_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = fingerprint_file.with_name(f"{fingerprint_file.stem}.{os.getpid()}.tmp.npz")
    save_fingerprint(for_query(fingerprint(audio.samples, audio.sample_rate)), tmp)
    tmp.replace(fingerprint_file)
    return stats


def _fingerprint_path(stats_file: Path) -> Path:
    return stats_file.with_suffix(".fp.npz")


def _cached_stats(args: tuple[str, str, int]) -> dict[str, Any]:
    uri, cache_file, sample_rate = args
    path = Path(cache_file)
    if path.exists():
        stats = dict(json.loads(path.read_text()))
        if "error_code" in stats or _fingerprint_path(path).exists():
            return stats
    stats = _decode_stats(uri, sample_rate, _fingerprint_path(path))
    if stats.get("error_code") in ("audio_missing", "internal_error"):
        return stats  # may be transient (a file still being written, a network error): do not remember it
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stats))
    tmp.replace(path)
    return stats


def _stats_file(cache_dir: Path, uri: str, sample_rate: int) -> Path:
    key = _cache_key(uri, sample_rate)
    return cache_dir / key[:2] / f"{key}.json"


def compute_audio_stats(
    manifest: pd.DataFrame, cache_dir: Path, sample_rate: int = 16000, workers: int | None = None
) -> pd.DataFrame:
    """Audio statistics per upload (index upload_id), decoded once and cached as JSON per upload.

    The same decode caches each upload's fingerprint (see `load_fingerprints`); column
    ``fingerprint_file`` says where (None when the audio could not be decoded).
    """
    files = [_stats_file(cache_dir, str(uri), sample_rate) for uri in manifest["audio_uri"]]
    jobs = [(str(uri), str(f), sample_rate) for uri, f in zip(manifest["audio_uri"], files, strict=True)]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_cached_stats, jobs, chunksize=8))
    else:
        results = [_cached_stats(j) for j in jobs]
    frame = pd.DataFrame(results, index=pd.Index(manifest["upload_id"].astype(str), name="upload_id"))
    for col in (*AUDIO_STAT_KEYS, "duration_s"):
        if col not in frame:
            frame[col] = np.nan
    fp_files = [str(_fingerprint_path(f)) if _fingerprint_path(f).exists() else None for f in files]
    frame["fingerprint_file"] = fp_files
    return frame


def duplicate_table(manifest: pd.DataFrame, stats: pd.DataFrame, policy: DuplicatePolicy | None = None
                    ) -> pd.DataFrame:
    """As-of duplicate features per valid upload (index upload_id), matched in upload-time order.

    The same `DuplicateCatalogue.match` the sweep runs, on a throw-away catalogue, so
    training sees exactly the features serving computes.
    """
    from features.fingerprint import load_fingerprint

    files = stats["fingerprint_file"].groupby(level=0).first() if "fingerprint_file" in stats else pd.Series()
    durations = stats["duration_s"].groupby(level=0).first()
    batch = []
    for raw in manifest.to_dict("records"):
        try:
            row = validate_manifest_row(raw)
        except TrackguardError:
            continue
        path = files.get(row.upload_id)
        if isinstance(path, str):
            batch.append(UploadFingerprint(row.upload_id, row.uploaded_at, row.uploader_id,
                                           float(durations.get(row.upload_id, 0.0)), load_fingerprint(path)))
    return findings_frame(DuplicateCatalogue(None, policy).match(batch))


# ---------------------------------------------------------------- features and split


def build_feature_table(
    manifest: pd.DataFrame,
    stats: pd.DataFrame,
    protected: ProtectedNames,
    profiles: Mapping[str, str],
) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """Raw feature values per upload (index upload_id) and the confusable match per upload.

    History is computed over the whole manifest (bad uploads happened too and count
    toward an uploader's volume), as of each upload's time.
    """
    ids = manifest["upload_id"].astype(str)
    durations = stats["duration_s"].groupby(level=0).first()
    hist_in = manifest.assign(upload_id=ids, duration_s=ids.map(durations).to_numpy())
    history = history_features(hist_in, SHORT_BAND_S).to_dict("index")
    duplicates = duplicate_table(manifest, stats)
    duplicate_features = duplicates[list(DUPLICATE_FEATURES)].to_dict("index")
    stats_by_id = stats.to_dict("index")
    rows, confusable = [], {}
    for raw in manifest.to_dict("records"):
        try:
            row = validate_manifest_row(raw)
        except TrackguardError:
            continue  # invalid rows become error verdicts, never training examples
        if row.upload_id in confusable:
            continue  # a repeated upload_id is a duplicate_upload_id error
        st = stats_by_id.get(row.upload_id, {})
        duration = st.get("duration_s", math.nan)
        values, meta = feature_values(row, st, duration, history.get(row.upload_id, {}), protected, profiles,
                                      duplicate_features.get(row.upload_id))
        values["upload_id"], values["uploaded_at"] = row.upload_id, row.uploaded_at
        values["duplicate_of"] = duplicates["duplicate_of"].get(row.upload_id)
        rows.append(values)
        confusable[row.upload_id] = meta.confusable_with
    return pd.DataFrame(rows).set_index("upload_id"), confusable


def time_split(uploaded_at: pd.Series, fractions: tuple[float, float] = (0.6, 0.2)) -> pd.Series:
    """'train' / 'dev' / 'test' by time: earliest first; ties broken by index for determinism."""
    order = pd.DataFrame({"t": pd.to_datetime(uploaded_at, utc=True), "i": uploaded_at.index}).sort_values(["t", "i"])
    n = len(order)
    n_train, n_dev = round(fractions[0] * n), round(fractions[1] * n)
    split = np.array(["test"] * n, dtype=object)
    split[:n_train] = "train"
    split[n_train : n_train + n_dev] = "dev"
    return pd.Series(split, index=order["i"].to_numpy()).reindex(uploaded_at.index)


# ---------------------------------------------------------------- metrics


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the precision-recall curve (step-wise, as average precision)."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # evaluate only between distinct scores
    precision = tp / np.arange(1, len(y) + 1)
    recall_gain = np.diff(np.r_[0, tp[last_of_tie]]) / y.sum()
    return float(np.sum(recall_gain * precision[last_of_tie]))


def pr_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall) for 'flag when score >= threshold', one per distinct score."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s_sorted, tp = s[order], np.cumsum(y[order])
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    k = np.arange(1, len(y) + 1)[last]
    return s_sorted[last], tp[last] / k, tp[last] / max(int(y.sum()), 1)


def precision_at_recall(y: np.ndarray, s: np.ndarray, recall: float) -> float:
    _, p, r = pr_points(y, s)
    ok = r >= recall
    return float(p[ok].max()) if ok.any() else float("nan")


def threshold_for_precision(y: np.ndarray, s: np.ndarray, target: float) -> dict[str, Any]:
    """Lowest threshold whose precision on (y, s) reaches ``target`` (most recall at that precision).

    When no threshold reaches it, the most precise one is used and ``target_met`` is False.
    """
    t, p, r = pr_points(y, s)
    ok = p >= target
    # most recall; among equal recall the highest threshold (lower ones only add false positives)
    i = int(np.flatnonzero(ok & (r == r[ok].max()))[0]) if ok.any() else int(np.argmax(p))
    return {"threshold": float(t[i]), "precision": float(p[i]), "recall": float(r[i]), "target_met": bool(ok.any())}


def rules_baseline(table: pd.DataFrame, max_keywords: int = 3, burst_1h: int = 10) -> np.ndarray:
    """Hand-written rules a moderator would start with; the model must beat them."""
    duration = table["duration_s"].to_numpy(dtype=np.float64)
    short = (duration >= SHORT_BAND_S[0]) & (duration < SHORT_BAND_S[1])
    keywords = table["title_keyword_count"].to_numpy() >= max_keywords
    confusable = table["artist_confusable"].to_numpy() > 0
    burst = np.nan_to_num(table["uploader_count_1h"].to_numpy(dtype=np.float64)) >= burst_1h
    return np.asarray(short | keywords | confusable | burst)


def _recall_by_type(flagged: np.ndarray, labels: pd.DataFrame) -> dict[str, dict[str, float]]:
    out = {}
    spam = labels["is_spam"].to_numpy(dtype=bool)
    types = labels["spam_type"].fillna("").astype(str).to_numpy()
    for kind in sorted(set(types[spam])):
        mask = spam & (types == kind)
        out[kind or "unknown"] = {"recall": float(flagged[mask].mean()), "n": int(mask.sum())}
    return out


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, labels: pd.DataFrame) -> dict[str, Any]:
    flagged = p >= threshold
    tp = int((flagged & y).sum())
    negatives = labels["kind"].astype(str).to_numpy()
    return {
        "n": len(y),
        "n_spam": int(y.sum()),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "pr_auc": average_precision(y, p),
        "precision_at_recall_0.9": precision_at_recall(y, p, 0.9),
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(int(y.sum()), 1),
        "recall_by_spam_type": _recall_by_type(flagged, labels),
        "flag_rate_by_kind": {k: float(flagged[(negatives == k) & ~y].mean()) for k in sorted(set(negatives[~y]))},
    }


def evaluate_rules(y: np.ndarray, flagged: np.ndarray, labels: pd.DataFrame) -> dict[str, Any]:
    tp = int((flagged & y).sum())
    return {
        "rule": "duration 30-32 s or >= 3 title keywords or confusable artist name or >= 10 uploads in 1 h",
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(int(y.sum()), 1),
        "recall_by_spam_type": _recall_by_type(flagged, labels),
    }


def _earlier_same_content(table: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """Per upload: True when an earlier labelled upload has the same content (song) id."""
    content = labels["content_id"] if "content_id" in labels else pd.Series(None, index=labels.index)
    order = pd.DataFrame({"t": pd.to_datetime(table["uploaded_at"].reindex(labels.index), utc=True),
                          "c": content}).sort_values(["t"], kind="stable")
    seen = order["c"].notna() & order.duplicated("c", keep="first")
    return seen.reindex(labels.index).fillna(False).astype(bool)


def evaluate_duplicates(table: pd.DataFrame, labels: pd.DataFrame) -> dict[str, Any]:
    """Duplicate matching against the corpus's ground truth, over every labelled upload.

    Matching is not learned from the labels, so all splits are fair to count. Two truths:
    the re-upload spam (``spam_type == duplicate``), and *shared content*: an earlier
    upload has the same song, which also covers a clone made over its bona fide twin's
    accompaniment (a real content match, routed by the detector first). A match is
    *right* when it names an upload with the same content.
    """
    found = table["duplicate_of"].reindex(labels.index)
    predicted = found.notna().to_numpy()
    reupload = (labels["spam_type"].astype(str) == "duplicate").to_numpy()
    shared = _earlier_same_content(table, labels).to_numpy()
    content = labels.get("content_id", pd.Series(None, index=labels.index))
    right = np.array([isinstance(f, str) and f in content.index and content.get(f) == content.get(uid)
                      and isinstance(content.get(uid), str) for uid, f in found.items()])
    transforms = labels.get("duplicate_transform", pd.Series(None, index=labels.index, dtype=object))
    transforms = transforms.astype(object).where(transforms.notna(), "").astype(str)
    return {
        "n": len(labels),
        "n_reuploads": int(reupload.sum()),
        "n_shared_content": int(shared.sum()),
        "n_matched": int(predicted.sum()),
        "precision_same_content": float(right[predicted].mean()) if predicted.any() else float("nan"),
        "recall_reuploads": float(predicted[reupload].mean()) if reupload.any() else float("nan"),
        "recall_shared_content": float(predicted[shared].mean()) if shared.any() else float("nan"),
        "matched_by_kind": {str(k): int(v) for k, v in labels["kind"][predicted].value_counts().items()},
        "wrong_matches": sorted(str(u) for u in labels.index[predicted & ~right]),
        "recall_by_transform": {
            t: {"recall": float(predicted[reupload & (transforms == t).to_numpy()].mean()),
                "n": int((reupload & (transforms == t).to_numpy()).sum())}
            for t in sorted(set(transforms[reupload]))
        },
    }


# ---------------------------------------------------------------- training


def lgb_params(n_train: int, seed: int) -> dict[str, Any]:
    """LGB_PARAMS with leaf sizes scaled down for small corpora.

    A demo corpus has a few hundred uploads; with 20 rows per leaf the trees could
    not split on a spam type that has 10 training examples.
    """
    min_leaf = max(3, min(int(LGB_PARAMS["min_data_in_leaf"]), n_train // 30))
    return {**LGB_PARAMS, "min_data_in_leaf": min_leaf, "min_data_per_group": min_leaf, "seed": seed}


def fit_booster(x: np.ndarray, y: np.ndarray, features: Sequence[str], seed: int) -> Any:
    import lightgbm as lgb

    cats = [i for i, f in enumerate(features) if f in CATEGORICAL_FEATURES]
    params = lgb_params(len(y), seed)
    data = lgb.Dataset(x, label=y.astype(np.float64), feature_name=list(features), categorical_feature=cats)
    return lgb.train(params, data, num_boost_round=NUM_ROUNDS)


def _categories(table: pd.DataFrame) -> dict[str, list[str]]:
    return {c: sorted(str(v) for v in table[c].dropna().unique()) for c in CATEGORICAL_FEATURES}


def _labelled(table: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    labels = labels.assign(upload_id=labels["upload_id"].astype(str)).set_index("upload_id")
    labels = labels[labels["kind"].astype(str) != "bad_input"]
    if "expected_error_code" in labels:
        labels = labels[labels["expected_error_code"].isna()]
    return labels.loc[labels.index.intersection(table.index)]


def train_from_tables(
    manifest: pd.DataFrame,
    labels: pd.DataFrame,
    artists: pd.DataFrame,
    stats: pd.DataFrame,
    out_dir: Path,
    seed: int = 0,
    target_precision: float = 0.95,
    training_data: str = "",
    command: str = "",
    exclude_features: Sequence[str] = (),
) -> ArtifactCard:
    """Everything after decoding: features, time split, fit, calibrate, evaluate, save.

    ``exclude_features`` drops features the serving path cannot supply (e.g. history
    computed without durations), so training and serving see the same inputs.
    """
    protected_list, profiles = protected_names_from(artists), profiles_from(artists)
    table, labels = labelled_table(manifest, labels, artists, stats, float(SPEC_DEFAULTS["name_max_distance"]))
    split = time_split(table["uploaded_at"])
    categories = {c: v for c, v in _categories(table[split == "train"]).items() if c not in set(exclude_features)}
    features = [f for f in FEATURES if f not in set(exclude_features)]
    x = encode(table.to_dict("records"), features, categories)
    y = labels["is_spam"].to_numpy(dtype=bool)
    masks = {name: (split == name).to_numpy() for name in ("train", "dev", "test")}
    booster = fit_booster(x[masks["train"]], y[masks["train"]], features, seed)
    margin = np.asarray(booster.predict(x, raw_score=True), dtype=np.float64)
    calibration = fit_platt(margin[masks["dev"]], y[masks["dev"]])
    p = calibrate(margin, calibration)
    op = threshold_for_precision(y[masks["dev"]], p[masks["dev"]], target_precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out_dir / BOOSTER_FILE))
    spec = {
        **SPEC_DEFAULTS,
        "features": features,
        "categorical": [c for c in CATEGORICAL_FEATURES if c in features],
        "categories": categories,
        "protected_names": protected_list,
        "profiles": profiles,
        "short_band_s": list(SHORT_BAND_S),
        "duplicate_policy": dataclasses.asdict(DuplicatePolicy()),  # the matching its duplicate features saw
        "lgb_params": {**lgb_params(int(masks["train"].sum()), seed), "num_boost_round": NUM_ROUNDS},
    }
    card = ArtifactCard(
        slot="spam",
        name="lgbm",
        class_path="models.spam.SpamScorer",
        spec=spec,
        version=VERSION,
        training_data=training_data or f"{len(table)} labelled uploads (in-memory tables)",
        metrics=_metrics(table, labels, y, p, masks, op, target_precision, booster, features),
        threshold=op["threshold"],
        calibration={"a": calibration["a"], "b": calibration["b"]},
        files={BOOSTER_FILE: ""},
        command=command,
    )
    save_card(out_dir, card)
    return card


def labelled_feature_table(
    corpus_dir: Path, spec: Mapping[str, Any] | None = None, cache_dir: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw feature values (index upload_id) and their labels for every labelled upload of a corpus.

    Protected names and profiles come from that corpus's artists (they are deployment
    data, like the enrolment database); ``spec`` (a model card's) sets the name
    distance. Bad-input uploads are left out: they are error verdicts, not spam.
    """
    manifest, labels, artists = load_corpus(Path(corpus_dir))
    stats = compute_audio_stats(manifest, cache_dir or Home.from_env().cache / "spam-stats")
    distance = float((spec or SPEC_DEFAULTS).get("name_max_distance", SPEC_DEFAULTS["name_max_distance"]))
    return labelled_table(manifest, labels, artists, stats, distance)


def labelled_table(manifest: pd.DataFrame, labels: pd.DataFrame, artists: pd.DataFrame, stats: pd.DataFrame,
                   name_max_distance: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature table and labels of the labelled, valid uploads; names and profiles from ``artists``."""
    protected = ProtectedNames(protected_names_from(artists), name_max_distance)
    table, _ = build_feature_table(manifest, stats, protected, profiles_from(artists))
    labels = _labelled(table, labels)
    return table.loc[labels.index], labels


def evaluate_corpus(artifact_dir: Path, corpus_dir: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Score every labelled upload of another corpus with a saved artifact: an out-of-corpus test."""
    import lightgbm as lgb

    card = load_card(Path(artifact_dir))
    booster = lgb.Booster(model_file=str(Path(artifact_dir) / BOOSTER_FILE))
    table, labels = labelled_feature_table(Path(corpus_dir), card.spec, cache_dir)
    x = encode(table.to_dict("records"), card.spec["features"], card.spec["categories"])
    p = calibrate(np.asarray(booster.predict(x, raw_score=True)), card.calibration)
    y = labels["is_spam"].to_numpy(dtype=bool)
    return {
        "corpus": str(Path(corpus_dir).resolve()),
        "model": evaluate(y, p, float(card.threshold if card.threshold is not None else 0.5), labels),
        "rules_baseline": evaluate_rules(y, rules_baseline(table), labels),
        "duplicates": evaluate_duplicates(table, labels),
    }


def _metrics(
    table: pd.DataFrame,
    labels: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    masks: Mapping[str, np.ndarray],
    op: Mapping[str, Any],
    target_precision: float,
    booster: Any,
    features: Sequence[str],
) -> dict[str, Any]:
    test, dev = masks["test"], masks["dev"]
    rules = rules_baseline(table)
    gain = booster.feature_importance(importance_type="gain")
    top = sorted(zip(features, gain, strict=True), key=lambda fg: -fg[1])[:12]
    times = pd.to_datetime(table["uploaded_at"], utc=True)
    return {
        "split": {
            name: {"n": int(m.sum()), "from": str(times[m].min()), "to": str(times[m].max())}
            for name, m in masks.items()
        },
        "target_precision": target_precision,
        "dev_operating_point": dict(op),
        "dev": {"pr_auc": average_precision(y[dev], p[dev])},
        "test": evaluate(y[test], p[test], float(op["threshold"]), labels[test]),
        "rules_baseline_test": evaluate_rules(y[test], rules[test], labels[test]),
        "duplicates_all_splits": evaluate_duplicates(table, labels),
        "feature_gain_top": {f: round(float(g), 2) for f, g in top},
    }


# The batch sweep computes history from manifest metadata before any audio is
# decoded, so it has no durations: keep the duration-based history feature out of
# the default model so training and serving see the same inputs.
SERVING_UNAVAILABLE = ("uploader_short_share",)


def train_spam(
    corpus_dir: Path,
    out_dir: Path,
    seed: int = 0,
    target_precision: float = 0.95,
    cache_dir: Path | None = None,
    exclude_features: Sequence[str] = SERVING_UNAVAILABLE,
    eval_corpora: Sequence[Path] = (),
) -> ArtifactCard:
    """Train the spam model on a generated corpus and save its artifact in ``out_dir``.

    Each of ``eval_corpora`` (other generated corpora, e.g. other seeds) is scored
    with the saved model; the results land in ``metrics["external_test"]``.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    manifest, labels, artists = load_corpus(corpus_dir)
    cache = cache_dir or Home.from_env().cache / "spam-stats"
    stats = compute_audio_stats(manifest, cache)
    described = f"synthetic trackguard corpus {corpus_dir.resolve()} ({len(manifest)} uploads; split by uploaded_at)"
    argv = ["python", "-m", "models.train_spam", str(corpus_dir), str(out_dir), "--seed", str(seed)]
    argv += ["--target-precision", str(target_precision)] + [f"--exclude={f}" for f in exclude_features]
    argv += [f"--eval-corpus={c}" for c in eval_corpora]
    card = train_from_tables(
        manifest, labels, artists, stats, out_dir, seed, target_precision, described, shlex.join(argv), exclude_features
    )
    if eval_corpora:
        card.metrics["external_test"] = [evaluate_corpus(out_dir, Path(c), cache) for c in eval_corpora]
        save_card(out_dir, card)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-precision", type=float, default=0.95)
    parser.add_argument("--exclude", action="append", default=[], help="feature to leave out (repeatable)")
    parser.add_argument("--eval-corpus", action="append", default=[], type=Path, help="another corpus to test on")
    args = parser.parse_args(argv)
    unknown = set(args.exclude) - set(FEATURES)
    if unknown:
        parser.error(f"unknown features {sorted(unknown)}; known: {', '.join(FEATURES)}")
    card = train_spam(
        args.corpus_dir, args.out_dir, args.seed, args.target_precision, None, args.exclude, args.eval_corpus
    )
    json.dump({"model_id": card.model_id, "threshold": card.threshold, "metrics": card.metrics}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
