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


def _mel_filterbank(n_mels: int, n_fft: int) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1)."""
    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(0.0, to_mel(np.array(VOICE_SR / 2)), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0.0, VOICE_SR / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    win = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + hop))
    n = (len(padded) - n_fft) // hop + 1
    idx = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
    return np.fft.rfft(padded[idx] * win, axis=1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of `_stft` (hop must divide n_fft)."""
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * win
    total = (len(frames) - 1) * hop + n_fft
    out, norm = np.zeros(total + n_fft), np.zeros(total + n_fft)
    step = n_fft // hop
    for k in range(step):  # frames k, k+step, ... do not overlap each other: add them as one run
        run = frames[k::step].reshape(-1)
        out[k * hop : k * hop + len(run)] += run
        norm[k * hop : k * hop + len(run)] += np.tile(win**2, len(frames[k::step]))
    out /= np.maximum(norm, 1e-8)
    return out[n_fft // 2 : n_fft // 2 + length]


def griffin_lim(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Mel-spectrogram TTS front end + Griffin-Lim phase reconstruction (no neural vocoder)."""
    n_fft, hop, n_mels = 1024, 256, int(rng.choice([64, 80]))
    iters = int(rng.choice([16, 24, 32]))
    x = vocal.samples
    fb = _mel_filterbank(n_mels, n_fft)
    mel = np.abs(_stft(x, n_fft, hop)) @ fb.T  # what an acoustic model would predict
    magnitude = np.maximum(mel @ np.linalg.pinv(fb).T, 0.0)  # least-squares inversion of the mel projection
    spec = magnitude.astype(np.complex128)  # zero initial phase: deterministic
    prev = np.zeros_like(spec)
    for _ in range(iters):  # fast Griffin-Lim (momentum 0.99)
        rebuilt = _stft(_istft(spec, n_fft, hop, len(x)), n_fft, hop)
        accel = rebuilt + 0.99 * (rebuilt - prev)
        prev = rebuilt
        spec = accel * (magnitude / np.maximum(np.abs(accel), 1e-12))  # keep the phase, impose the magnitude
    return _istft(spec, n_fft, hop, len(x))


_BANDWIDTH = 0.994  # LPC bandwidth expansion factor (pole radius shrink), as LPC coders do


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Levinson-Durbin on many frames at once: r (frames, order+1) autocorrelations -> predictor
    coefficients a (frames, order) with x[n] ~ sum_k a[k] x[n-1-k]."""
    n = len(r)
    a = np.zeros((n, order))
    err = r[:, 0].copy()
    for i in range(order):
        acc = r[:, i + 1] - np.einsum("fk,fk->f", a[:, :i], r[:, i:0:-1]) if i else r[:, 1].copy()
        k = acc / np.maximum(err, 1e-12)
        prev = a[:, :i].copy()
        a[:, i] = k
        a[:, :i] = prev - k[:, None] * prev[:, ::-1]
        err = err * (1.0 - k**2)
    return a


def _frame_lpc(x: np.ndarray, hop: int, win_len: int, order: int) -> np.ndarray:
    """LPC coefficients per frame (autocorrelation method, FFT autocorrelation)."""
    win = np.hanning(win_len)
    padded = np.pad(x, (win_len // 2, win_len // 2 + hop))
    n = len(x) // hop + 1
    idx = np.arange(n)[:, None] * hop + np.arange(win_len)[None, :]
    spec = np.fft.rfft(padded[idx] * win, 2 * win_len)
    r = np.fft.irfft(np.abs(spec) ** 2)[:, : order + 1]
    silent = r[:, 0] <= 1e-10
    r[:, 0] *= 1.0 + 1e-6  # white-noise correction keeps every frame well conditioned
    r[silent] = np.eye(1, order + 1)  # silent frames: a flat (all-zero) predictor
    coefs = _levinson(r, order)
    return coefs * _BANDWIDTH ** np.arange(1, order + 1)  # widen formant bandwidths: no ringing spikes


def _dispersion_kernel(n: int = 48) -> np.ndarray:
    """Unit-energy linear chirp (sweeps 0 to Nyquist over n samples): nearly flat magnitude, spread phase."""
    t = np.arange(n)
    chirp = np.cos(np.pi * t**2 / (2 * n)) * np.hanning(n + 2)[1:-1]
    return chirp / np.sqrt(np.sum(chirp**2))


_DISPERSION = _dispersion_kernel()


def lpc_vocoder(vocal: Vocal, rng: np.random.Generator) -> np.ndarray:
    """Classic LPC source-filter vocoder: all-pole envelope per frame, pulse train or noise excitation."""
    order = int(rng.choice([14, 16, 18]))
    hop = 2 * HOP  # 10 ms frames
    x = vocal.samples
    f0 = vocal.f0_track()[::2]
    pre = lfilter([1.0, -0.9], [1.0], x)  # pre-emphasis, undone after synthesis
    coefs = _frame_lpc(pre, hop, 4 * hop, order)
    noise = rng.standard_normal(len(x) + hop)
    pulses = np.zeros(len(x) + hop)
    voiced = np.zeros(len(x) + hop, dtype=bool)
    phase = 0.0
    for i in range(min(len(f0), len(x) // hop + 1)):
        if f0[i] > 0:
            period = VOICE_SR / f0[i]
            while phase < hop:
                pulses[i * hop + int(phase)] = np.sqrt(period)  # unit-power pulse train
                phase += period
            phase -= hop
            voiced[i * hop : (i + 1) * hop] = True
        else:
            phase = 0.0
    # LPC-10 style dispersed pulse: a short flat-spectrum chirp instead of a bare impulse keeps the
    # crest factor speech-like (bare impulses would hit the master limiter harder than the twin).
    excitation = np.where(voiced, np.convolve(pulses, _DISPERSION)[: len(pulses)], noise)
    out = np.zeros(len(x) + hop)
    zi = np.zeros(order)
    for i in range(len(x) // hop + 1):
        seg = slice(i * hop, (i + 1) * hop)
        y, zi = lfilter([1.0], np.concatenate([[1.0], -coefs[i]]), excitation[seg], zi=zi)
        out[seg] = y
    # The transmitted gain: each 10 ms frame gets the energy of the input frame (interpolated sample-wise).
    n = len(x) // hop + 1
    smooth = np.array([0.25, 0.5, 0.25])  # 30 ms energy windows: a frame holding a single pulse is no outlier
    target = np.convolve(np.mean(np.pad(pre, (0, n * hop - len(pre))).reshape(n, hop) ** 2, axis=1), smooth, "same")
    got = np.convolve(np.mean(out[: n * hop].reshape(n, hop) ** 2, axis=1), smooth, "same")
    scale = np.sqrt(target / np.maximum(got, 1e-18))
    scale = np.minimum(scale, 8 * np.median(scale[target > 1e-3 * target.max()]))
    centres = np.arange(n) * hop + hop / 2
    out = out[: len(x)] * np.interp(np.arange(len(x)), centres, scale)
    return lfilter([1.0], [1.0, -0.9], out)


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
