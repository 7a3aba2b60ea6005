"""Synthetic, labelled upload corpus: clean tracks, voice clones, spam and bad inputs.

``make_corpus(out_dir, seed, size)`` writes manifest/labels/artists Parquet files,
the audio, reference takes and a data card. See CORPUS.md in a built corpus.
"""

from __future__ import annotations

from trackguard.corpus.build import make_corpus

__all__ = ["make_corpus"]
