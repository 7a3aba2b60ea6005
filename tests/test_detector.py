"""The CPU-tier synthetic-voice detector: architecture, pooling/calibration maths, handler, train → score.

The end-to-end test builds its own tiny twin corpus (the corpus generator's table
layout, a handful of seconds per track): voice-like signals as bona fide vocals and
their mel-spectrogram + Griffin-Lim resynthesis as clones. All audio is synthetic.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest
import torch

from features.decode import decode_audio
from features.windows import vocal_activity_windows
from models.artifact import ArtifactCard, load_card, save_card
from models.base import DetectorOutput, TrackInput, create_scorer
from models.calibration import fit_platt
from models.detector import WEIGHTS_FILE, WindowDetector, calibrate, score_windows, topk_mean, track_output
from models.detector_nets import ARCHITECTURES, LCNN, build_net, count_parameters
from models.spoof_metrics import equal_error_rate, min_dcf
from models.train_detector import (
    assign_splits,
    balanced_batches,
    dev_voice_dependence,
    extra_corpus_tracks,
    load_split,
    prepare_data,
    threshold_for_false_flag_rate,
    train_detector,
)
from tests.audio_factory import noise, voice_like, write_audio
from trackguard.contracts import ManifestRow, Segment

SR = 16000


# ---------------------------------------------------------------- architecture


@pytest.mark.parametrize("n_families", [0, 4])
def test_lcnn_shapes_and_size(n_families: int) -> None:
    net = build_net("lcnn", n_families=n_families).eval()
    with torch.inference_mode():
        out = net(torch.randn(3, 4 * SR) * 0.1)
    assert out.spoof.shape == (3,)
    assert (out.family is None) if n_families == 0 else (out.family is not None and out.family.shape == (3, 4))
    assert count_parameters(net) < 300_000
    assert "lcnn" in ARCHITECTURES


@pytest.mark.parametrize("frontend", ["logmel", "linspec"])
def test_lcnn_ignores_input_level(frontend: str) -> None:
    """Both spectrogram front ends subtract the window's mean log power, so a gain changes nothing."""
    net = build_net("lcnn", frontend=frontend).eval()
    x = torch.from_numpy(voice_like(SR, 4.0, seed=1)).unsqueeze(0)
    with torch.inference_mode():
        a, b = net(x).spoof, net(x * 0.25).spoof
    assert torch.allclose(a, b, atol=1e-3)


def test_linspec_front_end_keeps_linear_resolution_up_to_nyquist() -> None:
    """Two tones 62.5 Hz apart near 6 kHz stay two peaks with a dip between them (a mel band there is ~400 Hz)."""
    net = cast(LCNN, build_net("lcnn", frontend="linspec", n_fft=512).eval())
    t = torch.arange(4 * SR) / SR
    x = (torch.sin(2 * math.pi * 6000.0 * t) + torch.sin(2 * math.pi * 6062.5 * t)).unsqueeze(0)
    spectrum = net.features(x)[0, 0].mean(dim=-1)  # [257] bins of 31.25 Hz
    assert spectrum.shape == (257,)
    assert int(spectrum[180:200].argmax()) + 180 in (192, 194)
    assert float(spectrum[192] - spectrum[193]) > 1.0 and float(spectrum[194] - spectrum[193]) > 1.0
    with pytest.raises(ValueError, match="front end"):
        build_net("lcnn", frontend="cqt")


def test_score_windows_chunks_match_one_call() -> None:
    torch.manual_seed(0)
    net = build_net("lcnn").eval()
    x = torch.randn(5, 2 * SR) * 0.1
    assert torch.allclose(score_windows(net, x, chunk_size=2), score_windows(net, x, chunk_size=64), atol=1e-5)
    assert score_windows(net, torch.zeros(0, 2 * SR)).shape == (0,)


# ---------------------------------------------------------------- pooling, calibration, metrics


