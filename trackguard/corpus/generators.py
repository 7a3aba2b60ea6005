"""Clone generator families: re-generate a bona fide vocal with a vocoder-style attack.

Each family is a copy-synthesis of the bona fide vocal (same words, melody, timing,
voice) through a different synthesis back end, the way anti-spoofing corpora build
attacks. What separates bona fide from clone is the back end's artefacts only.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import numpy as np
import pyworld as pw
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from trackguard.corpus.sing import HOP, Vocal, WorldParams, synthesize
from trackguard.corpus.voices import VOICE_SR

FAMILIES = ("world_resynth", "griffin_lim", "lpc_vocoder", "codec_resynth")


def _smooth_rows(a: np.ndarray, width: int) -> np.ndarray:
    """Moving average along time (axis 0), edges held."""
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(a, ((width // 2, width // 2), (0, 0)), mode="edge")
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        out[:, j] = np.convolve(padded[:, j], kernel, mode="valid")
    return out


def _smooth_f0(f0: np.ndarray, width: int) -> np.ndarray:
    """Smooth F0 inside voiced runs only: parametric models lose the singer's micro-variation."""
    voiced = f0 > 0
    smoothed = _smooth_rows(np.where(voiced, np.log(np.maximum(f0, 1.0)), 0.0)[:, None], width)[:, 0]
    weight = _smooth_rows(voiced.astype(float)[:, None], width)[:, 0]
    return np.where(voiced, np.exp(smoothed / np.maximum(weight, 1e-6)), 0.0)


