"""Pure audio functions: URI → waveform → features.

Modules (import the one you need; this package imports nothing eagerly so that a
worker that only decodes does not pay for torch):

- `features.io` — open ``file://`` / plain-path / ``gs://`` URIs as binary streams.
- `features.decode` — any audio → mono float32 at a target rate, in bounded memory,
  with stable error codes.
- `features.resample` — a streaming polyphase resampler (seamless across blocks).
- `features.windows` — heuristic vocal-activity windows for music.
- `features.spectral` — log-mel and LFCC (tensors in, tensors out).
- `features.stats` — loudness (BS.1770), peak, silence, flatness and other statistics.
"""
