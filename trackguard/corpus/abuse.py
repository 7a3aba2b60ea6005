"""Plan sections for spam: re-uploaded duplicates, bulk and burst uploads, noise, stuffed titles, impostors."""

from __future__ import annotations

import numpy as np

from trackguard.corpus import text
from trackguard.corpus.encode import Delivery
from trackguard.corpus.mix import MixSpec
from trackguard.corpus.noise import NOISE_KINDS, NOISE_NAMES
from trackguard.corpus.people import Artist
from trackguard.corpus.plan import (
    DAY,
    VAR_DB,
    DuplicateRender,
    NoiseRender,
    Planner,
    SongRender,
    Upload,
    base_label,
    random_delivery,
    random_mix,
)
from trackguard.corpus.rng import choice, rng_for, seed_for
from trackguard.corpus.transforms import TRANSFORMS

BULK_SECONDS = 31.0  # just past the 30 s a stream needs to count for royalties
BURST_SIZE = 10  # uploads per burst hour
_TITLE_TAGS = {"tempo_+": " (Sped Up)", "tempo_-": " (Slowed)", "speed_+": " (Sped Up)", "pitch_": " (Remix)"}


def _spam_label(spam_type: str, **extra: object) -> dict[str, object]:
    return base_label(kind="spam", is_spam=True, spam_type=spam_type, **extra)


def _dup_delivery(rng: np.random.Generator, transform: str, source_fmt: str | None) -> Delivery:
    d = random_delivery(rng)
    if transform == "reencode_mp3":
        return Delivery("mp3", d.sr, d.channels, "64k" if d.sr < 32_000 else choice(rng, ["96k", "128k"]))
    if transform == "reencode_ogg":
        return Delivery("ogg", d.sr, d.channels, "q1")
    if d.fmt == source_fmt:  # a re-upload usually changes the container too
        return Delivery("mp3" if d.fmt != "mp3" else "ogg", d.sr, d.channels, "128k" if d.fmt != "mp3" else "q4")
    return d


def add_duplicates(p: Planner) -> None:
    offset = int(rng_for(p.seed, "dup-offset").integers(0, len(TRANSFORMS)))
    sources = [u for k, u in sorted(p.uploads.items()) if k.startswith("clean-") and u.t < (p.size.days - 1) * DAY]
    for i in range(p.size.spam["duplicate"]):
        rng = rng_for(p.seed, "duplicate", i)
        src = sources[int(rng.integers(0, len(sources)))]
        transform = TRANSFORMS[(i + offset) % len(TRANSFORMS)]
        delivery = _dup_delivery(rng, transform, src.ext)
        tag = next((v for k, v in _TITLE_TAGS.items() if transform.startswith(k)), "")
        title = src.manifest["title"] + (tag if rng.random() < 0.6 else "")
        name = src.manifest["artist_name"] if rng.random() < 0.6 else text.alias_name(rng)
        uploader = p.account("reuploader", rng)
        manifest = p.manifest(uploader, title, name, isrc=src.manifest["isrc"] if rng.random() < 0.3 else None,
                              genre=src.manifest["genre"], language=src.manifest["language"])
        keep = ("voice_artist_id", "content_id", "a_cappella", "vocal_to_accompaniment_db", "vocal_style")
        label = _spam_label("duplicate", duplicate_transform=transform, **{k: src.label[k] for k in keep})
        key = f"duplicate-{i:05d}"
        t = min(src.t + float(rng.uniform(0.2, 5.0)) * DAY, p.size.days * DAY - 60)
        p.add(Upload(key, t, manifest, label, delivery.fmt, delivery=delivery, source_key=src.key))
        p.duplicates.append(DuplicateRender(seed_for(p.seed, key), key, src.key, transform, delivery))


