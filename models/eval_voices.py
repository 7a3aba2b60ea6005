"""`trackguard eval voices`: singer-verification accuracy of the registry's voiceprints on a labelled corpus.

Trials are every decodable vocal upload (``voice_artist_id`` set) against every
artist *enrolled in the registry*; a trial is a target when the upload's voice is
that artist's. A clone carries the voice it imitates, so for matching it counts as
that artist's voice: the verifier's job is to say whose voice it hears, and the
detector's to say whether it is synthetic.

Each upload is embedded exactly as the sweep's verifier embeds it (of the best
vocal-activity windows, the 3 whose 2-s crops carry the most voice-band power,
`models.voice_embeddings`), scored by raw cosine against each centroid and, when the
registry holds a cohort, by AS-norm. Variants of the track embedding (one window,
eight windows, the first three windows by vocal score, three windows at fixed
positions instead of vocal-activity selection, and the whole track in one pass) are
scored on the same trials so the report can say what helps when accompaniment is
loud, and whether the windowed path gives up accuracy for its speed. Embeddings are cached
per upload, so a rerun only redraws the report.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.asnorm import VoiceCalibration
from models.verifier import (
    AS_NORM,
    BEST_WINDOW,
    MEAN,
    RAW,
    VOCAL_SCORE,
    OperatingPoint,
    operating_point,
    score_matrix,
    scorer_id,
    track_scores,
)
from models.voice_embeddings import UploadVoice, Windowing, cache_key, embed_uploads
from models.voiceprints import Voiceprints, VoiceprintStore
from trackguard.contracts import TrackguardError
from trackguard.home import Home

CACHE_SUBDIR = "voice-embeddings"
LABEL_COLUMNS = ("upload_id", "voice_artist_id", "kind", "a_cappella", "vocal_to_accompaniment_db")
# Accompaniment levels (vocal over accompaniment, dB): the corpus mixes at +12 to 0 dB;
# below 0 dB (accompaniment louder than the voice) is kept as a group so real data can fill it.
A_CAPPELLA = "a cappella"
MIXED_HIGH = "mixed ≥ 6 dB"
MIXED_MID = "mixed 0–6 dB"
MIXED_LOW = "mixed < 0 dB"
MIXED_UNKNOWN = "mixed, level unknown"
CONDITIONS = (A_CAPPELLA, MIXED_HIGH, MIXED_MID, MIXED_LOW)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A way of turning an upload into one track embedding, scored on the same trials as the verifier's."""

    column: str
    description: str


VERIFIER = Variant("raw", "verifier: of the vocal-activity windows, the 3 whose 2-s centre crops carry the most "
                          "voice-band power, pooled as the verifier's `pooling` says (the sweep's path)")
POOLING_VARIANT = {BEST_WINDOW: "raw_best3", MEAN: "raw_mean3"}  # the same windows, the other pooling
VARIANTS = (
    Variant("raw_mean3", "the verifier's 3 windows, mean embedding (pooling mean)"),
    Variant("raw_best3", "the verifier's 3 windows, best window per artist (pooling best-window)"),
    Variant("raw_vocal1", "1 window: the verifier's crop with the most voice-band power"),
    Variant("raw_vocal8", "mean of 8 windows: the 8 vocal-activity crops with the most voice-band power"),
    Variant("raw_vocalscore3", "mean of the first 3 vocal-activity windows by vocal score, 2-s crops (crop choice "
                               "vocal-score)"),
    Variant("raw_fixed3", "mean of 3 fixed, evenly spaced 2-s crops (no vocal-activity selection)"),
    Variant("raw_full", "whole track in one SpeechBrain encode_batch call (no windows; `bench voices` baseline)"),
)


@dataclasses.dataclass(frozen=True)
class OperatingThreshold:
    """The threshold the report applies, on which score, and where it came from."""

    threshold: float
    score: str  # trial column it applies to: "raw" or "asnorm"
    calibrated: bool
    source: str  # in words


# --------------------------------------------------------------------------- trials (core, no files)


