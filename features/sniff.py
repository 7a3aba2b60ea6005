"""Which audio container a byte stream is, from its first bytes (magic numbers), never from a name or header.

The upload API refuses what is not audio before it is stored or scored: a lyrics
sheet renamed ``.mp3`` or an HTML error page saved as the "audio" would otherwise
travel all the way to the decoder. Sniffing only says "this looks like container
X"; whether it decodes is still the decoder's call.
"""

from __future__ import annotations

from collections.abc import Callable

SNIFF_BYTES = 4096  # enough for every check below, including an ID3 tag's header

# Container name → the file extension used for stored objects.
EXTENSIONS: dict[str, str] = {
    "wav": ".wav", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3", "aac": ".aac", "mp4": ".m4a", "aiff": ".aiff",
    "matroska": ".mka",
}
# Content types a distributor may declare for each container (for the signed-URL flow).
CONTENT_TYPES: dict[str, str] = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav", "audio/flac": "flac",
    "audio/x-flac": "flac", "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/aac": "aac",
    "audio/mp4": "mp4", "audio/x-m4a": "mp4", "audio/aiff": "aiff", "audio/x-aiff": "aiff", "audio/webm": "matroska",
    "audio/x-matroska": "matroska",
}


def _riff(head: bytes) -> str | None:
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return None


# kbit/s by bitrate index, for (MPEG-1?, layer); MPEG-2 and 2.5 share their tables.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {0b11: (44100, 48000, 32000), 0b10: (22050, 24000, 16000), 0b00: (11025, 12000, 8000)}


def _mpeg_frame_length(h: bytes) -> int | None:
    """Bytes in the MPEG audio frame whose header starts ``h``; None when it is not a usable header."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (h[1] >> 3) & 0b11, (h[1] >> 1) & 0b11
    index, rate_index, pad = h[2] >> 4, (h[2] >> 2) & 0b11, (h[2] >> 1) & 1
    if version == 0b01 or layer_bits == 0 or index in (0, 0b1111) or rate_index == 0b11:
        return None  # reserved values (or free format, which cannot be framed): random bytes, not a frame
    layer, mpeg1 = 4 - layer_bits, version == 0b11
    kbps = _BITRATES[(mpeg1, min(layer, 2) if not mpeg1 else layer)][index]
    rate = _RATES[version][rate_index]
    if layer == 1:
        return (12 * kbps * 1000 // rate + pad) * 4
    return (144 if layer == 2 or mpeg1 else 72) * kbps * 1000 // rate + pad


def _adts_frame_length(h: bytes) -> int | None:
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0 or (h[2] >> 2) & 0x0F >= 13:
        return None
    length = ((h[3] & 0x03) << 11) | (h[4] << 3) | (h[5] >> 5)
    return length if length >= 7 else None


def _framed(head: bytes, frame_length: Callable[[bytes], int | None]) -> bool:
    """Two consecutive frame headers: one header alone is 11 bits that random bytes match once in 2,048."""
    first = frame_length(head)
    return first is not None and frame_length(head[first:]) is not None


def _mpeg_frame(head: bytes) -> str | None:
    if _framed(head, _adts_frame_length):
        return "aac"
    return "mp3" if _framed(head, _mpeg_frame_length) else None


def sniff_audio(head: bytes) -> str | None:
    """The container ``head`` (the first bytes of a file) starts like, or None for anything else.

    Names: "wav", "aiff", "flac", "ogg", "mp3", "aac" (ADTS), "mp4" (MP4/M4A: an
    ``ftyp`` box at offset 4), "matroska" (Matroska/WebM EBML header).
    """
    if len(head) < 4:
        return None
    if found := _riff(head):
        return found
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" and len(head) >= 10 and head[3] < 0xFF and head[5] & 0x0F == 0:
        return "mp3"  # an ID3v2 tag (version byte sane, no undefined flags) in front of MPEG frames
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return _mpeg_frame(head)
