"""Enrolment of artist voiceprints from reference recordings (thin path-taking wrapper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from features.decode import decode_audio
from features.stats import audio_stats
from features.windows import stack_windows, vocal_activity_windows
from models.voiceprints import VoiceprintStore

MIN_REFERENCE_S = 4.0
MAX_SILENCE_RATIO = 0.8


class EnrolmentError(ValueError):
    pass


def reference_embedding(path: str, encoder: object) -> np.ndarray:
    """One embedding for one reference recording; refuses short or silent audio."""
    from models.speaker import embed_windows

    audio = decode_audio(path, target_sr=16000, min_duration_s=0.05)
    if audio.duration_s < MIN_REFERENCE_S:
        raise EnrolmentError(f"{path}: reference is {audio.duration_s:.1f} s; need at least {MIN_REFERENCE_S:.0f} s")
    stats = audio_stats(audio.samples, audio.sample_rate)
    if stats["silence_ratio"] > MAX_SILENCE_RATIO or stats["rms_dbfs"] < -50:
        raise EnrolmentError(f"{path}: reference is mostly silent (silence ratio {stats['silence_ratio']:.2f})")
    windows = vocal_activity_windows(audio.samples, audio.sample_rate, win_s=3.0, hop_s=1.5, max_windows=6)
    crops = torch.from_numpy(stack_windows(audio.samples, audio.sample_rate, windows, 3.0).astype(np.float32))
    emb = embed_windows(encoder, crops).cpu().numpy()
    return np.asarray(emb.mean(axis=0), dtype=np.float32)


def enroll_artist(store: VoiceprintStore, encoder: object, artist_id: str, name: str, policy: str,
                  consent_by: str, audio: list[str], profile_id: str | None = None,
                  licensed_partner_ids: list[str] | None = None, model_id: str = "") -> int:
    if not consent_by or not consent_by.strip():
        raise EnrolmentError("refusing to enrol without a consent record: pass --consent-by WHO")
    embeddings = np.stack([reference_embedding(p, encoder) for p in audio])
    store.enroll(artist_id, name, policy, consent_by, embeddings, list(audio), profile_id=profile_id,
                 licensed_partner_ids=licensed_partner_ids, model_id=model_id)
    return len(audio)


def enroll_corpus(corpus: Path, db_url: str, consent_by: str, model_dir: str | None = None) -> list[str]:
    """Enrol every opted-in artist of a generated corpus from its reference recordings."""
    from models.speaker import load_speaker_encoder, speaker_model_id

    artists = pd.read_parquet(corpus / "artists.parquet")
    encoder = load_speaker_encoder(model_dir)
    store = VoiceprintStore(db_url)
    enrolled = []
    for a in artists[artists["opted_in"]].itertuples():
        enroll_artist(store, encoder, a.artist_id, a.name, a.policy, consent_by, list(a.reference_uris),
                      profile_id=a.profile_id, licensed_partner_ids=list(a.licensed_partner_ids),
                      model_id=speaker_model_id(model_dir))
        enrolled.append(a.artist_id)
    return enrolled