def condition_of(a_cappella: Any, level_db: Any) -> str:
    """The recording condition of an upload: a cappella, or mixed at a vocal-to-accompaniment level bin."""
    if bool(a_cappella):
        return A_CAPPELLA
    if level_db is None or (isinstance(level_db, float) and math.isnan(level_db)):
        return MIXED_UNKNOWN
    level = float(level_db)
    return MIXED_HIGH if level >= 6.0 else MIXED_MID if level >= 0.0 else MIXED_LOW


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def trial_table(uploads: pd.DataFrame, windows: Sequence[np.ndarray], prints: Voiceprints,
                variants: Mapping[str, np.ndarray] | None = None, pooling: str = MEAN) -> pd.DataFrame:
    """One row per (upload, enrolled artist) trial with its labels and every score column.

    ``uploads``: one row per upload with ``LABEL_COLUMNS``; ``windows``: each upload's
    window embeddings [k, d] as the verifier takes them, scored exactly as the verifier
    scores them (`models.verifier.track_scores` with ``pooling``) into column ``raw``
    and, with a cohort in ``prints``, ``asnorm``; the same windows with the other pooling
    go into ``raw_mean3`` or ``raw_best3`` (raw cosine). ``variants``: score column →
    [len(uploads), d] track embeddings of other ways to embed a track, raw cosine only.
    """
    missing = [c for c in LABEL_COLUMNS if c not in uploads.columns]
    if missing:
        raise ValueError(f"uploads lack columns {missing}")
    artist_ids = prints.artist_ids
    m, n = len(uploads), len(artist_ids)
    if m == 0 or n == 0:
        raise ValueError(f"no trials: {m} uploads × {n} enrolled artists")
    if len(windows) != m:
        raise ValueError(f"{len(windows)} window sets for {m} uploads")
    voice = uploads["voice_artist_id"].astype(str).to_numpy()
    levels = pd.to_numeric(uploads["vocal_to_accompaniment_db"], errors="coerce").to_numpy(dtype=np.float64)
    a_cap = uploads["a_cappella"].fillna(False).astype(bool).to_numpy()
    table = pd.DataFrame({
        "upload_id": np.repeat(uploads["upload_id"].astype(str).to_numpy(), n),
        "artist_id": np.tile(np.asarray(artist_ids, dtype=object), m),
        "voice_artist_id": np.repeat(voice, n),
        "is_target": (voice[:, None] == np.asarray(artist_ids, dtype=object)[None, :]).reshape(-1),
        "kind": np.repeat(uploads["kind"].astype(str).to_numpy(), n),
        "a_cappella": np.repeat(a_cap, n),
        "vocal_to_accompaniment_db": np.repeat(np.where(a_cap, np.nan, levels), n),
        "condition": np.repeat([condition_of(a, lv) for a, lv in zip(a_cap, levels, strict=True)], n),
        "voice_enrolled": np.repeat(np.isin(voice, np.asarray(artist_ids, dtype=object)), n),
    })
    normalisation = AS_NORM if prints.has_cohort else RAW
    units = [unit_rows(w) for w in windows]
    scored = [track_scores(u, prints, normalisation, pooling) for u in units]
    table["raw"] = np.concatenate([raw for raw, _ in scored]).astype(np.float64)
    if normalisation == AS_NORM:
        table["asnorm"] = np.concatenate([normed for _, normed in scored]).astype(np.float64)
    other = MEAN if pooling == BEST_WINDOW else BEST_WINDOW
    table[POOLING_VARIANT[other]] = np.concatenate(
        [track_scores(u, prints, RAW, other)[0] for u in units]).astype(np.float64)
    for column, emb in (variants or {}).items():
        if len(emb) != m:
            raise ValueError(f"{column}: {len(emb)} embeddings for {m} uploads")
        table[column] = score_matrix(unit_rows(emb), prints, RAW)[0].reshape(-1).astype(np.float64)
    return table


# --------------------------------------------------------------------------- the registry


def cohort_voices(store: VoiceprintStore, voices: Sequence[str] | pd.Series) -> set[str]:
    """Which of these voices (artist ids) the registry's cohort holds."""
    return {str(v) for v in store.cohort_subjects(sorted({str(v) for v in voices}))}


