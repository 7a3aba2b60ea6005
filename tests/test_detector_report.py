"""The detector report writer on a seeded synthetic score table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.spoof_metrics import equal_error_rate, min_dcf
from trackguard.reports.common import markdown_table
from trackguard.reports.detector_report import write_detector_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAMILIES = ("fam-a", "fam-b", "fam-c", "fam-d")  # fam-c is held out, fam-d perfectly separated
META: dict[str, Any] = {
    "model_id": "detector-test-0001",
    "threshold": 0.5,
    "data": "synthetic corpus demo-medium-seed7, test split",
    "command": "trackguard evaluate-detector --corpus demo-medium-seed7",
    "heldout_family": "fam-c",
}


def _scores(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_bona, n_per_family = 200, 30
    bona = pd.DataFrame(
        {
            "is_synthetic": False,
            "generator_family": None,
            "codec": rng.choice(["wav", "mp3", "ogg"], n_bona),
            "logit": rng.normal(-1.5, 1.0, n_bona),
        }
    )
    shift = {"fam-a": 1.5, "fam-b": 1.0, "fam-c": 0.0}
    fams = []
    for fam in FAMILIES:
        # fam-d sits above every bona fide logit, so its EER against all bona fide must be 0
        logit = rng.uniform(10.0, 12.0, n_per_family) if fam == "fam-d" else rng.normal(shift[fam], 1.0, n_per_family)
        fams.append(
            pd.DataFrame(
                {
                    "is_synthetic": True,
                    "generator_family": fam,
                    "codec": rng.choice(["wav", "mp3", "ogg"], n_per_family),
                    "logit": logit,
                }
            )
        )
    df = pd.concat([bona, *fams], ignore_index=True)
    df.loc[len(df)] = {"is_synthetic": False, "generator_family": None, "codec": "flac", "logit": -2.0}
    df["upload_id"] = [f"u{i:04d}" for i in range(len(df))]
    df["probability"] = 1.0 / (1.0 + np.exp(-df["logit"]))
    df["split"] = "test"
    df["threshold_flagged"] = df["probability"] >= META["threshold"]
    return df


def _context() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "context_s": [2.0, 4.0, 8.0, 16.0],
            "eer": [0.21, 0.15, 0.11, 0.09],
            "min_dcf": [0.8, 0.6, 0.45, 0.4],
            "n_tracks": [321, 321, 321, 321],
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, pd.DataFrame]:
    out = tmp_path_factory.mktemp("report")
    scores = _scores()
    metrics = write_detector_report(scores, out, title="Detector evaluation", meta=META, context=_context())
    return out, metrics, scores


def test_files_written_and_pngs_valid(report: tuple[Path, dict, pd.DataFrame]) -> None:
    out, _, _ = report
    for name in ("report.md", "metrics.json", "det.png", "calibration.png", "context.png"):
        assert (out / name).is_file(), name
    for name in ("det.png", "calibration.png", "context.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, name


def test_metrics_json_matches_metrics_module(report: tuple[Path, dict, pd.DataFrame]) -> None:
    out, metrics, scores = report
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    labels, logits = scores["is_synthetic"].to_numpy(bool), scores["logit"].to_numpy()
    assert on_disk["eer"] == pytest.approx(equal_error_rate(labels, logits), abs=1e-12)
    assert on_disk["min_dcf"] == pytest.approx(min_dcf(labels, logits), abs=1e-12)
    assert on_disk["n_bona_fide"] == 201 and on_disk["n_synthetic"] == 120
    for key in ("act_dcf", "cllr_bits", "min_cllr_bits", "per_family_eer", "per_codec_eer", "units"):
        assert key in on_disk
    assert on_disk["act_dcf"] >= on_disk["min_dcf"] - 1e-12
    assert on_disk["cllr_bits"] >= on_disk["min_cllr_bits"] - 1e-12
    assert on_disk["stored_flags_agree"] == 1.0
    assert on_disk["splits"] == {"test": 321}


def test_pooled_intervals_resample_voices_when_the_scores_name_them(
    report: tuple[Path, dict, pd.DataFrame], tmp_path: Path
) -> None:
    out, metrics, scores = report
    ci = metrics["intervals"]  # no voice column here: uploads are resampled one by one
    assert (ci["resampled"], ci["n_clusters"], ci["n_resamples"]) == ("upload", 321, 1000)
    assert ci["eer_ci95"][0] < metrics["eer"] < ci["eer_ci95"][1]
    assert ci["min_dcf_ci95"][0] < metrics["min_dcf"] < ci["min_dcf_ci95"][1]
    md = (out / "report.md").read_text()
    assert "95 % interval" in md and "over the 321 uploads" in md and "trackguard eval detector-compare" in md

    voiced = scores.assign(voice=[f"v{i % 9}" for i in range(len(scores))])
    by_voice = write_detector_report(voiced, tmp_path, title="Voices", meta=META)["intervals"]
    assert (by_voice["resampled"], by_voice["n_clusters"]) == ("voice", 9)
    assert "over the 9 voices, each voice with all of its uploads" in (tmp_path / "report.md").read_text()


def test_per_family_and_codec(report: tuple[Path, dict, pd.DataFrame]) -> None:
    out, metrics, scores = report
    fam = metrics["per_family_eer"]
    assert sorted(fam) == list(FAMILIES)
    assert fam["fam-d"]["eer"] == 0.0
    assert min(fam[f]["eer"] for f in ("fam-a", "fam-b", "fam-c")) > 0.0  # so the 0 above is fam-d's doing
    assert fam["fam-c"]["held_out"] and not fam["fam-a"]["held_out"]
    assert fam["fam-a"]["n_synthetic"] == 30 and fam["fam-a"]["n_bona_fide"] == 201
    # the held-out family is the hardest one by construction
    assert fam["fam-c"]["eer"] > fam["fam-a"]["eer"]
    codec = metrics["per_codec_eer"]
    assert codec["flac"] == {"eer": None, "n_synthetic": 0, "n_bona_fide": 1}
    wav = scores[scores["codec"] == "wav"]
    assert codec["wav"]["eer"] == equal_error_rate(wav["is_synthetic"], wav["logit"])
    seen = scores[scores["generator_family"].ne("fam-c")]  # bona fide rows have None: kept
    assert metrics["seen_families_eer"] == {"eer": equal_error_rate(seen["is_synthetic"], seen["logit"]),
                                            "n_synthetic": 90}
    assert metrics["seen_families_eer"]["eer"] < metrics["eer"]  # fam-c, held out, is the hardest
    assert "| EER, seen families only |" in (out / "report.md").read_text()


def test_markdown_content(report: tuple[Path, dict, pd.DataFrame]) -> None:
    out, metrics, _ = report
    md = (out / "report.md").read_text()
    assert md.startswith("# Detector evaluation\n")
    for text in (
        META["data"],
        META["model_id"],
        META["command"],
        "fam-c (held out)",
        "![",
        "det.png",
        "calibration.png",
        "context.png",
        "## Accuracy vs context",
        "| 16 | 0.0900 | 0.4000 | 321 |",
    ):
        assert text in md, text
    for fam in FAMILIES:
        assert fam in md
    # counts sit next to every EER
    assert f"| fam-a | {metrics['per_family_eer']['fam-a']['eer']:.4f} | 30 | 201 |" in md
    assert "| flac | n/a | 0 | 1 |" in md
    assert re.search(r"\| EER \| 0\.\d{4} \| 0\.\d{4}–0\.\d{4} \| raw logit \| 201 \| 120 \|", md)


def test_without_context(tmp_path: Path) -> None:
    scores = _scores(seed=3).drop(columns=["split", "threshold_flagged"])
    meta = {**META, "heldout_family": None}
    metrics = write_detector_report(scores, tmp_path, title="No context", meta=meta)
    md = (tmp_path / "report.md").read_text()
    assert not (tmp_path / "context.png").exists()
    assert "Not measured" in md and "context.png" not in md and "(held out)" not in md
    assert metrics["context"] is None and metrics["stored_flags_agree"] is None and metrics["splits"] is None
    assert metrics["seen_families_eer"] is None and "seen families only" not in md  # nothing held out


def test_confidently_wrong_probability_gives_infinite_cllr(tmp_path: Path) -> None:
    scores = _scores(seed=5)
    scores.loc[0, "probability"] = 1.0  # a bona fide track called certainly synthetic
    metrics = write_detector_report(scores, tmp_path, title="inf", meta=META)
    assert metrics["cllr_bits"] is None  # strict JSON has no Infinity
    assert "| Cllr (bits) | inf |" in (tmp_path / "report.md").read_text()


def test_heldout_family_absent_is_stated(tmp_path: Path) -> None:
    meta = {**META, "heldout_family": "fam-z"}
    metrics = write_detector_report(_scores(), tmp_path, title="absent", meta=meta)
    assert metrics["heldout_family_present"] is False and metrics["seen_families_eer"] is None
    assert "no tracks of it in this data" in (tmp_path / "report.md").read_text()


def test_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="logit"):
        write_detector_report(_scores().drop(columns=["logit"]), tmp_path, title="x", meta=META)
    with pytest.raises(ValueError, match="threshold"):
        write_detector_report(_scores(), tmp_path, title="x", meta={k: v for k, v in META.items() if k != "threshold"})
    with pytest.raises(ValueError, match="n_tracks"):
        write_detector_report(_scores(), tmp_path, title="x", meta=META, context=_context().drop(columns=["n_tracks"]))


def test_markdown_table_helper() -> None:
    table = markdown_table(("a|b", "value"), [("x", 0.123456), ("y", None), ("z", 3)])
    assert table.splitlines() == ["| a\\|b | value |", "|---|---|", "| x | 0.1235 |", "| y | n/a |", "| z | 3 |"]


def test_per_voice_flag_rate_recall_and_eer(tmp_path: Path) -> None:
    """Voice 'loud' has bona fide uploads above the threshold, 'quiet' none; 'solo' has no clones."""
    rows = [("loud", False, 0.9), ("loud", False, 0.2), ("loud", True, 0.95), ("loud", True, 0.1),
            ("quiet", False, 0.1), ("quiet", False, 0.3), ("quiet", True, 0.8),
            ("solo", False, 0.7)]
    scores = pd.DataFrame(rows, columns=["voice", "is_synthetic", "probability"])
    scores["logit"] = np.log(scores["probability"] / (1 - scores["probability"]))
    scores["upload_id"] = [f"u{i}" for i in range(len(scores))]
    scores["generator_family"] = np.where(scores["is_synthetic"], "fam-a", None)
    scores["codec"] = "wav"
    metrics = write_detector_report(scores, tmp_path, title="Voices", meta={**META, "heldout_family": None})
    voices = metrics["per_voice"]
    assert voices["loud"] == {"n_bona_fide": 2, "bona_fide_flag_rate": 0.5, "n_synthetic": 2, "recall": 0.5,
                              "eer": 0.5}
    assert voices["quiet"]["bona_fide_flag_rate"] == 0.0 and voices["quiet"]["recall"] == 1.0
    assert voices["quiet"]["eer"] == 0.0
    assert voices["solo"]["recall"] is None and voices["solo"]["eer"] is None
    md = (tmp_path / "report.md").read_text()
    assert "## Per voice" in md and "median 0.5000, highest 1.0000" in md
    write_detector_report(scores.drop(columns=["voice"]), tmp_path, title="No voices", meta=META)
    assert "Not measured: the scores carry no `voice` column" in (tmp_path / "report.md").read_text()


def test_voice_spread_separates_who_sings_from_how_it_was_made(tmp_path: Path) -> None:
    """Two voices whose clones sit 1 logit over their own bona fide songs, but 4 logits apart from
    each other: pooled EER is poor, centred on each voice it is perfect."""
    rows = [(v, synth, base + (1.0 if synth else 0.0) + jitter)
            for v, base in (("low", -2.0), ("high", 2.0)) for synth in (False, True)
            for jitter in (-0.2, 0.0, 0.2)]
    scores = pd.DataFrame(rows, columns=["voice", "is_synthetic", "logit"])
    scores["probability"] = 1 / (1 + np.exp(-scores["logit"]))
    scores["upload_id"] = [f"u{i}" for i in range(len(scores))]
    scores["generator_family"] = np.where(scores["is_synthetic"], "fam-a", None)
    scores["codec"] = "wav"
    metrics = write_detector_report(scores, tmp_path, title="Spread", meta={**META, "heldout_family": None})
    spread = metrics["voice_spread"]
    assert spread["n_voices"] == 2
    assert spread["voice_mean_bona_fide_logit_sd"] == pytest.approx(np.std([-2.0, 2.0], ddof=1))
    assert spread["within_voice_clone_minus_bona_fide_logit"] == pytest.approx(1.0)
    assert spread["spread_over_gap"] == pytest.approx(np.std([-2.0, 2.0], ddof=1))
    assert metrics["eer"] >= 0.3 and spread["voice_centred_eer_oracle"] == 0.0
    assert "ratio 2.8284" in (tmp_path / "report.md").read_text()
    one_voice = scores[scores["voice"] == "low"]
    assert write_detector_report(one_voice, tmp_path, title="One", meta=META)["voice_spread"] is None


def test_twin_comparison_counts_clones_above_their_own_twin(tmp_path: Path) -> None:
    """Clone c1 scores above its twin b1, c2 below b2, c3's twin was not scored, c4 has none."""
    rows = [("b1", False, None, None, -1.0), ("b2", False, None, None, 3.0),
            ("c1", True, "fam-a", "b1", 2.0), ("c2", True, "fam-a", "b2", 2.5),
            ("c3", True, "fam-b", "b9", 9.0), ("c4", True, "fam-b", None, 9.0)]
    scores = pd.DataFrame(rows, columns=["upload_id", "is_synthetic", "generator_family", "twin_upload_id", "logit"])
    scores["probability"] = 1 / (1 + np.exp(-scores["logit"]))
    scores["codec"] = "wav"
    metrics = write_detector_report(scores, tmp_path, title="Twins", meta={**META, "heldout_family": None})
    twins = metrics["twin_comparison"]
    row = {"n_pairs": 2, "clone_above_twin_share": 0.5, "median_clone_minus_twin_logit": 1.25,
           "clone_over_twin_by_copy_margin_share": None}  # the detector measured no copy margin
    assert twins == {"all": row, "fam-a": row}
    md = (tmp_path / "report.md").read_text()
    assert "## Where the errors come from" in md and "| fam-a | 2 | 0.5000 | 1.2500 | n/a |" in md
    for margin, share in ((2.0, 0.5), (3.0, 0.5), (3.5, 0.0)):  # c1 is 3.0 over its twin, c2 0.5 under
        with_margin = write_detector_report(scores, tmp_path, title="Twins",
                                            meta={**META, "heldout_family": None, "copy_margin_logit": margin})
        assert with_margin["twin_comparison"]["all"]["clone_over_twin_by_copy_margin_share"] == share
    plain = write_detector_report(scores.drop(columns=["twin_upload_id"]), tmp_path, title="No twins", meta=META)
    assert plain["twin_comparison"] is None
    assert "## Where the errors come from" not in (tmp_path / "report.md").read_text()


