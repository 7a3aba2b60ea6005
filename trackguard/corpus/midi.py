"""A minimal Standard MIDI File (format 0) writer.

Only what the accompaniment needs: note on/off, program change, tempo. Written by
hand so that the corpus needs no extra dependency and the bytes are reproducible.
"""

from __future__ import annotations

import dataclasses
import struct

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # General MIDI percussion is channel 10 (index 9)


@dataclasses.dataclass(frozen=True)
class Note:
    channel: int
    pitch: int
    start_beat: float
    dur_beats: float
    velocity: int


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit = more follows."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _tick(beat: float) -> int:
    return max(0, round(beat * TICKS_PER_BEAT))


def _events(notes: list[Note], programs: dict[int, int], tempo_bpm: float,
            end_beat: float) -> list[tuple[int, int, bytes]]:
    """(tick, order, bytes); order puts set-up first and note-offs before note-ons at one tick."""
    usec = round(60_000_000 / tempo_bpm)
    events: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + usec.to_bytes(3, "big"))]
    for channel, program in sorted(programs.items()):
        events.append((0, 1, bytes([0xC0 | channel, program & 0x7F])))
    for n in notes:
        pitch, vel = max(0, min(127, n.pitch)), max(1, min(127, n.velocity))
        on, off = _tick(n.start_beat), _tick(n.start_beat + n.dur_beats)
        events.append((on, 3, bytes([0x90 | n.channel, pitch, vel])))
        events.append((max(off, on + 1), 2, bytes([0x80 | n.channel, pitch, 0])))
    last = max((t for t, _, _ in events), default=0)
    events.append((max(_tick(end_beat), last), 9, b"\xff\x2f\x00"))
    return sorted(events, key=lambda e: (e[0], e[1], e[2]))


def smf_bytes(notes: list[Note], programs: dict[int, int], tempo_bpm: float, end_beat: float) -> bytes:
    """Encode notes as a format-0 SMF; the end-of-track marker sits at ``end_beat``."""
    track = bytearray()
    now = 0
    for tick, _, data in _events(notes, programs, tempo_bpm, end_beat):
        track += _vlq(tick - now) + data
        now = tick
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)
