"""Plan section for bad inputs: broken files and invalid manifest rows, each with its expected error code."""

from __future__ import annotations

import numpy as np

from trackguard.corpus import text
from trackguard.corpus.badinputs import AUDIO_ERRORS, METADATA_ERRORS
from trackguard.corpus.encode import Delivery
from trackguard.corpus.plan import Planner, SongRender, Upload, base_label, random_delivery, random_mix
from trackguard.corpus.rng import choice, rng_for, seed_for

_BAD_TIMES = ("yesterday", "last tuesday", "2026-02-30T10:00:00Z", "31/03/2026 14:00")
_EXTS = {"audio_empty": ("wav", "mp3"), "audio_truncated": ("wav", "flac"), "audio_undecodable": ("mp3",),
         "audio_nonfinite": ("wav",), "audio_too_short": ("wav",), "audio_missing": ("mp3", "flac", "wav")}
_RENDERED = ("audio_truncated", "missing_field", "invalid_timestamp", "invalid_field")


def _render_instrumental(p: Planner, key: str, rng: np.random.Generator, delivery: Delivery) -> None:
    """A valid short instrumental: the audio behind a row whose problem is elsewhere (or a file cut later)."""
    mix = random_mix(rng, None)
    song = p.new_song(rng, choice(rng, ["pop", "rock", "folk", "ambient"]), None, mix,
                      target_s=p.size.duration_s[0] + float(rng.uniform(0, 5)))
    mix = p.fit_tail(mix, song)
    p.songs[key] = SongRender(seed_for(p.seed, key), song, None, "sung", False, mix, delivery, [(key, None)])


def _delivery(code: str, j: int, rng: np.random.Generator) -> Delivery | None:
    d = random_delivery(rng)
    if code == "audio_truncated":
        return Delivery(_EXTS[code][j % 2], d.sr, d.channels, "pcm16")
    if code == "audio_nonfinite":
        return Delivery("wav", d.sr, 2, "float")
    if code == "audio_too_short":
        return Delivery("wav", d.sr, 1, "pcm16")
    if code in _RENDERED:
        return d
    return None


def _break_metadata(code: str, key: str, manifest: dict[str, object], rng: np.random.Generator) -> dict[str, object]:
    """Apply a metadata error; returns overrides applied when the manifest is written."""
    if code == "missing_field":
        manifest["title"] = choice(rng, ["", "   "])
    elif code == "invalid_timestamp":
        return {"uploaded_at": choice(rng, _BAD_TIMES)}
    elif code == "invalid_uri":
        return {"audio_uri": f"ftp://ingest.{manifest['distributor_id']}.example.net/drop/{key}.mp3"}
    elif code == "invalid_field":
        return {"upload_id_suffix": choice(rng, [" retry/2", "/final mix", " (copy)/1"])}
    return {}


def add_bad_inputs(p: Planner) -> None:
    codes = [(c, j) for c in AUDIO_ERRORS for j in range(p.size.bad_audio_each)]
    codes += [(c, j) for c in METADATA_ERRORS for j in range(p.size.bad_metadata_each)]
    for code, j in codes:
        rng = rng_for(p.seed, "bad", code, j)
        artist = choice(rng, p.artists)
        key = f"bad-{code}-{j:03d}"
        delivery = _delivery(code, j, rng)
        if code in _RENDERED and delivery is not None:
            _render_instrumental(p, key, rng, delivery)
        if code in AUDIO_ERRORS and code != "audio_truncated":
            p.bad_ops[key] = code
        manifest = p.manifest(artist.uploader_id, text.song_title(rng, artist.voice.language), artist.name,
                              claimed_artist_id=artist.profile_id, isrc=p.isrc(artist, rng),
                              genre=choice(rng, artist.genres), language="zxx")
        overrides = _break_metadata(code, key, manifest, rng)
        ext = _EXTS[code][j % len(_EXTS[code])] if code in _EXTS else (delivery.fmt if delivery else None)
        label = base_label(kind="bad_input", content_id=p.content_id(rng), expected_error_code=code)
        p.add(Upload(key, p.random_time(rng), manifest, label, ext, delivery=delivery, overrides=overrides))

