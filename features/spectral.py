"""Spectral front ends: log-mel, linear log power and LFCC. Tensors in, tensors out, on the input's device.

Building a torchaudio transform computes its filterbank and window, so each
configuration is built once per device and cached.
"""

from __future__ import annotations

import functools
import math
from typing import cast

import torch
import torchaudio

LOG_FLOOR = 1e-10  # log(0) guard; -23 in log units, far below any real signal


def _n_fft(win_length: int) -> int:
    return 2 ** math.ceil(math.log2(win_length))


def _frames_of(ms: float, sr: int) -> int:
    return max(1, round(sr * ms / 1000.0))


def _as_batch(wave: torch.Tensor) -> torch.Tensor:
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2:
        raise ValueError(f"expected a waveform [B, T] (or [T]), got shape {tuple(wave.shape)}")
    return wave.float() if wave.dtype != torch.float32 else wave


@functools.lru_cache(maxsize=32)
def _mel_transform(sr: int, n_mels: int, win_ms: float, hop_ms: float, device: str) -> torch.nn.Module:
    win = _frames_of(win_ms, sr)
    t = torchaudio.transforms.MelSpectrogram(
        sample_rate=sr,
        n_fft=_n_fft(win),
        win_length=win,
        hop_length=_frames_of(hop_ms, sr),
        f_min=20.0,
        n_mels=n_mels,
        power=2.0,
        norm="slaney",
        mel_scale="slaney",
    )
    return t.to(device).eval()


@functools.lru_cache(maxsize=32)
def _lfcc_transform(sr: int, n_lfcc: int, n_filter: int, win_ms: float, hop_ms: float, device: str) -> torch.nn.Module:
    win = _frames_of(win_ms, sr)
    t = torchaudio.transforms.LFCC(
        sample_rate=sr,
        n_filter=n_filter,
        n_lfcc=n_lfcc,
        log_lf=True,  # natural log of the linear filterbank, as in the ASVspoof LFCC baseline
        speckwargs={"n_fft": _n_fft(win), "win_length": win, "hop_length": _frames_of(hop_ms, sr), "center": True},
    )
    return t.to(device).eval()


def log_mel(wave: torch.Tensor, sr: int, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0) -> torch.Tensor:
    """Natural-log mel power spectrogram: [B, T] → [B, n_mels, frames] (frames = T // hop + 1)."""
    x = _as_batch(wave)
    with torch.no_grad():
        mel = _mel_transform(sr, n_mels, float(win_ms), float(hop_ms), str(x.device))(x)
    return torch.log(mel.clamp_min(LOG_FLOOR))


def _mel_spectrogram(sr: int, n_mels: int, win_ms: float, hop_ms: float,
                     device: torch.device) -> torchaudio.transforms.MelSpectrogram:
    """The cached `_mel_transform`, typed: its STFT and mel stages are used one at a time."""
    return cast(torchaudio.transforms.MelSpectrogram, _mel_transform(sr, n_mels, float(win_ms), float(hop_ms),
                                                                     str(device)))


def mel_stft_bins(sr: int, win_ms: float = 25.0) -> int:
    """Frequency bins of `power_spectrum` at ``sr`` and ``win_ms``."""
    return _n_fft(_frames_of(win_ms, sr)) // 2 + 1


def power_spectrum(wave: torch.Tensor, sr: int, n_mels: int = 64, win_ms: float = 25.0,
                   hop_ms: float = 10.0) -> torch.Tensor:
    """The power STFT `log_mel` starts from: [B, T] → [B, n_fft // 2 + 1, frames]. With `mel_of_power`,
    ``log_mel(w) == mel_of_power(power_spectrum(w))``, so a mask can act on the STFT in between.
    (``n_mels`` does not change the STFT; it names the cached mel transform whose STFT this is.)"""
    x = _as_batch(wave)
    with torch.no_grad():
        return cast(torch.Tensor, _mel_spectrogram(sr, n_mels, win_ms, hop_ms, x.device).spectrogram(x))


def mel_of_power(power: torch.Tensor, sr: int, n_mels: int = 64, win_ms: float = 25.0,
                 hop_ms: float = 10.0) -> torch.Tensor:
    """Natural-log mel of a `power_spectrum` output: [B, F, frames] → [B, n_mels, frames]."""
    with torch.no_grad():
        mel = _mel_spectrogram(sr, n_mels, win_ms, hop_ms, power.device).mel_scale(power)
    return torch.log(mel.clamp_min(LOG_FLOOR))


@functools.lru_cache(maxsize=32)
def _power_transform(n_fft: int, win: int, hop: int, device: str) -> torch.nn.Module:
    t = torchaudio.transforms.Spectrogram(n_fft=n_fft, win_length=win, hop_length=hop, power=2.0)
    return t.to(device).eval()


def log_power(
    wave: torch.Tensor, sr: int, n_fft: int = 512, win_ms: float = 25.0, hop_ms: float = 10.0
) -> torch.Tensor:
    """Natural-log linear-frequency power spectrogram: [B, T] → [B, n_fft // 2 + 1, frames].

    Unlike mel, every band keeps the FFT's resolution up to Nyquist, where vocoder and
    codec artefacts (noise between harmonics, smeared high bands) live.
    """
    x = _as_batch(wave)
    win = min(_frames_of(win_ms, sr), n_fft)
    with torch.no_grad():
        power = _power_transform(int(n_fft), win, _frames_of(hop_ms, sr), str(x.device))(x)
    return torch.log(power.clamp_min(LOG_FLOOR))


def lfcc(
    wave: torch.Tensor,
    sr: int,
    n_lfcc: int = 20,
    deltas: bool = False,
    n_filter: int = 70,
    win_ms: float = 20.0,
    hop_ms: float = 10.0,
) -> torch.Tensor:
    """Linear-frequency cepstral coefficients: [B, T] → [B, C, frames].

    C is ``n_lfcc``, or ``3 * n_lfcc`` with ``deltas`` (static, Δ, ΔΔ stacked on the channel axis).
    """
    x = _as_batch(wave)
    with torch.no_grad():
        c = _lfcc_transform(sr, n_lfcc, n_filter, float(win_ms), float(hop_ms), str(x.device))(x)
        if deltas:
            d1 = torchaudio.functional.compute_deltas(c)
            c = torch.cat([c, d1, torchaudio.functional.compute_deltas(d1)], dim=1)
    return c
