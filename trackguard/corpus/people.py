"""Artists, uploaders and distributors of the corpus.

Identifiers are opaque (random hex) so that nothing in an id tells a model which
role an account plays; the roles live only in the planner and the labels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from trackguard.corpus import text
from trackguard.corpus.music import SONG_GENRES
from trackguard.corpus.rng import choice, rng_for
from trackguard.corpus.voices import CATALOGUE, Voice

POLICIES = ("block", "allow_licensed", "monitor")


@dataclasses.dataclass
class Artist:
    artist_id: str
    name: str
    profile_id: str
    voice: Voice
    opted_in: bool
    policy: str | None
    licensed_partner_ids: list[str]
    uploader_id: str  # the artist's own label account
    genres: tuple[str, ...]
    isrc_prefix: str


@dataclasses.dataclass
class Accounts:
    """Uploader ids by role, and each uploader's distributor."""

    by_role: dict[str, list[str]]
    distributor: dict[str, str]


def _hexid(rng: np.random.Generator, prefix: str, used: set[str]) -> str:
    while True:
        value = f"{prefix}-{int(rng.integers(0, 16**6)):06x}"
        if value not in used:
            used.add(value)
            return value


def artist_id(index: int) -> str:
    """The id of the artist who sings with catalogue voice ``index`` (0-based), in every corpus size."""
    return f"art-{index + 1:03d}"


def make_accounts(seed: int, n_artists: int) -> tuple[list[str], Accounts]:
    """Distributors, the artists' label accounts (first n_artists of 'label') and the other roles."""
    rng = rng_for(seed, "accounts")
    used: set[str] = set()
    distributors = [_hexid(rng, "dst", used) for _ in range(5)]
    counts = {"label": n_artists, "ai_channel": 4, "reuploader": 4, "bulk": 2, "burst": 2, "noise": 2, "keyword": 2,
              "impostor": 3, "partner": 3}
    by_role = {role: [_hexid(rng, "upl", used) for _ in range(n)] for role, n in counts.items()}
    # Spam accounts favour two lax distributors (a realistic, learnable skew); everyone else is spread evenly.
    spammy = {"bulk", "burst", "noise", "keyword", "reuploader"}
    distributor = {}
    for role, ids in by_role.items():
        for uid in ids:
            p = [0.4, 0.35, 0.1, 0.1, 0.05] if role in spammy else [0.2] * 5
            distributor[uid] = choice(rng, distributors, p=p)
    return distributors, Accounts(by_role, distributor)


def make_artists(seed: int, n: int, accounts: Accounts) -> list[Artist]:
    rng = rng_for(seed, "artists")
    names = text.artist_names(rng, n)
    opted = set(int(i) for i in rng.permutation(n)[: (n + 1) // 2])
    policy_cycle = list(rng.permutation(POLICIES))
    partners = accounts.by_role["partner"]
    used: set[str] = set()
    artists = []
    k = 0
    for i in range(n):
        policy = None
        licensed: list[str] = []
        if i in opted:
            policy = str(policy_cycle[k % len(POLICIES)])
            k += 1
            if policy == "allow_licensed":
                licensed = sorted(str(p) for p in rng.choice(partners, size=int(rng.integers(1, 3)), replace=False))
        genres = tuple(str(g) for g in rng.choice(SONG_GENRES, size=2, replace=False))
        prefix = choice(rng, ["QZ", "GB", "US", "DE", "SE", "FR", "ES", "IT"]) + "".join(
            choice(rng, list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")) for _ in range(3))
        artists.append(Artist(
            artist_id=artist_id(i),
            name=names[i],
            profile_id=_hexid(rng, "prf", used),
            voice=CATALOGUE[i],
            opted_in=i in opted,
            policy=policy,
            licensed_partner_ids=licensed,
            uploader_id=accounts.by_role["label"][i],
            genres=genres,
            isrc_prefix=prefix,
        ))
    return artists
