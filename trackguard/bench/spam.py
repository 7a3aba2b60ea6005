"""`trackguard bench spam`: throughput of the spam model's three CPU stages, per row count.

Rows are synthetic upload metadata generated here (titles, artist names incl.
lookalikes of protected names, uploaders with bursts, timestamps) plus made-up
audio statistics. Measured separately, for each row count, in one run:

- ``metadata features``: `features.metadata.metadata_features` called once per row
  (text features and the protected-name match), as the sweep calls it per track.
- ``history features``: `features.history.history_features` over the whole table
  (as-of counts per uploader/distributor/title; O(n log n)).
- ``inference``: encode → raw margin → SHAP contributions → calibration → reasons
  (`models.eval_spam.predict_with_reasons`, the serving computation), in batches of
  ``batch_size`` and one upload per call; ``batched_over_single`` is the speed-up.
  One-at-a-time is timed on at most ``single_rows`` rows so large sizes finish.

Audio statistics are not measured: they are computed while decoding and are timed
by `trackguard bench sweep` (decode and featurize stages). Nor are the duplicate
features (fingerprint queries, `trackguard bench fingerprint`): here they are missing
(NaN), as for an upload the index did not match.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.history import history_features
from features.metadata import ProtectedNames, metadata_features
from models.artifact import ArtifactCard
from models.eval_spam import Predictions, load_spam_artifact, predict_with_reasons
from models.spam import AUDIO_STAT_KEYS, feature_values, visible
from trackguard.bench.report import emit
from trackguard.contracts import ManifestRow, validate_manifest_row
from trackguard.home import Home

BATCH_SIZE = 256
SINGLE_ROWS = 2000
TRAIN_ROWS = 3000
SPAM_SHARE = 0.12
_WORDS = (
    "harbour",
    "letters",
    "night",
    "drive",
    "golden",
    "static",
    "paper",
    "moon",
    "velvet",
    "river",
    "glass",
    "echo",
    "summer",
    "wires",
    "north",
    "window",
    "fever",
    "ghost",
    "city",
    "lantern",
    "autumn",
    "silver",
    "garden",
    "signal",
)
_KEYWORDS = (
    "sleep",
    "rain",
    "relax",
    "focus",
    "study",
    "lofi",
    "white",
    "noise",
    "asmr",
    "432hz",
    "calm",
    "deep",
    "ocean",
    "waves",
    "hours",
)
_FIRST = (
    "Ada",
    "Ben",
    "Cleo",
    "Dario",
    "Elsa",
    "Finn",
    "Greta",
    "Hugo",
    "Iris",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pia",
    "Rui",
    "Sana",
    "Teo",
    "Vera",
)
_LAST = (
    "Moreau",
    "Quinn",
    "Sato",
    "Berg",
    "Novak",
    "Ferrer",
    "Hale",
    "Lind",
    "Vale",
    "Reed",
    "Stone",
    "Marsh",
    "Ortiz",
    "Brandt",
    "Chen",
    "Dias",
)
_LOOKALIKE = str.maketrans({"a": "а", "e": "е", "o": "о", "i": "і", "M": "М", "A": "А", "T": "Т", "K": "К"})
_SPAM_TYPES = ("keyword_stuffing", "short_bulk", "confusable_name", "bulk_burst", "profile_mismatch")


# --------------------------------------------------------------------------- synthetic rows


def synthetic_artists(n: int = 200, protected: int = 40) -> pd.DataFrame:
    """Artist table: every first×last name combination up to ``n``; the first ``protected`` opted in."""
    names = [f"{f} {last}" for last in _LAST for f in _FIRST][:n]
    return pd.DataFrame(
        {
            "artist_id": [f"a{i}" for i in range(len(names))],
            "profile_id": [f"p{i}" for i in range(len(names))],
            "name": names,
            "opted_in": [i < protected for i in range(len(names))],
        }
    )


def _honest(rng: np.random.Generator, artists: Sequence[str]) -> dict[str, Any]:
    i = int(rng.integers(0, len(artists)))
    words = list(rng.choice(_WORDS, int(rng.integers(1, 4))))
    if rng.random() < 0.15:  # honest titles use keywords too ("Rain Song")
        words.append(str(rng.choice(_KEYWORDS)))
    return {
        "title": " ".join(words).title(),
        "artist_name": artists[i],
        "claimed_artist_id": f"p{i}" if rng.random() < 0.7 else None,
        "uploader_id": f"label-{i % 50}",
        "duration_s": float(rng.uniform(30.5, 31.5) if rng.random() < 0.03 else rng.uniform(120, 320)),
    }


def _spam(rng: np.random.Generator, kind: str, artists: Sequence[str], protected: int) -> dict[str, Any]:
    row = _honest(rng, artists)
    row["claimed_artist_id"] = None
    if kind == "keyword_stuffing":
        row["title"] = " ".join(rng.choice(_KEYWORDS, int(rng.integers(4, 9)))).title()
    elif kind == "short_bulk":
        row["duration_s"] = float(rng.uniform(30.2, 31.9))
        row["title"] = f"Track {int(rng.integers(0, 9999)):04d}"
    elif kind == "confusable_name":
        row["artist_name"] = str(artists[int(rng.integers(0, protected))]).translate(_LOOKALIKE)
    elif kind == "profile_mismatch":
        row["artist_name"], row["claimed_artist_id"] = "Random Act", f"p{int(rng.integers(0, protected))}"
    return row


def synthetic_uploads(n: int, seed: int = 0, spam_share: float = SPAM_SHARE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` synthetic uploads (manifest columns + ``duration_s``) and their labels (kind, is_spam, spam_type).

    Spam arrives in campaigns: one uploader, several uploads a minute apart; honest
    labels sometimes release albums at once, so bursts alone do not mean spam.
    """
    rng = np.random.default_rng(seed)
    artists = list(synthetic_artists()["name"])
    protected = int(synthetic_artists()["opted_in"].sum())
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rows: list[dict[str, Any]] = []
    labels: list[tuple[str, bool, str | None]] = []
    t = 0.0
    while len(rows) < n:
        t += float(rng.exponential(60.0))
        spam = rng.random() < spam_share / 4  # campaigns average ~4 uploads
        kind = str(rng.choice(_SPAM_TYPES)) if spam else "clean"
        size = int(rng.integers(2, 7)) if spam or rng.random() < 0.03 else 1
        uploader = f"spammer-{int(rng.integers(0, 40))}" if spam else None
        for k in range(size):
            row = _spam(rng, kind, artists, protected) if spam else _honest(rng, artists)
            row["uploader_id"] = uploader or row["uploader_id"]
            row["uploaded_at"] = (start + dt.timedelta(seconds=t + 60 * k)).isoformat()
            rows.append(row)
            labels.append(("spam" if spam else "clean", spam, kind if spam else None))
    df = pd.DataFrame(rows[:n])
    df["upload_id"] = [f"bench-{i:07d}" for i in range(len(df))]
    df["audio_uri"] = [f"/synthetic/{u}.flac" for u in df["upload_id"]]
    df["distributor_id"] = rng.choice(["dist-a", "dist-b", "dist-cheap"], len(df))
    df["genre"] = rng.choice(["pop", "ambient", "rock", "electronic"], len(df))
    df["declared_ai"] = False
    lab = pd.DataFrame(labels[:n], columns=["kind", "is_spam", "spam_type"]).assign(upload_id=df["upload_id"])
    return df, lab


