"""Synthetic-voice detector architectures: waveform windows in, one logit per window out.

Every architecture is a `DetectorNet`: ``forward(wave [B, T]) -> DetectorLogits``
with ``spoof`` [B] (> 0 leans synthetic) and, when built with ``n_families > 0``, an
auxiliary ``family`` [B, n_families] head (which clone generator made it) used only
as a training signal. Each net owns its front end, so a raw-waveform model (AASIST)
and a spectrogram model (LCNN) share one contract.

Adding an architecture is one class plus one `ARCHITECTURES` entry; `build_net`
rebuilds any of them from the ``arch`` and ``net_kwargs`` stored in an artifact.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from features.spectral import log_mel


class DetectorLogits(NamedTuple):
    spoof: Tensor  # [B]: bona fide (< 0) vs synthetic (> 0)
    family: Tensor | None  # [B, n_families] generator-family logits, or None


class DetectorNet(nn.Module):
    """Base class: subclasses implement `embed` (wave [B, T] -> [B, embed_dim]); the heads live here."""

    def __init__(self, embed_dim: int, n_families: int = 0, dropout: float = 0.3) -> None:
        super().__init__()
        self.n_families = n_families
        self.dropout = nn.Dropout(dropout)
        self.spoof_head = nn.Linear(embed_dim, 1)
        self.family_head = nn.Linear(embed_dim, n_families) if n_families > 0 else None

    def embed(self, wave: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, wave: Tensor) -> DetectorLogits:
        e = self.dropout(self.embed(wave))
        family = self.family_head(e) if self.family_head is not None else None
        return DetectorLogits(self.spoof_head(e).squeeze(-1), family)


class MaxFeatureMap(nn.Module):
    """Max-Feature-Map (Wu et al., LightCNN): split channels in two halves, keep the element-wise max.

    A competitive activation: half the channels survive, which is why LCNN stays small.
    """

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def _mfm_conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Conv producing 2*c_out channels, then MFM down to c_out."""
    return nn.Sequential(nn.Conv2d(c_in, 2 * c_out, k, stride=stride, padding=k // 2, bias=False), MaxFeatureMap())


def _lcnn_block(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
    """LCNN's 'network in network' block: 1x1 MFM conv, BN, 3x3 MFM conv, max-pool 2x2, BN."""
    return nn.Sequential(
        _mfm_conv(c_in, c_mid, 1),
        nn.BatchNorm2d(c_mid),
        _mfm_conv(c_mid, c_out, 3),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
    )


class LCNN(DetectorNet):
    """LCNN-style detector on log-mel (Lavrentyeva et al., ASVspoof 2017/2019), slimmed for CPU.

    Front end: natural-log mel power (``features.spectral.log_mel``) minus its mean over
    the whole window, so the input level (a gain) carries no information — only the
    spectral shape and its fine structure do. Body: a 5x5 MFM conv and pool, then
    LCNN blocks (1x1 + 3x3 MFM convs, BN, pool). Pooling over time is mean + max of
    the (frequency x channel) features per frame, so a window with only a few
    artefact-bearing frames still fires.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        channels: tuple[int, ...] = (8, 16, 24, 32),
        embed_dim: int = 64,
        n_families: int = 0,
        dropout: float = 0.3,
    ) -> None:
        super().__init__(embed_dim, n_families, dropout)
        self.sample_rate, self.n_mels, self.win_ms, self.hop_ms = sample_rate, n_mels, win_ms, hop_ms
        c = list(channels)
        layers: list[nn.Module] = [_mfm_conv(1, c[0], 5, stride=2), nn.BatchNorm2d(c[0])]
        for c_in, c_out in zip(c[:-1], c[1:], strict=True):
            layers.append(_lcnn_block(c_in, c_in, c_out))
        self.body = nn.Sequential(*layers)
        freq_out = n_mels // 2 ** len(c)
        if freq_out < 1:
            raise ValueError(f"n_mels={n_mels} is too small for {len(c)} pooling stages")
        self.proj = nn.Sequential(nn.Linear(2 * c[-1] * freq_out, 2 * embed_dim), MaxFeatureMap1d())

    def features(self, wave: Tensor) -> Tensor:
        """[B, T] -> [B, 1, n_mels, frames], level-normalised log-mel."""
        x = log_mel(wave, self.sample_rate, self.n_mels, self.win_ms, self.hop_ms)
        x = (x - x.mean(dim=(1, 2), keepdim=True)).unsqueeze(1)
        # channels-last: oneDNN's convs and max-pool are 1.5-5x faster on CPU in this layout
        return x.contiguous(memory_format=torch.channels_last)

    def embed(self, wave: Tensor) -> Tensor:
        h = self.body(self.features(wave))  # [B, C, F', T']
        h = h.flatten(1, 2)  # [B, C*F', T']
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.proj(pooled)


class MaxFeatureMap1d(nn.Module):
    """MFM over the last dimension (for linear layers)."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=-1)
        return torch.maximum(a, b)


ARCHITECTURES: dict[str, type[DetectorNet]] = {
    "lcnn": LCNN,
}


def build_net(arch: str, **net_kwargs: Any) -> DetectorNet:
    """Instantiate a registered architecture; ``net_kwargs`` are the ones stored in the artifact."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise KeyError(f"unknown detector architecture {arch!r}; have {sorted(ARCHITECTURES)}") from None
    kwargs = dict(net_kwargs)
    if "channels" in kwargs:  # JSON stores tuples as lists
        kwargs["channels"] = tuple(kwargs["channels"])
    return cls(**kwargs)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
