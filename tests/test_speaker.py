"""The ECAPA-TDNN speaker encoder with the real published weights (skipped, with why, when not set up).

Voices here are synthetic: harmonic tones, and espeak-ng's formant voices rendered in
the test. They check wiring and gross behaviour (same voice > different voice), not
verification accuracy on real singers.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly

from models.speaker import (
    EMBEDDING_DIM,
    PRETRAINED,
    SAMPLE_RATE,
    embed_track,
    embed_windows,
    flush_subnormal_weights,
    load_speaker_encoder,
    resolve_model_dir,
    speaker_encoder_info,
    speaker_model_id,
)
from models.weights import MissingWeightsError, load_registry

CKPT_SHA = load_registry()[PRETRAINED].file("embedding_model.ckpt").sha256
WINDOW = 3 * SAMPLE_RATE


def voice_like(f0: float, seconds: float = 3.0, seed: int = 0) -> torch.Tensor:
    """A vowel-ish harmonic tone with vibrato and a little noise."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * torch.pi * (f0 * t + 0.02 * f0 * torch.sin(2 * torch.pi * 5 * t) / (2 * torch.pi * 5))
    wave = sum(torch.sin(k * phase) * (0.8**k) for k in range(1, 12))
    return (0.2 * wave + 0.005 * torch.randn(t.numel(), generator=gen)).float()


def test_missing_default_model_names_the_setup_command(tg_home: Path) -> None:
    with pytest.raises(MissingWeightsError, match="trackguard setup models"):
        load_speaker_encoder()


def test_directory_without_hyperparams_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"hyperparams\.yaml"):
        load_speaker_encoder(tmp_path)


def test_directory_pointing_at_the_hub_fails_fast_offline(tmp_path: Path) -> None:
    hyperparams = load_registry()[PRETRAINED].file("hyperparams.yaml").content
    assert hyperparams is not None and hyperparams.rstrip().endswith("!ref <mean_var_norm_emb>")
    # The pretrainer block is last: give it hub paths, as the wheel's own hyperparams.yaml does.
    hub = "    paths:\n        embedding_model: speechbrain/spkrec-ecapa-voxceleb/embedding_model.ckpt\n"
    (tmp_path / "hyperparams.yaml").write_text(hyperparams + hub)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"(?s)Hub.*self-contained"):
        load_speaker_encoder(tmp_path)
    assert time.perf_counter() - t0 < 10  # HF_HUB_OFFLINE: no network retries


def test_shape_unit_norm_and_batch_invariance(encoder: Any) -> None:
    windows = torch.stack([voice_like(f0, seed=i) for i, f0 in enumerate((110, 150, 220, 300, 420))])
    one_by_one = embed_windows(encoder, windows, batch_size=1)
    batched = embed_windows(encoder, windows, batch_size=32)
    assert one_by_one.shape == (5, EMBEDDING_DIM) and one_by_one.dtype == torch.float32
    assert torch.allclose(one_by_one.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(one_by_one, batched, atol=1e-4)  # features are normalised per window
    assert embed_windows(encoder, windows[:0]).shape == (0, EMBEDDING_DIM)


def test_same_signal_twice_scores_one(encoder: Any) -> None:
    x = voice_like(180.0)
    a = embed_windows(encoder, x[None])
    b = embed_windows(encoder, torch.stack([voice_like(300.0), x.clone()]))[1:]
    assert float((a @ b.T).item()) > 0.9999


def test_embed_track_is_normalised_mean(encoder: Any) -> None:
    windows = torch.stack([voice_like(200.0, seed=s) for s in range(3)])
    track, per_window = embed_track(encoder, windows)
    assert track.shape == (EMBEDDING_DIM,) and per_window.shape == (3, EMBEDDING_DIM)
    expected = per_window.mean(0) / per_window.mean(0).norm()
    assert torch.allclose(track, expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least one window"):
        embed_track(encoder, windows[:0])


def test_bad_inputs_are_refused(encoder: Any) -> None:
    with pytest.raises(ValueError, match="NaN"):
        embed_windows(encoder, torch.full((1, WINDOW), float("nan")))
    with pytest.raises(ValueError, match="too short"):
        embed_windows(encoder, torch.zeros(1, 100))
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        embed_windows(encoder, torch.zeros(1, 1, WINDOW))


def _espeak(voice: str, text: str, out: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True, capture_output=True)
    import soundfile as sf

    audio, sr = sf.read(out, dtype="float32")
    audio = resample_poly(audio, SAMPLE_RATE, sr).astype(np.float32)
    return np.pad(audio, (0, max(0, WINDOW - len(audio))))[:WINDOW]


SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the band plays on.",
    "Every night I sing this song about the city lights and the river.",
    "Numbers like seven, twelve and forty one are easy to remember today.",
)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_same_voice_scores_clearly_above_different_voice(encoder: Any, tmp_path: Path) -> None:
    voices = ("en+m3", "en+f2")
    audio = [_espeak(v, s, tmp_path / f"{v}-{i}.wav") for v in voices for i, s in enumerate(SENTENCES)]
    labels = [v for v in voices for _ in SENTENCES]
    emb = embed_windows(encoder, torch.from_numpy(np.stack(audio)))
    sims = (emb @ emb.T).numpy()
    same = [sims[i, j] for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] == labels[j]]
    diff = [sims[i, j] for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] != labels[j]]
    # Measured here: same-voice 0.73-0.87, different-voice 0.29-0.44 (different sentences throughout).
    assert min(same) > max(diff) + 0.15, (same, diff)
    assert np.mean(same) - np.mean(diff) > 0.3