def report_threshold(point: OperatingPoint, calibration: VoiceCalibration | None) -> OperatingThreshold:
    """The verifier's operating point (`models.verifier.operating_point`) as the report states it."""
    source = point.why if point.calibrated else f"UNCALIBRATED: {point.why}"
    if point.calibrated and calibration is not None:
        source += (f" (measured FAR {calibration.measured_far:.4f} on {calibration.n_impostor_trials} impostor "
                   f"trials: {calibration.data})")
    return OperatingThreshold(point.threshold, "asnorm" if point.normalisation == AS_NORM else "raw",
                              point.calibrated, source)


def calibration_dict(calibration: VoiceCalibration | None) -> dict[str, Any] | None:
    return None if calibration is None else dataclasses.asdict(calibration)


# --------------------------------------------------------------------------- embeddings (files)


def fixed_crops(samples: np.ndarray, sample_rate: int, n: int, crop_s: float) -> np.ndarray:
    """``n`` crops of ``crop_s`` centred at evenly spaced points of the track, as [n, crop]: no vocal selection."""
    size = int(crop_s * sample_rate)
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    centres = (np.arange(n) + 0.5) / n * len(x)
    starts = np.clip(centres.astype(np.int64) - size // 2, 0, len(x) - size)
    return np.stack([x[s: s + size] for s in starts])


def fixed_window_embeddings(encoder: Any, samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Embeddings [3, d] of 3 evenly spaced 2-s crops (`fixed_crops`): windows without vocal-activity selection."""
    from models.speaker import embed_windows

    return embed_windows(encoder, torch.from_numpy(fixed_crops(samples, sample_rate, 3, 2.0))).numpy()


def whole_track_embedding(encoder: Any, samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Embedding [1, d] of the whole track in one ``encode_batch`` call (the speed benchmark's baseline)."""
    from models.speaker import embed_windows

    return embed_windows(encoder, torch.from_numpy(np.asarray(samples, dtype=np.float32)[None, :])).numpy()


Embedder = Callable[[Any, np.ndarray, int], np.ndarray]
EMBEDDERS: dict[str, Embedder] = {"fixed-even-3x2s": fixed_window_embeddings, "whole-track": whole_track_embedding}


def embed_uploads_with(uris: Mapping[str, str], encoder: Any, model_id: str, cache_dir: Path,
                       method: str) -> dict[str, np.ndarray]:
    """upload_id → L2-normalised mean of ``EMBEDDERS[method]``'s embeddings, cached per upload like
    `embed_uploads` (the method is part of the key); undecodable uploads are left out."""
    from features.decode import decode_audio

    embed = EMBEDDERS[method]
    out: dict[str, np.ndarray] = {}
    for upload_id, uri in uris.items():
        key = cache_key(uri, f"{model_id}|{method}", Windowing())
        path = Path(cache_dir) / key[:2] / f"{key}.npz"
        if path.exists():
            with np.load(path) as z:
                out[upload_id] = z["track"]
            continue
        try:
            audio = decode_audio(uri, target_sr=16000)
        except TrackguardError:
            continue
        emb = embed(encoder, audio.samples, audio.sample_rate)
        track = unit_rows(emb.mean(axis=0, keepdims=True))[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, track=track, windows=emb)
        tmp.replace(path)
        out[upload_id] = track
    return out


def vocal_uploads(manifest: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Uploads with a singing voice (``voice_artist_id`` set), with their audio URI and label columns."""
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise ValueError(f"labels lack columns {missing} (not a trackguard corpus?)")
    lab = labels.loc[labels["voice_artist_id"].notna(), list(LABEL_COLUMNS)].copy()
    lab["upload_id"] = lab["upload_id"].astype(str)
    uris = manifest.assign(upload_id=manifest["upload_id"].astype(str)).drop_duplicates("upload_id")
    out = lab.merge(uris[["upload_id", "audio_uri"]], on="upload_id", how="inner")
    return out.sort_values("upload_id", kind="stable").reset_index(drop=True)


def upload_variants(uploads: pd.DataFrame, voices: Mapping[str, UploadVoice],
                    extra: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Variant column → [len(uploads), d] track embeddings: the verifier's best window alone, and ``extra``."""
    ids = list(uploads["upload_id"])
    variants = {"raw_vocal1": unit_rows(np.stack([voices[u].windows[0] for u in ids]))}
    for column, by_id in extra.items():
        variants[column] = unit_rows(np.stack([by_id[u] for u in ids]))
    return variants


def _embed_all(uploads: pd.DataFrame, encoder: Any, model_id: str, cache_dir: Path, variants: bool,
               progress: Callable[[str], None]
               ) -> tuple[pd.DataFrame, list[np.ndarray], dict[str, np.ndarray], list[str]]:
    """Embed every upload (verifier path, plus variants); returns the decodable uploads, their verifier window
    embeddings, the variants' track embeddings and the skipped ids."""
    uris = dict(zip(uploads["upload_id"], uploads["audio_uri"], strict=True))
    progress(f"embedding {len(uris)} vocal uploads (verifier windows; cached in {cache_dir})")
    voices = embed_uploads(uris, encoder, model_id, cache_dir, Windowing())
    skipped = sorted(set(uris) - set(voices))
    kept = uploads[uploads["upload_id"].isin(list(voices))].reset_index(drop=True)
    extra: dict[str, Mapping[str, np.ndarray]] = {}
    if variants:
        ok = {u: uris[u] for u in kept["upload_id"]}
        progress("embedding variants: 8 vocal windows")
        eight = embed_uploads(ok, encoder, model_id, cache_dir, Windowing(n_windows=8))
        extra["raw_vocal8"] = {u: v.track for u, v in eight.items()}
        progress("embedding variants: the first 3 windows by vocal score")
        by_score = embed_uploads(ok, encoder, model_id, cache_dir, Windowing(crop_choice=VOCAL_SCORE))
        extra["raw_vocalscore3"] = {u: v.track for u, v in by_score.items()}
        progress("embedding variants: 3 fixed windows")
        extra["raw_fixed3"] = embed_uploads_with(ok, encoder, model_id, cache_dir, "fixed-even-3x2s")
        progress("embedding variants: whole tracks (slow on first run: seconds per upload)")
        extra["raw_full"] = embed_uploads_with(ok, encoder, model_id, cache_dir, "whole-track")
        every = set.intersection(*(set(by_id) for by_id in extra.values()))
        kept = kept[kept["upload_id"].isin(list(every))].reset_index(drop=True)
    return kept, [voices[u].windows for u in kept["upload_id"]], upload_variants(kept, voices, extra), skipped


# --------------------------------------------------------------------------- entry point


def limitations(corpus_name: str, cohort_size: int | None = None, calibration: VoiceCalibration | None = None,
                model_id: str | None = None) -> list[str]:
    """What the figures cannot show, in words (the report's Limitations section)."""
    notes = [
        f"Synthetic data: every voice in `{corpus_name}` is a Debian speech synthesiser (flite, festival, espeak-ng "
        "variants) sung through WORLD; real singers are out of its distribution.",
        "The enrolment references and the trials come from the same synthetic TTS voices (the same engine and "
        "parameters per artist, recorded the same way), so a voice never varies across sessions, microphones, "
        "years or singing styles as a real singer's does: these EERs are optimistic for real catalogues.",
        "Clones are copy-synthesised from their bona fide twin, so they keep the imitated voice's timbre closely; "
        "real voice clones of an artist trained from public recordings may match less (or more) well.",
        "Small sets: one trial moves a group's rate by 1/n of that group; read every rate with its counts.",
    ]
    cal_model = None if calibration is None else calibration.model_id
    if model_id and cal_model and cal_model != model_id:
        notes.append(f"The registry's calibration was measured with speaker encoder `{cal_model}`, these scores "
                     f"with `{model_id}`: its threshold may not mean the same false-accept rate here.")
    if cohort_size or calibration is not None:
        notes.append(
            f"The AS-norm cohort ({cohort_size or 0} embeddings) and the calibration come from the registry. Corpus "
            "voices found in the cohort are left out of these trials (AS-norm would find their own voice there). "
            "If the calibration was measured on this corpus (see its data above), FAR at its threshold is measured "
            "on the trials it was set on: in-sample and optimistic. A corpus of another seed gives other songs, "
            "takes and mixes by the same voices (out of sample in content, not in voices).")
    return notes


def evaluate_voices(corpus_dir: Path, out_dir: Path, db_url: str | None = None, *, encoder: Any = None,
                    model_id: str | None = None, cache_dir: Path | None = None, variants: bool = True,
                    command: str | None = None, progress: Callable[[str], None] = lambda _: None,
                    pooling: str = MEAN) -> dict[str, Any]:
    """Score every vocal upload of the corpus against the registry, write scores.parquet and the report.

    ``pooling`` is the verifier's (policy ``pooling``); the registry's calibration is
    applied only if it was measured with the same encoder and pooling.

    ``encoder``/``model_id`` default to the pretrained ECAPA-TDNN; tests pass a stub.
    Raises ValueError when the registry has no enrolled artists or the corpus no vocal uploads.
    """
    from models.speaker import load_speaker_encoder, speaker_model_id
    from models.train_spam import load_corpus
    from trackguard.reports.voices_report import write_voices_report

    home = Home.from_env()
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    url = db_url or home.db_url
    store = VoiceprintStore(url)
    prints: Voiceprints = store.voiceprints()
    if not prints.artist_ids:
        raise ValueError(f"no enrolled artists in the registry at {_redact(url)}: enrol first, e.g. "
                         f"`trackguard artists enroll-corpus --corpus {corpus_dir} --consent-by WHO`")
    cohort = prints.cohort if prints.has_cohort else None
    calibration = prints.calibration
    manifest, labels, _ = load_corpus(corpus_dir)
    uploads = vocal_uploads(manifest, labels)
    if uploads.empty:
        raise ValueError(f"{corpus_dir} has no vocal uploads (labels.voice_artist_id is empty)")
    in_cohort = cohort_voices(store, uploads["voice_artist_id"]) if cohort is not None else set()
    n_all = len(uploads)
    uploads = uploads[~uploads["voice_artist_id"].isin(sorted(in_cohort))].reset_index(drop=True)
    if encoder is None:
        encoder, model_id = load_speaker_encoder(), speaker_model_id()
    model_id = model_id or "unknown-encoder"
    cache = Path(cache_dir or home.cache / CACHE_SUBDIR)
    kept, windows, variant_emb, skipped = _embed_all(uploads, encoder, model_id, cache, variants, progress)
    if kept.empty:
        raise ValueError(f"none of the {len(uploads)} vocal uploads of {corpus_dir} could be decoded")
    trials = trial_table(kept, windows, prints, variant_emb, pooling)
    op = report_threshold(operating_point(prints, scorer_id(model_id, pooling)), calibration)
    name = corpus_dir.resolve().name
    variant_list = [VERIFIER, *[v for v in VARIANTS if v.column in trials.columns]]
    meta = {
        "model_id": model_id,
        "pooling": pooling,
        "corpus": name,
        "data": (f"Synthetic trackguard corpus `{name}` ({corpus_dir.resolve()}), generated by `trackguard corpus "
                 f"make`: {len(kept)} decodable vocal uploads × {len(prints.artist_ids)} enrolled artists = "
                 f"{len(trials)} trials"
                 + (f" ({n_all - len(uploads)} uploads sung by the {len(in_cohort)} corpus voices in the registry's "
                    "AS-norm cohort left out: AS-norm would find their own voice in the cohort)" if in_cohort else "")
                 + ". Every figure below is measured on synthetic data."),
        "command": command or f"trackguard eval voices --corpus {corpus_dir} --out {out_dir}",
        "enrolled": sorted(prints.artist_ids),
        "n_vocal_uploads": n_all,
        "cohort_voices_left_out": sorted(in_cohort),
        "skipped_undecodable": skipped,
        "cohort_size": None if cohort is None else len(cohort),
        "top_k": prints.top_k if cohort is not None else None,
        "threshold": dataclasses.asdict(op),
        "calibration": calibration_dict(calibration),
        "variants": {v.column: v.description for v in variant_list},
        "limitations": limitations(name, None if cohort is None else len(cohort), calibration, model_id),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    trials.to_parquet(out_dir / "scores.parquet")
    title = f"Singer verification evaluation: {model_id} voiceprints on synthetic corpus {name}"
    return write_voices_report(trials, out_dir, title=title, meta=meta)


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"

