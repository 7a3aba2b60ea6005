"""AASIST (models.aasist): published size and keys, shapes, checkpoint loading, determinism, training, CUDA.

Tests that need clovaai's published checkpoint skip, saying how to get it, when
`trackguard setup models` has not run. The reference logits below were computed with
clovaai/aasist's own ``models/AASIST.py`` (commit a04c986) on the same inputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from models.aasist import (
    AASIST,
    BONA_FIDE_INDEX,
    PUBLISHED_WINDOW,
    CheckpointMismatchError,
    kwargs_from_config,
    load_published_checkpoint,
    published_checkpoint_path,
)
from models.detector_nets import ARCHITECTURES, build_net, count_parameters, place
from models.weights import CorruptWeightsError, MissingWeightsError

SR = 16000
PUBLISHED_PARAMETERS = 297_866
PUBLISHED_CONFIG = {  # clovaai config/AASIST.conf "model_config", as JSON stores it
    "architecture": "AASIST", "nb_samp": 64600, "first_conv": 128,
    "filts": [70, [1, 32], [32, 32], [32, 64], [64, 64]], "gat_dims": [64, 32],
    "pool_ratios": [0.5, 0.7, 0.5, 0.5], "temperatures": [2.0, 2.0, 100.0, 100.0],
}
# clovaai's Model(...)(x)[1] for x = _reference_input(), published weights, eval mode
REFERENCE_LOGITS = [[2.2873568534851074, -3.134226083755493], [3.707340717315674, -4.335777282714844]]


def _waves(batch: int, samples: int, seed: int = 0) -> Tensor:
    return 0.1 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


def _reference_input() -> Tensor:
    """Two deterministic 64,600-sample signals (a tone plus a modulated chirp) that need no RNG."""
    t = torch.arange(PUBLISHED_WINDOW, dtype=torch.float64) / SR
    chirp = 0.05 * torch.sin(2 * math.pi * 3000 * t * (1 + t)) * torch.sin(2 * math.pi * 3 * t)
    return torch.stack([0.1 * torch.sin(2 * math.pi * f0 * t) + chirp for f0 in (220.0, 440.0)]).float()


@pytest.fixture(scope="module")
def net() -> AASIST:
    torch.manual_seed(0)
    return AASIST().eval()


@pytest.fixture(scope="module")
def published() -> Path:
    try:
        return published_checkpoint_path()
    except CorruptWeightsError:
        raise
    except MissingWeightsError as exc:
        pytest.skip(f"published AASIST checkpoint absent: run `trackguard setup models` ({exc})")


def _published_net(path: Path, n_families: int = 0) -> AASIST:
    net = AASIST(n_families=n_families)
    load_published_checkpoint(net, path)
    return net.eval()


# ---------------------------------------------------------------------------- size and construction


def test_parameter_count_is_the_published_one(net: AASIST) -> None:
    assert count_parameters(net) == PUBLISHED_PARAMETERS
    assert not hasattr(net, "spoof_head")  # out_layer's two classes give the spoof logit
    assert count_parameters(AASIST(n_families=4)) == PUBLISHED_PARAMETERS + 5 * 32 * 4 + 4


def test_published_config_gives_the_defaults() -> None:
    kwargs = kwargs_from_config(PUBLISHED_CONFIG)
    assert "nb_samp" not in kwargs and "architecture" not in kwargs
    built, default = AASIST(**kwargs), AASIST()
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in default.state_dict().items()}
    with pytest.raises(ValueError, match="not an AASIST config"):
        kwargs_from_config({**PUBLISHED_CONFIG, "architecture": "RawNet2"})


def test_build_net_round_trips_json_kwargs() -> None:
    """Artifacts store net_kwargs as JSON (tuples become lists); build_net must rebuild the same net."""
    assert ARCHITECTURES["aasist"] is AASIST
    kwargs = json.loads(json.dumps({**kwargs_from_config(PUBLISHED_CONFIG), "n_families": 4, "dropout": 0.5,
                                    "freq_aug": True}))
    rebuilt = build_net("aasist", **kwargs)
    assert isinstance(rebuilt, AASIST) and rebuilt.freq_aug and rebuilt.n_families == 4
    original = AASIST(n_families=4, freq_aug=True)
    rebuilt.load_state_dict(original.state_dict(), strict=True)
    assert count_parameters(rebuilt) == count_parameters(original)


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("samples", [64000, PUBLISHED_WINDOW, 32000])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_shapes(net: AASIST, batch: int, samples: int) -> None:
    with torch.inference_mode():
        out = net(_waves(batch, samples))
    assert out.spoof.shape == (batch,) and out.family is None
    assert torch.isfinite(out.spoof).all()


def test_family_head_shape() -> None:
    net = AASIST(n_families=4).eval()
    with torch.inference_mode():
        out = net(_waves(2, 16000))
        embedding = net.embed(_waves(2, 16000))
    assert out.spoof.shape == (2,) and embedding.shape == (2, 5 * 32)
    assert out.family is not None and out.family.shape == (2, 4)


def test_spoof_logit_is_spoof_minus_bona_fide(net: AASIST) -> None:
    x = _waves(2, 16000, seed=5)
    with torch.inference_mode():
        classes, spoof = net.class_logits(x), net(x).spoof
    assert BONA_FIDE_INDEX == 1
    torch.testing.assert_close(spoof, classes[:, 0] - classes[:, 1])


def test_shortest_input(net: AASIST) -> None:
    with torch.inference_mode():
        assert net(_waves(1, net.min_samples)).spoof.shape == (1,)
        with pytest.raises(ValueError, match="samples"):
            net(_waves(1, net.min_samples - 1))
        with pytest.raises(ValueError, match="batch"):
            net(_waves(1, 32000)[0])


# ---------------------------------------------------------------------------- published checkpoint


def test_published_checkpoint_loads_strictly(published: Path) -> None:
    state = torch.load(published, map_location="cpu", weights_only=True)
    net = _published_net(published)
    own = net.state_dict()
    assert set(own) == set(state)  # strict: every published key, nothing more
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_published_outputs_match_clovaai(published: Path) -> None:
    net = _published_net(published)
    with torch.inference_mode():
        logits = net.class_logits(_reference_input())
    torch.testing.assert_close(logits, torch.tensor(REFERENCE_LOGITS), atol=1e-3, rtol=1e-4)
    assert (logits[:, 0] > logits[:, 1]).all()  # the ASVspoof 2019 model calls these synthetic signals spoof


def test_published_checkpoint_with_family_head(published: Path) -> None:
    x = _reference_input()[:, :16000]
    with torch.inference_mode():
        out = _published_net(published, n_families=4)(x)
        plain = _published_net(published)(x)
    assert out.family is not None and out.family.shape == (2, 4)
    torch.testing.assert_close(out.spoof, plain.spoof)  # the extra head changes nothing else


# how a checkpoint is corrupted -> what the error must name
CORRUPTIONS = {"missing key": "missing: ", "wrong shape": "shape of out_layer.weight", "unexpected key": "unexpected: "}


def _corrupt(state: dict[str, Tensor], how: str) -> dict[str, Tensor]:
    state = dict(state)
    if how == "missing key":
        del state["GAT_layer_S.att_weight"]
    elif how == "wrong shape":
        state["out_layer.weight"] = torch.zeros(3, 160)
    elif how == "unexpected key":
        state["spoof_head.weight"] = torch.zeros(1, 160)
    return state


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_mismatched_checkpoint_raises(tmp_path: Path, how: str) -> None:
    """Runs without the published file too: a fresh net's state dict has the same keys and shapes."""
    try:
        source = torch.load(published_checkpoint_path(), map_location="cpu", weights_only=True)
    except MissingWeightsError:
        source = AASIST().state_dict()
    path = tmp_path / "bad.pth"
    torch.save(_corrupt(source, how), path)
    for n_families in (0, 4):
        with pytest.raises(CheckpointMismatchError, match=CORRUPTIONS[how]):
            load_published_checkpoint(AASIST(n_families=n_families), path)
    torch.save(source, path)  # and the intact one loads
    load_published_checkpoint(AASIST(), path)


