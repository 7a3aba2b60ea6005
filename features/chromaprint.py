"""Chromaprint, the baseline: a thin wrapper around the ``fpcalc`` binary and a bit-error-rate matcher.

``fpcalc -raw -json`` gives one 32-bit sub-fingerprint per 0.124 s: each bit is
the sign of an energy difference between chroma bands over a few frames. Two
recordings of the same audio agree in most bits at the right time offset, so
the usual matcher slides one sequence over the other and takes the offset with
the lowest bit error rate (BER); unrelated audio sits near 0.5.

What this baseline does not do, by construction: a pitch shift moves energy to
other chroma bands (12 bands per octave, so +2 semitones is a rotation by two
bands) and a tempo change stretches the 0.124-s grid, so at no single offset do
the bits agree. Compare ``features.fingerprint``, which is invariant to both.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

ITEM_S = 4096 / 3 / 11025  # Chromaprint's sub-fingerprint step (algorithm 2): 0.1238 s
MAX_BER = 0.30  # decision threshold: below the 0.34-0.5 best-offset BER of unrelated 25-s synthetic pairs
MIN_OVERLAP_ITEMS = 40  # 5 s: shorter overlaps reach low BER by chance


class FpcalcMissing(RuntimeError):
    """``fpcalc`` is not installed (Debian: libchromaprint-tools)."""


@dataclasses.dataclass(frozen=True)
class Chromaprint:
    values: np.ndarray  # uint32, one per ITEM_S
    duration_s: float


@dataclasses.dataclass(frozen=True)
class ChromaprintMatch:
    """Best alignment: reference item = query item + ``offset_items``; BER over ``overlap_items``."""

    ber: float
    offset_items: int
    overlap_items: int

    @property
    def offset_s(self) -> float:
        return self.offset_items * ITEM_S

    @property
    def is_match(self) -> bool:
        return self.ber <= MAX_BER and self.overlap_items >= MIN_OVERLAP_ITEMS


def fpcalc_path() -> str | None:
    return shutil.which("fpcalc")


def _run_fpcalc(source: str, data: bytes | None) -> dict[str, object]:
    exe = fpcalc_path()
    if exe is None:
        raise FpcalcMissing("fpcalc not found on PATH (Debian package libchromaprint-tools)")
    # -length 0: the whole input (the default stops at 120 s)
    out = subprocess.run([exe, "-raw", "-json", "-length", "0", source], input=data, capture_output=True)
    if not out.stdout.strip():
        raise RuntimeError(f"fpcalc failed on {source}: {out.stderr.decode(errors='replace').strip()[-300:]}")
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _parse(result: dict[str, object], duration_s: float | None) -> Chromaprint:
    values = np.asarray(result.get("fingerprint") or [], dtype=np.int64).astype(np.uint32)
    reported = float(result.get("duration") or 0.0)  # type: ignore[arg-type]
    return Chromaprint(values, duration_s if duration_s is not None else reported)


def chromaprint_file(path: str | Path) -> Chromaprint:
    """``fpcalc -raw -json`` on a file (fpcalc decodes it with its own FFmpeg)."""
    return _parse(_run_fpcalc(str(path), None), None)


def chromaprint(samples: np.ndarray, sample_rate: int) -> Chromaprint:
    """``fpcalc -raw -json`` on float samples, piped to its stdin as 16-bit WAV."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(samples, dtype=np.float32), -1, 1), sample_rate, format="WAV",
             subtype="PCM_16")
    return _parse(_run_fpcalc("-", buf.getvalue()), len(samples) / sample_rate)


def match(query: Chromaprint, reference: Chromaprint, min_overlap: int = MIN_OVERLAP_ITEMS) -> ChromaprintMatch:
    """The offset with the lowest bit error rate, over every offset that overlaps ``min_overlap`` items."""
    q, r = query.values, reference.values
    best = ChromaprintMatch(1.0, 0, 0)
    if min(len(q), len(r)) < min_overlap:
        return best
    for offset in range(-(len(q) - min_overlap), len(r) - min_overlap + 1):
        qa, ra = max(0, -offset), max(0, offset)
        n = min(len(q) - qa, len(r) - ra)
        ber = float(np.bitwise_count(q[qa : qa + n] ^ r[ra : ra + n]).sum()) / (32.0 * n)
        if ber < best.ber:
            best = ChromaprintMatch(ber, offset, n)
    return best


def best_match(query: Chromaprint, references: dict[str, Chromaprint]) -> tuple[str, ChromaprintMatch] | None:
    """The reference with the lowest BER if it passes ``ChromaprintMatch.is_match`` (brute force)."""
    scored = [(rid, match(query, ref)) for rid, ref in references.items()]
    scored = [s for s in scored if s[1].is_match]
    return min(scored, key=lambda s: s[1].ber) if scored else None
