"""`trackguard eval detector-compare`: two evaluations of the same uploads, paired by voice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.compare_detectors import compare_detectors
from models.spoof_metrics import equal_error_rate
from trackguard.cli import main


def _scores(shift: float, seed: int = 0, n_voices: int = 10, per_voice: int = 8) -> pd.DataFrame:
    """A report's scores.parquet: ``shift`` raises every clone (a better model at a larger shift)."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(n_voices):
        offset = rng.normal(0.0, 2.0)
        for i in range(per_voice):
            synthetic = i % 2 == 1
            family = ("fam-a", "fam-b")[i // 2 % 2] if synthetic else None
            logit = offset * (not synthetic) + (2.0 + shift) * synthetic + rng.normal()
            rows.append({"upload_id": f"v{v}-{i}", "is_synthetic": synthetic, "generator_family": family,
                         "voice": f"art-{v:03d}", "logit": logit})
    return pd.DataFrame(rows)


def _report(path: Path, scores: pd.DataFrame) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(path / "scores.parquet")
    return path


def test_a_better_candidate_gets_a_negative_difference_pooled_and_per_family(tmp_path: Path) -> None:
    base = _report(tmp_path / "a", _scores(0.0))
    cand = _report(tmp_path / "b", _scores(1.5))  # same noise (same seed), clones 1.5 higher
    r = compare_detectors(base, cand, n_resamples=300)
    assert (r["n_uploads"], r["n_bona_fide"], r["n_synthetic"], r["n_voices"]) == (80, 40, 40, 10)
    pooled = r["pooled"]["eer"]
    a, b = _scores(0.0), _scores(1.5)
    assert pooled["baseline"] == pytest.approx(equal_error_rate(a["is_synthetic"], a["logit"]))
    assert pooled["candidate"] == pytest.approx(equal_error_rate(b["is_synthetic"], b["logit"]))
    assert pooled["difference"] < 0 and pooled["difference_ci95"][1] <= 0 and pooled["share_candidate_lower"] > 0.5
    assert set(r["per_family"]) == {"fam-a", "fam-b"}
    assert all(f["eer"]["difference"] <= 0 for f in r["per_family"].values())


def test_uploads_are_matched_by_id_not_by_row(tmp_path: Path) -> None:
    scores = _scores(0.0)
    base = _report(tmp_path / "a", scores)
    shuffled = _report(tmp_path / "b", scores.sample(frac=1.0, random_state=1).iloc[:-3])  # 3 fewer, other order
    r = compare_detectors(base, shuffled, n_resamples=100)
    assert (r["n_uploads"], r["uploads_only_in_baseline"], r["uploads_only_in_candidate"]) == (77, 3, 0)
    assert r["pooled"]["eer"]["difference"] == 0.0 and r["pooled"]["eer"]["difference_ci95"] == [0.0, 0.0]


def test_refuses_evaluations_that_are_not_of_the_same_uploads(tmp_path: Path) -> None:
    scores = _scores(0.0)
    base = _report(tmp_path / "a", scores)
    flipped = _report(tmp_path / "b", scores.assign(is_synthetic=~scores["is_synthetic"]))
    with pytest.raises(ValueError, match="label some uploads differently"):
        compare_detectors(base, flipped)
    other = _report(tmp_path / "c", scores.assign(upload_id="x-" + scores["upload_id"]))
    with pytest.raises(ValueError, match="share no uploads"):
        compare_detectors(base, other)
    with pytest.raises(ValueError, match="lacks columns"):
        compare_detectors(base, base, candidate_column="normalised_logit")
    with pytest.raises(ValueError, match="trackguard eval detector"):
        compare_detectors(base, tmp_path / "missing")


def test_cli_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = _scores(0.0).assign(normalised_logit=lambda d: d["logit"] - 0.5 * ~d["is_synthetic"])
    report = _report(tmp_path / "a", scores)
    out = tmp_path / "cmp.json"
    argv = ["eval", "detector-compare", str(report), str(report), "--candidate-column", "normalised_logit",
            "--resamples", "200", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| pooled | EER |" in printed and "| fam-a | minDCF |" in printed and "80 uploads scored by both" in printed
    figures = json.loads(out.read_text())
    assert figures["candidate"].endswith("(normalised_logit)") and figures["pooled"]["eer"]["n_resamples"] == 200
    assert figures["pooled"]["eer"]["difference"] <= 0


def test_intervals_with_a_negative_end_are_written_with_to() -> None:
    from trackguard.reports.common import format_interval

    assert format_interval([-0.05, 0.03]) == "-0.0500 to 0.0300"  # "-0.0500–0.0300" reads as a range of negatives
    assert format_interval([0.01, 0.2]) == "0.0100–0.2000"
    assert format_interval([None, 0.2]) == "–" and format_interval([float("nan"), 0.2]) == "–"
