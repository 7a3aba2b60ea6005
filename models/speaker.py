"""Speaker embeddings with a SpeechBrain ECAPA-TDNN encoder (singer verification's front end).

Core functions take tensors (``embed_windows``, ``embed_track``); ``load_speaker_encoder``
is the thin wrapper that takes a directory. Any directory in SpeechBrain's
inference format loads (``hyperparams.yaml`` whose pretrainer reads its files from
the directory itself), so a team can drop in its own fine-tuned encoder; the
default is the published ECAPA-TDNN fetched by ``trackguard setup models``.
Nothing here downloads: a missing default model raises `MissingWeightsError` with
the setup command.

Run ``python -m models.speaker --bench`` for load time and windows/s on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.weights import file_sha256, load_registry, require_weights

PRETRAINED = "ecapa-voxceleb"
SAMPLE_RATE = 16_000
EMBEDDING_DIM = 192
CHECKPOINT = "embedding_model.ckpt"
# Below ~0.1 s the Fbank front end yields too few frames for ECAPA's attentive pooling to mean anything.
MIN_SAMPLES = SAMPLE_RATE // 10
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SpeakerEncoderInfo:
    """Identity of a speaker encoder, carried by predictions and voiceprints (embeddings from
    different encoders are not comparable, so enrolment and scoring must agree on it)."""

    name: str
    checkpoint_sha256: str
    model_dir: Path
    embedding_dim: int = EMBEDDING_DIM
    sample_rate: int = SAMPLE_RATE

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.checkpoint_sha256[:12]}"


def resolve_model_dir(model_dir: Path | str | None = None) -> Path:
    """The encoder directory: `model_dir` if given (must hold hyperparams.yaml), else the verified pretrained one."""
    if model_dir is None:
        return require_weights(PRETRAINED)
    directory = Path(model_dir).expanduser().resolve()
    if not (directory / "hyperparams.yaml").is_file():
        raise FileNotFoundError(
            f"{directory} is not a SpeechBrain model directory (no hyperparams.yaml). Pass a directory in "
            f"SpeechBrain's inference format, or omit it to use the pretrained ECAPA-TDNN "
            f"(`trackguard setup models --only {PRETRAINED}`)."
        )
    return directory


def speaker_encoder_info(model_dir: Path | str | None = None) -> SpeakerEncoderInfo:
    """Name (directory name) and checkpoint sha256 of an encoder directory, without loading the model."""
    directory = resolve_model_dir(model_dir)
    if model_dir is None:
        # Just verified against the registry, so its sha256 is known without hashing again.
        sha = load_registry()[PRETRAINED].file(CHECKPOINT).sha256
    elif (directory / CHECKPOINT).is_file():
        sha = file_sha256(directory / CHECKPOINT)
    else:
        # A custom layout without embedding_model.ckpt: identify it by every checkpoint and its hyperparams.
        h = hashlib.sha256()
        for path in sorted([*directory.glob("*.ckpt"), directory / "hyperparams.yaml"]):
            h.update(f"{path.name}:{file_sha256(path)}\n".encode())
        sha = h.hexdigest()
    return SpeakerEncoderInfo(name=directory.name, checkpoint_sha256=sha, model_dir=directory)


def speaker_model_id(model_dir: Path | str | None = None) -> str:
    """``<name>@<12 hex of the embedding checkpoint's sha256>``, e.g. ``ecapa-voxceleb@0575cb64845e``."""
    return speaker_encoder_info(model_dir).model_id


def load_speaker_encoder(model_dir: Path | str | None = None, device: str = "cpu",
                         flush_subnormals: bool = True) -> Any:
    """A SpeechBrain ``EncoderClassifier`` loaded offline from `model_dir` (default: pretrained ECAPA-TDNN),
    its subnormal weights set to zero (`flush_subnormal_weights`) unless ``flush_subnormals`` is False."""
    directory = resolve_model_dir(model_dir)
    # Belt and braces: the source is a local directory, so SpeechBrain should not reach for the hub at
    # all; if a custom hyperparams.yaml points at the hub anyway, fail at once instead of retrying for
    # ~25 s. huggingface_hub reads the variable at import, so patch the constant if it is loaded already.
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
    # SpeechBrain sets its own loggers to INFO and logs every file it loads; keep loading quiet.
    previous_disable = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        from speechbrain.inference.classifiers import EncoderClassifier

        # savedir == source: a different savedir makes SpeechBrain copy/symlink (and try the hub for gaps).
        encoder = EncoderClassifier.from_hparams(source=str(directory), savedir=str(directory),
                                                 run_opts={"device": device})
    except Exception as exc:
        raise RuntimeError(
            f"could not load a SpeechBrain speaker encoder from {directory}: {type(exc).__name__}: {exc}. "
            "The directory must be self-contained: a hyperparams.yaml whose pretrainer loads its files from "
            "the directory itself (no hub ids or URLs in `paths`)."
        ) from exc
    finally:
        logging.disable(previous_disable)
    if encoder is None:
        raise RuntimeError(f"SpeechBrain returned no model for {directory}")
    encoder.eval()
    if flush_subnormals:
        flushed = flush_subnormal_weights(encoder.mods)
        log.debug("%s: %d subnormal weights set to zero", directory, flushed)
    return encoder


