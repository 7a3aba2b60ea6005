"""Enrolment refuses what it cannot trust: no consent, short, silent, unreadable or multi-voice references.

Voices are espeak-ng's formant voices rendered in the test (skipped, with why, when
espeak-ng or the pretrained ECAPA model is missing): they check the refusal logic,
not accuracy on real singers. See `trackguard.enrol.MIN_VOICE_AGREEMENT` for the
measurements behind the multi-voice threshold.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from models.voiceprints import ConsentError, VoiceprintStore
from tests.audio_factory import chord
from trackguard import cli
from trackguard.enrol import (
    MIN_VOICE_AGREEMENT,
    EnrolmentError,
    enroll_artist,
    reference_embedding,
    reference_window_embeddings,
    under_backing,
    voice_agreement,
)

SR = 16_000
SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the band plays on and the crowd sings along.",
    "Every night I sing this song about the city lights and the river that runs through the town.",
)
# A low male and a high female espeak-ng voice: ECAPA tells them apart (agreement 0.10 when joined);
# most espeak-ng pairs sound alike to it and would pass (see MIN_VOICE_AGREEMENT).
LOW_MALE, HIGH_FEMALE = ("en+m3", 20), ("es+f3", 80)


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (apt-get install espeak-ng)")


def espeak(voice: tuple[str, int], text: str, tmp: Path) -> np.ndarray:
    out = tmp / f"{voice[0]}-{voice[1]}-{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", voice[0], "-p", str(voice[1]), "-s", "150", "-w", str(out), text],
                   check=True, capture_output=True)
    audio, sr = sf.read(out, dtype="float32")
    return resample_poly(audio, SR, sr).astype(np.float32)


def write(path: Path, samples: np.ndarray) -> str:
    sf.write(path, samples, SR)
    return str(path)


# ---------------------------------------------------------------------------- consent


def test_enrolment_without_consent_is_refused_before_any_audio_is_read(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    for blank in ("", "   "):
        with pytest.raises(EnrolmentError, match="consent"):
            enroll_artist(store, None, "a1", "A", "block", blank, ["/does/not/exist.wav"])
    with pytest.raises(ConsentError, match="consent"):
        store.enroll("a1", "A", "block", "", np.ones((1, 4), np.float32), ["x.wav"])
    assert store.policies() == {} and store.audit() == []


def test_cli_refuses_enrolment_without_consent_by(model_dir: Path, sqlite_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ref = write(tmp_path / "ref.wav", np.zeros(SR * 5, np.float32))
    rc = cli.main(["artists", "enroll", "--artist-id", "a1", "--name", "A", "--policy", "block", "--audio", ref,
                   "--model-dir", str(model_dir), "--db-url", sqlite_url])
    assert rc == 2 and "--consent-by" in capsys.readouterr().err
    assert VoiceprintStore(sqlite_url).policies() == {}


# ---------------------------------------------------------------------------- reference checks


def test_short_silent_and_unreadable_references_are_refused_naming_the_file(tmp_path: Path) -> None:
    t = np.arange(SR * 6) / SR
    short = write(tmp_path / "short.wav", (0.3 * np.sin(2 * np.pi * 220 * t[: SR * 2])).astype(np.float32))
    silent = write(tmp_path / "silent.wav", np.zeros(SR * 6, np.float32))
    (tmp_path / "not-audio.wav").write_bytes(b"this is not a wav file" * 50)
    # No encoder needed: these are refused before any embedding is taken.
    with pytest.raises(EnrolmentError, match=r"short\.wav: reference is 2\.0 s; need at least 4 s"):
        reference_embedding(short, None)
    with pytest.raises(EnrolmentError, match=r"silent\.wav: reference is mostly silent"):
        reference_embedding(silent, None)
    with pytest.raises(EnrolmentError, match=r"not-audio\.wav: cannot read the reference"):
        reference_embedding(str(tmp_path / "not-audio.wav"), None)


def test_voice_agreement_separates_two_groups_of_windows() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 192))
    one = a + 0.8 * rng.normal(size=(6, 192))  # one noisy voice
    two = np.concatenate([a + 0.3 * rng.normal(size=(3, 192)), b + 0.3 * rng.normal(size=(3, 192))])
    assert voice_agreement(one[:3]) is None  # too few windows to split
    one_score, two_score = voice_agreement(one), voice_agreement(two)
    assert one_score is not None and two_score is not None
    assert two_score < MIN_VOICE_AGREEMENT < one_score


@needs_espeak
def test_one_voice_is_accepted_two_voices_are_refused(encoder: Any, tmp_path: Path, sqlite_url: str) -> None:
    single = write(tmp_path / "single.wav", np.concatenate([espeak(LOW_MALE, s, tmp_path) for s in SENTENCES]))
    duet = write(tmp_path / "duet.wav", np.concatenate([espeak(LOW_MALE, SENTENCES[0], tmp_path),
                                                        espeak(HIGH_FEMALE, SENTENCES[1], tmp_path)]))
    alone: tuple[float, ...] = ()  # the voice check reads the windows alone; backing windows only cost time here
    emb = reference_embedding(single, encoder, backing_db=alone)
    assert emb.shape == (192,) and np.isfinite(emb).all()
    with pytest.raises(EnrolmentError, match=r"duet\.wav: reference seems to hold more than one voice"):
        reference_embedding(duet, encoder)
    store = VoiceprintStore(sqlite_url)
    with pytest.raises(EnrolmentError, match=r"duet\.wav"):  # one bad take refuses the whole enrolment
        enroll_artist(store, encoder, "a1", "A", "block", "label:test", [single, duet], backing_db=alone)
    assert store.policies() == {}
    assert enroll_artist(store, encoder, "a1", "A", "block", "label:test", [single], backing_db=alone) == 1
    assert store.biometric_rows("a1")["voiceprint_embeddings"] == 1


# ---------------------------------------------------------------------------- backing-track augmentation


def test_under_backing_mixes_each_crop_at_the_asked_ratio_seeded_by_the_crop() -> None:
    rng = np.random.default_rng(0)
    crops = (0.05 * rng.standard_normal((2, SR))).astype(np.float32)  # quiet: no peak rescaling
    for ratio in (9.0, 0.0):
        mixed = under_backing(crops, SR, ratio)
        added = mixed.astype(np.float64) - crops
        measured = 10 * np.log10((crops.astype(np.float64) ** 2).mean(axis=1) / (added**2).mean(axis=1))
        np.testing.assert_allclose(measured, ratio, atol=0.01)
        np.testing.assert_array_equal(mixed, under_backing(crops, SR, ratio))  # same audio, same backing
    assert not np.allclose(under_backing(crops[:1], SR, 0.0), under_backing(crops[1:], SR, 0.0))


@needs_espeak
def test_enrolment_embeds_each_window_alone_and_under_each_backing_ratio(encoder: Any, tmp_path: Path) -> None:
    voice = np.concatenate([espeak(LOW_MALE, s, tmp_path) for s in SENTENCES])
    alone = reference_window_embeddings(voice, SR, encoder, "ref", backing_db=())
    both = reference_window_embeddings(voice, SR, encoder, "ref", backing_db=(6.0, 0.0))
    k = len(alone)
    assert k >= 4 and both.shape == (3 * k, 192)
    np.testing.assert_allclose(both[:k], alone, atol=1e-5)  # the windows alone come first, unchanged
    np.testing.assert_allclose(both, reference_window_embeddings(voice, SR, encoder, "ref", backing_db=(6.0, 0.0)),
                               atol=1e-6)  # enrolling the same audio again gives the same voiceprint
    at_6db, at_0db = (np.sum(both[i * k:(i + 1) * k] * alone, axis=1).mean() for i in (1, 2))
    assert at_0db < at_6db < 0.99  # a louder backing moves the embedding further from the voice alone


@needs_espeak
def test_a_voiceprint_enrolled_with_backing_is_closer_to_the_voice_inside_a_mix(encoder: Any, tmp_path: Path) -> None:
    from models.speaker import embed_windows

    reference = np.concatenate([espeak(LOW_MALE, s, tmp_path) for s in SENTENCES])
    sung = espeak(LOW_MALE, "Under the bridge we met again and the music carried us home tonight.", tmp_path)
    pad = chord(SR, len(sung) / SR, freqs=(196.0, 246.9, 293.7))  # another accompaniment than enrolment's backing
    in_mix = sung + pad[: len(sung)] * np.sqrt(np.mean(sung**2) / np.mean(pad**2))  # 0 dB
    query = embed_windows(encoder, torch.from_numpy(in_mix[None, : 3 * SR].astype(np.float32))).numpy()[0]

    def centroid(backing_db: tuple[float, ...]) -> np.ndarray:
        mean = reference_window_embeddings(reference, SR, encoder, "ref", backing_db=backing_db).mean(axis=0)
        return np.asarray(mean / np.linalg.norm(mean))

    assert float(query @ centroid((9.0, 6.0, 3.0, 0.0))) > float(query @ centroid(()))


def test_backing_ratios_on_the_command_line() -> None:
    import argparse

    assert cli._backing_ratios("9,6,3,0") == (9.0, 6.0, 3.0, 0.0)
    assert cli._backing_ratios("none") == () == cli._backing_ratios("")
    with pytest.raises(argparse.ArgumentTypeError, match="--backing-db"):
        cli._backing_ratios("loud")
    args = cli.build_parser().parse_args(["artists", "enroll-corpus", "--corpus", "c", "--consent-by", "x",
                                          "--backing-db", "6,0"])
    assert args.backing_db == (6.0, 0.0)