def test_topk_mean_and_calibration_maths() -> None:
    logits = torch.tensor([-2.0, 3.0, 1.0, 0.5])
    assert topk_mean(logits, 2).item() == pytest.approx(2.0)
    assert topk_mean(logits, 10).item() == pytest.approx(0.625)  # k larger than n: mean of all
    p = calibrate(torch.tensor([0.0, 2.0]), {"a": 1.5, "b": -1.0})
    assert p.tolist() == pytest.approx([1 / (1 + math.e), 1 / (1 + math.exp(-2.0))])
    out = track_output(logits, [_win(0, 4), _win(2, 6), _win(4, 8), _win(6, 10)], 2, {"a": 1.5, "b": -1.0})
    assert out.logit == pytest.approx(2.0)
    assert out.score == pytest.approx(1 / (1 + math.exp(-(1.5 * 2.0 - 1.0))))
    assert [s.start_s for s in out.segments] == [2.0, 4.0, 6.0]  # top 3 windows, best first
    assert out.segments[0].score == pytest.approx(1 / (1 + math.exp(-(1.5 * 3.0 - 1.0))))
    assert out.vocal_windows == 4


def test_track_output_counts_the_windows_that_sounded_like_singing() -> None:
    """A track that fell back to its loudest windows reports 0 vocal windows (the routing gate reads it)."""
    logits = torch.tensor([1.0, 2.0, 3.0])
    spans = [_win(0, 4, 0.2), _win(2, 6, 0.6), _win(4, 8, 0.1)]
    assert track_output(logits, spans, 2, {}).vocal_windows == 1
    assert track_output(logits, [_win(0, 4, 0.49)], 2, {}).vocal_windows == 0


def _win(a: float, b: float, vocal_score: float = 1.0):  # type: ignore[no-untyped-def]
    from features.windows import Window

    return Window(a, b, vocal_score)


def test_fit_logistic_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-(0.7 * z - 0.4)))
    cal = fit_platt(z, y)
    assert cal["a"] == pytest.approx(0.7, abs=0.05) and cal["b"] == pytest.approx(-0.4, abs=0.05)
    assert fit_platt(z, np.ones_like(y)) == {"a": 1.0, "b": 0.0}


def test_eer_min_dcf_and_threshold() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    assert equal_error_rate(y, np.array([0, 1, 2, 3, 4, 5, 6, 7.0])) == 0.0
    assert equal_error_rate(y, np.array([7, 6, 5, 4, 3, 2, 1, 0.0])) == 1.0
    assert equal_error_rate(y, np.array([0, 1, 2, 5, 3, 6, 7, 8.0])) == pytest.approx(0.25)
    assert min_dcf(y, np.arange(8.0)) == 0.0
    bona = np.linspace(0, 1, 200)
    t = threshold_for_false_flag_rate(bona, 0.01)
    assert (bona >= t).sum() == 2 and (bona >= t).mean() <= 0.01
    assert threshold_for_false_flag_rate(np.array([0.2, 0.4]), 0.01) > 0.4


def test_dev_voice_dependence_names_the_voice_that_holds_the_threshold_up() -> None:
    """One dev voice whose bona fide uploads look like clones sets the threshold on its own: without it
    the threshold falls, without any other voice it barely moves."""
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0.0, 0.5, 300), rng.uniform(0.8, 0.95, 20)])
    voices = np.array([f"v{i % 3}" for i in range(300)] + ["odd"] * 20)
    t = threshold_for_false_flag_rate(scores, 0.01)
    dep = dev_voice_dependence(scores, voices, t, 0.01)
    assert set(dep) == {"v0", "v1", "v2", "odd"}
    assert dep["odd"]["threshold_without_it"] < 0.5 < t  # the odd voice alone holds it up
    assert all(dep[v]["threshold_without_it"] > 0.8 for v in ("v0", "v1", "v2"))
    assert dep["odd"]["bona_fide_flag_rate"] > 0 and all(dep[v]["bona_fide_flag_rate"] == 0 for v in ("v0", "v1", "v2"))


def test_balanced_batches_are_half_and_half() -> None:
    y = np.array([True] * 5 + [False] * 50)
    batches = balanced_batches(y, 10, np.random.default_rng(0))
    assert len(batches) == 10  # every bona fide window once, the clones cycled to match
    assert sorted(np.concatenate([b[5:] for b in batches])) == list(range(5, 55))
    for b in batches:
        assert y[b].sum() == 5 and len(b) == 10


