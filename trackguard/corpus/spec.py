"""Corpus sizes: how many of each kind of upload, and how long the tracks are."""

from __future__ import annotations

import dataclasses

# 1.1: the detector size sings with 28 voices (was 16); 1.2: labels carry vocal_style (the audio is unchanged).
# Adding a size (detector-wide) leaves every other size's corpus as it was, so it is not a new version:
# models record corpora by (seed, size, version).
VERSION = "1.2.0"
SPAM_TYPES = ("duplicate", "short_bulk", "noise_sleep", "keyword_stuffing", "confusable_name", "bulk_burst",
              "profile_mismatch")


@dataclasses.dataclass(frozen=True)
class SizeSpec:
    name: str
    n_artists: int
    duration_s: tuple[float, float]  # delivered track length range (silences included)
    clean: int
    clones_per_family: int
    spam: dict[str, int]
    bad_audio_each: int  # of each audio error kind
    bad_metadata_each: int  # of each metadata error kind
    days: float = 30.0

    @property
    def n_spam(self) -> int:
        return sum(self.spam.values())


# For training and evaluating the synthetic-voice detector: many bona fide/clone twins, short
# tracks, every catalogue voice (unseen singers in dev and test), one of each spam and error
# kind (so the corpus is still a complete one).
_DETECTOR = SizeSpec(
    "detector", 28, (20.0, 35.0), clean=260, clones_per_family=45,
    spam={"duplicate": 1, "short_bulk": 1, "noise_sleep": 1, "keyword_stuffing": 1, "confusable_name": 1,
          "bulk_burst": 1, "profile_mismatch": 1},
    bad_audio_each=1, bad_metadata_each=1,
)

SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec(
        "small", 8, (30.0, 40.0), clean=35, clones_per_family=2,
        spam={"duplicate": 2, "short_bulk": 2, "noise_sleep": 1, "keyword_stuffing": 1, "confusable_name": 1,
              "bulk_burst": 2, "profile_mismatch": 1},
        bad_audio_each=1, bad_metadata_each=1,
    ),
    "medium": SizeSpec(
        "medium", 12, (30.0, 90.0), clean=140, clones_per_family=10,
        spam={"duplicate": 10, "short_bulk": 8, "noise_sleep": 5, "keyword_stuffing": 5, "confusable_name": 4,
              "bulk_burst": 8, "profile_mismatch": 4},
        bad_audio_each=2, bad_metadata_each=1,
    ),
    "detector": _DETECTOR,
    # The detector size with all 40 catalogue voices (voices 29-40 are new): the same numbers of
    # uploads, sung by more singers, so each split holds more voices. Its first 28 artists are the
    # detector size's (artist i always sings with catalogue voice i).
    "detector-wide": dataclasses.replace(_DETECTOR, name="detector-wide", n_artists=40),
    # For training and evaluating the spam classifier and duplicate matching: ~200 spam uploads of
    # every type among ~300 clean ones over 30 days, so a time-based test split holds dozens of each.
    "spam": SizeSpec(
        "spam", 12, (35.0, 75.0), clean=300, clones_per_family=4,
        spam={"duplicate": 40, "short_bulk": 30, "noise_sleep": 20, "keyword_stuffing": 20, "confusable_name": 16,
              "bulk_burst": 30, "profile_mismatch": 16},
        bad_audio_each=1, bad_metadata_each=1,
    ),
    "large": SizeSpec(
        "large", 16, (30.0, 300.0), clean=720, clones_per_family=50,
        spam={"duplicate": 60, "short_bulk": 40, "noise_sleep": 25, "keyword_stuffing": 25, "confusable_name": 20,
              "bulk_burst": 40, "profile_mismatch": 20},
        bad_audio_each=6, bad_metadata_each=3,
    ),
}