def test_per_genre_and_vocal_style_means_and_eer(tmp_path: Path) -> None:
    rows = [("rap", False, 3.0), ("rap", False, 5.0), ("rap", True, 6.0),
            ("rock", False, -4.0), ("rock", True, 2.0), ("rock", True, 4.0), ("solo", False, 0.0)]
    scores = pd.DataFrame(rows, columns=["genre", "is_synthetic", "logit"])
    scores["probability"] = 1 / (1 + np.exp(-scores["logit"]))
    scores["upload_id"] = [f"u{i}" for i in range(len(scores))]
    scores["generator_family"] = np.where(scores["is_synthetic"], "fam-a", None)
    scores["codec"] = "wav"
    scores["vocal_style"] = ["spoken", "spoken", "spoken", "sung", "sung", "sung", None]  # solo: an older corpus
    metrics = write_detector_report(scores, tmp_path, title="Genres", meta={**META, "heldout_family": None})
    genres, styles = metrics["per_genre"], metrics["per_vocal_style"]
    assert set(styles) == {"spoken", "sung"} and styles["spoken"] == genres["rap"]
    assert genres["rap"] == {"n_bona_fide": 2, "n_synthetic": 1, "mean_bona_fide_logit": 4.0,
                             "mean_synthetic_logit": 6.0, "eer": 0.0,
                             "within_voice_bona_fide_shift": None, "n_voices_compared": 0}  # no voice column
    assert genres["rock"]["mean_synthetic_logit"] == 3.0 and genres["solo"]["eer"] is None
    md = (tmp_path / "report.md").read_text()
    assert "| rap | 2 | 4.0000 | 1 | 6.0000 | 0.0000 | n/a | 0 |" in md and "| spoken | 2 | 4.0000 |" in md
    scores["genre"] = None
    assert write_detector_report(scores, tmp_path, title="None", meta=META)["per_genre"] is None



