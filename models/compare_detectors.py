"""Two detector evaluations of the same uploads, compared with a paired voice bootstrap.

`trackguard eval detector` writes ``scores.parquet``; given two of them (two models on one
corpus and split, or the raw and normalised columns of one), this says how much the
candidate's EER and minDCF differ from the baseline's and how sure that is: both are
scored on the same resamples of voices (`models.bootstrap.paired_difference`), per pooled
set and per generator family. Small test sets make a 0.03 EER difference easy to see and
hard to trust; this is the check before calling one model better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.bootstrap import N_RESAMPLES, has_both_classes, paired_difference
from models.spoof_metrics import equal_error_rate, min_dcf

SCORES_FILE = "scores.parquet"
KEY_COLUMNS = ("upload_id", "is_synthetic")


def load_scores(report_dir: Path, column: str) -> pd.DataFrame:
    """The report's per-upload scores, indexed by upload id; ValueError naming what is missing."""
    path = Path(report_dir) / SCORES_FILE
    if not path.exists():
        raise ValueError(f"{path} not found: run `trackguard eval detector --out {report_dir} ...` first")
    scores = pd.read_parquet(path)
    missing = [c for c in (*KEY_COLUMNS, column) if c not in scores.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing} (score columns: {list(scores.columns)})")
    return scores.set_index(scores["upload_id"].astype(str))


def paired_table(baseline: pd.DataFrame, candidate: pd.DataFrame, base_col: str, cand_col: str) -> pd.DataFrame:
    """One row per upload scored by both: label, voice, family and the two scores. Labels must agree."""
    common = baseline.index.intersection(candidate.index)
    if common.empty:
        raise ValueError("the two evaluations share no uploads: score the same corpus and split with both")
    b, c = baseline.loc[common], candidate.loc[common]
    if (b["is_synthetic"].astype(bool) != c["is_synthetic"].astype(bool)).any():
        raise ValueError("the two evaluations label some uploads differently: they are not of the same corpus")
    table = pd.DataFrame({"is_synthetic": b["is_synthetic"].astype(bool), "baseline": b[base_col].astype(float),
                          "candidate": c[cand_col].astype(float)}, index=common)
    table["voice"] = b["voice"].astype(str) if "voice" in b.columns else None
    fam = b["generator_family"] if "generator_family" in b.columns else pd.Series(None, index=common)
    table["family"] = fam.where(table["is_synthetic"], None)
    return table


def paired_eer_min_dcf(labels: np.ndarray, baseline: np.ndarray, candidate: np.ndarray,
                       groups: np.ndarray | None = None, *, n_resamples: int = N_RESAMPLES, p_spoof: float = 0.05,
                       c_miss: float = 1.0, c_fa: float = 10.0) -> dict[str, dict[str, Any]]:
    """``paired_difference`` of EER and of minDCF (with these costs), keyed "eer" and "min_dcf"."""

    def dcf(y: np.ndarray, x: np.ndarray) -> float:
        return min_dcf(y, x, p_spoof, c_miss, c_fa)

    return {name: paired_difference(labels, baseline, candidate, metric, groups, n_resamples=n_resamples).as_dict()
            for name, metric in (("eer", equal_error_rate), ("min_dcf", dcf))}


def _differences(table: pd.DataFrame, n_resamples: int) -> dict[str, Any]:
    groups = None if table["voice"].isna().all() else table["voice"].to_numpy()
    return paired_eer_min_dcf(table["is_synthetic"].to_numpy(dtype=bool), table["baseline"].to_numpy(np.float64),
                              table["candidate"].to_numpy(np.float64), groups, n_resamples=n_resamples)


def compare_detectors(baseline_dir: Path, candidate_dir: Path, *, baseline_column: str = "logit",
                      candidate_column: str = "logit", n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """Pooled and per-family paired differences (candidate − baseline) with 95 % intervals."""
    base, cand = load_scores(baseline_dir, baseline_column), load_scores(candidate_dir, candidate_column)
    table = paired_table(base, cand, baseline_column, candidate_column)
    y = table["is_synthetic"].to_numpy(dtype=bool)
    if not has_both_classes(y):
        raise ValueError("the shared uploads hold only one class: nothing to compare")
    families = {}
    for fam in sorted(table["family"].dropna().unique()):
        subset = table[~table["is_synthetic"] | (table["family"] == fam)]
        families[str(fam)] = _differences(subset, n_resamples)
    return {
        "baseline": f"{baseline_dir} ({baseline_column})", "candidate": f"{candidate_dir} ({candidate_column})",
        "n_uploads": len(table), "n_bona_fide": int((~y).sum()), "n_synthetic": int(y.sum()),
        "n_voices": None if table["voice"].isna().all() else int(table["voice"].nunique()),
        "uploads_only_in_baseline": len(base.index.difference(table.index)),
        "uploads_only_in_candidate": len(cand.index.difference(table.index)),
        "method": f"paired percentile bootstrap over voices (each with all its uploads), {n_resamples} resamples, "
                  "seed 0; difference = candidate − baseline, negative = candidate errs less",
        "pooled": _differences(table, n_resamples),
        "per_family": families,
    }