def _instrumental(p: Planner, key: str, rng: np.random.Generator, genre: str, total_s: float | None) -> Delivery:
    mix = random_mix(rng, None)
    if total_s is not None:
        mix = MixSpec(None, mix.target_dbfs, round(float(rng.uniform(0.0, 0.05)), 3), 0.0, total_s)
        song = p.new_song(rng, genre, None, mix, target_s=total_s - 0.8)
    else:
        song = p.new_song(rng, genre, None, mix)
        mix = p.fit_tail(mix, song)
    delivery = random_delivery(rng)
    p.songs[key] = SongRender(seed_for(p.seed, key), song, None, "sung", False, mix, delivery, [(key, None)])
    return delivery


def _noise(p: Planner, key: str, rng: np.random.Generator, kind: str) -> Delivery:
    lo, hi = p.size.duration_s
    mix = random_mix(rng, None)
    seconds = float(rng.uniform(lo, hi)) - mix.lead_s - mix.tail_s
    delivery = random_delivery(rng)
    p.noises.append(NoiseRender(seed_for(p.seed, key), key, kind, seconds, mix, delivery))
    return delivery


def add_bulk(p: Planner) -> None:
    """31-second instrumentals from one uploader, in batches of a few a day under many act names."""
    uploader = p.accounts.by_role["bulk"][0]
    days = rng_for(p.seed, "bulk-days").uniform(0, p.size.days - 1, size=max(1, p.size.spam["short_bulk"] // 4 + 1))
    for i in range(p.size.spam["short_bulk"]):
        rng = rng_for(p.seed, "short_bulk", i)
        key = f"short_bulk-{i:05d}"
        delivery = _instrumental(p, key, rng, choice(rng, ["pop", "electronic", "hip-hop", "ambient"]), BULK_SECONDS)
        word = choice(rng, ["Lofi", "Chill", "Vibes", "Beat", "Summer", "Night", "Drive", "Study"])
        title = f"{word} {choice(rng, ['Beat', 'Loop', 'Mood', 'Track', 'Session'])} {int(rng.integers(1, 500))}"
        name = text.artist_names(rng, 1)[0] if rng.random() < 0.5 else text.alias_name(rng)
        manifest = p.manifest(uploader, title, name, genre=choice(rng, ["electronic", "hip-hop", "pop"]),
                              language="zxx")
        t = float(days[i % len(days)]) * DAY + float(rng.uniform(0, 6 * 3600))
        label = _spam_label("short_bulk", content_id=p.content_id(rng))
        p.add(Upload(key, t, manifest, label, delivery.fmt, delivery=delivery))


def add_bursts(p: Planner) -> None:
    """Many uploads from one account inside one hour: instrumentals and noise, generic titles."""
    burst_rng = rng_for(p.seed, "bursts")
    n = p.size.spam["bulk_burst"]
    starts = burst_rng.uniform(1, p.size.days - 1, size=(n + BURST_SIZE - 1) // BURST_SIZE) * DAY
    for i in range(n):
        rng = rng_for(p.seed, "bulk_burst", i)
        key = f"bulk_burst-{i:05d}"
        burst = i // BURST_SIZE
        uploader = p.accounts.by_role["burst"][burst % len(p.accounts.by_role["burst"])]
        if rng.random() < 0.5:
            kind = choice(rng, NOISE_KINDS)
            delivery, title = _noise(p, key, rng, kind), text.generic_title(rng, NOISE_NAMES[kind])
        else:
            delivery = _instrumental(p, key, rng, choice(rng, ["ambient", "pop", "electronic"]), None)
            title = text.generic_title(rng, choice(rng, ["Piano", "Lofi Beats", "Ambient Music", "Study Music"]))
        manifest = p.manifest(uploader, title, text.alias_name(rng), genre="ambient", language="zxx")
        t = float(starts[burst]) + float(rng.uniform(0, 3600))
        label = _spam_label("bulk_burst", content_id=p.content_id(rng))
        p.add(Upload(key, t, manifest, label, delivery.fmt, delivery=delivery))


def add_noise_and_keywords(p: Planner) -> None:
    for i in range(p.size.spam["noise_sleep"]):
        rng = rng_for(p.seed, "noise_sleep", i)
        key, kind = f"noise_sleep-{i:05d}", choice(rng, NOISE_KINDS)
        delivery = _noise(p, key, rng, kind)
        name = choice(rng, ["Sleep Sounds", "Nature Relax", "Baby Sleep", "White Noise Lab"]) + f" {rng.integers(1, 9)}"
        manifest = p.manifest(p.account("noise", rng), text.generic_title(rng, NOISE_NAMES[kind]), name,
                              genre="ambient", language="zxx")
        p.add(Upload(key, p.random_time(rng), manifest, _spam_label("noise_sleep", content_id=p.content_id(rng)),
                     delivery.fmt, delivery=delivery))
    for i in range(p.size.spam["keyword_stuffing"]):
        rng = rng_for(p.seed, "keyword_stuffing", i)
        key = f"keyword_stuffing-{i:05d}"
        if rng.random() < 0.5:
            delivery = _noise(p, key, rng, choice(rng, NOISE_KINDS))
        else:
            delivery = _instrumental(p, key, rng, "ambient", None)
        manifest = p.manifest(p.account("keyword", rng), text.stuffed_title(rng), text.alias_name(rng),
                              genre="ambient", language=None)
        p.add(Upload(key, p.random_time(rng), manifest, _spam_label("keyword_stuffing", content_id=p.content_id(rng)),
                     delivery.fmt, delivery=delivery))


def _sung_by(p: Planner, key: str, rng: np.random.Generator, singer: Artist) -> tuple[Delivery, dict[str, object]]:
    """A new vocal song in ``singer``'s own (bona fide) voice."""
    genre = choice(rng, singer.genres)
    var_db = choice(rng, VAR_DB)
    mix = random_mix(rng, var_db)
    song = p.new_song(rng, genre, singer.voice.language, mix)
    mix = p.fit_tail(mix, song)
    delivery = random_delivery(rng)
    p.songs[key] = SongRender(seed_for(p.seed, key), song, singer.voice, "sung", False, mix, delivery, [(key, None)])
    return delivery, {"voice_artist_id": singer.artist_id, "content_id": p.content_id(rng),
                      "vocal_to_accompaniment_db": var_db, "vocal_style": "sung"}


def add_impostors(p: Planner) -> None:
    """Confusable artist names and deliveries to an opted-in artist's profile, sung by someone else."""
    victims = [a for a in p.artists if a.opted_in]
    others = [a for a in p.artists if not a.opted_in] or p.artists
    for spam_type in ("confusable_name", "profile_mismatch"):
        for i in range(p.size.spam[spam_type]):
            rng = rng_for(p.seed, spam_type, i)
            victim = victims[i % len(victims)]
            singer = choice(rng, [a for a in others if a.artist_id != victim.artist_id])
            key = f"{spam_type}-{i:05d}"
            delivery, extra = _sung_by(p, key, rng, singer)
            genre = choice(rng, victim.genres)
            if spam_type == "confusable_name":
                manifest = p.manifest(p.account("impostor", rng), text.song_title(rng, singer.voice.language),
                                      text.confusable(rng, victim.name), genre=genre,
                                      language=singer.voice.language)
            else:
                manifest = p.manifest(p.account("impostor", rng), text.song_title(rng, singer.voice.language),
                                      victim.name, claimed_artist_id=victim.profile_id, genre=genre,
                                      language=singer.voice.language)
            label = _spam_label(spam_type, **extra)
            p.add(Upload(key, p.random_time(rng), manifest, label, delivery.fmt, delivery=delivery))


def add_spam(p: Planner) -> None:
    add_duplicates(p)
    add_bulk(p)
    add_bursts(p)
    add_noise_and_keywords(p)
    add_impostors(p)