def _genre_scores(rap_bonus: float) -> pd.DataFrame:
    """Voice "hi" sits 6 logits above voice "lo"; "hi" sings mostly rap, "lo" mostly rock; rap songs get
    ``rap_bonus`` on top of their voice's level."""
    rows = [("hi", "rap", False, 4.0 + rap_bonus), ("hi", "rap", False, 4.0 + rap_bonus), ("hi", "rock", False, 4.0),
            ("lo", "rap", False, -2.0 + rap_bonus), ("lo", "rock", False, -2.0), ("lo", "rock", False, -2.0),
            ("hi", "rap", True, 12.0), ("lo", "rock", True, 6.0), ("solo", "rap", False, 9.0)]
    scores = pd.DataFrame(rows, columns=["voice", "genre", "is_synthetic", "logit"])
    scores["probability"] = 1 / (1 + np.exp(-scores["logit"]))
    scores["upload_id"] = [f"u{i}" for i in range(len(scores))]
    scores["generator_family"] = np.where(scores["is_synthetic"], "fam-a", None)
    scores["codec"] = "wav"
    return scores


@pytest.mark.parametrize("rap_bonus", [0.0, 1.5])
def test_within_voice_shift_takes_the_voice_out_of_a_genre(tmp_path: Path, rap_bonus: float) -> None:
    """Raw means make rap look 3+ logits higher, only because the high voice sings it; the shift compares
    each voice's rap songs with its own rock songs, so it finds the true bonus. "solo" sings only rap and
    the clones are not bona fide: neither counts."""
    genres = write_detector_report(_genre_scores(rap_bonus), tmp_path, title="Shift",
                                   meta={**META, "heldout_family": None})["per_genre"]
    assert genres["rap"]["mean_bona_fide_logit"] - genres["rock"]["mean_bona_fide_logit"] > 3.0
    assert genres["rap"]["within_voice_bona_fide_shift"] == pytest.approx(rap_bonus)
    assert genres["rock"]["within_voice_bona_fide_shift"] == pytest.approx(-rap_bonus)
    assert genres["rap"]["n_voices_compared"] == 2
    md = (tmp_path / "report.md").read_text()
    assert "The within-voice shift:" in md and f"| {rap_bonus:.4f} | 2 |" in md


