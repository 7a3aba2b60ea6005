"""Words: lyric lines, titles, artist names, spam titles, confusable names.

Lyrics come from small per-language word banks and line templates. They are
nonsense-but-singable, which is all the audio needs; titles reuse lyric words the
way real songs often take their title from the chorus.
"""

from __future__ import annotations

import numpy as np

from trackguard.corpus.rng import choice


def _bank(nouns: str, adjectives: str, verbs: str, templates: list[str]) -> dict[str, list[str]]:
    return {"N": nouns.split(), "A": adjectives.split(), "V": verbs.split(), "T": templates}


# Per language: nouns, adjectives, verbs, and line templates (N/A/V are slots).
# ASCII only: festival's Italian/Catalan front ends do not read UTF-8.
_BANKS: dict[str, dict[str, list[str]]] = {
    "en": _bank(
        "river sky night heart fire road city light rain ocean dream shadow window morning summer winter "
        "mirror garden highway story silence thunder echo harbor meadow candle signal island letter",
        "silver golden broken quiet endless wild lonely bright hollow electric gentle restless distant velvet "
        "burning secret",
        "run fall shine break hold wait call fade dance burn carry follow sing turn drift rise",
        ["the A N will V tonight", "I V through the A N", "we V under A N", "hold me like the N in the A N",
         "every N I V for you", "A N and A N", "you V me like a A N", "down the N where the N V",
         "oh the N is A again", "let the A N V"],
    ),
    "es": _bank(
        "rio cielo noche fuego camino ciudad luz lluvia mar sueno sombra ventana manana verano invierno jardin "
        "historia silencio",
        "dorado roto lento salvaje solo claro lejano secreto nuevo azul",
        "corre cae brilla espera llama baila vuela canta",
        ["el N A V esta noche", "la N V sobre el N", "mi N V como el N", "en la N A", "todo el N V por ti"],
    ),
    "de": _bank(
        "Fluss Himmel Nacht Feuer Weg Stadt Licht Regen Meer Traum Schatten Fenster Morgen Sommer Winter Garten",
        "golden leise wild hell fern dunkel neu kalt warm still",
        "faellt brennt wartet ruft tanzt singt fliegt leuchtet",
        ["der A N V heute Nacht", "im N V das N", "mein N V wie ein N", "unter dem A N", "das N V fuer dich"],
    ),
    "fr": _bank(
        "fleuve ciel nuit feu route ville lumiere pluie mer reve ombre fenetre matin ete hiver jardin",
        "dore lent sauvage seul clair lointain secret nouveau bleu doux",
        "tombe brille attend appelle danse chante vole court",
        ["le N A V ce soir", "la N V sur le N", "mon N V comme un N", "sous le N A", "tout le N V pour toi"],
    ),
    "it": _bank(
        "fiume cielo notte fuoco strada citta luce pioggia mare sogno ombra finestra mattina estate",
        "dorato lento selvaggio solo chiaro lontano segreto nuovo azzurro dolce",
        "cade brilla aspetta chiama balla canta vola corre",
        ["il N A V stasera", "la N V sopra il N", "il mio N V come il N", "sotto il N A", "tutto il N V per te"],
    ),
    "ca": _bank(
        "riu cel nit foc cami ciutat llum pluja mar somni ombra finestra mati estiu hivern",
        "daurat lent salvatge sol clar llunya secret nou blau dolc",
        "cau brilla espera crida balla canta vola corre",
        ["el N A V aquesta nit", "la N V sobre el N", "el meu N V com el N", "sota el N A", "tot el N V per tu"],
    ),
}


def lyric_line(rng: np.random.Generator, language: str, min_words: int, max_words: int) -> str:
    """One line of roughly min..max words, built from the language's templates."""
    bank = _BANKS[language]
    words: list[str] = []
    while len(words) < min_words:
        template = choice(rng, bank["T"])
        for token in template.split():
            words.append(choice(rng, bank[token]) if token in ("N", "A", "V") else token)
    return " ".join(words[: max(min_words, min(max_words, len(words)))])


