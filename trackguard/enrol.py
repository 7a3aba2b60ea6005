"""Enrolment of artist voiceprints from reference recordings, and calibration of the registry's threshold.

Enrolment refuses references it cannot trust: too short, mostly silent, or sung by
more than one voice (`check_single_voice`), each with a message naming the file.
Each accepted reference window is embedded alone and mixed under a synthetic backing
track at every ratio of ``BACKING_DB`` (`features.backing`), and the reference's
embedding is the mean of them all: uploads mostly sing over an accompaniment, and a
voiceprint taken from a cappella audio only sits away from the voice inside a mix.

Calibration (`calibrate_corpus`) measures the registry's operating point on a
labelled corpus: it builds the AS-norm cohort from voices that are *not* enrolled,
scores every other vocal upload against every enrolled voiceprint exactly as the
sweep does (`models.verifier.score_matrix`), and picks the threshold for a target
false-accept rate on the impostor trials (`models.asnorm.threshold_for_far`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from features.augment import mix_with
from features.backing import synthetic_backing
from features.decode import decode_audio
from features.stats import audio_stats
from features.windows import stack_windows, vocal_activity_windows
from models.asnorm import DEFAULT_TOP_K, VoiceCalibration, threshold_for_far
from models.voiceprints import VoiceprintStore
from trackguard.contracts import TrackguardError

log = logging.getLogger(__name__)

MIN_REFERENCE_S = 4.0
MAX_SILENCE_RATIO = 0.8
REFERENCE_WIN_S, REFERENCE_HOP_S, REFERENCE_MAX_WINDOWS = 3.0, 1.5, 6
# Several voices in one reference: split its vocal windows into two groups (each of
# at least 2 windows, every split tried) and take the lowest cosine between the two
# groups' mean embeddings; below MIN_VOICE_AGREEMENT the reference is refused.
# Measured with the pretrained ECAPA-TDNN (3-s windows, up to 6 per reference):
# - single voice: the 36 a-cappella reference takes of the demo corpus (seed 7;
#   WORLD-sung synthetic voices, which ECAPA embeds far less consistently than
#   speech; 34 with ≥ 4 windows) 0.30–0.80; twelve espeak-ng voices speaking two
#   sentences (≈ 12 s) 0.80–0.89;
# - two voices: 5 s of one corpus artist's take joined to 5 s of another's, all 66
#   artist pairs, 0.00–0.48 (two thirds below 0.25); espeak-ng voice pairs 0.10–0.76.
# 0.25 refuses none of the single-voice references and most clearly different voice
# pairs; voices that ECAPA itself finds alike (most espeak-ng pairs, one in three
# corpus pairs) pass — it catches a duet or a wrong file, not a sound-alike.
MIN_VOICE_AGREEMENT = 0.25
MIN_WINDOWS_FOR_VOICE_CHECK = 4
# Vocal-to-backing ratios (dB) at which every reference window is also embedded (see
# the module docstring); () enrols from the a cappella windows alone. 12 to 0 dB is the
# range of the corpus's mixes; what it changes is measured by `trackguard eval voices`
# on registries enrolled with and without it (README, "Singer verification").
BACKING_DB: tuple[float, ...] = (9.0, 6.0, 3.0, 0.0)


class EnrolmentError(ValueError):
    pass


def voice_agreement(window_emb: np.ndarray) -> float | None:
    """Lowest cosine between the mean embeddings of any two-group split of the windows (None: < 4 windows).

    One voice gives similar groups however the windows are split; two voices give
    a split (by voice) whose groups disagree. Exhaustive over splits: ≤ 6 windows
    means ≤ 25 splits.
    """
    emb = np.asarray(window_emb, dtype=np.float64)
    n = len(emb)
    if n < MIN_WINDOWS_FOR_VOICE_CHECK:
        return None
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    lowest = 1.0
    for size in range(2, n // 2 + 1):
        for group in itertools.combinations(range(n), size):
            rest = [i for i in range(n) if i not in group]
            a, b = unit[list(group)].mean(axis=0), unit[rest].mean(axis=0)
            lowest = min(lowest, float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    return lowest


def reference_window_embeddings(samples: np.ndarray, sample_rate: int, encoder: object, name: str,
                                backing_db: Sequence[float] = BACKING_DB) -> np.ndarray:
    """Embeddings [k × (1 + len(backing_db)), d] of a reference's best vocal windows: the k windows alone, then
    the k windows under a synthetic backing at each ratio of ``backing_db``; refuses short, silent or
    multi-voice audio (judged on the windows alone).

    Core function (audio in memory); ``name`` only labels the error messages.
    """
    from models.speaker import embed_windows

    duration_s = len(samples) / sample_rate
    if duration_s < MIN_REFERENCE_S:
        raise EnrolmentError(f"{name}: reference is {duration_s:.1f} s; need at least {MIN_REFERENCE_S:.0f} s")
    stats = audio_stats(samples, sample_rate)
    if stats["silence_ratio"] > MAX_SILENCE_RATIO or stats["rms_dbfs"] < -50:
        raise EnrolmentError(f"{name}: reference is mostly silent (silence ratio {stats['silence_ratio']:.2f}, "
                             f"level {stats['rms_dbfs']:.0f} dBFS)")
    windows = vocal_activity_windows(samples, sample_rate, win_s=REFERENCE_WIN_S, hop_s=REFERENCE_HOP_S,
                                     max_windows=REFERENCE_MAX_WINDOWS)
    crops = torch.from_numpy(stack_windows(samples, sample_rate, windows, REFERENCE_WIN_S).astype(np.float32))
    emb = embed_windows(encoder, crops).cpu().numpy()
    check_single_voice(emb, name)
    if not backing_db:
        return np.asarray(emb, dtype=np.float32)
    mixed = torch.from_numpy(np.concatenate([under_backing(crops.numpy(), sample_rate, ratio) for ratio in backing_db]))
    return np.concatenate([emb, embed_windows(encoder, mixed).cpu().numpy()]).astype(np.float32)


def under_backing(crops: np.ndarray, sample_rate: int, ratio_db: float) -> np.ndarray:
    """Each crop [k, n] mixed with its own synthetic backing track at ``ratio_db`` vocal over backing.

    The backing is seeded by the crop's own samples, so enrolling the same audio twice
    gives the same voiceprint.
    """
    out = []
    for crop in np.asarray(crops, dtype=np.float32):
        seed = int.from_bytes(hashlib.sha256(crop.tobytes()).digest()[:8], "little")
        backing = synthetic_backing(len(crop), sample_rate, np.random.default_rng([seed, int(ratio_db * 100)]))
        out.append(mix_with(crop, backing, ratio_db))
    return np.stack(out).astype(np.float32)


def check_single_voice(window_emb: np.ndarray, name: str) -> None:
    agreement = voice_agreement(window_emb)
    if agreement is None:
        log.warning("%s: only %d vocal windows; too few to check that one voice sings it", name, len(window_emb))
        return
    if agreement < MIN_VOICE_AGREEMENT:
        raise EnrolmentError(
            f"{name}: reference seems to hold more than one voice (its vocal windows split into groups whose "
            f"embeddings agree only {agreement:.2f} < {MIN_VOICE_AGREEMENT}); enrol from a recording of the artist "
            "alone")


def reference_embedding(path: str, encoder: object, backing_db: Sequence[float] = BACKING_DB) -> np.ndarray:
    """One embedding for one reference recording (the mean of its windows, alone and under each backing ratio);
    refuses unreadable, short, silent or multi-voice audio."""
    try:
        audio = decode_audio(path, target_sr=16000, min_duration_s=0.05)
    except TrackguardError as exc:
        raise EnrolmentError(f"{path}: cannot read the reference ({exc.code.value}: {exc.message})") from exc
    emb = reference_window_embeddings(audio.samples, audio.sample_rate, encoder, path, backing_db)
    return np.asarray(emb.mean(axis=0), dtype=np.float32)


def enroll_artist(store: VoiceprintStore, encoder: object, artist_id: str, name: str, policy: str,
                  consent_by: str, audio: list[str], profile_id: str | None = None,
                  licensed_partner_ids: list[str] | None = None, model_id: str = "",
                  backing_db: Sequence[float] = BACKING_DB) -> int:
    if not consent_by or not consent_by.strip():
        raise EnrolmentError("refusing to enrol without a consent record: pass --consent-by WHO")
    embeddings = np.stack([reference_embedding(p, encoder, backing_db) for p in audio])
    store.enroll(artist_id, name, policy, consent_by, embeddings, list(audio), profile_id=profile_id,
                 licensed_partner_ids=licensed_partner_ids, model_id=model_id)
    return len(audio)


def enroll_corpus(corpus: Path, db_url: str, consent_by: str, model_dir: str | None = None,
                  backing_db: Sequence[float] = BACKING_DB) -> list[str]:
    """Enrol every opted-in artist of a generated corpus from its reference recordings."""
    from models.speaker import load_speaker_encoder, speaker_model_id

    artists = pd.read_parquet(corpus / "artists.parquet")
    encoder = load_speaker_encoder(model_dir)
    store = VoiceprintStore(db_url)
    enrolled = []
    from moderation.audit import record_registry_change

    for a in artists[artists["opted_in"]].itertuples():
        n = enroll_artist(store, encoder, a.artist_id, a.name, a.policy, consent_by, list(a.reference_uris),
                          profile_id=a.profile_id, licensed_partner_ids=list(a.licensed_partner_ids),
                          model_id=speaker_model_id(model_dir), backing_db=backing_db)
        record_registry_change(db_url, consent_by, "enroll", a.artist_id, {
            "policy": a.policy, "n_sources": n, "licensed_partner_ids": list(a.licensed_partner_ids),
            "backing_db": list(backing_db)})
        enrolled.append(a.artist_id)
    return enrolled


# ---------------------------------------------------------------------------- calibration


@dataclasses.dataclass(frozen=True)
class OperatingRates:
    threshold: float
    far: float
    n_impostor: int
    frr: float
    n_target: int
    frr_by_kind: dict[str, tuple[int, float]]  # upload kind → (target trials, FRR)


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    calibration: VoiceCalibration
    rates: OperatingRates  # on the stored scale
    raw_rates: OperatingRates | None  # raw cosine at the same target FAR, for comparison (None when raw is stored)
    cohort_voices: int
    trial_voices: int


def default_top_k(cohort_size: int) -> int:
    """AS-norm's top-k for a cohort: a fifth of it (≥ 5), at most DEFAULT_TOP_K.

    The statistics should describe a query's *nearest* cohort voices; with the
    whole cohort they degrade to plain z-norm.
    """
    return max(1, min(DEFAULT_TOP_K, max(5, cohort_size // 5), cohort_size))


def split_voices(voices: list[str]) -> tuple[list[str], list[str]]:
    """Non-enrolled voices → (cohort, held out for impostor trials): alternate in sorted order, deterministic."""
    ordered = sorted(voices)
    return ordered[0::2], ordered[1::2]


def trial_rates(scores: np.ndarray, query_voices: list[str], query_kinds: list[str], enrolled: tuple[str, ...],
                target_far: float) -> OperatingRates:
    """Threshold for ``target_far`` on the impostor cells of ``scores`` [m, n], and the FRR on its target cells.

    Cell (i, j) is a target trial when query i is sung by enrolled artist j, else an impostor trial.
    """
    target = np.array([[v == a for a in enrolled] for v in query_voices], dtype=bool).reshape(scores.shape)
    threshold, far = threshold_for_far(scores[~target], target_far)
    rejected = scores < threshold
    kinds = np.repeat(np.asarray(query_kinds, dtype=object)[:, None], scores.shape[1], axis=1)
    by_kind = {str(k): (int((target & (kinds == k)).sum()), float(rejected[target & (kinds == k)].mean()))
               for k in sorted(set(query_kinds)) if (target & (kinds == k)).any()}
    frr = float(rejected[target].mean()) if target.any() else float("nan")
    return OperatingRates(threshold, far, int((~target).sum()), frr, int(target.sum()), by_kind)


REFERENCE_KEY = "reference-take-"  # not an upload id: the manifest's ids never contain "take"


def _uris(paths: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in paths.items() if isinstance(v, str) and v}


def calibrate_corpus(corpus: Path, db_url: str, target_far: float = 0.01, cohort_from_corpus: bool = False,
                     model_dir: str | None = None, cache_dir: Path | None = None,
                     top_k: int | None = None, pooling: str = "mean") -> CalibrationResult:
    """Measure and store the registry's threshold on a labelled corpus (see the module docstring).

    With ``cohort_from_corpus`` the cohort is rebuilt from half of the corpus's
    non-enrolled voices (their reference takes and clean uploads); the other half
    and every enrolled voice provide the trials, so cohort and trials never share a
    voice. Without it the registry's cohort is used as is (raw cosine if it has
    none), and corpus voices found in it are left out of the trials. Trials are scored
    as the verifier scores them with ``pooling`` (`models.verifier.track_scores`), and the
    calibration is stored for that encoder and pooling (`models.verifier.scorer_id`).
    """
    from models.speaker import load_speaker_encoder, speaker_model_id
    from models.verifier import AS_NORM, RAW, scorer_id, track_scores
    from models.voice_embeddings import embed_uploads
    from trackguard.home import Home

    store = VoiceprintStore(db_url)
    enrolled = store.voiceprints().artist_ids
    if not enrolled:
        raise ValueError("no enrolled voiceprints to calibrate: enrol artists first "
                         "(`trackguard artists enroll-corpus --corpus DIR --consent-by WHO`)")
    artists = pd.read_parquet(corpus / "artists.parquet")
    labels = pd.read_parquet(corpus / "labels.parquet")
    manifest = pd.read_parquet(corpus / "manifest.parquet").set_index("upload_id")
    vocal = labels[labels["voice_artist_id"].notna() & (labels["kind"] != "bad_input")]
    vocal = vocal[vocal["upload_id"].isin(manifest.index)]
    non_enrolled = sorted(set(artists["artist_id"]) - set(enrolled))
    encoder = load_speaker_encoder(model_dir)
    model_id = speaker_model_id(model_dir)
    cache = Path(cache_dir or Home.from_env().cache / "voice-embeddings")

    if cohort_from_corpus:
        cohort_voices, _ = split_voices(non_enrolled)
        n_cohort = _build_cohort(store, corpus.name, artists, vocal, manifest, cohort_voices, encoder, model_id,
                                 cache)
        cohort_note = (f"cohort rebuilt from {len(cohort_voices)} of the corpus's {len(non_enrolled)} non-enrolled "
                       f"voices ({n_cohort} embeddings: reference takes and clean uploads); the other "
                       f"{len(non_enrolled) - len(cohort_voices)} non-enrolled voices are impostor-only, so cohort "
                       "and trials share no voice")
    else:
        cohort_voices = sorted(store.cohort_subjects(list(artists["artist_id"])))
        n_cohort = len(store.cohort()[1])
        cohort_note = (f"registry cohort of {n_cohort} embeddings; {len(cohort_voices)} corpus voices found in it "
                       "were left out of the trials" if n_cohort else "no cohort: raw cosine")
    prints = store.voiceprints(top_k=(top_k or default_top_k(n_cohort)) if n_cohort else DEFAULT_TOP_K)
    normalisation = AS_NORM if prints.has_cohort else RAW

    trials = vocal[~vocal["voice_artist_id"].isin(cohort_voices)]
    voices = embed_uploads(_uris(manifest.loc[trials["upload_id"], "audio_uri"].to_dict()), encoder, model_id, cache)
    trials = trials[trials["upload_id"].isin(voices)]
    scored = [track_scores(voices[u].windows, prints, normalisation, pooling) for u in trials["upload_id"]]
    raw, normed = np.stack([r for r, _ in scored]), np.stack([n for _, n in scored])
    query_voices, query_kinds = list(trials["voice_artist_id"]), list(trials["kind"])
    rates = trial_rates(normed, query_voices, query_kinds, prints.artist_ids, target_far)
    raw_rates = trial_rates(raw, query_voices, query_kinds, prints.artist_ids, target_far) \
        if normalisation == AS_NORM else None
    data = (f"{corpus.name} (synthetic corpus): {len(trials)} vocal uploads "
            f"({', '.join(f'{k} {n}' for k, n in trials['kind'].value_counts().sort_index().items())}) by "
            f"{trials['voice_artist_id'].nunique()} voices, each scored against the {len(prints.artist_ids)} enrolled "
            f"voiceprints ({pooling} pooling): {rates.n_impostor} impostor trials (the upload's voice is not the "
            f"enrolled artist; clones count as the voice they imitate) and {rates.n_target} target trials; "
            f"{cohort_note}. The threshold is "
            "chosen and its FAR measured on the same impostor trials (in-sample).")
    cal = VoiceCalibration(threshold=rates.threshold, target_far=target_far, measured_far=rates.far,
                           n_impostor_trials=rates.n_impostor, normalisation=normalisation,
                           cohort_size=len(prints.cohort), top_k=prints.top_k if normalisation == AS_NORM else 0,
                           model_id=scorer_id(model_id, pooling), data=data)
    store.set_calibration(cal)
    return CalibrationResult(cal, rates, raw_rates, len(cohort_voices), int(trials["voice_artist_id"].nunique()))


def _build_cohort(store: VoiceprintStore, corpus_name: str, artists: pd.DataFrame, vocal: pd.DataFrame,
                  manifest: pd.DataFrame, cohort_voices: list[str], encoder: object, model_id: str,
                  cache: Path) -> int:
    """Embed the cohort voices' reference takes and clean uploads (as the verifier embeds uploads) and store them."""
    from models.voice_embeddings import embed_uploads

    embeddings, sources, subjects = [], [], []
    refs = artists.set_index("artist_id")["reference_uris"]
    for number, voice in enumerate(cohort_voices, start=1):
        uris = {f"{REFERENCE_KEY}{i}": str(u) for i, u in enumerate(refs[voice], start=1)}
        clean = vocal[(vocal["voice_artist_id"] == voice) & (vocal["kind"] == "clean")]["upload_id"]
        uris.update(_uris(manifest.loc[clean, "audio_uri"].to_dict()))
        for key, voice_emb in embed_uploads(uris, encoder, model_id, cache).items():
            embeddings.append(voice_emb.track)
            kind = "reference take" if key.startswith(REFERENCE_KEY) else "clean upload"
            sources.append(f"{corpus_name}: cohort voice {number:02d}, {kind}")
            subjects.append(voice)
    if not embeddings:
        raise ValueError(f"no cohort audio could be embedded for voices {cohort_voices}")
    return store.set_cohort(np.stack(embeddings), sources, subjects)


def optout_artist(db_url: str, artist_id: str, actor: str) -> dict[str, int]:
    """Opt-out is erasure, at once: the registry's biometric data, then the match scores in filed verdicts.

    The registry keeps its non-biometric audit record; the moderation store keeps which
    artist each case was about and its decisions (see `CaseStore.erase_voice_similarity`).
    """
    from moderation.audit import record_registry_change
    from moderation.cases import CaseStore

    erased = VoiceprintStore(db_url).optout(artist_id, actor)
    erased["verdict_scores"] = CaseStore(db_url).erase_voice_similarity(artist_id)
    record_registry_change(db_url, actor, "optout", artist_id, {"erased": dict(erased)})  # counts only
    return erased