def flush_subnormal_weights(module: torch.nn.Module) -> int:
    """Set the subnormal floats of ``module``'s parameters and buffers to zero; returns how many there were.

    The published ECAPA-TDNN holds tens of thousands, most in its attentive pooling layer. Intel CPUs take
    a microcode assist for every product with a subnormal operand, which slows ECAPA several-fold there;
    ``torch.set_flush_denormal`` sets only the calling thread's flags, not oneDNN's workers', and did not
    help. A subnormal weight times an activation is far below what a float32 sum of them can resolve, so
    embeddings do not change. `trackguard bench voices` prints the count, both speeds and the largest
    embedding difference.
    """
    count = 0
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point():
                subnormal = (tensor != 0) & (tensor.abs() < torch.finfo(tensor.dtype).tiny)
                count += int(subnormal.sum())
                tensor[subnormal] = 0
    return count


def embed_windows(encoder: Any, windows: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """L2-normalised embeddings [N, D] (on the CPU, float32) of equal-length 16 kHz windows [N, T].

    Embeddings do not depend on batch composition (features are normalised per
    window), so `batch_size` only trades memory for speed.
    """
    if windows.ndim == 1:
        windows = windows.unsqueeze(0)
    if windows.ndim != 2:
        raise ValueError(f"windows must be [N, T] at {SAMPLE_RATE} Hz, got shape {tuple(windows.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if windows.shape[0] == 0:
        return torch.empty(0, EMBEDDING_DIM)
    if windows.shape[1] < MIN_SAMPLES:
        raise ValueError(f"windows of {windows.shape[1]} samples are too short; need ≥ {MIN_SAMPLES} "
                         f"({MIN_SAMPLES / SAMPLE_RATE:.1f} s at {SAMPLE_RATE} Hz)")
    if not bool(torch.isfinite(windows).all()):
        raise ValueError("windows contain NaN or infinite samples")
    out = []
    with torch.inference_mode():
        for start in range(0, windows.shape[0], batch_size):
            chunk = windows[start: start + batch_size].float()
            emb = encoder.encode_batch(chunk)  # [b, 1, D]
            out.append(F.normalize(emb.reshape(chunk.shape[0], -1).float(), dim=1).cpu())
    return torch.cat(out)


def embed_track(encoder: Any, windows: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(track embedding [D]: the L2-normalised mean of the window embeddings, window embeddings [N, D])."""
    window_emb = embed_windows(encoder, windows, batch_size)
    if window_emb.shape[0] == 0:
        raise ValueError("embed_track needs at least one window")
    return F.normalize(window_emb.mean(dim=0), dim=0), window_emb


# ---------------------------------------------------------------------------- measurement


def _voice_like(n: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """Harmonic tones with vibrato plus noise: stand-in audio for timing (content does not change the cost)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 110 + 200 * torch.rand(n, 1, generator=gen)
    phase = 2 * torch.pi * (f0 * t + 3 * torch.sin(2 * torch.pi * 5 * t) / (2 * torch.pi * 5))
    wave = sum(torch.sin(k * phase) / k for k in range(1, 8))
    return (0.2 * wave + 0.01 * torch.randn(n, t.numel(), generator=gen)).float()


def benchmark(model_dir: Path | str | None = None, device: str = "cpu", seconds: float = 3.0,
              batch_sizes: Sequence[int] = (1, 16, 64), n_windows: int = 64, repeats: int = 2) -> dict[str, Any]:
    """Load time and embedding throughput (windows/s, best of `repeats`) per batch size."""
    t0 = time.perf_counter()
    encoder = load_speaker_encoder(model_dir, device)
    load_s = time.perf_counter() - t0
    windows = _voice_like(n_windows, seconds)
    embed_windows(encoder, windows[:2], batch_size=2)  # warm-up (allocator, first-call overheads)
    rates = {}
    for bs in batch_sizes:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            embed_windows(encoder, windows, batch_size=bs)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        rates[str(bs)] = round(n_windows / best, 2)
    return {
        "model_id": speaker_model_id(model_dir), "device": device, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "window_s": seconds, "n_windows": n_windows, "load_s": round(load_s, 3),
        "windows_per_s": rates, "audio_realtime_factor_at_best": round(max(rates.values()) * seconds, 1),
        "data": "synthetic harmonic tones (timing only)",
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.speaker", description="speaker encoder utilities")
    ap.add_argument("--bench", action="store_true", help="measure load time and windows/s")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--n-windows", type=int, default=64)
    a = ap.parse_args(argv)
    if not a.bench:
        info = speaker_encoder_info(a.model_dir)
        print(json.dumps({"model_id": info.model_id, "model_dir": str(info.model_dir)}, indent=2))
        return 0
    print(json.dumps(benchmark(a.model_dir, a.device, a.seconds, a.batch_sizes, a.n_windows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
