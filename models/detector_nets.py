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

import argparse
import importlib
import inspect
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from features.spectral import lfcc, log_mel, log_power, mel_of_power, mel_stft_bins, power_spectrum
from models.one_class import OneClassHead
from models.separator import VocalMask

_DYNAMIC_RANGE = 18.42  # natural-log units: 80 dB below the window's loudest mel bin


SPOOF_HEADS = ("linear", "one_class")


class DetectorLogits(NamedTuple):
    spoof: Tensor  # [B]: bona fide (< 0) vs synthetic (> 0)
    family: Tensor | None  # [B, n_families] generator-family logits, or None


class DetectorNet(nn.Module):
    """Base class: subclasses implement `embed` (wave [B, T] -> [B, embed_dim]); the heads live here.

    ``spoof_head``: ``linear`` (trained with binary cross-entropy) or ``one_class``
    (`models.one_class.OneClassHead`, trained with OC-softmax).
    """

    def __init__(self, embed_dim: int, n_families: int = 0, dropout: float = 0.3, spoof_head: str = "linear") -> None:
        super().__init__()
        if spoof_head not in SPOOF_HEADS:
            raise ValueError(f"unknown spoof head {spoof_head!r}; expected one of {SPOOF_HEADS}")
        self.n_families, self.embed_dim = n_families, embed_dim
        self.dropout = nn.Dropout(dropout)
        self.spoof_head: nn.Module = OneClassHead(embed_dim) if spoof_head == "one_class" else nn.Linear(embed_dim, 1)
        self.family_head = nn.Linear(embed_dim, n_families) if n_families > 0 else None

    def embed(self, wave: Tensor) -> Tensor:
        raise NotImplementedError

    def heads(self, embedding: Tensor) -> DetectorLogits:
        """The spoof (and family) logits of an `embed` output; training reaches the embedding through this."""
        e = self.dropout(embedding)
        family = self.family_head(e) if self.family_head is not None else None
        return DetectorLogits(self.spoof_head(e).squeeze(-1), family)

    def forward(self, wave: Tensor) -> DetectorLogits:
        return self.heads(self.embed(wave))