def world_resynth(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Statistical-parametric style: low-order coded envelope, over-smoothed in time, band aperiodicity."""
    dims = int(rng.choice([16, 20, 24]))
    width = int(rng.choice([5, 7, 9]))
    out = np.zeros_like(vocal.samples)
    done: dict[int, np.ndarray] = {}
    for ph in vocal.phrases:
        key = id(ph.params)
        if key not in done:
            p = ph.params
            fft_size = (p.sp.shape[1] - 1) * 2
            coded = _smooth_rows(pw.code_spectral_envelope(p.sp, VOICE_SR, dims), width)
            sp = pw.decode_spectral_envelope(np.ascontiguousarray(coded), VOICE_SR, fft_size)
            band_ap = _smooth_rows(pw.code_aperiodicity(p.ap, VOICE_SR), width)
            ap = pw.decode_aperiodicity(np.ascontiguousarray(band_ap), VOICE_SR, fft_size)
            done[key] = synthesize(WorldParams(_smooth_f0(p.f0, width), sp, ap))
        y = done[key]
        end = min(len(out), ph.start + len(y))
        out[ph.start : end] += y[: end - ph.start]
    return out


def griffin_lim(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Mel-spectrogram TTS front end + Griffin-Lim phase reconstruction (no neural vocoder)."""
    import torch  # lazy: only this family needs torch
    import torchaudio.transforms as T

    torch.set_num_threads(1)
    n_fft, hop, n_mels = 1024, 256, int(rng.choice([64, 80]))
    iters = int(rng.choice([16, 24, 32]))
    x = torch.from_numpy(vocal.samples.astype(np.float32))
    mel = T.MelSpectrogram(VOICE_SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0)(x)
    lin = T.InverseMelScale(n_fft // 2 + 1, n_mels, VOICE_SR)(mel).clamp_min(0.0)
    gl = T.GriffinLim(n_fft=n_fft, hop_length=hop, n_iter=iters, power=1.0, rand_init=False, length=len(x))
    return gl(lin).numpy().astype(np.float64)


def _frame_lpc(x: np.ndarray, hop: int, win_len: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """LPC coefficients and residual gain per frame (autocorrelation method, FFT autocorrelation)."""
    win = np.hanning(win_len)
    padded = np.pad(x, (win_len // 2, win_len // 2 + hop))
    n = len(x) // hop + 1
    idx = np.arange(n)[:, None] * hop + np.arange(win_len)[None, :]
    spec = np.fft.rfft(padded[idx] * win, 2 * win_len)
    r = np.fft.irfft(np.abs(spec) ** 2)[:, : order + 1]
    coefs, gains = np.zeros((n, order)), np.zeros(n)
    for i in range(n):
        if r[i, 0] <= 1e-10:
            continue
        ri = r[i].copy()
        ri[0] *= 1.0 + 1e-6  # white-noise correction keeps the system well conditioned
        a = solve_toeplitz(ri[:order], ri[1:])
        coefs[i] = a
        gains[i] = np.sqrt(max(ri[0] - np.dot(a, ri[1:]), 1e-12) / win_len)
    return coefs, gains


def lpc_vocoder(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Classic LPC source-filter vocoder: all-pole envelope per frame, pulse train or noise excitation."""
    order = int(rng.choice([14, 16, 18]))
    hop = 2 * HOP  # 10 ms frames
    x = vocal.samples
    f0 = vocal.f0_track()[::2]
    pre = lfilter([1.0, -0.9], [1.0], x)  # pre-emphasis, undone after synthesis
    coefs, gains = _frame_lpc(pre, hop, 4 * hop, order)
    noise = rng.standard_normal(len(x) + hop)
    out = np.zeros(len(x) + hop)
    zi = np.zeros(order)
    phase = 0.0
    for i in range(len(x) // hop + 1):
        seg = slice(i * hop, (i + 1) * hop)
        if i < len(f0) and f0[i] > 0:
            exc = np.zeros(hop)
            period = VOICE_SR / f0[i]
            while phase < hop:
                exc[int(phase)] = np.sqrt(period)  # unit-power pulse train
                phase += period
            phase -= hop
        else:
            exc, phase = noise[seg], 0.0
        y, zi = lfilter([gains[i]], np.concatenate([[1.0], -coefs[i]]), exc, zi=zi)
        out[seg] = y
    return lfilter([1.0], [1.0, -0.9], out[: len(x)])


def codec_resynth(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Low-bitrate codec round trip (Opus, SILK mode): stands in for neural-codec token decoders."""
    kbps = int(rng.choice([10, 12, 14]))  # >= 10 kbit/s keeps Opus in wideband (8 kHz)
    pcm = (np.clip(vocal.samples, -1, 1) * 32767).astype("<i2").tobytes()
    enc = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "s16le", "-ar", str(VOICE_SR), "-ac", "1", "-i", "pipe:0", "-c:a", "libopus",
         "-b:a", f"{kbps}k", "-application", "voip", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", "ogg",
         "-serial_offset", "1", "pipe:1"],
        input=pcm, check=True, capture_output=True, timeout=120).stdout
    dec = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ar", str(VOICE_SR), "-ac", "1", "pipe:1"],
        input=enc, check=True, capture_output=True, timeout=120).stdout
    y = np.frombuffer(dec, dtype="<i2").astype(np.float64) / 32767
    out = np.zeros(len(vocal.samples))
    out[: min(len(y), len(out))] = y[: len(out)]
    return out


GENERATORS: dict[str, Callable[[Vocal, np.random.Generator], np.ndarray]] = {
    "world_resynth": world_resynth,
    "griffin_lim": griffin_lim,
    "lpc_vocoder": lpc_vocoder,
    "codec_resynth": codec_resynth,
}


FAMILY_NOTES: dict[str, str] = {
    "world_resynth": "statistical-parametric TTS and WORLD/STRAIGHT-vocoder voice conversion: a low-order, "
    "time-smoothed spectral envelope and coarse band aperiodicity, the over-smoothing such systems are known for",
    "griffin_lim": "mel-spectrogram TTS front ends (Tacotron-style) inverted without a neural vocoder: "
    "Griffin-Lim phase reconstruction leaves phasiness and smeared transients",
    "lpc_vocoder": "source-filter vocoders (LPC-based, including the LPCNet lineage) and cheap voice changers: "
    "an all-pole envelope excited by an idealised pulse train or noise",
    "codec_resynth": "neural-codec language-model TTS (EnCodec/SoundStream-token systems) whose output is a "
    "low-bitrate codec decode: a 10-14 kbit/s Opus (SILK) round trip of the vocal before mixing",
}
