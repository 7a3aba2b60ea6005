"""Text features of one upload's metadata, for the spam model.

Pure functions over the delivered strings; no I/O, no model code. Every value is a
float so it can go straight into a LightGBM feature vector (NaN = unknown).

| feature | why it signals spam |
| --- | --- |
| ``title_len`` | keyword-stuffed titles are long; bulk filler titles are very short |
| ``title_tokens`` | stuffing adds words, not meaning |
| ``title_repeated_token_ratio`` | "Rain Rain Rain Sleep Rain" — repetition games search ranking |
| ``title_keyword_count`` | generic functional-audio words (sleep, rain, 432hz, ...) are what bulk uploads target |
| ``title_keyword_share`` | an honest title may hold one such word; a stuffed one is mostly such words |
| ``title_digits`` | "Track 0173", "Rain 10 Hours 2024": counters and durations mark generated titles |
| ``title_has_year`` | "Best Sleep Music 2024" is a search-bait pattern |
| ``title_hours_claim`` | "8 hours", "10 hrs" promises long filler audio |
| ``title_caps_share`` | ALL-CAPS tokens shout for attention in search results |
| ``title_version_tag`` | "(Sped Up)", "slowed + reverb", "nightcore": the tags of re-uploaded, altered copies |
| ``title_separator_count`` | "Rain \\| Sleep \\| Relax ★ Study" — separators glue keyword lists together |
| ``artist_keyword_count`` | "Sleep Sounds Collective": spam artist names are keyword lists too |
| ``artist_digits`` | "Sleep Sounds 7", "Hit Hub 74": numbered act names are minted in bulk |
| ``artist_len`` | very short or very long names are unusual for real acts |
| ``artist_non_latin_mix`` | mixing Latin with Cyrillic/Greek letters in one name is how lookalikes are built |
| ``artist_zero_width`` | invisible characters in a Latin name only fake a match (Persian, Indic use ZWNJ honestly) |
| ``artist_confusable`` | looks like a protected name (same skeleton, or within ``max_distance``) but is not it |
| ``artist_name_distance`` | near-misses ("Mira Vaie") of protected names; 1.0 when nothing is close |
| ``artist_is_protected`` | exact protected name: not spam by itself, but makes a profile mismatch meaningful |
| ``profile_mismatch`` | delivered to a profile whose name differs from the credited artist (NaN: profile unknown) |
| ``declared_ai`` | the distributor's disclosure; disclosed AI is allowed but shifts the base rate |
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping

# Generic functional-audio vocabulary: the words bulk "sleep/focus" uploads stuff
# into titles to rank in search. Deliberately excludes words every honest title
# uses ("music", "song", "for") so a single hit means little.
_KEYWORD_TEXT = """
sleep sleeping asleep rain rainfall rainy thunder thunderstorm storm relax relaxing relaxation focus
study studying concentration lofi chill chillhop ambient asmr noise white brown pink meditation meditate
calm calming soothing peaceful healing binaural frequency frequencies solfeggio spa yoga zen lullaby
lullabies baby insomnia stress anxiety relief deep ocean waves nature forest birds fan fireplace
background tinnitus sounds beats soft gentle hz hours hour hrs hr loop
"""
SPAM_KEYWORDS = frozenset(_KEYWORD_TEXT.split())
_HZ_RE = re.compile(r"^\d{2,4}hz$")
_YEAR_RE = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_HOURS_RE = re.compile(r"(?<!\d)\d{1,2}\s*(?:hours?|hrs?|h)\b", re.IGNORECASE)
_TOKEN_RE = re.compile(r"[^\W_]+")
_VERSION_TAG_RE = re.compile(
    r"\b(?:sped[\s-]*up|speed[\s-]*up|slowed|reverb|nightcore|daycore|8d(?:\s*audio)?|bass[\s-]*boosted)\b", re.I
)
_SEPARATORS = frozenset("|•·~/\\-–—_+*#:;,!>")

# Characters that render as nothing (or nearly): used to make a name look identical
# to a protected one while differing byte-wise.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064\u034f")

# Lookalikes mapped to the Latin letter they imitate, before case folding: the
# uppercase and lowercase forms of a letter imitate different Latin letters
# (Greek Eta 'Η' looks like 'H', eta 'η' like 'n'). Digits 0/1 follow Unicode's
# confusables.txt (0→o, 1→l), which catches "M1ra Va1e" style leetspeak.
_HOMOGLYPHS = {
    # Cyrillic
    "А": "A",
    "а": "a",
    "В": "B",
    "в": "b",
    "Е": "E",
    "е": "e",
    "Ё": "E",
    "ё": "e",
    "К": "K",
    "к": "k",
    "М": "M",
    "м": "m",
    "Н": "H",
    "н": "h",
    "О": "O",
    "о": "o",
    "Р": "P",
    "р": "p",
    "С": "C",
    "с": "c",
    "Т": "T",
    "т": "t",
    "У": "Y",
    "у": "y",
    "Х": "X",
    "х": "x",
    "Ѕ": "S",
    "ѕ": "s",
    "І": "I",
    "і": "i",
    "Ї": "I",
    "ї": "i",
    "Ј": "J",
    "ј": "j",
    "Ԁ": "D",
    "ԁ": "d",
    "Ԛ": "Q",
    "ԛ": "q",
    "Ԝ": "W",
    "ԝ": "w",
    "Ь": "b",
    "ь": "b",
    "Һ": "H",
    "һ": "h",
    "Ӏ": "l",
    "ӏ": "l",
    "Ү": "Y",
    "ү": "y",
    "Ѵ": "V",
    "ѵ": "v",
    "Ꮃ": "W",
    "п": "n",
    "г": "r",
    "ɡ": "g",
    # Greek
    "Α": "A",
    "α": "a",
    "Β": "B",
    "β": "b",
    "Ε": "E",
    "ε": "e",
    "Ζ": "Z",
    "Η": "H",
    "η": "n",
    "Ι": "I",
    "ι": "i",
    "Κ": "K",
    "κ": "k",
    "Μ": "M",
    "μ": "u",
    "Ν": "N",
    "ν": "v",
    "Ο": "O",
    "ο": "o",
    "Ρ": "P",
    "ρ": "p",
    "Τ": "T",
    "τ": "t",
    "Υ": "Y",
    "υ": "u",
    "Χ": "X",
    "χ": "x",
    "ϲ": "c",
    "Ϲ": "C",
    "ϳ": "j",
    # digits and Latin lookalikes
    "0": "o",
    "1": "l",
    "ı": "i",
    "ȷ": "j",
}
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
_WS_RE = re.compile(r"\s+")


def strip_zero_width(text: str) -> str:
    return "".join(ch for ch in text if ch not in ZERO_WIDTH)


def skeleton(text: str) -> str:
    """Confusable skeleton: two names with the same skeleton look the same to a listener.

    Zero-width removal, NFKC (folds fullwidth and mathematical letters), homoglyph
    map, accent stripping, case folding, whitespace collapse.
    """
    text = unicodedata.normalize("NFKC", strip_zero_width(text)).translate(_HOMOGLYPH_TABLE)
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return _WS_RE.sub(" ", text.casefold()).strip()


def tokens(text: str) -> list[str]:
    """Case-folded word tokens; "lo-fi" is one token because it is one keyword."""
    text = unicodedata.normalize("NFKC", strip_zero_width(text)).casefold()
    text = re.sub(r"\blo[\s-]fi\b", "lofi", text)
    text = re.sub(r"(\d)\s+hz\b", r"\1hz", text)
    return _TOKEN_RE.findall(text)


def keyword_count(toks: Iterable[str]) -> int:
    return sum(1 for t in toks if t in SPAM_KEYWORDS or _HZ_RE.match(t))


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return None


def has_non_latin_mix(text: str) -> bool:
    """True when a name mixes Latin, Cyrillic and Greek letters.

    A wholly Cyrillic or Greek name is honest; mixing is how lookalikes are built.
    Other scripts (CJK, kana) are ignored: "Tokyo 東京" mixes legitimately.
    """
    scripts = {_script(ch) for ch in unicodedata.normalize("NFKC", text)}
    scripts.discard(None)
    return len(scripts) > 1


def _plain(text: str) -> str:
    """Case and spacing folded, nothing else: "MIRA  VALE" is the artist, not a lookalike."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, two-row dynamic programme."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalised_distance(a: str, b: str) -> float:
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0


