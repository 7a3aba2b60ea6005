"""`trackguard eval detector`: score a trained detector on a labelled corpus and write its report.

Tracks are the corpus's vocal clean/clone uploads (as in training). With
``split="test"`` only the artifact's own test split (``split.json``: unseen songs
and unseen voices) is scored, so nothing it was trained or calibrated on is
counted; ``split="all"`` scores every such upload and is meant for a corpus the
model never saw (another seed); ``split="unseen-voices"`` scores, of another seed's
corpus, only the uploads sung by voices the model did not train on (corpora of every
seed share one voice catalogue, so "all" would count the training voices' new songs), less
any upload it calibrated on (a dev voice's, of the corpus it trained on or of an ``--extra-corpus``).

Several corpora pool into one report (`Source`: a corpus and the split taken from it):
more songs per voice than one seed holds. Their upload ids are prefixed with the corpus
directory's name, as `train detector` prefixes an extra corpus's, and the bootstrap still
resamples voices, each with its uploads from every corpus.

Scoring follows `models.detector.WindowDetector`: the best vocal-activity windows,
a top-k mean of their logits, the stored calibration. Accuracy vs context repeats
the scoring with the first 1, 2, 4, ... windows, and reports the seconds of audio
actually covered (the union of the windows, which overlap).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from models.artifact import ArtifactCard, load_card
from models.artist_norm import ArtistNorm, normalised_logits
from models.detector import LoadedDetector, calibrate, load_detector
from models.spoof_metrics import equal_error_rate, min_dcf
from models.train_detector import (
    TrackWindows,
    corpus_prefix,
    detector_tracks,
    load_split,
    load_windows,
    pool_tracks,
    read_corpus,
    require_split_corpus,
    split_prefix,
    window_logits,
    with_corpus_prefix,
)
from models.train_separator import with_stems
from trackguard.home import Home

CONTEXT_WINDOWS = (1, 2, 4, 8)
POOLING_K = (1, 2, 3, 5, 8)  # 1: the most synthetic-looking window alone; the window budget: the plain mean
UNSEEN_VOICES = "unseen-voices"
SPLITS = ("test", "dev", "all", UNSEEN_VOICES)


@dataclasses.dataclass(frozen=True)
class Source:
    """One corpus of an evaluation and the split scored from it."""

    corpus_dir: Path
    split: str

    @classmethod
    def parse(cls, text: str, default_split: str) -> Source:
        """``DIR`` or ``DIR:SPLIT`` (``SPLIT`` one of `SPLITS`; otherwise the colon is part of the path)."""
        head, _, tail = text.rpartition(":")
        return cls(Path(head), tail) if head and tail in SPLITS else cls(Path(text), default_split)

    def describe(self) -> str:
        return f"{self.corpus_dir} ({self.split})"


def covered_seconds(starts: np.ndarray, win_s: float) -> float:
    """Seconds of audio covered by windows of length ``win_s`` starting at ``starts`` (overlaps counted once)."""
    total, end = 0.0, -np.inf
    for s in np.sort(starts):
        total += win_s - max(0.0, min(win_s, end - s))
        end = max(end, s + win_s)
    return float(total)


def select_tracks(corpus_dir: Path, artifact_dir: Path, split: str, on_stems: bool = False) -> pd.DataFrame:
    """The split's vocal clean/clone uploads, with codec, genre, vocal style and mix. ``on_stems``: each
    upload's audio is replaced by its vocal stem (`corpus make --stems`), and uploads without one are
    left out: what the detector would score behind a perfect separator."""
    manifest, labels = read_corpus(corpus_dir)
    tracks = detector_tracks(manifest, labels)
    if on_stems:
        tracks = with_stems(tracks, corpus_dir)
    if split == UNSEEN_VOICES:
        tracks = tracks[~tracks["artist"].isin(train_voices(artifact_dir))]
        tracks = tracks[~_calibrated_on(tracks.index, corpus_dir, artifact_dir)]
    elif split != "all":
        require_split_corpus(corpus_dir, artifact_dir,
                             f"it has no {split!r} split: use --split {UNSEEN_VOICES} (or all)")
        ids = set(load_split(artifact_dir).get(split, []))
        tracks = tracks[tracks.index.isin(ids)]
    if tracks.empty:
        raise ValueError(f"no vocal clean/clone uploads of split {split!r} in {corpus_dir}")
    formats = _column(labels, "format", tracks.index)
    codecs = [_codec(uri, fmt) for uri, fmt in zip(tracks["audio_uri"], formats, strict=True)]
    return tracks.assign(codec=codecs, genre=_column(manifest, "genre", tracks.index),
                         vocal_style=_column(labels, "vocal_style", tracks.index), mix=_mix(labels, tracks.index))


def _calibrated_on(ids: pd.Index, corpus_dir: Path, artifact_dir: Path) -> np.ndarray:
    """Which uploads the artifact trained or calibrated on: in split.json's train or dev under the prefix
    it gives this corpus (`split_prefix`)."""
    prefix = split_prefix(corpus_dir, load_card(artifact_dir, verify=False).spec)
    if prefix is None:
        return np.zeros(len(ids), dtype=bool)
    split = load_split(artifact_dir)
    seen = set(split.get("train", [])) | set(split.get("dev", []))
    return np.array([prefix + str(i) in seen for i in ids], dtype=bool)


def select_sources(sources: Sequence[Source], artifact_dir: Path, on_stems: bool = False) -> pd.DataFrame:
    """`select_tracks` of each source, with ``corpus`` and ``split`` columns; with several, ids are prefixed
    by corpus (`with_corpus_prefix`)."""
    prefixes = [corpus_prefix(s.corpus_dir) for s in sources]
    if len(set(prefixes)) < len(prefixes):
        raise ValueError(f"corpora to pool need distinct directory names (their ids are prefixed by them): {prefixes}")
    parts = []
    for source, prefix in zip(sources, prefixes, strict=True):
        tracks = select_tracks(source.corpus_dir, artifact_dir, source.split, on_stems)
        if len(sources) > 1:
            tracks = with_corpus_prefix(tracks, source.corpus_dir)
        parts.append(tracks.assign(corpus=prefix.rstrip("/"), split=source.split))
    return pd.concat(parts) if len(parts) > 1 else parts[0]


def _mix(labels: pd.DataFrame, ids: pd.Index) -> list[str | None]:
    """How the vocal sits in the song: "a cappella", or its level over the accompaniment ("+6 dB")."""
    if "a_cappella" not in labels or "vocal_to_accompaniment_db" not in labels:
        return [None] * len(ids)
    table = _by_upload(labels, ids)
    out: list[str | None] = []
    for a_cappella, level in zip(table["a_cappella"], table["vocal_to_accompaniment_db"], strict=True):
        if a_cappella == 1:  # True (or 1); a missing label is NaN and compares unequal
            out.append("a cappella")
        else:
            out.append(None if pd.isna(level) else f"{float(level):+.0f} dB")
    return out


def _column(table: pd.DataFrame, name: str, ids: pd.Index) -> list[object]:
    """A text column of the manifest or labels per upload (None where the table has none: older corpora)."""
    if name not in table:
        return [None] * len(ids)
    return [v if isinstance(v, str) and v else None for v in _by_upload(table, ids)[name]]


def _by_upload(table: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """The manifest's or labels' rows for ``ids``, in that order (NaN rows for ids it lacks)."""
    return table.assign(upload_id=table["upload_id"].astype(str)).set_index("upload_id").reindex(ids)


def train_voices(artifact_dir: Path) -> set[str]:
    """The voice artist ids the artifact trained on (recorded by `trackguard train detector`)."""
    voices = load_card(artifact_dir, verify=False).metrics.get("train_voices")
    if voices is None:
        raise ValueError(f"{artifact_dir} does not record its training voices (trained before they were "
                         "recorded): retrain it, or use --split all")
    return {str(v) for v in voices}


def _codec(uri: str, fmt: object) -> str:
    """The delivered container (the label's ``format``, else the file extension)."""
    if isinstance(fmt, str) and fmt:
        return fmt
    suffix = Path(uri).suffix.lower().lstrip(".")
    return suffix or "unknown"


def context_table(per_track: Sequence[Tensor], windows: Sequence[TrackWindows], y: np.ndarray, k: int,
                  win_s: float, counts: Sequence[int]) -> pd.DataFrame:
    """Pooled EER/minDCF when only each track's first n (best) windows are scored, per n in ``counts``."""
    rows = []
    for n in counts:
        logits = pool_tracks(per_track, k, first=n)
        seconds = np.mean([covered_seconds(w.starts[:n], win_s) for w in windows])
        rows.append({"windows": n, "context_s": round(float(seconds), 1), "eer": equal_error_rate(y, logits),
                     "min_dcf": min_dcf(y, logits), "n_tracks": len(y)})
    return pd.DataFrame(rows)


def pooling_table(per_track: Sequence[Tensor], y: np.ndarray, max_windows: int,
                  ks: Sequence[int] = POOLING_K) -> pd.DataFrame:
    """Pooled EER/minDCF for other top-k pooling sizes over the stored window budget (k = max_windows
    is the plain mean): whether the artifact's ``pooling_k`` is a good choice on this data."""
    rows = []
    for k in sorted({min(k, max_windows) for k in ks}):
        logits = pool_tracks(per_track, k, first=max_windows)
        rows.append({"pooling_k": k, "eer": equal_error_rate(y, logits), "min_dcf": min_dcf(y, logits),
                     "n_tracks": len(y)})
    return pd.DataFrame(rows)


@dataclasses.dataclass
class ScoredTracks:
    scores: pd.DataFrame  # one row per scored track: the report's input
    context: pd.DataFrame  # accuracy vs seconds of context
    pooling: pd.DataFrame  # accuracy vs top-k pooling size
    card: ArtifactCard
    undecodable: dict[str, str]  # upload_id -> error code: reported, not silently dropped
    artist_norm: dict[str, Any] | None = None  # slope, anchor, levels (with --artist-references)


def score_tracks(artifact_dir: Path, sources: Sequence[Source],
                 contexts: Sequence[int] = CONTEXT_WINDOWS, artist_references: bool = False,
                 on_stems: bool = False) -> ScoredTracks:
    """Score every source's selected uploads; ``artist_references``: levels from the first corpus's references."""
    model = load_detector(artifact_dir, "cpu")
    spec = model.card.spec
    k, max_windows = int(spec["pooling_k"]), int(spec["max_windows"])
    tracks = select_sources(sources, artifact_dir, on_stems)
    cache = Home.from_env().cache / "detector-windows"
    n_windows = max(max_windows, max(contexts))  # decoded and scored once; contexts and pooling reuse them
    tracks, windows, failed = load_windows(tracks, cache, spec, n_windows, None)
    y = tracks["is_synthetic"].to_numpy(dtype=bool)
    per_track = window_logits(model.net, windows, n_windows)
    logits = pool_tracks(per_track, k, first=max_windows)
    probs = calibrate(torch.from_numpy(logits), model.card.calibration).numpy()
    scores = pd.DataFrame({
        "upload_id": tracks.index, "is_synthetic": y, "generator_family": tracks["family"].where(y, None),
        "codec": tracks["codec"].to_numpy(), "voice": tracks["artist"].astype(str).to_numpy(),
        "logit": logits, "probability": probs, "corpus": tracks["corpus"].to_numpy(dtype=object),
        "split": tracks["split"].to_numpy(dtype=object),
        "twin_upload_id": tracks["twin"].where(tracks["twin"].notna(), None).to_numpy(dtype=object),
        "genre": tracks["genre"].to_numpy(dtype=object), "vocal_style": tracks["vocal_style"].to_numpy(dtype=object),
        "mix": tracks["mix"].to_numpy(dtype=object),
    })
    ctx = context_table(per_track, windows, y, k, float(spec["win_s"]), contexts)
    norm_meta = normalise_by_artist(scores, model, sources[0].corpus_dir) if artist_references else None
    return ScoredTracks(scores, ctx, pooling_table(per_track, y, max_windows), model.card, failed, norm_meta)


def normalise_by_artist(scores: pd.DataFrame, model: LoadedDetector, corpus_dir: Path) -> dict[str, Any]:
    """Add ``normalised_logit``/``normalised_probability``: each voice's offset from the corpus's reference
    recordings of that voice (none of them is a scored upload). Returns what the report says about it."""
    from models.fit_artist_norm import corpus_reference_levels

    norm = ArtistNorm.from_calibration(model.card.calibration)
    if norm is None:
        raise ValueError("this detector has no per-artist normalisation: measure its anchor with "
                         "`trackguard train artist-norm --artifact DIR --corpus CORPUS_IT_TRAINED_ON`")
    levels = corpus_reference_levels(model, corpus_dir, set(scores["voice"]))
    normalised = normalised_logits(scores["logit"].to_numpy(), scores["voice"].tolist(), levels, norm)
    scores["normalised_logit"] = normalised
    scores["normalised_probability"] = calibrate(torch.from_numpy(normalised), model.card.calibration).numpy()
    return {"slope": norm.slope, "anchor": norm.anchor, "levels": levels,
            "levels_from": f"the reference recordings in {corpus_dir}/references of each scored voice"}


def evaluate_detector(artifact_dir: Path, corpus_dir: Path | Sequence[Source], out_dir: Path, split: str = "test",
                      artist_references: bool = False, on_stems: bool = False) -> dict[str, Any]:
    """Write the report of ``artifact_dir`` on one corpus's ``split``, or on several `Source` records pooled."""
    from trackguard.reports.detector_report import write_detector_report

    sources = [Source(Path(corpus_dir), split)] if isinstance(corpus_dir, str | Path) else list(corpus_dir)
    scored = score_tracks(Path(artifact_dir), sources, artist_references=artist_references, on_stems=on_stems)
    scores, card = scored.scores, scored.card
    what = "vocal stems of the vocal uploads (oracle separation)" if on_stems else "vocal uploads"
    corpora = (f"synthetic corpus at {sources[0].corpus_dir}, {sources[0].split} split" if len(sources) == 1 else
               "synthetic corpora pooled: " + ", ".join(s.describe() for s in sources))
    meta = {
        "model_id": card.model_id, "threshold": card.threshold,
        "data": f"{corpora} ({len(scores)} {what})",
        "command": f"trackguard eval detector --artifact {artifact_dir} {_corpus_options(sources)} --out {out_dir}"
                   + (" --artist-references" if artist_references else "") + (" --on-stems" if on_stems else ""),
        "heldout_family": card.metrics.get("holdout_family"),
        "training_data": card.training_data,
        "undecodable_uploads": scored.undecodable,
        "artist_norm": scored.artist_norm,
        "copy_margin_logit": card.calibration.get("copy_margin_logit"),
        "threshold_by_dev_voice": card.metrics.get("threshold_by_dev_voice"),
        "target_false_flag_rate": card.metrics.get("target_false_flag_rate"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out_dir / "scores.parquet")
    return write_detector_report(scores, out_dir, title=f"Synthetic-voice detector evaluation: {card.model_id}",
                                 meta={**meta, "pooling_k": int(card.spec["pooling_k"])}, context=scored.context,
                                 pooling=scored.pooling)


def _corpus_options(sources: Sequence[Source]) -> str:
    """The command-line options that select ``sources`` (one split for all: ``--split``; else per corpus)."""
    if len({s.split for s in sources}) == 1:
        return " ".join(f"--corpus {s.corpus_dir}" for s in sources) + f" --split {sources[0].split}"
    return " ".join(f"--corpus {s.corpus_dir}:{s.split}" for s in sources)