def test_drop_in_directory_loads_and_carries_its_own_id(encoder: Any, model_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "team-finetuned-ecapa"
    custom.mkdir()
    for name in ("hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt"):
        shutil.copy2(model_dir / name, custom / name)
    before = sorted(p.name for p in custom.iterdir())
    copy = load_speaker_encoder(custom)
    assert sorted(p.name for p in custom.iterdir()) == before  # loading writes nothing into the directory
    x = torch.stack([voice_like(140.0), voice_like(260.0)])
    assert torch.allclose(embed_windows(copy, x), embed_windows(encoder, x), atol=1e-5)
    info = speaker_encoder_info(custom)
    assert info.name == "team-finetuned-ecapa" and info.checkpoint_sha256 == CKPT_SHA
    assert speaker_model_id(str(custom)) == f"team-finetuned-ecapa@{CKPT_SHA[:12]}"


def test_default_directory_comes_from_trackguard_home(model_dir: Path, tg_home: Path) -> None:
    (tg_home / "models" / "pretrained").mkdir(parents=True)
    (tg_home / "models" / "pretrained" / PRETRAINED).symlink_to(model_dir)
    assert resolve_model_dir() == tg_home.resolve() / "models" / "pretrained" / PRETRAINED
    assert speaker_model_id() == f"{PRETRAINED}@{CKPT_SHA[:12]}"


def test_subnormal_weights_are_zeroed_and_nothing_else_changes() -> None:
    tiny = torch.finfo(torch.float32).tiny
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.5, tiny / 4, -tiny / 2, 0.0], [1.0, -2.0, tiny, tiny / 1e3]]))
    normal = net.weight.detach().clone()
    x = torch.randn(8, 4)
    before = net(x).detach()
    assert flush_subnormal_weights(net) == 3  # tiny itself is the smallest normal float, kept
    after = net.weight.detach()
    assert after[0, 1] == 0 and after[0, 2] == 0 and after[1, 3] == 0 and after[1, 2] == tiny
    assert torch.equal(after[0, 0], normal[0, 0]) and torch.equal(after[1, :2], normal[1, :2])
    torch.testing.assert_close(net(x).detach(), before, rtol=0, atol=1e-30)
    assert flush_subnormal_weights(net) == 0


def test_loaded_ecapa_has_no_subnormal_weights_and_embeds_as_the_published_one(
        encoder: Any, model_dir: Path) -> None:
    """The published ECAPA holds subnormal weights (slow on Intel CPUs); the loaded one has none and gives the
    same embeddings. The bench part that times both runs here on two short tracks."""
    from trackguard.bench.encoder_weights import subnormal_weight_rows
    from trackguard.bench.voices import Track

    assert flush_subnormal_weights(encoder.mods) == 0
    tracks = [Track(f"t{i}", voice_like(f0, seconds=8.0, seed=i).numpy(), "v") for i, f0 in enumerate((110, 220))]
    part = subnormal_weight_rows(tracks, str(model_dir), repeats=1)
    assert part["subnormal_weights"] > 0 and part["weights"] > part["subnormal_weights"]
    assert part["max_abs_embedding_difference"] <= 1e-6
    assert [r["tracks"] for r in part["rows"]] == [2, 2] and part["speed_ratio_zeroed_over_published"] > 0
