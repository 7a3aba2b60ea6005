"""Spam features, as-of history, reasons, and a small train → score round trip.

The end-to-end test uses a synthetic table built here (rows + fake audio stats),
so it needs no decoding and runs in a few seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.history import HISTORY_FEATURES, history_features
from features.metadata import (
    ProtectedNames,
    has_non_latin_mix,
    metadata_features,
    profile_mismatch,
    skeleton,
)
from models.base import TrackInput
from models.duplicates import DuplicateFinding
from models.spam import SpamScorer, reasons_from_contrib, visible
from models.train_spam import average_precision, threshold_for_precision, time_split, train_from_tables
from trackguard.contracts import validate_manifest_row

PROTECTED = ProtectedNames(["Mira Vale", "Aurora Lind", "The Quiet Hours"])


# ---------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "name",
    [
        "Мira Vale",  # Cyrillic М
        "Mira Vаle",  # Cyrillic а
        "Μira Vale",  # Greek Mu
        "Mira\u200b Vale",  # zero-width space
        "Mi\u200dra Vale",  # zero-width joiner
        "𝐌𝐢𝐫𝐚 𝐕𝐚𝐥𝐞",  # mathematical bold (NFKC)
        "Mira Válé",  # accents
    ],
)
def test_lookalike_names_are_confusable(name: str) -> None:
    meta = metadata_features("Night Drive", name, protected=PROTECTED)
    assert meta.values["artist_confusable"] == 1.0
    assert meta.confusable_with == "Mira Vale"
    assert meta.values["artist_name_distance"] < 0.15


def test_zero_width_flag_and_script_mix() -> None:
    meta = metadata_features("Night Drive", "Mira\u200b Vale", protected=PROTECTED)
    assert meta.values["artist_zero_width"] == 1.0
    assert has_non_latin_mix("Мira Vale")
    assert not has_non_latin_mix("Мира Вейл")  # wholly Cyrillic is an honest name
    assert not has_non_latin_mix("Tokyo 東京")


@pytest.mark.parametrize("name", ["Nina Stone", "Miles Varga", "Aurora Borealis Band"])
def test_honest_different_names_not_flagged(name: str) -> None:
    meta = metadata_features("Night Drive", name, protected=PROTECTED)
    assert meta.values["artist_confusable"] == 0.0
    assert meta.confusable_with is None
    assert meta.values["artist_is_protected"] == 0.0


def test_the_artist_itself_is_not_confusable() -> None:
    for name in ("Mira Vale", "MIRA  VALE"):
        meta = metadata_features("Night Drive", name, protected=PROTECTED)
        assert meta.values["artist_confusable"] == 0.0
        assert meta.values["artist_is_protected"] == 1.0


def test_skeleton_folds_homoglyphs() -> None:
    assert skeleton("Ρаypаl") == skeleton("paypal")
    assert skeleton("ΑURORA  lind") == "aurora lind"


def test_keyword_stuffing_and_title_shape() -> None:
    stuffed = metadata_features("RAIN Sounds | Sleep Rain Rain 432 Hz ★ Deep Sleep 10 Hours 2024", "Sleep Lab")
    honest = metadata_features("Letters From The Harbour", "Nina Stone")
    v = stuffed.values
    assert v["title_keyword_count"] >= 7
    assert v["title_keyword_share"] > 0.5
    assert v["title_has_year"] == 1.0
    assert v["title_hours_claim"] == 1.0
    assert v["title_separator_count"] >= 2
    assert v["artist_keyword_count"] >= 1
    assert honest.values["title_keyword_count"] == 0
    assert honest.values["title_repeated_token_ratio"] == 0.0
    assert metadata_features("lo-fi study beats to relax", "x").values["title_keyword_count"] == 4


def test_repeated_tokens_and_caps() -> None:
    v = metadata_features("RAIN RAIN RAIN RAIN", "x").values
    assert v["title_repeated_token_ratio"] == pytest.approx(0.75)
    assert v["title_caps_share"] == 1.0
    assert metadata_features("one", "x").values["title_repeated_token_ratio"] == 0.0


def test_profile_mismatch() -> None:
    profiles = {"p1": "Mira Vale"}
    assert profile_mismatch("Mira Vale", "p1", profiles) == 0.0
    assert profile_mismatch("mira vale", "p1", profiles) == 0.0
    assert profile_mismatch("DJ Someone", "p1", profiles) == 1.0
    assert profile_mismatch("DJ Someone", None, profiles) == 0.0
    assert math.isnan(profile_mismatch("DJ Someone", "p9", profiles))


def test_declared_ai_flag() -> None:
    assert metadata_features("a", "b", declared_ai=True).values["declared_ai"] == 1.0


# ---------------------------------------------------------------- history


def _uploads(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2024-03-01", tz="UTC")
    secs = np.sort(rng.integers(0, 10 * 86400, n))
    secs[5:9] = secs[5]  # simultaneous uploads
    return pd.DataFrame(
        {
            "upload_id": [f"u{i:04d}" for i in range(n)],
            "uploader_id": rng.choice(["a", "b", "c"], n),
            "distributor_id": rng.choice(["d1", "d2"], n),
            "uploaded_at": [(base + pd.Timedelta(seconds=int(s))).isoformat() for s in secs],
            "duration_s": rng.choice([31.0, 200.0, np.nan], n),
            "title": rng.choice(["Rain", "Calm"], n),
            "artist_name": "x",
        }
    )


def test_history_counts_by_hand() -> None:
    t = ["2024-01-01T00:00:00+00:00", "2024-01-01T00:30:00+00:00", "2024-01-01T00:30:00+00:00", "2024-01-01T02:00:00Z"]
    df = pd.DataFrame(
        {
            "upload_id": ["a", "b", "c", "d"],
            "uploader_id": "u",
            "distributor_id": "d",
            "uploaded_at": t,
            "duration_s": [31.0, 200.0, 31.5, 60.0],
        }
    )
    h = history_features(df)
    assert h.loc["a", "uploader_count_1h"] == 0 and math.isnan(h.loc["a", "seconds_since_prev"])
    assert h.loc["b", "uploader_count_1h"] == 2  # a, plus c at the same instant
    assert h.loc["b", "seconds_since_prev"] == 0.0
    assert h.loc["d", "uploader_count_1h"] == 0 and h.loc["d", "uploader_count_24h"] == 3
    assert h.loc["d", "seconds_since_prev"] == 5400.0
    assert h.loc["d", "uploader_short_share"] == pytest.approx(2 / 3)
    assert math.isnan(h.loc["d", "title_prior_count"])  # no title column


def test_history_title_and_artist_features() -> None:
    df = pd.DataFrame(
        {
            "upload_id": ["a", "b", "c", "d"],
            "uploader_id": ["label", "label", "reup", "reup"],
            "distributor_id": "d",
            "uploaded_at": [f"2024-01-0{i + 1}T00:00:00Z" for i in range(4)],
            "title": ["Story Fire", "Light", "Story Fire (Sped Up)", "Story Fire"],
            "artist_name": ["Sana Vance", "Sana Vance", "Sana Vance", "Hit Hub 74"],
        }
    )
    h = history_features(df)
    assert list(h["title_prior_count"]) == [0, 0, 1, 0]  # bracketed version tag ignored
    assert list(h["title_prior_any_artist"]) == [0, 0, 1, 2]
    assert list(h["artist_new_uploader"]) == [0, 0, 1, 0]  # c: Sana Vance had uploads, never from "reup"


def test_version_tag_and_numbered_artist() -> None:
    assert metadata_features("Invierno (Sped Up)", "x").values["title_version_tag"] == 1.0
    assert metadata_features("Slowed + Reverb", "x").values["title_version_tag"] == 1.0
    assert metadata_features("Speedway", "x").values["title_version_tag"] == 0.0
    assert metadata_features("x", "Hit Hub 74").values["artist_digits"] == 2.0


def test_history_has_no_look_ahead() -> None:
    df = _uploads(300, seed=1)
    before = history_features(df)
    last = pd.Timestamp(df["uploaded_at"].max())
    later = _uploads(200, seed=2)
    later["upload_id"] = "z" + later["upload_id"]
    later["uploaded_at"] = [(last + pd.Timedelta(seconds=1 + i)).isoformat() for i in range(len(later))]
    after = history_features(pd.concat([df, later], ignore_index=True))
    pd.testing.assert_frame_equal(before, after.loc[before.index])
    assert list(before.columns) == list(HISTORY_FEATURES)


def test_history_skips_bad_rows() -> None:
    df = _uploads(20, seed=0)
    bad = df.iloc[:2].assign(upload_id=["bad-time", "u0003"], uploaded_at=["last tuesday", "2099-01-01T00:00:00Z"])
    h = history_features(pd.concat([df, bad], ignore_index=True))
    assert h.index.is_unique and len(h) == 21
    assert h.loc["bad-time"].isna().all()  # cannot be placed in time
    pd.testing.assert_frame_equal(h.loc[df["upload_id"]], history_features(df))  # the repeat id is ignored


# ---------------------------------------------------------------- reasons


def test_reasons_from_contrib() -> None:
    features = ["duration_s", "title_keyword_count", "artist_confusable", "uploader_count_1h", "artist_zero_width"]
    values = {
        "duration_s": 31.2,
        "title_keyword_count": 9.0,
        "artist_confusable": 1.0,
        "uploader_count_1h": 12.0,
        "artist_zero_width": 0.0,
    }
    ctx = {"artist_name": "Мira Vale", "confusable_with": "Mira Vale", "short_band_s": (30.0, 32.0)}
    contrib = np.array([1.5, 0.9, 2.0, 0.5, 3.0, -0.7])  # last = bias, ignored
    reasons = reasons_from_contrib(contrib, features, values, ctx, top_k=4, min_contrib=0.1)
    assert reasons == [
        "artist name 'Мira Vale' is confusable with enrolled artist 'Mira Vale'",  # zero-width flag off: skipped
        "31.2 s long — just over the 30 s royalty threshold",
        "title has 9 generic keywords",
        "12 uploads from this uploader in the previous hour",
    ]
    assert reasons_from_contrib(-contrib, features, values, ctx) == []  # nothing pushes towards spam
    one = reasons_from_contrib(np.array([0.0, 0.0, 0.0, 1.0, 0.0]), features, {"uploader_count_1h": 1.0}, ctx)
    assert one == ["1 upload from this uploader in the previous hour"]
    assert visible("Mira\u200b Vale") == "Mira<U+200B> Vale"


# ---------------------------------------------------------------- metrics helpers


def test_metric_helpers() -> None:
    y = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    assert average_precision(y, s) == pytest.approx((1 + 1 + 0.75) / 3)
    op = threshold_for_precision(y, s, 0.95)
    assert op["threshold"] == pytest.approx(0.8) and op["recall"] == pytest.approx(2 / 3)
    split = time_split(pd.Series(pd.date_range("2024-01-01", periods=10, tz="UTC")[::-1]))
    assert list(split) == ["test"] * 2 + ["dev"] * 2 + ["train"] * 6


# ---------------------------------------------------------------- end to end (synthetic tables)

_WORDS_TEXT = "harbour letters night drive golden static paper moon velvet river glass echo summer wires"
_KEYWORDS_TEXT = "sleep rain relax focus study lofi white noise asmr 432hz calm deep ocean waves"
_WORDS, _KEYWORDS = _WORDS_TEXT.split(), _KEYWORDS_TEXT.split()
_ARTISTS = [
    "Mira Vale",
    "Aurora Lind",
    "Tomas Reed",
    "Nina Stone",
    "Kai Brandt",
    "Lena Ortiz",
    "Owen Marsh",
    "Ivy Chen",
    "Rafael Dias",
    "June Park",
]
_FIRST_TEXT, _LAST_TEXT = (
    "Ada Ben Cleo Dario Elsa Finn Greta Hugo Iris Jonas",
    "Moreau Quinn Sato Berg Novak Ferrer Hale",
)
_FIRST, _LAST = _FIRST_TEXT.split(), _LAST_TEXT.split()
_LOOKALIKE = str.maketrans({"a": "а", "e": "е", "o": "о", "i": "і", "M": "М", "A": "А", "T": "Т", "K": "К"})


def _spam_row(kind: str, rng: np.random.Generator, ts: dt.datetime, clean_titles: list[tuple[str, str]]) -> dict:
    title = " ".join(rng.choice(_WORDS, 2)).title()
    artist = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    claimed, duration, flat = None, rng.uniform(90, 240), rng.uniform(0.02, 0.3)
    uploader = f"s{rng.integers(0, 6)}"
    if kind == "short_bulk":
        duration = rng.uniform(30.2, 31.9)
    elif kind in ("noise_sleep", "keyword_stuffing"):
        title = " ".join(rng.choice(_KEYWORDS, rng.integers(4, 9))).title()
        flat = rng.uniform(0.4, 0.8) if kind == "noise_sleep" else flat
        duration = rng.uniform(600, 3600) if kind == "noise_sleep" else duration
    elif kind == "confusable_name":
        artist = rng.choice(_ARTISTS[:3]).translate(_LOOKALIKE)
    elif kind == "profile_mismatch":
        artist, claimed = "Random Act", f"p{rng.integers(0, 3)}"
    elif kind == "duplicate" and clean_titles:
        title, artist = clean_titles[int(rng.integers(0, len(clean_titles)))]
    return {
        "title": title,
        "artist_name": artist,
        "claimed_artist_id": claimed,
        "uploader_id": uploader,
        "distributor_id": str(rng.choice(["dist-a", "dist-cheap", "dist-cheap"])),
        "duration_s": duration,
        "spectral_flatness": flat,
        "uploaded_at": ts,
    }


def _clean_row(rng: np.random.Generator, ts: dt.datetime) -> dict:
    i = int(rng.integers(0, len(_ARTISTS)))
    words = list(rng.choice(_WORDS, rng.integers(1, 4)))
    if rng.random() < 0.15:  # honest titles use keywords too ("Rain Song")
        words.append(str(rng.choice(_KEYWORDS)))
    return {
        "title": " ".join(words).title(),
        "artist_name": _ARTISTS[i],
        "claimed_artist_id": f"p{i}" if rng.random() < 0.7 else None,
        "uploader_id": f"h{i}",
        "distributor_id": str(rng.choice(["dist-a", "dist-b", "dist-cheap"])),
        "duration_s": rng.uniform(30.5, 31.5) if rng.random() < 0.03 else rng.uniform(120, 320),
        "spectral_flatness": rng.uniform(0.02, 0.3),
        "uploaded_at": ts,
    }


def _synthetic_tables(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    types = [
        "duplicate",
        "short_bulk",
        "noise_sleep",
        "keyword_stuffing",
        "confusable_name",
        "bulk_burst",
        "profile_mismatch",
    ]
    rows: list[dict] = []
    labels: list[tuple[str, bool, str | None]] = []
    clean_titles: list[tuple[str, str]] = []
    t = 0.0
    while len(rows) < n:
        t += rng.exponential(2000.0)
        ts = start + dt.timedelta(seconds=t)
        if rng.random() < 0.12:
            kind = str(rng.choice(types))
            burst = int(rng.integers(4, 12)) if kind in ("bulk_burst", "short_bulk") else 1
            uploader = f"s{rng.integers(0, 6)}"
            for k in range(burst):
                row = _spam_row(kind, rng, ts + dt.timedelta(seconds=60 * k), clean_titles)
                row["uploader_id"] = uploader
                rows.append(row)
                labels.append(("spam", True, kind))
        else:  # honest labels release whole albums at once: bursts are not only spam
            album = int(rng.integers(6, 14)) if rng.random() < 0.05 else 1
            for k in range(album):
                row = _clean_row(rng, ts + dt.timedelta(seconds=30 * k))
                clean_titles.append((row["title"], row["artist_name"]))
                rows.append(row)
                labels.append(("clean", False, None))
    df = pd.DataFrame(rows[:n])
    df["upload_id"] = [f"up-{i:05d}" for i in range(len(df))]
    df["audio_uri"] = [f"/nowhere/{u}.wav" for u in df["upload_id"]]
    df["genre"] = pd.Series(rng.choice(["pop", "ambient", "rock", ""], len(df))).replace("", None)
    df["declared_ai"] = False
    df["uploaded_at"] = [ts.isoformat() for ts in df["uploaded_at"]]
    lab = pd.DataFrame(labels[:n], columns=["kind", "is_spam", "spam_type"]).assign(upload_id=df["upload_id"])
    stats = pd.DataFrame(
        {
            "duration_s": df["duration_s"],
            "spectral_flatness": df["spectral_flatness"],
            "loudness_lufs": rng.normal(-14, 3, len(df)),
            "silence_ratio": rng.uniform(0, 0.1, len(df)),
        }
    ).set_axis(df["upload_id"].rename("upload_id"))
    artists = pd.DataFrame(
        {
            "artist_id": [f"a{i}" for i in range(10)],
            "profile_id": [f"p{i}" for i in range(10)],
            "name": _ARTISTS,
            "opted_in": [i < 3 for i in range(10)],
        }
    )
    manifest = df.drop(columns=["duration_s", "spectral_flatness"])
    return manifest, lab, artists, stats


@pytest.mark.slow
def test_train_then_score_end_to_end(tmp_path: Path) -> None:
    manifest, labels, artists, stats = _synthetic_tables(2500, seed=7)
    card = train_from_tables(manifest, labels, artists, stats, tmp_path, seed=0, training_data="synthetic test table")
    test = card.metrics["test"]
    assert test["n"] == 500
    assert test["pr_auc"] > max(0.7, test["base_rate"] + 0.4), test
    assert card.threshold is not None and 0.0 < card.threshold < 1.0
    assert "Mira Vale" in card.spec["protected_names"]
    assert "rules_baseline_test" in card.metrics

    scorer = SpamScorer(artifact_path=str(tmp_path))
    model = scorer.load_model()
    assert scorer.model_id(model).startswith("spam/lgbm@")
    history = history_features(manifest.assign(duration_s=stats["duration_s"].to_numpy()))
    tail = manifest.tail(60)
    tracks = [
        TrackInput(
            row=validate_manifest_row(r),
            samples=np.zeros(1, np.float32),
            sample_rate=16000,
            duration_s=float(stats.loc[r["upload_id"], "duration_s"]),
            windows=[],
            stats={"spectral_flatness": float(stats.loc[r["upload_id"], "spectral_flatness"])},
            extra={"history": history.loc[r["upload_id"]].to_dict()},
        )
        for r in tail.to_dict("records")
    ]
    outputs = scorer.score_batch(tracks, model)
    assert len(outputs) == len(tracks)
    assert all(0.0 <= o.score <= 1.0 for o in outputs)
    y = labels.set_index("upload_id").loc[tail["upload_id"], "is_spam"].to_numpy(dtype=bool)
    scores = np.array([o.score for o in outputs])
    assert scores[y].mean() > scores[~y].mean() + 0.3
    assert all(o.reasons for o, spam in zip(outputs, y, strict=True) if spam and o.score > 0.5)

    lookalike = manifest.iloc[-1].to_dict() | {
        "upload_id": "probe",
        "artist_name": "Мira Vale",
        "title": "Night",
        "claimed_artist_id": None,
    }
    probe = TrackInput(
        row=validate_manifest_row(lookalike),
        samples=np.zeros(1, np.float32),
        sample_rate=16000,
        duration_s=200.0,
        windows=[],
        stats={},
    )
    finding = DuplicateFinding("probe", "u-orig", 55, 0.9, (1.0, 61.0), (0.0, 66.0), 1 / 1.1, -2.0, 3)
    copied = scorer.score_batch([dataclasses.replace(probe, extra={"duplicate": finding})], model)[0]
    assert copied.duplicate_of == "u-orig" and copied.duplicate_ratio == 0.9
    assert copied.reasons[0].startswith("near-duplicate of upload u-orig: 0:01–1:01 here matches 0:00–1:06")
    assert "pitch -2.0 st" in copied.reasons[0] and "tempo +10%" in copied.reasons[0]
    assert copied.features["duplicate_prior_matches"] == 3.0
    out = scorer.score_batch([probe], model)[0]
    assert out.duplicate_of is None and out.features["duplicate_prior_matches"] is None  # missing, not 0
    # the model may credit the lookalike to the confusable flag, the distance or the script mix
    assert any("'Мira Vale'" in r for r in out.reasons), out.reasons
    assert out.features["artist_confusable"] == 1.0 and "contributions" in out.features


def test_training_without_serving_unavailable_features(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest, labels, artists, stats = _synthetic_tables(1200, seed=3)
    dropped = ["uploader_short_share", "title_prior_count", "genre"]
    card = train_from_tables(manifest, labels, artists, stats, tmp_path, exclude_features=dropped)
    assert not set(dropped) & set(card.spec["features"]) and card.spec["categorical"] == ["distributor_id"]
    model = SpamScorer(artifact_path=str(tmp_path)).load_model()
    row = validate_manifest_row(manifest.iloc[0].to_dict())
    track = TrackInput(
        row=row, samples=np.zeros(1, np.float32), sample_rate=16000, duration_s=31.0, windows=[], stats={}
    )
    out = SpamScorer(artifact_path=str(tmp_path)).score_batch([track], model)[0]
    assert 0.0 <= out.score <= 1.0 and "genre" not in out.features.get("contributions", {})
    partial = dataclasses.replace(track, extra={"history": {"uploader_count_1h": 3.0}})
    with caplog.at_level(logging.WARNING, logger="models.spam"):
        SpamScorer(artifact_path=str(tmp_path)).score_batch([partial, partial], model)
    assert sum("uploader_count_24h" in r.getMessage() for r in caplog.records) == 1  # warned once


def test_audio_stat_keys_exist_in_features_stats() -> None:
    from features.stats import STAT_KEYS
    from models.spam import AUDIO_STAT_KEYS

    assert set(AUDIO_STAT_KEYS) <= set(STAT_KEYS)


def test_audio_stats_are_cached_per_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import soundfile as sf

    import models.train_spam as ts

    rng = np.random.default_rng(0)
    rows = []
    for i, seconds in enumerate([3.0, 31.0, 5.5]):
        path = tmp_path / f"a{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        rows.append({"upload_id": f"a{i}", "audio_uri": str(path)})
    rows.append({"upload_id": "gone", "audio_uri": str(tmp_path / "missing.wav")})
    manifest = pd.DataFrame(rows)
    first = ts.compute_audio_stats(manifest, tmp_path / "cache", workers=1)
    assert first.loc["a1", "duration_s"] == pytest.approx(31.0, abs=0.01)
    assert np.isfinite(first.loc["a0", list(ts.AUDIO_STAT_KEYS)].to_numpy(dtype=float)).all()
    assert first.loc["gone", "error_code"] == "audio_missing" and math.isnan(first.loc["gone", "duration_s"])

    assert first.loc["a1", "fingerprint_file"].endswith(".fp.npz")  # the same decode cached the fingerprint
    assert pd.isna(first.loc["gone", "fingerprint_file"])

    def no_decoding(uri: str, sample_rate: int, fingerprint_file: Path) -> dict[str, Any]:
        assert uri.endswith("missing.wav"), f"decoded {uri} again instead of using the cache"
        return {"error_code": "audio_missing"}  # a missing file is retried: it may still be arriving

    monkeypatch.setattr(ts, "_decode_stats", no_decoding)
    pd.testing.assert_frame_equal(first, ts.compute_audio_stats(manifest, tmp_path / "cache", workers=1))