def test_mix_groups_sort_by_level_and_a_cappella_last(tmp_path: Path) -> None:
    scores = _genre_scores(0.0)
    scores["mix"] = ["+12 dB", "+3 dB", "a cappella", "+0 dB", "+12 dB", None, "+3 dB", "+0 dB", "+12 dB"]
    mixes = write_detector_report(scores, tmp_path, title="Mix", meta={**META, "heldout_family": None})["per_mix"]
    assert list(mixes) == ["+0 dB", "+3 dB", "+12 dB", "a cappella"]
    assert "| Mix | n bona fide |" in (tmp_path / "report.md").read_text()

def test_pooling_table_marks_the_stored_k(tmp_path: Path) -> None:
    pooling = pd.DataFrame({"pooling_k": [8, 1, 3], "eer": [0.1, 0.3, 0.2], "min_dcf": [0.4, 0.9, 0.5],
                            "n_tracks": [321] * 3})
    metrics = write_detector_report(_scores(seed=4), tmp_path, title="Pooling", meta={**META, "pooling_k": 3},
                                    pooling=pooling)
    assert [(r["pooling_k"], r["stored"]) for r in metrics["pooling"]] == [(1, False), (3, True), (8, False)]
    md = (tmp_path / "report.md").read_text()
    assert "## Accuracy vs pooling" in md and "| 3 (stored) | 0.2000 |" in md
    with pytest.raises(ValueError, match="pooling lacks columns"):
        write_detector_report(_scores(seed=4), tmp_path, title="x", meta=META, pooling=pooling.drop(columns="eer"))