def song_title(rng: np.random.Generator, language: str) -> str:
    bank = _BANKS[language]
    pattern = int(rng.integers(0, 3))
    if pattern == 0:
        return f"{choice(rng, bank['A'])} {choice(rng, bank['N'])}".title()
    if pattern == 1:
        return choice(rng, bank["N"]).title()
    return f"{choice(rng, bank['N'])} {choice(rng, bank['N'])}".title()


_FIRST = ["Mara", "Jonah", "Ines", "Theo", "Lena", "Ravi", "Ada", "Felix", "Noor", "Elio", "Sana", "Milo", "Ivy",
          "Oskar", "Leah", "Dario", "Nia", "Caleb"]
_LAST = ["Quill", "Harrow", "Vance", "Solano", "Brandt", "Okafor", "Lindqvist", "Moreau", "Castell", "Reyes", "Adler",
         "Sato", "Novak", "Pereira"]
_BAND_A = ["Velvet", "Paper", "Silver", "Hollow", "Neon", "Amber", "Glass", "Northern", "Electric", "Quiet"]
_BAND_N = ["Harbor", "Lanterns", "Parade", "Orchard", "Comets", "Foxes", "Tides", "Engines", "Sparrows", "Atlas"]


def artist_names(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct artist names: a mix of personal names and band names."""
    names: list[str] = []
    while len(names) < count:
        if rng.random() < 0.6:
            name = f"{choice(rng, _FIRST)} {choice(rng, _LAST)}"
        else:
            name = f"The {choice(rng, _BAND_A)} {choice(rng, _BAND_N)}"
        if name not in names:
            names.append(name)
    return names


def alias_name(rng: np.random.Generator) -> str:
    """An uploader-made act name (AI cover channels, re-uploaders)."""
    first = choice(rng, ["AI", "Neural", "Cover", "Vocal", "Hit", "Tune", "Echo", "Dream"])
    second = choice(rng, ["Covers", "Hub", "Factory", "Studio", "Waves", "Machine", "Lab", "Collective"])
    return f"{first} {second} {int(rng.integers(1, 99))}"


_GENERIC = ["Relaxing", "Calm", "Deep", "Soothing", "Peaceful", "Gentle", "Soft", "Healing"]
_SLEEP = ["Rain Sounds", "White Noise", "Brown Noise", "Pink Noise", "Ocean Waves", "Sleep Music", "Fan Noise"]


def generic_title(rng: np.random.Generator, noise_name: str | None = None) -> str:
    """Low-effort titles of bulk/noise uploads: 'Deep Rain Sounds 17'."""
    body = noise_name or choice(rng, _SLEEP)
    return f"{choice(rng, _GENERIC)} {body} {int(rng.integers(1, 300))}"


_KEYWORDS = [
    "Sleep", "Rain", "Relax", "Focus", "Study", "Music", "Deep", "Calm", "Piano", "Lofi", "Beats", "Meditation", "Spa",
    "Baby", "Chill", "Ambient",
]


def stuffed_title(rng: np.random.Generator) -> str:
    """Keyword-stuffed title: many search terms, repeats, a year, long."""
    words = [choice(rng, _KEYWORDS) for _ in range(int(rng.integers(10, 16)))]
    words.insert(int(rng.integers(3, len(words))), str(int(rng.integers(2024, 2027))))
    words.insert(int(rng.integers(0, len(words))), f"{int(rng.integers(1, 10))} Hours")
    return " ".join(words)


# Latin letter -> visually identical Cyrillic letter.
_HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "A": "\u0410", "E": "\u0415",
               "O": "\u041e", "T": "\u0422", "M": "\u041c", "H": "\u041d"}
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060"]


def confusable(rng: np.random.Generator, name: str) -> str:
    """A name that renders like ``name`` but differs in code points (homoglyph or zero-width)."""
    positions = [i for i, ch in enumerate(name) if ch in _HOMOGLYPHS]
    if positions and rng.random() < 0.7:
        chosen = rng.choice(positions, size=min(len(positions), int(rng.integers(1, 3))), replace=False)
        chars = list(name)
        for i in sorted(int(c) for c in chosen):
            chars[i] = _HOMOGLYPHS[chars[i]]
        return "".join(chars)
    cut = int(rng.integers(1, len(name)))
    return name[:cut] + choice(rng, _ZERO_WIDTH) + name[cut:]
