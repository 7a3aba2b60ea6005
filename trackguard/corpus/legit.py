"""Plan sections for legitimate material: clean uploads, their clones, artists' reference recordings."""

from __future__ import annotations

import functools

from trackguard.corpus import text
from trackguard.corpus.encode import Delivery
from trackguard.corpus.generators import FAMILIES
from trackguard.corpus.mix import MixSpec
from trackguard.corpus.music import plan_song
from trackguard.corpus.people import Artist
from trackguard.corpus.plan import (
    DAY,
    REFERENCES_PER_ARTIST,
    VAR_DB,
    Planner,
    Reference,
    SongRender,
    Upload,
    base_label,
    random_delivery,
    random_mix,
)
from trackguard.corpus.rng import choice, rng_for, seed_for

# Who is cloned and how it is delivered, cycled so that every size gets the same mix.
SCENARIOS = ("impersonation_profile", "undisclosed", "licensed", "impersonation_alias", "declared", "undisclosed",
             "impersonation_profile", "undisclosed")


def add_clean(p: Planner) -> None:
    for i in range(p.size.clean):
        rng = rng_for(p.seed, "clean", i)
        artist = p.artists[i % len(p.artists)]
        instrumental = rng.random() < 0.08
        a_cappella = not instrumental and rng.random() < 0.25
        genre = choice(rng, artist.genres)
        style = "spoken" if genre == "hip-hop" and rng.random() < 0.8 else "sung"
        var_db = None if a_cappella or instrumental else choice(rng, VAR_DB)
        mix = random_mix(rng, var_db)
        lang = artist.voice.language
        song = p.new_song(rng, genre, None if instrumental else lang, mix, a_cappella=a_cappella)
        mix = p.fit_tail(mix, song, a_cappella)
        delivery = random_delivery(rng)
        key = f"clean-{i:05d}"
        voice = None if instrumental else artist.voice
        p.songs[key] = SongRender(seed_for(p.seed, key), song, voice, style, a_cappella, mix, delivery, [(key, None)])
        manifest = p.manifest(
            artist.uploader_id, text.song_title(rng, lang), artist.name,
            claimed_artist_id=artist.profile_id if rng.random() < 0.9 else None,
            isrc=p.isrc(artist, rng) if rng.random() < 0.9 else None, genre=genre,
            language=("zxx" if instrumental else lang) if rng.random() < 0.92 else None)
        label = base_label(voice_artist_id=None if instrumental else artist.artist_id, content_id=p.content_id(rng),
                           a_cappella=a_cappella, vocal_to_accompaniment_db=var_db,
                           vocal_style=None if voice is None else style)
        p.add(Upload(key, p.random_time(rng, 0.0, p.size.days - 0.5), manifest, label, delivery.fmt,
                     delivery=delivery))


def _eligible(scenario: str, artist: Artist) -> bool:
    if scenario.startswith("impersonation"):
        return artist.opted_in
    if scenario == "undisclosed":
        return not artist.opted_in
    if scenario == "licensed":
        return artist.policy == "allow_licensed"
    return True


def _pick_twin(p: Planner, scenario: str, taken: set[str], rng_pick: float) -> tuple[Upload, str]:
    by_id = {a.artist_id: a for a in p.artists}
    pool = [u for k, u in sorted(p.uploads.items()) if k.startswith("clean-") and k not in taken
            and u.label["voice_artist_id"] and u.t < (p.size.days - 3) * DAY]
    fits = [u for u in pool if _eligible(scenario, by_id[u.label["voice_artist_id"]])]
    if fits:
        return fits[int(rng_pick * len(fits))], scenario
    if not pool:
        raise RuntimeError("not enough clean vocal tracks to clone; raise SizeSpec.clean")
    twin = pool[int(rng_pick * len(pool))]
    return twin, "impersonation_alias" if by_id[twin.label["voice_artist_id"]].opted_in else "undisclosed"


def _clone_metadata(p: Planner, scenario: str, artist: Artist, twin: Upload, rng_key: int) -> dict[str, object]:
    rng = rng_for(p.seed, "clone-meta", rng_key)
    licensed = scenario == "licensed"
    uploader = choice(rng, artist.licensed_partner_ids) if licensed else p.account("ai_channel", rng)
    own_name = scenario in ("impersonation_profile", "licensed") or (scenario == "undisclosed" and rng.random() < 0.3)
    name = artist.name if own_name else text.alias_name(rng)
    to_profile = scenario in ("impersonation_profile", "licensed") or (own_name and rng.random() < 0.5)
    declared = scenario == "declared" or (licensed and rng.random() < 0.8)
    title = twin.manifest["title"] + (" (AI Version)" if declared and rng.random() < 0.5 else "")
    return p.manifest(uploader, title, name, claimed_artist_id=artist.profile_id if to_profile else None,
                      isrc=p.isrc(artist, rng) if licensed else None, genre=twin.manifest["genre"],
                      language=twin.manifest["language"], declared_ai=declared)


def add_clones(p: Planner) -> None:
    by_id = {a.artist_id: a for a in p.artists}
    taken: set[str] = set()
    for i in range(p.size.clones_per_family * len(FAMILIES)):
        rng = rng_for(p.seed, "clone", i)
        family = FAMILIES[(i + i // 8) % len(FAMILIES)]  # rotate so each family meets each scenario
        twin, scenario = _pick_twin(p, SCENARIOS[i % len(SCENARIOS)], taken, float(rng.random()))
        taken.add(twin.key)
        artist = by_id[twin.label["voice_artist_id"]]
        key = f"clone-{i:05d}"
        label = base_label(kind="clone", is_synthetic=True, generator_family=family, voice_artist_id=artist.artist_id,
                           content_id=twin.label["content_id"], a_cappella=twin.label["a_cappella"],
                           vocal_to_accompaniment_db=twin.label["vocal_to_accompaniment_db"],
                           vocal_style=twin.label["vocal_style"], licensed_use=scenario == "licensed")
        t = min(twin.t + float(rng.uniform(0.3, 4.0)) * DAY, p.size.days * DAY - 60)
        p.add(Upload(key, t, _clone_metadata(p, scenario, artist, twin, i), label, twin.ext, delivery=twin.delivery,
                     twin_key=twin.key))
        twin.twin_key = key
        p.songs[twin.key].outputs.append((key, family))


def add_references(p: Planner) -> None:
    """Three a-cappella enrolment takes per artist, sung from lyrics no upload uses."""
    delivery = Delivery("wav", 16_000, 1, "pcm16")
    for artist in p.artists:
        for j in range(REFERENCES_PER_ARTIST):
            rng = rng_for(p.seed, "reference", artist.artist_id, j)
            mix = MixSpec(None, target_dbfs=float(rng.uniform(-22, -16)), lead_s=0.15, tail_s=0.1)
            lang = artist.voice.language
            # two sung lines (4 bars) at 80-128 bpm: 8-12 s once cut to the singing
            lyric = functools.partial(text.lyric_line, rng, lang)
            song = plan_song(rng, choice(rng, ["pop", "folk"]), 10.0, lyric, intro=0, outro=0, bars=4)
            path = str(p.root / "references" / artist.artist_id / f"ref{j + 1}.wav")
            render = SongRender(seed_for(p.seed, "reference", artist.artist_id, j), song, artist.voice, "sung", True,
                                mix, delivery, [(path, None)])
            p.references.append(Reference(artist.artist_id, path, render))