def test_balanced_batches_put_twin_windows_beside_their_clones() -> None:
    y = np.array([True] * 4 + [False] * 40)
    pair = np.full(len(y), -1)
    pair[:3] = [10, 11, 12]  # clone window i is matched by bona fide window 10 + i; window 3 has no twin
    batches = balanced_batches(y, 8, np.random.default_rng(0), pair, pair_frac=1.0)
    for b in batches:
        clones, bona = b[:4], b[4:]
        for c, q in zip(clones, bona, strict=True):
            assert q == (pair[c] if pair[c] >= 0 else q) and not y[q]


def test_split_keeps_songs_and_voices_together() -> None:
    rows: list[tuple[str, bool, str | None, str, str]] = []
    for a in range(10):
        for s in range(3):
            rows.append((f"u{a}-{s}", False, None, f"art{a}", f"c{a}-{s}"))
            rows.append((f"u{a}-{s}-clone", True, "fam", f"art{a}", f"c{a}-{s}"))
    tracks = pd.DataFrame(rows, columns=["upload_id", "is_synthetic", "family", "artist", "content_id"])
    tracks = tracks.set_index("upload_id")
    split = assign_splits(tracks, seed=0)
    assert split.equals(assign_splits(tracks, seed=0))  # deterministic
    assert set(split) == {"train", "dev", "test"}
    assert (tracks.assign(s=split).groupby("artist")["s"].nunique() == 1).all()
    assert (tracks.assign(s=split).groupby("content_id")["s"].nunique() == 1).all()
    for name in ("dev", "test"):
        assert tracks["is_synthetic"][split == name].any() and (~tracks["is_synthetic"][split == name]).any()


def test_extra_corpus_joins_train_and_dev_by_its_voices_split(tmp_path: Path) -> None:
    """Another seed's corpus reuses the same voices: train voices' uploads join train, dev voices'
    join dev, test voices' join nothing, and the primary corpus's own split is unchanged."""
    primary = _tiny_twin_corpus(tmp_path / "a", n_artists=5, songs=1, seconds=4.5)
    extra = _tiny_twin_corpus(tmp_path / "b", n_artists=5, songs=1, seconds=4.5)
    spec = {"sample_rate": SR, "win_s": 4.0, "hop_s": 2.0}
    base = prepare_data(primary, 0, None, spec, 1, tmp_path / "cache", workers=1)
    both = prepare_data(primary, 0, None, spec, 1, tmp_path / "cache", workers=1, extra_corpora=[extra])
    assert both.split.loc[base.split.index].equals(base.split)  # the primary's split is untouched
    added = both.split.drop(base.split.index)
    assert added.index.str.startswith("b/").all() and set(added) == {"train", "dev", "excluded"}
    voice_split = dict(zip(base.tracks["artist"], base.split.loc[base.tracks.index], strict=True))
    extra_tracks, _ = extra_corpus_tracks(extra, voice_split)
    voices = extra_tracks["artist"].loc[added.index]
    expected = voices.map(voice_split).replace("test", "excluded")
    assert added.equals(expected.rename(None))
    excluded = both.split.index[both.split.eq("excluded").to_numpy()]
    assert not both.tracks.index.isin(excluded).any() and len(both.windows) == len(both.tracks)  # never decoded
    assert len(both.tracks) == int(both.split.ne("excluded").sum())
    from models.train_detector import _training_data_text

    assert str(extra) in _training_data_text(primary, both.tracks, both.split, [str(extra)])
    tracks, split = extra_corpus_tracks(extra, voice_split)
    clones = tracks[tracks["is_synthetic"]]
    assert clones["twin"].str.startswith("b/").all() and clones["twin"].isin(tracks.index).all()
    assert split.index.equals(tracks.index)


def test_extra_corpus_group_spanning_two_splits_is_excluded(tmp_path: Path) -> None:
    """A song sung by a train voice and by a dev voice of the extra corpus would leak: neither joins."""
    extra = _tiny_twin_corpus(tmp_path / "b", n_artists=3, songs=1, seconds=4.5)
    labels = pd.read_parquet(extra / "labels.parquet")
    labels.loc[labels["voice_artist_id"].eq("artist-01"), "content_id"] = "c-00-0"  # artist-01 covers artist-00's song
    labels.to_parquet(extra / "labels.parquet")
    tracks, _ = extra_corpus_tracks(extra, {})
    voice = tracks["artist"].to_numpy()
    _, split = extra_corpus_tracks(extra, {"artist-00": "train", "artist-01": "train", "artist-02": "dev"})
    assert list(split) == ["dev" if v == "artist-02" else "train" for v in voice]
    _, split = extra_corpus_tracks(extra, {"artist-00": "train", "artist-01": "dev", "artist-02": "test"})
    assert set(split) == {"excluded"}