# ---------------------------------------------------------------------------- behaviour


def test_eval_is_deterministic_and_batch_independent(net: AASIST) -> None:
    x = _waves(3, 16000, seed=1)
    with torch.inference_mode():
        first, second = net(x).spoof, net(x).spoof
        singles = torch.cat([net(x[i : i + 1]).spoof for i in range(3)])
    assert torch.equal(first, second)
    torch.testing.assert_close(singles, first, atol=1e-4, rtol=1e-4)


def test_training_step_updates_weights() -> None:
    """One AdamW step changes every parameter that gets a gradient; only the unused bn1s get none."""
    torch.manual_seed(0)
    net = place(AASIST(n_families=3, freq_aug=True), torch.device("cpu")).train()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    out = net(_waves(4, 16000, seed=2))
    assert out.family is not None
    loss = (nn.functional.binary_cross_entropy_with_logits(out.spoof, torch.tensor([0.0, 1.0, 0.0, 1.0]))
            + nn.functional.cross_entropy(out.family, torch.tensor([0, 1, 2, 0])))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    no_grad = {name for name, p in net.named_parameters() if p.grad is None}
    assert no_grad == {f"encoder.{i}.0.bn1.{w}" for i in range(1, 6) for w in ("weight", "bias")}
    unchanged = [name for name, p in net.named_parameters() if name not in no_grad and torch.equal(p, before[name])]
    assert not unchanged


def test_freq_aug_applies_only_in_training() -> None:
    torch.manual_seed(0)
    net = AASIST(freq_aug=True).eval()
    x = _waves(2, 16000, seed=3)
    with torch.inference_mode():
        reference = net(x).spoof
        torch.manual_seed(1)
        assert torch.equal(net(x).spoof, reference)  # eval: no masking, whatever the RNG state


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 convs differ from fp32 by ~1e-3
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    try:
        net = _published_net(published_checkpoint_path())
    except MissingWeightsError:
        torch.manual_seed(0)
        net = AASIST().eval()
    x = _waves(3, 64000, seed=4)
    with torch.inference_mode():
        cpu = net.class_logits(x)
        gpu = net.to("cuda").class_logits(x.to("cuda")).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
    net.train()  # and a training step runs there
    out = net(x.to("cuda"))
    out.spoof.sum().backward()
    assert torch.isfinite(out.spoof).all()
