"""The one-class (OC-softmax) spoof head: its sign convention, its margins and that an LCNN trains with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.detector_nets import build_net
from models.one_class import OneClassHead
from models.train_detector import TRAIN_DEFAULTS, fit_net, spoof_loss
from tests.test_detector_voice_invariance import _voices_and_clones


def test_spoof_logit_is_minus_scaled_cosine_to_the_bona_fide_direction() -> None:
    head = OneClassHead(3, alpha=10.0)
    with torch.no_grad():
        head.centre.copy_(torch.tensor([2.0, 0.0, 0.0]))
    e = torch.tensor([[5.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    assert torch.allclose(head(e).squeeze(-1), torch.tensor([-10.0, 10.0, 0.0]))


def test_loss_asks_bona_fide_above_m_bona_and_clones_below_m_spoof() -> None:
    head = OneClassHead(2, alpha=20.0, m_bona=0.9, m_spoof=0.2)

    def loss_at(cos: float, synthetic: bool) -> float:
        return float(head.loss(torch.tensor([-20.0 * cos]), torch.tensor([float(synthetic)])))

    assert loss_at(1.0, False) < 0.2 < loss_at(0.5, False)  # bona fide: inside the cone costs nearly nothing
    assert loss_at(-0.5, True) < 0.01 and loss_at(0.0, True) < 0.1  # clones anywhere outside it are fine
    assert loss_at(0.9, True) > 10.0  # a clone inside the bona fide cone is expensive
    with pytest.raises(ValueError, match="margins"):
        OneClassHead(2, m_bona=0.2, m_spoof=0.5)
    net = build_net("lcnn", spoof_head="one_class")
    logits, y = torch.tensor([-18.0, 10.0]), torch.tensor([0.0, 1.0])
    assert isinstance(net.spoof_head, OneClassHead)
    assert torch.allclose(spoof_loss(net, logits, y), net.spoof_head.loss(logits, y))
    linear = build_net("lcnn")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert torch.allclose(spoof_loss(linear, logits, y), bce)
    with pytest.raises(ValueError, match="spoof head"):
        build_net("lcnn", spoof_head="softmax")


@pytest.mark.slow
def test_lcnn_with_one_class_head_learns_the_toy_clones() -> None:
    data = _voices_and_clones()
    torch.manual_seed(0)
    net = build_net("lcnn", n_families=1, channels=(8, 8, 8, 8), embed_dim=16, spoof_head="one_class")
    params = {**TRAIN_DEFAULTS, "batch_size": 8, "gain_db": (0.0, 0.0), "snr_db": (60.0, 60.0)}
    losses = fit_net(net, data, epochs=12, seed=0, device=torch.device("cpu"), params=params)
    assert losses[-1] < 0.5 * losses[0]
    with torch.inference_mode():
        s = net(data.x).spoof.numpy()
    auc = float(np.mean([float(p > n) for p in s[data.y] for n in s[~data.y]]))
    assert auc > 0.9, auc
