"""The detector's vocal separator: mask network, its training, the LCNN front end it feeds, and the
corpus's vocal stems it learns from. All audio is synthetic (tests/audio_factory.py)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest
import torch

from features.decode import decode_audio
from features.spectral import log_mel, mel_of_power, power_spectrum
from models.base import DetectorOutput, TrackInput, create_scorer
from models.detector_nets import build_net
from models.separator import VocalMask, fit_separator, mask_loss
from models.train_detector import TRAIN_DEFAULTS, TrainingSet, fit_net, train_detector
from tests.audio_factory import noise, voice_like
from tests.test_detector import _tiny_twin_corpus, _track
from trackguard.corpus.mix import MixSpec, master, master_with_vocal
from trackguard.corpus.stems import existing_stem, stem_path

SR = 16000


def _power(wave: torch.Tensor) -> torch.Tensor:
    return power_spectrum(wave, SR)


def test_power_then_mel_is_the_log_mel_front_end() -> None:
    wave = torch.from_numpy(voice_like(SR, 1.0, seed=1).astype(np.float32))
    assert torch.allclose(mel_of_power(_power(wave), SR), log_mel(wave, SR), atol=1e-4)


def test_mask_shape_range_and_level_blindness() -> None:
    net = VocalMask(257, hidden=16, layers=2).eval()
    wave = torch.from_numpy(noise(SR, 1.0, amplitude=0.1, seed=2).astype(np.float32)).unsqueeze(0)
    with torch.no_grad():
        mask, louder = net(_power(wave)), net(_power(wave * 10.0))
    assert mask.shape == _power(wave).shape
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    assert torch.allclose(mask, louder, atol=1e-4)
    with pytest.raises(ValueError, match="power spectrogram"):
        net(torch.zeros(1, 100, 10))


def _mixes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Voice-like vocals over pink-noise beds, 1 s each: (mix, vocal) [n, T]."""
    vocals = [voice_like(SR, 1.0, f0=120.0 + 9 * i, amplitude=0.3, seed=seed + i) for i in range(n)]
    beds = [noise(SR, 1.0, amplitude=0.1, color="pink", seed=1000 + seed + i) for i in range(n)]
    v = torch.from_numpy(np.stack(vocals).astype(np.float32))
    return v + torch.from_numpy(np.stack(beds).astype(np.float32)), v


def test_fitted_mask_beats_keeping_the_mix_on_held_out_windows() -> None:
    torch.manual_seed(0)
    mix, vocal = _mixes(48, seed=0)
    held_out = _mixes(12, seed=500)
    fit = fit_separator(mix, vocal, _power, {"hidden": 24, "layers": 2}, epochs=12, batch_size=8, held_out=held_out)
    assert len(fit.losses) == 12 and fit.losses[-1] < fit.losses[0]
    assert fit.metrics["n_held_out_windows"] == 12
    assert fit.metrics["held_out_loss_ratio"] < 0.8, fit.metrics
    # the all-pass mask's loss is the loss of an all-ones mask, computed independently here
    m, v = held_out
    keep = float(mask_loss(torch.ones_like(_power(m)), _power(m), _power(v)))
    assert fit.metrics["held_out_loss_keep_mix"] == pytest.approx(keep, rel=1e-3)


def test_lcnn_with_separator_keeps_it_frozen_and_in_its_state_dict() -> None:
    net = build_net("lcnn", n_families=2, separator={"hidden": 16, "layers": 2, "kernel": 3})
    assert net.separator is not None
    assert not any(p.requires_grad for p in net.separator.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    y = np.array([False, True] * 4)
    data = TrainingSet(0.1 * torch.randn(8, SR), y, np.where(y, 0, -1), np.full(8, -1), np.zeros(8, dtype=np.int64))
    fit_net(net, data, 1, 0, torch.device("cpu"), {**TRAIN_DEFAULTS, "batch_size": 4, "augment": None})  # the real loop
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("separator."))
    assert not all(torch.equal(before[k], after[k]) for k in after if k.startswith("body."))  # the rest did train
    again = build_net("lcnn", n_families=2, separator={"hidden": 16, "layers": 2, "kernel": 3})
    again.load_state_dict(net.state_dict(), strict=True)  # an artifact rebuilds it from its net_kwargs
    with pytest.raises(ValueError, match="log-mel"):
        build_net("lcnn", frontend="lfcc", separator={"hidden": 16})