def test_recorded_training_command_replays_front_end_and_extra_corpora() -> None:
    """The artifact's ``command`` must be a command that parses and names every choice that shaped it."""
    from models.train_detector import _command
    from trackguard.cli import build_parser

    params = {"augment": {"p_codec": 0.5}, "init": None, "extra_corpora": ["c13", "c14"]}
    cmd = _command(Path("c11"), Path("out"), 8, 0, "world_resynth", params, "lcnn", {"frontend": "linspec"})
    a = build_parser().parse_args(cmd.split()[1:])
    assert (a.frontend, a.extra_corpus, a.holdout_family, a.epochs) == ("linspec", ["c13", "c14"], "world_resynth", 8)


# ---------------------------------------------------------------- handler


def _track(samples: np.ndarray, upload_id: str = "u1") -> TrackInput:
    row = ManifestRow(upload_id, f"file:///tmp/{upload_id}.wav", "t", "a", "d", "up",
                      dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    wins = vocal_activity_windows(samples, SR, 4.0, 2.0, max_windows=16)
    return TrackInput(row=row, samples=samples, sample_rate=SR, duration_s=len(samples) / SR,
                      windows=[(w.start_s, w.end_s, w.vocal_score) for w in wins], stats={})


def _untrained_artifact(directory: Path) -> Path:
    net = build_net("lcnn")
    directory.mkdir(parents=True)
    torch.save(net.state_dict(), directory / WEIGHTS_FILE)
    spec = {"arch": "lcnn", "net_kwargs": {}, "sample_rate": SR, "win_s": 4.0, "hop_s": 2.0, "n_mels": 64,
            "pooling_k": 2, "max_windows": 8}
    save_card(directory, ArtifactCard("detector", "lcnn", "models.detector.WindowDetector", spec, "test",
                                      "none", threshold=0.5, calibration={"a": 1.0, "b": 0.0},
                                      files={WEIGHTS_FILE: ""}))
    return directory


def test_handler_one_result_per_track_with_segments_inside(tmp_path: Path) -> None:
    artifact = _untrained_artifact(tmp_path / "det")
    handler = create_scorer("detector", "lcnn", str(artifact), max_batch_size=8, db_url="unused")
    assert isinstance(handler, WindowDetector)
    model = handler.load_model()
    tracks = [
        _track(voice_like(SR, 11.0, seed=1), "long"),
        _track(voice_like(SR, 2.5, seed=2), "short"),  # shorter than one window: padded
        _track(noise(SR, 6.0, seed=3), "noise"),
    ]
    results = list(handler.run_inference(tracks, model))
    assert len(results) == len(tracks)
    for track, res in zip(tracks, results, strict=True):
        assert res.example is track
        assert res.model_id == model.card.model_id and res.model_id.startswith("detector/lcnn@test+")
        out = cast(DetectorOutput, res.inference)
        assert 0.0 <= out.score <= 1.0
        assert 1 <= len(out.segments) <= 3
        for seg in out.segments:
            assert isinstance(seg, Segment)
            assert 0.0 <= seg.start_s < seg.end_s <= track.duration_s + 1e-6
            assert 0.0 <= seg.score <= 1.0
    # scoring a track alone gives the same answer as in a batch (no cross-track leakage)
    alone = cast(DetectorOutput, next(iter(handler.run_inference(tracks[1:2], model))).inference)
    assert alone.score == pytest.approx(cast(DetectorOutput, results[1].inference).score, abs=1e-5)


# ---------------------------------------------------------------- end to end


def _clone_of(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mel-spectrogram inversion with Griffin-Lim phase (the corpus's ``griffin_lim`` family in miniature)."""
    import torchaudio.functional as F

    n_fft, hop, n_mels = 512, 128, int(rng.choice([48, 64]))
    fb = F.melscale_fbanks(n_fft // 2 + 1, 0.0, SR / 2, n_mels, SR).T  # [mels, freqs]
    window = torch.hann_window(n_fft)
    mag = torch.stft(torch.from_numpy(x.astype(np.float32)), n_fft, hop, window=window, return_complex=True).abs()
    lin = torch.linalg.lstsq(fb, fb @ mag).solution.clamp_min(0.0)  # what a mel vocoder front end keeps
    y = F.griffinlim(lin, window, n_fft, hop, n_fft, 1.0, 16, 0.99, len(x), False).numpy()
    return (y / (np.abs(y).max() + 1e-9) * np.abs(x).max()).astype(np.float32)


def _tiny_twin_corpus(root: Path, n_artists: int = 10, songs: int = 2, seconds: float = 6.0,
                      stems: bool = False) -> Path:
    """Bona fide voice-like songs and their clones, in the corpus generator's table layout (``stems``:
    with each upload's vocal, the bed left out, where `trackguard corpus make --stems` puts it)."""
    (root / "audio").mkdir(parents=True)
    if stems:
        (root / "stems").mkdir()
    manifest, labels = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny FFTs: threading only adds overhead (and stalls on a busy machine)
    for a in range(n_artists):
        f0 = 110.0 + 17.0 * a
        for s in range(songs):
            rng = np.random.default_rng(100 * a + s)
            bed = noise(SR, seconds, amplitude=0.01, color="pink", seed=100 * a + s)
            vocal = voice_like(SR, seconds, f0=f0, amplitude=0.5, syllable_hz=3.5 + 0.3 * s, seed=100 * a + s)
            twin = {"bona": vocal + bed, "clone": _clone_of(vocal, rng) + bed}
            for kind, x in twin.items():
                uid = f"{kind}-{a:02d}-{s}"
                write_audio(root / "audio" / f"{uid}.wav", x, SR)
                if stems:
                    write_audio(root / "stems" / f"{uid}.flac", x - bed, SR)
                manifest.append({"upload_id": uid, "audio_uri": f"audio/{uid}.wav"})
                twin_id = f"{'clone' if kind == 'bona' else 'bona'}-{a:02d}-{s}"
                labels.append({"upload_id": uid, "kind": "clean" if kind == "bona" else "clone",
                               "is_synthetic": kind == "clone",
                               "generator_family": "griffin_lim" if kind == "clone" else None,
                               "voice_artist_id": f"artist-{a:02d}", "content_id": f"c-{a:02d}-{s}",
                               "twin_upload_id": twin_id, "expected_error_code": None,
                               # labels only (the bed is faint noise either way): the report's per-mix table
                               "a_cappella": s == 0, "vocal_to_accompaniment_db": None if s == 0 else 12.0})
    torch.set_num_threads(threads)
    pd.DataFrame(manifest).to_parquet(root / "manifest.parquet")
    pd.DataFrame(labels).to_parquet(root / "labels.parquet")
    return root


@pytest.mark.slow
def test_train_then_score_separates_held_out_tracks(tmp_path: Path) -> None:
    corpus = _tiny_twin_corpus(tmp_path / "corpus")
    out = tmp_path / "model"
    card = train_detector(corpus, out, epochs=8, seed=0, cache_dir=tmp_path / "cache", workers=1, threads=1,
                          train_params={"batch_size": 16})
    assert (out / "artifact.json").exists() and card.threshold is not None
    assert set(card.calibration) == {"a", "b"} and card.spec["arch"] == "lcnn"
    split = load_split(out)
    held_out = split["dev"] + split["test"]
    assert held_out and not set(held_out) & set(split["train"])
    assert card.metrics["n_train_tracks"] == len(split["train"]) and card.metrics["peak_memory_gib"] > 0
    low, high = card.metrics["test_eer_ci95"]  # voices resampled; NaN only when test lacks a class
    assert (np.isnan(low) and np.isnan(high)) or 0.0 <= low <= high <= 1.0
    by_voice = card.metrics["threshold_by_dev_voice"]  # one entry per dev voice with a bona fide upload
    assert by_voice and all(0.0 <= v["bona_fide_flag_rate"] <= 1.0 for v in by_voice.values())

    # score the held-out uploads the way the pipeline does: decode → windows → handler
    handler = create_scorer("detector", "lcnn", str(out))
    model = handler.load_model()
    tracks = [_track(decode_audio(str(corpus / "audio" / f"{uid}.wav")).samples, uid) for uid in held_out]
    results = handler.run_inference(tracks, model)
    scores = {cast(TrackInput, r.example).row.upload_id: cast(DetectorOutput, r.inference).score for r in results}
    y = np.array([uid.startswith("clone") for uid in scores])
    s = np.array(list(scores.values()))
    assert y.any() and (~y).any()
    auc = float(np.mean([float(p > n) + 0.5 * float(p == n) for p in s[y] for n in s[~y]]))
    assert auc >= 0.75, f"held-out AUC {auc:.2f} (scores {scores})"

    # a second run reuses the cached windows instead of decoding again; nested in an earlier model (whose
    # corpus's voices are not this corpus's, so the split is the same), it records which model that was
    earlier = tmp_path / "earlier"
    save_card(earlier, ArtifactCard("detector", "lcnn", "models.detector.WindowDetector",
                                    {"corpora": [{"identity": "seed=1 size=small version=1.2.0"}]}, "test", "",
                                    metrics={"train_voices": ["art-001"]}))
    card2 = train_detector(corpus, tmp_path / "model2", epochs=1, seed=0, cache_dir=tmp_path / "cache", workers=1,
                           threads=1, train_params={"nest_in": str(earlier)})
    assert card2.metrics["seconds"]["windows"] < card.metrics["seconds"]["windows"]
    assert card2.metrics["nested_in"]["model_id"] == load_card(earlier, verify=False).model_id
    assert card2.command.endswith(f"--nest-in {earlier}") and load_split(tmp_path / "model2") == split


def test_augmented_epoch_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The epoch is augmented in chunks to bound memory; the plans are drawn in window order either way."""
    import models.train_detector as td
    from features.augment import AugmentConfig

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((7, SR)).astype(np.float32) * 0.1)
    config = AugmentConfig().to_dict()
    monkeypatch.setattr(td, "AUGMENT_CHUNK", 3)
    chunked = td.augmented_epoch(x, np.random.default_rng(1), config, SR)
    monkeypatch.setattr(td, "AUGMENT_CHUNK", 100)
    whole = td.augmented_epoch(x, np.random.default_rng(1), config, SR)
    assert chunked.shape == x.shape and chunked.dtype == torch.float32
    assert torch.equal(chunked, whole) and not torch.equal(chunked, x)


def test_training_windows_are_held_once_and_trimmed_to_the_trained_crops() -> None:
    """pack_crops copies each track's first crops into one array and rebinds the track to its rows."""
    from models.train_detector import TrackWindows, pack_crops

    rng = np.random.default_rng(0)
    tracks = [TrackWindows(rng.standard_normal((n, 5)).astype(np.float32), np.arange(n) * 2.0) for n in (8, 3, 6)]
    originals = [t.windows.copy() for t in tracks]
    packed = pack_crops(tracks, per_track=6)
    assert packed.shape == (6 + 3 + 6, 5)
    np.testing.assert_array_equal(packed, np.concatenate([w[:6] for w in originals]))
    for t, w in zip(tracks, originals, strict=True):
        assert np.shares_memory(t.windows, packed)  # held once: the track's windows are rows of the pack
        np.testing.assert_array_equal(t.windows, w[:6])
        assert len(t.starts) == len(t.windows)
    with pytest.raises(ValueError, match="train split is empty"):
        pack_crops([], per_track=6)


_HOLES_SCRIPT = """
import os
import numpy as np
from models.train_detector import release_freed_heap

def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

np.ones(2**18)  # a 2 MB array freed once: glibc now serves 2 MB arrays from the heap, not mmap
arrays = [np.ones(2**18) for _ in range(400)]  # 800 MB, kept and freed in turns as the splits are
del arrays[::2]
before = rss_mb()
release_freed_heap()
print(before - rss_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from Linux's /proc")
def test_freed_window_arrays_are_handed_back_to_the_os() -> None:
    """Freeing every other per-upload array leaves heap holes glibc keeps until asked to trim them."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _HOLES_SCRIPT], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert float(out.stdout) > 200, f"only {out.stdout.strip()} MB of the 400 MB freed went back"