@dataclasses.dataclass(frozen=True)
class NameMatch:
    """The protected name closest to an artist name, by skeleton."""

    protected: str | None  # closest protected name within `max_distance`, else None
    distance: float  # normalised edit distance of the skeletons; 1.0 when nothing is close
    exact: bool  # the protected name itself, up to case and spacing

    @property
    def confusable(self) -> bool:
        return self.protected is not None and not self.exact


class ProtectedNames:
    """Protected (opted-in or popular) artist names, indexed by skeleton.

    Exact skeleton matches are a dict lookup; near misses scan only names whose
    length allows a distance within ``max_distance``, so the cost stays small.
    """

    def __init__(self, names: Iterable[str], max_distance: float = 0.15) -> None:
        self.max_distance = float(max_distance)
        self.by_skeleton: dict[str, str] = {}
        for name in names:
            if name and name.strip():
                self.by_skeleton.setdefault(skeleton(name), name)

    def __len__(self) -> int:
        return len(self.by_skeleton)

    def match(self, name: str) -> NameMatch:
        skel = skeleton(name)
        if not skel:
            return NameMatch(None, 1.0, False)
        hit = self.by_skeleton.get(skel)
        if hit is not None:
            return NameMatch(hit, 0.0, _plain(name) == _plain(hit))
        best, best_d = None, 1.0
        for other_skel, other in self.by_skeleton.items():
            if abs(len(other_skel) - len(skel)) / max(len(other_skel), len(skel)) > self.max_distance:
                continue
            d = normalised_distance(skel, other_skel)
            if d < best_d:
                best, best_d = other, d
        if best is None or best_d > self.max_distance:
            return NameMatch(None, 1.0 if best is None else best_d, False)
        return NameMatch(best, best_d, False)


