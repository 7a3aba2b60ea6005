"""Declared lengths from container headers (WAV/RF64/AIFF chunks, FLAC STREAMINFO).

libsndfile quietly shortens a WAV whose data chunk runs past the end of the file,
so a truncated upload would decode "successfully" as a shorter track, and it
refuses to open a FLAC cut inside its first frame with an unhelpful message.
Reading the headers ourselves gives the length the writer declared, to compare
with what is actually present.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO

_MAX_CHUNKS = 256  # a real file has a handful; bounds the walk over garbage
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # streamed writers leave sizes unset


@dataclasses.dataclass(frozen=True)
class Declared:
    """What a header promises. ``payload_bytes`` is None where the container does not say."""

    container: str  # "wav", "aiff" or "flac"
    payload_offset: int = 0
    payload_bytes: int | None = None
    byte_rate: int | None = None  # WAV: bytes of sample data per second
    seconds: float | None = None  # FLAC: total samples / rate


def _chunks(f: BinaryIO, order: str) -> dict[bytes, tuple[int, int]]:
    """Chunk id → (data offset, size) for the first occurrence of each chunk."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            break
        cid, size = head[:4], struct.unpack(order + "I", head[4:])[0]
        found.setdefault(cid, (pos + 8, size))
        if cid in (b"data", b"SSND"):
            break  # nothing after the samples matters, and a truncated file has no "after"
        pos += 8 + size + (size & 1)  # chunks are padded to even length
    return found


def _riff(f: BinaryIO, order: str) -> Declared | None:
    chunks = _chunks(f, order)
    if b"data" not in chunks:
        return None
    offset, size = chunks[b"data"]
    if size == 0xFFFFFFFF and b"ds64" in chunks:  # RF64: the real size lives in ds64
        f.seek(chunks[b"ds64"][0] + 8)
        size = struct.unpack("<Q", f.read(8).ljust(8, b"\0"))[0]
    byte_rate = None
    if b"fmt " in chunks:
        f.seek(chunks[b"fmt "][0] + 8)
        raw = f.read(4)
        byte_rate = struct.unpack(order + "I", raw)[0] if len(raw) == 4 else None
    return Declared("wav", offset, None if size in _UNKNOWN_SIZES else size, byte_rate or None)


def _aiff(f: BinaryIO) -> Declared | None:
    chunks = _chunks(f, ">")
    if b"SSND" not in chunks:
        return None
    offset, size = chunks[b"SSND"]
    return Declared("aiff", offset, None if size in _UNKNOWN_SIZES else size)


def _flac(f: BinaryIO) -> Declared:
    f.seek(4)
    block = f.read(4 + 34)
    if len(block) < 38 or block[0] & 0x7F != 0:  # first metadata block must be STREAMINFO
        return Declared("flac")
    bits = int.from_bytes(block[4 + 10 : 4 + 18], "big")
    rate = bits >> 44
    total = bits & ((1 << 36) - 1)
    return Declared("flac", seconds=total / rate if rate and total else None)


def declared(f: BinaryIO) -> Declared | None:
    """Header facts for WAV (RIFF/RIFX/RF64), AIFF and FLAC streams; None for anything else.

    Leaves the stream position undefined; callers seek back before decoding.
    """
    f.seek(0)
    head = f.read(12)
    if head[:4] == b"fLaC":
        return _flac(f)
    if len(head) < 12:
        return None
    magic, form = head[:4], head[8:12]
    if magic in (b"RIFF", b"RF64", b"BW64") and form == b"WAVE":
        return _riff(f, "<")
    if magic == b"RIFX" and form == b"WAVE":
        return _riff(f, ">")
    if magic == b"FORM" and form in (b"AIFF", b"AIFC"):
        return _aiff(f)
    return None