def synthetic_stats(uploads: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Made-up audio statistics per upload (index upload_id): the bench does not decode audio."""
    rng = np.random.default_rng(seed)
    n = len(uploads)
    stats = pd.DataFrame({k: rng.normal(0.0, 1.0, n) for k in AUDIO_STAT_KEYS})
    stats["loudness_lufs"] = rng.normal(-14.0, 3.0, n)
    stats["spectral_flatness"] = rng.uniform(0.02, 0.4, n)
    stats["silence_ratio"] = rng.uniform(0.0, 0.1, n)
    stats["duration_s"] = uploads["duration_s"].to_numpy()
    return stats.set_axis(pd.Index(uploads["upload_id"], name="upload_id"))


# --------------------------------------------------------------------------- the model


def train_tiny(out_dir: Path, n: int = TRAIN_ROWS, seed: int = 1) -> ArtifactCard:
    """Train a spam artifact on ``n`` synthetic labelled rows (no audio), for when none exists.

    Its quality is beside the point: inference cost depends on the tree count and
    depth, which match the real training (same parameters and rounds).
    """
    from models.train_spam import SERVING_UNAVAILABLE, train_from_tables

    uploads, labels = synthetic_uploads(n, seed)
    manifest = uploads.drop(columns=["duration_s"])
    return train_from_tables(
        manifest,
        labels,
        synthetic_artists(),
        synthetic_stats(uploads, seed),
        out_dir,
        seed=seed,
        training_data=f"{n} synthetic labelled bench rows (trackguard.bench.spam, seed {seed}; no audio)",
        command=f"trackguard.bench.spam.train_tiny(n={n}, seed={seed})",
        exclude_features=SERVING_UNAVAILABLE,
    )


def _names(card: ArtifactCard) -> tuple[ProtectedNames, dict[str, str]]:
    spec = card.spec
    protected = ProtectedNames(spec.get("protected_names", []), float(spec.get("name_max_distance", 0.15)))
    return protected, dict(spec.get("profiles", {}))


# --------------------------------------------------------------------------- stages


def _manifest_rows(uploads: pd.DataFrame) -> list[ManifestRow]:
    return [validate_manifest_row(r) for r in uploads.drop(columns=["duration_s"]).to_dict("records")]


def model_inputs(
    uploads: pd.DataFrame, card: ArtifactCard, short_band_s: tuple[float, float] = (30.0, 32.0)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Raw feature values and reason contexts per upload, built as the serving path builds them."""
    protected, profiles = _names(card)
    history = history_features(uploads, short_band_s).to_dict("index")
    stats = synthetic_stats(uploads).to_dict("index")
    rows, contexts = [], []
    for row in _manifest_rows(uploads):
        st = stats[row.upload_id]
        values, meta = feature_values(row, st, st["duration_s"], history[row.upload_id], protected, profiles)
        rows.append(values)
        contexts.append(
            {
                "artist_name": visible(row.artist_name),
                "confusable_with": meta.confusable_with,
                "claimed_profile_name": meta.claimed_profile_name,
            }
        )
    return rows, contexts


def infer(
    booster: Any,
    card: ArtifactCard,
    rows: Sequence[Mapping[str, Any]],
    contexts: Sequence[Mapping[str, Any]],
    batch_size: int,
) -> tuple[Predictions, list[float]]:
    """Score ``rows`` ``batch_size`` at a time; the joined predictions and each call's seconds."""
    parts: list[Predictions] = []
    seconds: list[float] = []
    for i in range(0, len(rows), batch_size):
        t0 = time.perf_counter()
        parts.append(predict_with_reasons(booster, card, rows[i : i + batch_size], contexts[i : i + batch_size]))
        seconds.append(time.perf_counter() - t0)
    joined = Predictions(
        margin=np.concatenate([p.margin for p in parts]),
        score=np.concatenate([p.score for p in parts]),
        contrib=np.concatenate([p.contrib for p in parts]),
        reasons=[r for p in parts for r in p.reasons],
    )
    return joined, seconds


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _row(n: int, measure: str, tracks: int, wall_s: float, calls: Sequence[float] = ()) -> dict[str, Any]:
    row: dict[str, Any] = {
        "rows": n,
        "measure": measure,
        "tracks": tracks,
        "wall_s": wall_s,
        "tracks_per_s": tracks / wall_s if wall_s > 0 else float("nan"),
    }
    if calls:
        row["p50_s"] = float(np.percentile(calls, 50))
        row["p95_s"] = float(np.percentile(calls, 95))
    return row


def size_rows(
    n: int, booster: Any, card: ArtifactCard, batch_size: int = BATCH_SIZE, single_rows: int = SINGLE_ROWS
) -> list[dict[str, Any]]:
    """The four measurements for one row count."""
    uploads, _ = synthetic_uploads(n, seed=n)
    records = _manifest_rows(uploads)
    protected, profiles = _names(card)
    meta_s = _timed(
        lambda: [
            metadata_features(r.title, r.artist_name, r.claimed_artist_id, r.declared_ai, protected, profiles)
            for r in records
        ]
    )
    band = tuple(card.spec.get("short_band_s", (30.0, 32.0)))
    short_band = (float(band[0]), float(band[1]))
    hist_s = _timed(lambda: history_features(uploads, short_band))
    rows, contexts = model_inputs(uploads, card, short_band)
    infer(booster, card, rows[:batch_size], contexts[:batch_size], batch_size)  # warm-up
    _, batch_calls = infer(booster, card, rows, contexts, batch_size)
    m = min(n, single_rows)
    _, single_calls = infer(booster, card, rows[:m], contexts[:m], 1)
    batched = _row(n, f"inference batched ({batch_size}/call)", n, sum(batch_calls), batch_calls)
    single = _row(n, "inference one at a time", m, sum(single_calls), single_calls)
    batched["batched_over_single"] = batched["tracks_per_s"] / single["tracks_per_s"]
    return [
        _row(n, "metadata features (per row)", n, meta_s),
        _row(n, "history features (whole table)", n, hist_s),
        batched,
        single,
    ]


# --------------------------------------------------------------------------- sweep share


def sweep_share(path: Path) -> dict[str, Any] | str:
    """Spam scoring's share of the sweep's per-track time, per track count, from `bench sweep`'s JSON.

    Uses its ``score spam`` stage (scoring pre-featurized tracks) against its
    ``end-to-end sweep`` row; returns a note when the file or those rows are absent.
    """
    if not path.exists():
        return f"skipped: no {path} (run `trackguard bench sweep --json {path}` first)"
    try:
        rows = json.loads(path.read_text()).get("rows", [])
    except (json.JSONDecodeError, AttributeError) as err:
        return f"skipped: {path} is not a bench-sweep JSON ({err})"
    out: dict[str, Any] = {}
    for n in sorted({r.get("tracks") for r in rows if isinstance(r.get("tracks"), int)}):
        spam = [r for r in rows if r.get("tracks") == n and r.get("stage") == "score spam"]
        e2e = [r for r in rows if r.get("tracks") == n and str(r.get("stage", "")).startswith("end-to-end")]
        if spam and e2e and e2e[0].get("wall_s"):
            spam_s, e2e_s = float(spam[0]["wall_s"]) / n, float(e2e[0]["wall_s"]) / n
            out[str(n)] = {"spam_s_per_track": spam_s, "sweep_s_per_track": e2e_s, "spam_share": spam_s / e2e_s}
    return out or f"skipped: {path} has no 'score spam' and 'end-to-end sweep' rows with wall_s"


# --------------------------------------------------------------------------- entry point


def bench_spam(
    sizes: Sequence[int],
    artifact: str | Path | None = None,
    json_path: str | None = None,
    batch_size: int = BATCH_SIZE,
    single_rows: int = SINGLE_ROWS,
    sweep_json: Path | None = None,
) -> list[dict[str, Any]]:
    """Run every size, print the table (and write ``json_path``); return the rows.

    ``artifact`` defaults to TRACKGUARD_HOME/models/spam; when that has no model, a
    tiny one is trained in-process on synthetic rows and the output says so.
    """
    home = Home.from_env()
    default = home.models / "spam"
    path = Path(artifact) if artifact else (default if (default / "artifact.json").exists() else None)
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            train_tiny(Path(tmp))
            path = Path(tmp)
            model_note = f"no artifact at {default}: tiny booster trained in-process on {TRAIN_ROWS} synthetic rows"
        else:
            model_note = f"artifact {path}"
        card, booster = load_spam_artifact(path)
        rows = [r for n in sizes for r in size_rows(int(n), booster, card, batch_size, single_rows)]
    growth: dict[str, dict[str, float]] = {}
    for r in rows:
        growth.setdefault(r["measure"], {})[str(r["rows"])] = round(float(r["tracks_per_s"]), 1)
    extra = {
        "data": "synthetic upload rows generated in-process (titles, artist names incl. lookalikes, uploaders, "
        "timestamps) with made-up audio statistics",
        "model": f"{card.model_id} ({model_note}); {len(card.spec['features'])} features, {booster.num_trees()} trees",
        "audio_stats": "not measured here: computed while decoding, timed by `trackguard bench sweep`",
        "duplicate_features": "not measured here (fingerprint queries: `trackguard bench fingerprint`); NaN inputs",
        "single_at_a_time_rows": f"at most {single_rows} rows per size",
        "tracks_per_s_by_rows": growth,
        "spam_share_of_sweep": sweep_share(sweep_json or home.root / "reports" / "bench-sweep.json"),
    }
    emit(
        "bench spam (synthetic upload rows; metadata + history features and model inference, no audio)",
        rows,
        json_path,
        extra,
    )
    return rows