def profile_mismatch(artist_name: str, claimed_artist_id: str | None, profiles: Mapping[str, str] | None) -> float:
    """1.0 when the upload is delivered to a profile whose name differs from the credit.

    0.0 when no profile is claimed or the names agree by skeleton; NaN when the
    claimed profile is unknown to us (no evidence either way).
    """
    if not claimed_artist_id:
        return 0.0
    profile_name = (profiles or {}).get(claimed_artist_id)
    if profile_name is None:
        return float("nan")
    return float(skeleton(profile_name) != skeleton(artist_name))


def _title_features(title: str) -> dict[str, float]:
    toks = tokens(title)
    n = len(toks)
    kw = keyword_count(toks)
    words = re.findall(r"[^\W\d_]{2,}", title)
    return {
        "title_len": float(len(title)),
        "title_tokens": float(n),
        "title_repeated_token_ratio": 1.0 - len(set(toks)) / n if n > 1 else 0.0,
        "title_keyword_count": float(kw),
        "title_keyword_share": kw / n if n else 0.0,
        "title_digits": float(sum(ch.isdigit() for ch in title)),
        "title_has_year": float(bool(_YEAR_RE.search(title))),
        "title_hours_claim": float(bool(_HOURS_RE.search(title))),
        "title_caps_share": sum(w.isupper() for w in words) / len(words) if words else 0.0,
        "title_version_tag": float(bool(_VERSION_TAG_RE.search(title))),
        "title_separator_count": float(sum(ch in _SEPARATORS or unicodedata.category(ch) == "So" for ch in title)),
    }


@dataclasses.dataclass(frozen=True)
class MetadataFeatures:
    values: dict[str, float]  # keys = METADATA_FEATURES
    confusable_with: str | None  # protected name the artist name imitates, for reasons
    claimed_profile_name: str | None  # name of the claimed profile, for reasons


def metadata_features(
    title: str,
    artist_name: str,
    claimed_artist_id: str | None = None,
    declared_ai: bool = False,
    protected: ProtectedNames | None = None,
    profiles: Mapping[str, str] | None = None,
) -> MetadataFeatures:
    """All metadata features of one upload (see the module docstring for why each matters)."""
    match = protected.match(artist_name) if protected is not None else NameMatch(None, 1.0, False)
    values = _title_features(title or "")
    values.update(
        {
            "artist_keyword_count": float(keyword_count(tokens(artist_name))),
            "artist_digits": float(sum(ch.isdigit() for ch in artist_name)),
            "artist_len": float(len(artist_name)),
            "artist_non_latin_mix": float(has_non_latin_mix(artist_name)),
            "artist_zero_width": float(any(ch in ZERO_WIDTH for ch in artist_name)),
            "artist_confusable": float(match.confusable),
            "artist_name_distance": match.distance,
            "artist_is_protected": float(match.exact),
            "profile_mismatch": profile_mismatch(artist_name, claimed_artist_id, profiles),
            "declared_ai": float(bool(declared_ai)),
        }
    )
    profile_name = (profiles or {}).get(claimed_artist_id) if claimed_artist_id else None
    return MetadataFeatures(values, match.protected if match.confusable else None, profile_name)


METADATA_FEATURES = tuple(metadata_features("x", "y").values)
