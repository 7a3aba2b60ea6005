"""The corpus plan: every upload's metadata, ground truth and how its audio is made.

Planning is cheap and runs in one process from one seed; rendering happens later
in workers. Uploads are first created under stable internal keys with a time,
then sorted by time and given their upload ids, so ids follow upload order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import numpy as np

from trackguard.corpus import text
from trackguard.corpus.encode import Delivery
from trackguard.corpus.mix import MixSpec
from trackguard.corpus.music import Song, plan_song
from trackguard.corpus.people import Artist, make_accounts, make_artists
from trackguard.corpus.rng import choice
from trackguard.corpus.spec import SizeSpec
from trackguard.corpus.voices import Voice

EPOCH = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
DAY = 86_400.0
VAR_DB = (12.0, 9.0, 6.0, 3.0, 0.0)
REFERENCES_PER_ARTIST = 3


@dataclasses.dataclass
class Upload:
    key: str  # internal, stable across the plan
    t: float  # seconds after EPOCH
    manifest: dict[str, Any]
    label: dict[str, Any]
    ext: str | None  # None: no file (a URI that cannot be fetched)
    delivery: Delivery | None = None  # how the file's audio was encoded (None: no decodable audio)
    twin_key: str | None = None
    source_key: str | None = None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # deliberately invalid manifest values
    upload_id: str = ""
    path: str = ""


@dataclasses.dataclass
class SongRender:
    seed: int
    song: Song
    voice: Voice | None
    style: str
    a_cappella: bool
    mix: MixSpec
    delivery: Delivery
    outputs: list[tuple[str, str | None]]  # (upload key, generator family)


@dataclasses.dataclass
class NoiseRender:
    seed: int
    key: str
    kind: str
    seconds: float
    mix: MixSpec
    delivery: Delivery


@dataclasses.dataclass
class DuplicateRender:
    seed: int
    key: str
    source_key: str
    transform: str
    delivery: Delivery


@dataclasses.dataclass
class Reference:
    artist_id: str
    path: str
    render: SongRender


def random_delivery(rng: np.random.Generator) -> Delivery:
    fmt = choice(rng, ["wav", "flac", "mp3", "ogg"], p=[0.3, 0.2, 0.35, 0.15])
    sr = choice(rng, [16_000, 22_050, 44_100, 48_000], p=[0.12, 0.13, 0.5, 0.25])
    channels = 2 if rng.random() < 0.7 else 1
    if fmt in ("wav", "flac"):
        quality = "pcm24" if rng.random() < 0.2 else "pcm16"
    elif fmt == "mp3":
        quality = choice(rng, ["64k", "96k"] if sr < 32_000 else ["128k", "192k", "256k", "320k"])
    else:
        quality = choice(rng, ["q3", "q4", "q5", "q6"])
    return Delivery(fmt, sr, channels, quality)


def random_mix(rng: np.random.Generator, var_db: float | None) -> MixSpec:
    lead = choice(rng, [rng.uniform(0.0, 0.1), rng.uniform(0.1, 1.0), rng.uniform(1.0, 3.0)], p=[0.4, 0.4, 0.2])
    return MixSpec(var_db=var_db, target_dbfs=float(rng.uniform(-20.0, -11.0)), lead_s=round(float(lead), 3),
                   tail_s=round(float(rng.uniform(0.2, 3.0)), 3))


def base_label(**overrides: Any) -> dict[str, Any]:
    label: dict[str, Any] = {
        "kind": "clean", "is_synthetic": False, "generator_family": None, "voice_artist_id": None,
        "content_id": None, "a_cappella": False, "vocal_to_accompaniment_db": None, "vocal_style": None,
        "is_spam": False, "spam_type": None, "duplicate_transform": None, "expected_error_code": None,
        "licensed_use": False,
    }
    label.update(overrides)
    return label


class Planner:
    """Builds the plan section by section; each section draws from its own random stream."""

    def __init__(self, seed: int, size: SizeSpec, root: Path) -> None:
        self.seed, self.size, self.root = seed, size, root
        self.distributors, self.accounts = make_accounts(seed, size.n_artists)
        self.artists = make_artists(seed, size.n_artists, self.accounts)
        self.uploads: dict[str, Upload] = {}
        self.songs: dict[str, SongRender] = {}  # by the key of the upload that owns the content
        self.noises: list[NoiseRender] = []
        self.duplicates: list[DuplicateRender] = []
        self.bad_ops: dict[str, str] = {}  # upload key -> file operation
        self.references: list[Reference] = []
        self._content_ids: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------------
    def content_id(self, rng: np.random.Generator) -> str:
        while True:
            cid = f"c-{int(rng.integers(0, 16**8)):08x}"
            if cid not in self._content_ids:
                self._content_ids.add(cid)
                return cid

    def account(self, role: str, rng: np.random.Generator) -> str:
        return choice(rng, self.accounts.by_role[role])

    def manifest(self, uploader: str, title: str, artist_name: str, **extra: Any) -> dict[str, Any]:
        row: dict[str, Any] = {"title": title, "artist_name": artist_name, "claimed_artist_id": None,
                               "distributor_id": self.accounts.distributor[uploader], "uploader_id": uploader,
                               "isrc": None, "genre": None, "language": None, "declared_ai": False}
        row.update(extra)
        return row

    def isrc(self, artist: Artist, rng: np.random.Generator) -> str:
        return f"{artist.isrc_prefix}26{int(rng.integers(0, 100_000)):05d}"

    def music_target(self, rng: np.random.Generator, mix: MixSpec) -> float:
        lo, hi = self.size.duration_s
        return float(rng.uniform(lo, hi)) - mix.lead_s - mix.tail_s

    def fit_tail(self, mix: MixSpec, song: Song, a_cappella: bool = False) -> MixSpec:
        """Re-choose the trailing silence so the delivered length stays inside the size's range."""
        lo, hi = self.size.duration_s
        content = content_seconds(song, a_cappella)
        room = hi - mix.lead_s - content
        tail = float(np.clip(mix.tail_s, 0.2, max(0.2, min(3.0, room))))
        if mix.lead_s + content + tail < lo:
            tail = lo - mix.lead_s - content
        return dataclasses.replace(mix, tail_s=round(tail, 3))

    def add(self, upload: Upload) -> Upload:
        self.uploads[upload.key] = upload
        return upload

    def new_song(self, rng: np.random.Generator, genre: str, language: str | None, mix: MixSpec,
                 target_s: float | None = None, a_cappella: bool = False) -> Song:
        lyric = functools.partial(text.lyric_line, rng, language) if language else None
        target = target_s if target_s is not None else self.music_target(rng, mix)
        if a_cappella:  # no instrumental intro/outro to cut away: the whole song is sung
            return plan_song(rng, genre, target, lyric, intro=0, outro=0)
        return plan_song(rng, genre, target, lyric)

    def random_time(self, rng: np.random.Generator, lo_day: float = 0.0, hi_day: float | None = None) -> float:
        return float(rng.uniform(lo_day, hi_day if hi_day is not None else self.size.days)) * DAY


def content_seconds(song: Song, a_cappella: bool) -> float:
    """Length of the music region as rendered (an a-cappella take is cut to its singing)."""
    if not a_cappella:
        return song.music_s
    start, end = song.sung_span_s()
    return end - max(0.0, start - 0.25) + 0.6


def uploaded_at(t: float) -> str:
    return (EPOCH + dt.timedelta(seconds=round(t))).isoformat().replace("+00:00", "Z")