def _max(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise max. When training, as b + relu(a - b): the same value, but its backward is a
    cheap threshold instead of torch.maximum's tie-splitting masks (4x faster MFM training on CPU)."""
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return b + torch.relu(a - b)
    return torch.maximum(a, b)


class MaxFeatureMap(nn.Module):
    """Max-Feature-Map (Wu et al., LightCNN): split channels in two halves, keep the element-wise max.

    A competitive activation: half the channels survive, which is why LCNN stays small.
    """

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return _max(a, b)


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


FRONT_ENDS = ("logmel", "linspec", "lfcc")
FEATURE_NORMS = ("window", "band")


class LCNN(DetectorNet):
    """LCNN-style detector (Lavrentyeva et al., ASVspoof 2017/2019), slimmed for CPU.

    Front ends: ``logmel`` — natural-log mel power (``features.spectral.log_mel``),
    floored 80 dB below the window's peak and minus its mean over the whole window,
    so the input level (a gain) carries no information, only the spectral shape and
    its fine structure do, and digital silence looks like any quiet passage
    (``feature_norm="band"`` subtracts each bin's mean over the window instead, removing the
    window's long-term average spectrum too: the voice's timbre and the mix's colour, so what
    is left is how the spectrum moves and its fine structure);
    ``linspec`` — natural-log linear-frequency power (``features.spectral.log_power``,
    ``n_fft // 2 + 1`` bins), normalised the same way: the resolution mel gives up
    above 1 kHz, where harmonics, the noise between them and codec band limits show; or
    ``lfcc`` — linear-frequency cepstra with deltas (the ASVspoof LFCC-LCNN input),
    each coefficient minus its mean over the window. ``separator`` (``logmel`` only; the
    `models.separator.VocalMask` constructor arguments) masks the accompaniment out of the
    STFT before the mel projection; its weights are trained first and frozen
    (`trackguard train detector --separator`), and they travel in this net's state dict.
    Body: a strided 5x5 MFM conv,
    then LCNN blocks (1x1 + 3x3 MFM convs, BN, max-pool). Pooling over time is
    mean + max of the (frequency x channel) features per frame, so a window with
    only a few artefact-bearing frames still fires.
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
        frontend: str = "logmel",
        n_lfcc: int = 20,
        n_fft: int = 512,
        feature_norm: str = "window",
        spoof_head: str = "linear",
        separator: dict[str, int] | None = None,
    ) -> None:
        super().__init__(embed_dim, n_families, dropout, spoof_head)
        if frontend not in FRONT_ENDS:
            raise ValueError(f"unknown front end {frontend!r}; expected one of {FRONT_ENDS}")
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"unknown feature normalisation {feature_norm!r}; expected one of {FEATURE_NORMS}")
        self.feature_norm = feature_norm
        self.sample_rate, self.n_mels, self.win_ms, self.hop_ms = sample_rate, n_mels, win_ms, hop_ms
        self.frontend, self.n_lfcc, self.n_fft = frontend, n_lfcc, n_fft
        self.separator: VocalMask | None = None
        if separator is not None:
            if frontend != "logmel":
                raise ValueError(f"a separator masks the log-mel front end's STFT, not {frontend!r}")
            self.separator = VocalMask(mel_stft_bins(sample_rate, win_ms), **separator).requires_grad_(False)
        c = list(channels)
        layers: list[nn.Module] = [_mfm_conv(1, c[0], 5, stride=2), nn.BatchNorm2d(c[0])]
        for c_in, c_out in itertools.pairwise(c):
            layers.append(_lcnn_block(c_in, c_in, c_out))
        self.body = nn.Sequential(*layers)
        n_bins = {"logmel": n_mels, "lfcc": 3 * n_lfcc, "linspec": n_fft // 2 + 1}[frontend]
        freq_out = -(-n_bins // 2) // 2 ** (len(c) - 1)  # the strided conv rounds up, the pools down
        if freq_out < 1:
            raise ValueError(f"{n_bins} feature bins are too few for {len(c)} pooling stages")
        self.proj = nn.Sequential(nn.Linear(2 * c[-1] * freq_out, 2 * embed_dim), MaxFeatureMap1d())

    def features(self, wave: Tensor) -> Tensor:
        """[B, T] -> [B, 1, bins, frames], level-normalised."""
        if self.frontend == "lfcc":
            x = lfcc(wave, self.sample_rate, self.n_lfcc, deltas=True, hop_ms=self.hop_ms)
            x = x - x.mean(dim=2, keepdim=True)
        else:
            if self.frontend == "linspec":
                x = log_power(wave, self.sample_rate, self.n_fft, self.win_ms, self.hop_ms)
            elif self.separator is not None:
                x = self._separated_log_mel(wave)
            else:
                x = log_mel(wave, self.sample_rate, self.n_mels, self.win_ms, self.hop_ms)
            # floor relative to the window's peak (not an absolute one), so a gain shifts every value alike
            x = torch.maximum(x, x.amax(dim=(1, 2), keepdim=True) - _DYNAMIC_RANGE)
            x = x - x.mean(dim=(2,) if self.feature_norm == "band" else (1, 2), keepdim=True)
        # channels-last: oneDNN's convs and max-pool are 1.5-5x faster on CPU in this layout
        return x.unsqueeze(1).contiguous(memory_format=torch.channels_last)

    def _separated_log_mel(self, wave: Tensor) -> Tensor:
        """Log-mel of the STFT with the separator's vocal mask applied (frozen: no gradient)."""
        args = (self.sample_rate, self.n_mels, self.win_ms, self.hop_ms)
        power = power_spectrum(wave, *args)
        assert self.separator is not None
        with torch.no_grad():
            mask = self.separator(power)
        return mel_of_power(power * mask.square(), *args)

    def embed(self, wave: Tensor) -> Tensor:
        h = self.body(self.features(wave))  # [B, C, F', T']
        h = h.flatten(1, 2)  # [B, C*F', T']
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.proj(pooled)


def lcnn_stft(net_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The STFT settings (sample_rate, n_mels, win_ms, hop_ms) an `LCNN` built with ``net_kwargs`` uses,
    its defaults filled in: what a separator for its front end must be trained on."""
    defaults = inspect.signature(LCNN).parameters
    return {k: net_kwargs.get(k, defaults[k].default) for k in ("sample_rate", "n_mels", "win_ms", "hop_ms")}


class MaxFeatureMap1d(nn.Module):
    """MFM over the last dimension (for linear layers)."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=-1)
        return _max(a, b)


ARCHITECTURES: dict[str, type[DetectorNet]] = {
    "lcnn": LCNN,
}
# Architectures in their own modules register themselves (`register_arch`) when imported;
# they subclass DetectorNet, so they are imported lazily here, not at the top.
BUILT_IN_ARCHITECTURE_MODULES = ("models.aasist",)


def register_arch(name: str) -> Callable[[type[DetectorNet]], type[DetectorNet]]:
    def wrap(cls: type[DetectorNet]) -> type[DetectorNet]:
        ARCHITECTURES[name] = cls
        return cls

    return wrap


def architectures() -> dict[str, type[DetectorNet]]:
    """Every registered architecture, the built-in modules imported first."""
    for module in BUILT_IN_ARCHITECTURE_MODULES:
        importlib.import_module(module)
    return ARCHITECTURES


def build_net(arch: str, **net_kwargs: Any) -> DetectorNet:
    """Instantiate a registered architecture; ``net_kwargs`` are the ones stored in the artifact."""
    try:
        cls = architectures()[arch]
    except KeyError:
        raise KeyError(f"unknown detector architecture {arch!r}; have {sorted(ARCHITECTURES)}") from None
    kwargs = dict(net_kwargs)
    if "channels" in kwargs:  # JSON stores tuples as lists
        kwargs["channels"] = tuple(kwargs["channels"])
    return cls(**kwargs)


def place(net: DetectorNet, device: torch.device) -> DetectorNet:
    """Move to ``device``; on the CPU also to channels-last, the layout oneDNN's convs are fastest in."""
    net = net.to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def benchmark(
    arch: str = "lcnn",
    device: str = "cpu",
    win_s: float = 4.0,
    batch_sizes: Sequence[int] = (1, 16, 64),
    n_windows: int = 128,
    repeats: int = 3,
    **net_kwargs: Any,
) -> dict[str, Any]:
    """Scoring throughput (windows/s, best of ``repeats``) per batch size and training throughput at batch 32.

    Untrained weights: content does not change the cost. ``cpu_bound_windows_per_s``
    divides by process CPU time / threads instead of wall time, an estimate of the
    rate on an otherwise idle machine when the one measured on is shared.
    """
    dev = torch.device(device)
    net = place(build_net(arch, n_families=4, **net_kwargs), dev).eval()
    gen = torch.Generator().manual_seed(0)
    windows = (0.1 * torch.randn(n_windows, int(win_s * 16000), generator=gen)).to(dev)
    threads = torch.get_num_threads() if dev.type == "cpu" else 1

    def timed(fn: Callable[[], object]) -> tuple[float, float]:
        best_wall, best_cpu = math.inf, math.inf
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            best_wall, best_cpu = min(best_wall, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        return best_wall, best_cpu / threads

    def score(bs: int) -> None:
        with torch.inference_mode():
            for chunk in windows.split(bs):
                net(chunk)

    score(8)  # warm-up: allocator, oneDNN kernel selection
    rates, cpu_rates = {}, {}
    for bs in batch_sizes:
        wall, cpu = timed(lambda bs=bs: score(bs))  # type: ignore[misc]
        rates[str(bs)], cpu_rates[str(bs)] = round(n_windows / wall, 1), round(n_windows / cpu, 1)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    batch, target = windows[:32], (torch.arange(min(32, n_windows), device=dev) % 2).float()

    def train_step() -> None:
        loss = nn.functional.binary_cross_entropy_with_logits(net(batch).spoof, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_step()
    wall, cpu = timed(train_step)
    return {
        "arch": arch, "net_kwargs": net_kwargs, "device": device, "torch_threads": threads,
        "cpu_count": os.cpu_count(), "window_s": win_s, "n_parameters": count_parameters(net),
        "windows_per_s": rates, "cpu_bound_windows_per_s": cpu_rates,
        "train_windows_per_s": round(len(batch) / wall, 1), "train_cpu_bound_windows_per_s": round(len(batch) / cpu, 1),
        "data": "random noise windows (timing only)",
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.detector_nets", description="detector architecture timing")
    ap.add_argument("--arch", default="lcnn", choices=sorted(architectures()))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--frontend", default=None, help="LCNN front end: logmel, linspec or lfcc")
    ap.add_argument("--channels", default=None, help="LCNN channels per stage, e.g. 16,32,48,64")
    a = ap.parse_args(argv)
    kwargs: dict[str, Any] = {"frontend": a.frontend} if a.frontend else {}
    if a.channels:
        kwargs["channels"] = tuple(int(c) for c in a.channels.split(","))
    print(json.dumps(benchmark(a.arch, a.device, batch_sizes=a.batch_sizes, **kwargs), indent=2))
    return 0


if __name__ == "__main__":  # run the importable module's main: under -m this copy's ARCHITECTURES is another dict
    from models.detector_nets import main as _main

    raise SystemExit(_main())