def test_stem_pairs_cut_the_stem_at_the_upload_windows_starts(tmp_path: Path) -> None:
    from models.train_detector import TrackWindows
    from models.train_separator import stem_pairs
    from tests.audio_factory import write_audio

    (tmp_path / "stems").mkdir()
    stem = (np.arange(SR * 3) % 1000 / 2000).astype(np.float32)  # a ramp: each sample says where it is
    write_audio(tmp_path / "stems" / "u000001.flac", stem, SR, subtype="PCM_24")
    tracks = pd.DataFrame({"audio_uri": [str(tmp_path / "audio" / "u000001.mp3"),
                                         str(tmp_path / "audio" / "u000002.mp3")]})  # the second has no stem
    wins = [TrackWindows(np.ones((3, SR), np.float32), np.array([0.0, 0.5, 2.5])) for _ in range(2)]
    mix, vocal = stem_pairs(tracks, wins, per_track=3, sr=SR)
    assert mix.shape == vocal.shape == (3, SR)
    assert torch.allclose(vocal[1, :10], torch.from_numpy(stem[SR // 2 : SR // 2 + 10]), atol=1e-6)
    assert float(vocal[2, SR // 2 - 1]) == pytest.approx(float(stem[-1]), abs=1e-6)
    assert not vocal[2, SR // 2 :].any()  # zero-padded past the stem's end


def test_stem_path_sits_beside_the_audio_folder(tmp_path: Path) -> None:
    assert stem_path("/c/audio/u000042.mp3") == Path("/c/stems/u000042.flac")
    with pytest.raises(ValueError, match="only uploads"):
        stem_path("/c/references/art-001/ref1.wav")  # reference takes have no stems (they would collide)
    (tmp_path / "stems").mkdir()
    (tmp_path / "stems" / "u000001.flac").write_bytes(b"")
    upload = tmp_path / "audio" / "u000001.ogg"
    assert existing_stem(str(upload)) == existing_stem(upload.as_uri()) == tmp_path / "stems" / "u000001.flac"
    assert existing_stem(str(tmp_path / "audio" / "u000002.ogg")) is None
    assert existing_stem("gs://bucket/audio/u000001.ogg") is None


def test_master_with_vocal_returns_the_vocal_as_mixed() -> None:
    sr, n = 16000, 16000 * 3
    rng = np.random.default_rng(0)
    vocal = 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / sr)
    acc = 0.05 * rng.standard_normal((n, 2))
    spec = MixSpec(var_db=3.0, target_dbfs=-16.0, lead_s=0.5, tail_s=0.25)
    track, share = master_with_vocal(vocal, acc, spec, sr, channels=2)
    assert np.array_equal(track, master(vocal, acc, spec, sr, channels=2))  # the upload is unchanged
    assert share is not None and len(share) == len(track)
    assert not share[: sr // 2].any() and not share[-sr // 4 :].any()  # lead and tail silence
    rest = track.mean(axis=1) - share  # what is left is the accompaniment: no vocal in it
    middle = slice(sr, 2 * sr)
    corr = abs(float(np.dot(rest[middle], share[middle]))) / float(np.linalg.norm(rest[middle]) *
                                                                   np.linalg.norm(share[middle]))
    assert corr < 0.05
    assert master_with_vocal(None, acc, spec, sr, channels=1)[1] is None


@pytest.mark.slow
def test_train_with_separator_then_score(tmp_path: Path) -> None:
    corpus = _tiny_twin_corpus(tmp_path / "corpus", n_artists=8, stems=True)
    out = tmp_path / "model"
    options = {"hidden": 16, "layers": 2, "kernel": 3, "epochs": 3}
    card = train_detector(corpus, out, epochs=2, seed=0, cache_dir=tmp_path / "cache", workers=1, threads=1,
                          train_params={"batch_size": 16, "separator": options})
    sep = card.metrics["separator"]
    assert sep["n_train_windows"] > 0 and len(sep["loss_by_epoch"]) == 3
    assert sep["held_out_loss_ratio"] < 1.0, sep  # it removes some of the bed on dev voices
    assert card.spec["net_kwargs"]["separator"] == {"hidden": 16, "layers": 2, "kernel": 3}
    assert "--separator --separator-epochs 3" in card.command
    handler = create_scorer("detector", "lcnn", str(out))
    model = handler.load_model()  # strict load of detector + separator weights
    uid = "bona-00-0"
    results = list(handler.run_inference([_track(decode_audio(str(corpus / "audio" / f"{uid}.wav")).samples, uid)],
                                         model))
    assert cast(TrackInput, results[0].example).row.upload_id == uid
    assert 0.0 <= cast(DetectorOutput, results[0].inference).score <= 1.0


def test_separator_without_stems_says_how_to_make_them(tmp_path: Path) -> None:
    corpus = _tiny_twin_corpus(tmp_path / "corpus", n_artists=6, songs=1, seconds=4.0)
    with pytest.raises(ValueError, match="corpus make --stems"):
        train_detector(corpus, tmp_path / "model", epochs=1, seed=0, cache_dir=tmp_path / "cache", workers=1,
                       threads=1, train_params={"separator": {"epochs": 1}})
    with pytest.raises(ValueError, match="log-mel"):
        train_detector(corpus, tmp_path / "model", epochs=1, seed=0, cache_dir=tmp_path / "cache", workers=1,
                       threads=1, net_kwargs={"frontend": "lfcc"}, train_params={"separator": {"epochs": 1}})
    assert not (tmp_path / "model" / "artifact.json").exists()


@pytest.mark.slow
def test_corpus_song_job_writes_its_vocal_stem_aligned_with_the_upload(tmp_path: Path) -> None:
    """One mixed song of the small corpus, rendered with stems: the stem is the upload's vocal, in place."""
    import dataclasses

    from trackguard.corpus.assemble import build_plan
    from trackguard.corpus.jobs import SongJob, run_job
    from trackguard.corpus.spec import SIZES

    plan = build_plan(3, SIZES["small"], tmp_path)
    job = next(j for j in plan.phase1 if isinstance(j, SongJob) and j.voice is not None and not j.a_cappella
               and j.mix.var_db is not None and j.mix.var_db <= 3.0 and j.song.music_s < 45)
    run_job(dataclasses.replace(job, stems=True))
    upload = Path(job.outputs[0].path)
    up = decode_audio(str(upload)).samples
    stem = decode_audio(str(stem_path(upload)), min_duration_s=0.0).samples
    n = min(len(up), len(stem))
    assert abs(len(up) - len(stem)) <= 2  # same length at 16 kHz
    up, stem = up[:n], stem[:n]

    def overlap(lag: int) -> float:
        return float(np.dot(up[max(0, lag) : n + min(0, lag)], stem[max(0, -lag) : n - max(0, lag)]))

    best = max(range(-160, 161), key=overlap)
    assert best == 0  # sample-aligned
    rest = up - stem  # the accompaniment (and the limiter's touch)
    assert 0.05 < float(np.std(rest) / np.std(up)) < 0.98  # a real mix: neither vocal only nor no vocal
    assert abs(float(np.corrcoef(rest, stem)[0, 1])) < 0.1


def test_stems_only_training_data_keeps_the_split_and_swaps_the_audio(tmp_path: Path) -> None:
    from models.train_detector import SPEC_DEFAULTS, prepare_data

    corpus = _tiny_twin_corpus(tmp_path / "corpus", n_artists=6, songs=1, seconds=4.0, stems=True)
    (corpus / "stems" / "clone-05-0.flac").unlink()  # one upload without a stem: excluded, not guessed
    args = (corpus, 0, None, SPEC_DEFAULTS, 2, tmp_path / "cache", 1)
    uploads, stems = prepare_data(*args), prepare_data(*args, stems_only=True)
    assert stems.split["clone-05-0"] == "excluded" and "clone-05-0" not in stems.tracks.index
    assert stems.split.drop("clone-05-0").equals(uploads.split.drop("clone-05-0"))
    assert all(Path(u).parent.name == "stems" for u in stems.tracks["audio_uri"])
    assert not any(Path(u).parent.name == "stems" for u in uploads.tracks["audio_uri"])