def test_threshold_section_names_the_dev_voice_that_holds_the_threshold_up(tmp_path: Path) -> None:
    by_voice = {"v-plain": {"bona_fide_flag_rate": 0.0, "threshold_without_it": 0.80},
                "v-odd": {"bona_fide_flag_rate": 0.6, "threshold_without_it": 0.41},
                "v-other": {"bona_fide_flag_rate": 0.0, "threshold_without_it": 0.79}}
    meta = {**META, "heldout_family": None, "threshold_by_dev_voice": by_voice, "target_false_flag_rate": 0.01}
    dev = write_detector_report(_scores(), tmp_path, title="Dev", meta=meta)["threshold_dev_voices"]
    assert dev["voice_holding_it_up_most"] == "v-odd" and dev["n_dev_voices"] == 3
    assert dev["threshold_without_one_voice_range"] == [0.41, 0.80]
    assert list(dev["by_voice"]) == ["v-odd", "v-other", "v-plain"]  # the voice that moves it most first
    report = (tmp_path / "report.md").read_text()
    assert "between 0.4100 and 0.8000; `v-odd` holds it" in report and "at most 0.0100" in report
    without = write_detector_report(_scores(), tmp_path, title="Old card", meta=META)
    assert without["threshold_dev_voices"] is None
    assert "Not recorded: the model card has no" in (tmp_path / "report.md").read_text()
