"""Small helpers shared by the decoders: a growable output array and sample checks."""

from __future__ import annotations

import numpy as np

from trackguard.contracts import ErrorCode, TrackguardError


class OutputBuffer:
    """A float32 array that grows in place (realloc) instead of collecting chunks.

    Collecting chunks and concatenating at the end would briefly hold the output
    twice; a capacity estimated from the header usually avoids any regrowth.
    """

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(int(capacity), 1024), dtype=np.float32)
        self.n = 0

    def append(self, x: np.ndarray) -> None:
        end = self.n + x.size
        if end > self._data.size:
            # ndarray.resize reallocates in place; nothing else references _data.
            self._data.resize(max(end, int(self._data.size * 1.5)), refcheck=False)
        self._data[self.n : end] = x
        self.n = end

    def finish(self) -> np.ndarray:
        """The filled part as an array that owns exactly its memory."""
        self._data.resize(self.n, refcheck=False)
        data, self._data = self._data, np.empty(0, dtype=np.float32)
        return data


def check_finite(block: np.ndarray, offset_s: float, sr: int) -> None:
    """Raise AUDIO_NONFINITE naming the first NaN/inf sample's time."""
    finite = np.isfinite(block)
    if finite.all():
        return
    first = int(np.argmin(finite))
    at = offset_s + first / sr
    raise TrackguardError(
        ErrorCode.AUDIO_NONFINITE,
        f"sample at {at:.3f} s is NaN or infinite (a float file with invalid values); re-export the audio",
    )
