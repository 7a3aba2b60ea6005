"""Streaming polyphase resampling that is seamless across blocks.

A long track is decoded block by block; resampling each block on its own would
click at every boundary (each block's filter sees zeros past its edges). This
resampler keeps just enough input history between calls that the concatenated
output equals ``scipy.signal.resample_poly`` with the same filter on the whole
signal, while holding only one block plus a filter's width in memory.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.signal import firwin, upfirdn


@functools.lru_cache(maxsize=32)
def _design(up: int, down: int) -> tuple[np.ndarray, int]:
    """Low-pass FIR for ``up/down`` (scipy's resample_poly design) and its half width in input samples.

    The half length is rounded up to a multiple of ``up`` so the filter delay is a
    whole number of input samples, which keeps the block alignment arithmetic exact.
    """
    max_rate = max(up, down)
    half_in = math.ceil(10 * max_rate / up)
    taps = firwin(2 * half_in * up + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    taps = taps.astype(np.float32)
    taps.setflags(write=False)
    return taps, half_in


def ratio(src_sr: int, dst_sr: int) -> tuple[int, int]:
    """Reduced ``(up, down)`` factors taking ``src_sr`` to ``dst_sr``."""
    if src_sr <= 0 or dst_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {src_sr} -> {dst_sr}")
    g = math.gcd(src_sr, dst_sr)
    return dst_sr // g, src_sr // g


class StreamingResampler:
    """Resample a mono float32 stream pushed in blocks of any size.

    Output sample ``n`` is centred on input time ``n * src_sr / dst_sr`` (zero
    delay), and the total output length is ``ceil(n_in * dst_sr / src_sr)``.
    """

    def __init__(self, src_sr: int, dst_sr: int) -> None:
        self.up, self.down = ratio(src_sr, dst_sr)
        self.passthrough = self.up == self.down
        self.taps: np.ndarray = np.ones(1, np.float32)
        self.half = 0
        if not self.passthrough:
            self.taps, self.half = _design(self.up, self.down)
        # Buffer start (global input index) is kept ≡ half (mod down): then every
        # upfirdn output over the buffer lands exactly on a wanted output phase.
        n_lead = math.ceil(self.half / self.down)
        self._start = self.half - n_lead * self.down
        self._buf = np.zeros(-self._start, dtype=np.float32)
        self._next = 0  # next output index to emit
        self._n_in = 0
        self._done = False

    def _emit_until(self, last: int) -> np.ndarray:
        """Emit outputs ``self._next .. last`` from the buffer and drop history no longer needed."""
        if last < self._next:
            return np.zeros(0, dtype=np.float32)
        out = upfirdn(self.taps, self._buf, self.up, self.down)
        offset = (self._start - self.half) * self.up // self.down  # output index of out[0]
        block = out[self._next - offset : last - offset + 1].astype(np.float32, copy=False)
        self._next = last + 1
        lowest = -(-self._next * self.down // self.up) - self.half  # first input the next output needs
        new_start = self.half + ((lowest - self.half) // self.down) * self.down
        self._buf = self._buf[new_start - self._start :]
        self._start = new_start
        return block

    def process(self, block: np.ndarray) -> np.ndarray:
        """Push a 1-D block; return every output sample that is now fully determined."""
        if self._done:
            raise RuntimeError("process() after flush()")
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        self._n_in += x.size
        if self.passthrough:
            return x
        self._buf = np.concatenate([self._buf, x])
        last_in = self._start + self._buf.size - 1
        # output n is complete once floor(n*down/up) + half <= last_in
        last = ((last_in - self.half) * self.up + self.up - 1) // self.down
        return self._emit_until(last)

    def flush(self) -> np.ndarray:
        """Finish the stream (zeros past the end) and return the remaining outputs."""
        self._done = True
        if self.passthrough:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self.up // self.down)
        self._buf = np.concatenate([self._buf, np.zeros(2 * self.half + self.down + 1, dtype=np.float32)])
        return self._emit_until(total - 1)


def resample(x: np.ndarray, src_sr: int, dst_sr: int) -> np.ndarray:
    """One-shot resample of a 1-D signal (same filter as the streaming resampler)."""
    rs = StreamingResampler(src_sr, dst_sr)
    head = rs.process(x)
    return np.concatenate([head, rs.flush()])
