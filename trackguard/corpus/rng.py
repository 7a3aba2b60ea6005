"""Deterministic per-item random streams.

Every item draws from its own generator, derived from (corpus seed, item key), so
an item's audio does not depend on which worker renders it or in what order.
Python's ``hash()`` is salted per process, hence the explicit digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def key_int(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one named item of the corpus built with ``seed``."""
    return np.random.default_rng([seed & 0xFFFFFFFF, key_int(*parts) & 0xFFFFFFFF, key_int(*parts) >> 32])


def seed_for(seed: int, *parts: object) -> int:
    """A plain integer seed for a job (travels to worker processes)."""
    return key_int(seed, *parts) & 0x7FFFFFFF


def choice(rng: np.random.Generator, options: Sequence[T], p: Sequence[float] | None = None) -> T:
    """Pick one element (np's choice would turn tuples into arrays)."""
    return options[int(rng.choice(len(options), p=p))]
