"""Training options against the detector's reliance on the singer: band normalisation and a voice adversary.

All audio is synthetic (noise shaped per "voice"), generated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from models.detector_nets import LCNN, build_net
from models.train_detector import TRAIN_DEFAULTS, TrainingSet, _command, fit_net
from models.voice_adversary import VoiceAdversary, adversary_scale

SR = 16000


def _coloured_noise(seed: int, seconds: float = 2.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(int(SR * seconds)).astype(np.float32) * 0.1)


def _tilt(x: torch.Tensor, coef: float) -> torch.Tensor:
    """A fixed first-order spectral tilt: a time-invariant colour, as a voice's timbre or a mix's EQ is."""
    return torch.from_numpy(lfilter([1.0, coef], [1.0], x.numpy()).astype(np.float32))


def test_band_norm_removes_a_fixed_spectral_colour_window_norm_keeps_it() -> None:
    x = _coloured_noise(0).unsqueeze(0)
    coloured = _tilt(x[0], -0.6).unsqueeze(0)
    gaps = {}
    for norm in ("window", "band"):
        net = cast(LCNN, build_net("lcnn", feature_norm=norm).eval())
        with torch.inference_mode():
            gaps[norm] = float((net.features(x) - net.features(coloured)).abs().mean())
    assert gaps["window"] > 0.3, gaps  # the tilt moves log-mel bands by up to ~8 dB
    assert gaps["band"] < 0.25 * gaps["window"], gaps
    with pytest.raises(ValueError, match="feature normalisation"):
        build_net("lcnn", feature_norm="utterance")


def test_adversary_losses_reach_only_their_own_side() -> None:
    """The classifier loss trains the adversary alone; the confusion loss trains the encoder alone."""
    adversary = VoiceAdversary(4, 3)
    embedding = torch.randn(6, 4, requires_grad=True)
    voice = torch.tensor([0, 1, 2, 0, 1, 2])
    classifier_loss, confusion, logits = adversary.losses(embedding, voice)
    assert logits.shape == (6, 3)
    classifier_loss.backward(retain_graph=True)
    assert embedding.grad is None and all(p.grad is not None for p in adversary.parameters())
    adversary.zero_grad()
    confusion.backward()
    assert embedding.grad is not None and all(p.grad is None or not p.grad.any() for p in adversary.parameters())
    # uniform predictions are the confusion loss's minimum, log(n_voices)
    flat = VoiceAdversary(4, 3)
    torch.nn.init.zeros_(flat.classify[-1].weight)
    torch.nn.init.zeros_(flat.classify[-1].bias)
    assert abs(float(flat.losses(embedding, voice)[1].detach()) - float(np.log(3))) < 1e-5
    assert adversary_scale(0.0, 0.7) == 0.0
    assert 0.69 < adversary_scale(1.0, 0.7) <= 0.7
    assert adversary_scale(0.1, 1.0) < adversary_scale(0.5, 1.0)
    with pytest.raises(ValueError, match="two training voices"):
        VoiceAdversary(8, 1)


def _voices_and_clones(n_per_cell: int = 12) -> TrainingSet:
    """Two 'voices' told apart by a strong spectral tilt, clones by a faint 3 kHz tone: a voice shortcut is easy."""
    t = torch.arange(2 * SR) / SR
    xs, ys, voices = [], [], []
    for voice, coef in enumerate((-0.9, 0.9)):
        for i in range(2 * n_per_cell):
            synthetic = i % 2 == 1
            x = _tilt(_coloured_noise(1000 * voice + i), coef)
            if synthetic:
                x = x + 0.02 * torch.sin(2 * torch.pi * 3000.0 * t)
            xs.append(x)
            ys.append(synthetic)
            voices.append(voice)
    y = np.array(ys)
    return TrainingSet(torch.stack(xs), y, np.where(y, 0, -1), np.full(len(y), -1), np.array(voices))


@pytest.mark.slow
def test_voice_adversary_trains_alongside_and_is_not_saved(caplog: pytest.LogCaptureFixture) -> None:
    data = _voices_and_clones()
    params = {**TRAIN_DEFAULTS, "batch_size": 8, "gain_db": (0.0, 0.0), "snr_db": (60.0, 60.0),
              "voice_adversary_weight": 1.0}
    torch.manual_seed(0)
    net = cast(LCNN, build_net("lcnn", n_families=1, channels=(8, 8, 8, 8), embed_dim=16))
    keys = set(net.state_dict())
    with caplog.at_level("INFO", logger="models.train_detector"):
        losses = fit_net(net, data, epochs=3, seed=0, device=torch.device("cpu"), params=params)
    assert np.isfinite(losses).all() and set(net.state_dict()) == keys  # the adversary is not part of the net
    assert sum("voice adversary accuracy" in r.getMessage() for r in caplog.records) == 3
    with torch.inference_mode():
        assert net(data.x[:2]).spoof.shape == (2,)


def test_recorded_command_replays_the_new_training_options() -> None:
    from trackguard.cli import _detector_train_params, build_parser

    params: dict[str, Any] = {"augment": {"p_codec": 0.5}, "init": None, "extra_corpora": [],
                              "voice_adversary_weight": 0.5, "pair_frac": 1.0}
    cmd = _command(Path("c11"), Path("out"), 8, 0, None, params, "lcnn",
                   {"feature_norm": "band", "spoof_head": "one_class"})
    a = build_parser().parse_args(cmd.split()[1:])
    assert (a.feature_norm, a.spoof_head, a.voice_adversary, a.pair_frac) == ("band", "one_class", 0.5, 1.0)
    assert _detector_train_params(a) == {"voice_adversary_weight": 0.5, "pair_frac": 1.0}
    plain = build_parser().parse_args(_command(Path("c11"), Path("out"), 8, 0, None, {**params,
                                                "voice_adversary_weight": 0.0, "pair_frac": 0.5}, "lcnn").split()[1:])
    assert (plain.feature_norm, plain.spoof_head, plain.voice_adversary, plain.pair_frac) == (None, None, 0.0, None)
    assert _detector_train_params(plain) is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "detector", "--corpus", "c", "--pair-frac", "1.5"])


def test_lcnn_width_is_a_command_line_choice_that_the_card_replays() -> None:
    from models.detector_nets import build_net, count_parameters
    from trackguard.cli import build_parser

    a = build_parser().parse_args(["train", "detector", "--corpus", "c", "--channels", "16,32,48,64"])
    assert a.channels == (16, 32, 48, 64)
    params: dict[str, Any] = {"augment": {"p_codec": 0.5}, "init": None, "extra_corpora": []}
    cmd = _command(Path("c11"), Path("out"), 8, 0, None, params, "lcnn", {"channels": a.channels})
    assert build_parser().parse_args(cmd.split()[1:]).channels == (16, 32, 48, 64)
    assert "--channels" not in _command(Path("c11"), Path("out"), 8, 0, None, params, "lcnn")
    wide, default = build_net("lcnn", channels=a.channels), build_net("lcnn")
    assert count_parameters(wide) > 2 * count_parameters(default)
    with torch.inference_mode():
        assert wide(torch.randn(2, 16000)).spoof.shape == (2,)
    for bad in ("16", "16,x", "0,16"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "detector", "--corpus", "c", "--channels", bad])
