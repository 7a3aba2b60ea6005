"""The detector report's "Per-artist normalisation" section (`models.artist_norm`).

Present only when the scores carry ``normalised_logit`` and ``normalised_probability``
(`trackguard eval detector --artist-references`): the same tracks scored raw and after
each voice's offset, at the stored threshold and threshold-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.compare_detectors import paired_eer_min_dcf
from models.spoof_metrics import equal_error_rate, min_dcf
from trackguard.reports.common import fmt, format_interval, markdown_table, voice_groups

NORMALISED_COLUMNS = ("normalised_logit", "normalised_probability")


def artist_norm_metrics(scores: pd.DataFrame, meta: Mapping[str, Any], p_spoof: float, c_miss: float,
                        c_fa: float) -> dict[str, Any] | None:
    """Raw vs normalised figures (None when the scores were not normalised)."""
    if any(c not in scores.columns for c in NORMALISED_COLUMNS):
        return None
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    threshold = float(meta["threshold"])
    rows = {}
    for name, logit_col, prob_col in (("raw", "logit", "probability"),
                                      ("normalised", "normalised_logit", "normalised_probability")):
        logits = scores[logit_col].to_numpy(dtype=np.float64)
        flagged = scores[prob_col].to_numpy(dtype=np.float64) >= threshold
        voices = scores["voice"].astype(str)[flagged & ~labels] if "voice" in scores else pd.Series(dtype=str)
        rows[name] = {
            "eer": equal_error_rate(labels, logits),
            "min_dcf": min_dcf(labels, logits, p_spoof, c_miss, c_fa),
            "bona_fide_flag_rate": float(flagged[~labels].mean()),
            "recall": float(flagged[labels].mean()),
            "voices_falsely_flagged": sorted(set(voices)),
        }
    norm = meta.get("artist_norm") or {}
    levels = norm.get("levels") or {}
    return {**rows, "normalised_minus_raw": _paired(scores, labels, p_spoof, c_miss, c_fa),
            "slope": norm.get("slope"), "anchor_logit": norm.get("anchor"),
            "levels_from": norm.get("levels_from"), "reference_levels_logit": levels,
            "level_vs_bona_fide_logit_correlation": level_correlation(scores, levels)}


def _paired(scores: pd.DataFrame, labels: np.ndarray, p_spoof: float, c_miss: float,
            c_fa: float) -> dict[str, Any]:
    """Normalised − raw EER and minDCF on the same voice resamples (`models.bootstrap.paired_difference`)."""
    raw, normalised = scores["logit"].to_numpy(np.float64), scores["normalised_logit"].to_numpy(np.float64)
    return paired_eer_min_dcf(labels, raw, normalised, voice_groups(scores), p_spoof=p_spoof, c_miss=c_miss,
                              c_fa=c_fa)


def level_correlation(scores: pd.DataFrame, levels: Mapping[str, float]) -> float | None:
    """Pearson correlation, over voices, of the reference level and the mean raw logit of the voice's bona
    fide uploads: how well references predict where a voice's real songs score (None: < 3 voices)."""
    if "voice" not in scores.columns:
        return None
    bona = scores[~scores["is_synthetic"].astype(bool)].groupby(scores["voice"].astype(str))["logit"].mean()
    common = [v for v in bona.index if v in levels]
    if len(common) < 3:
        return None
    return float(np.corrcoef([levels[v] for v in common], bona[common].to_numpy())[0, 1])


def artist_norm_section(m: Mapping[str, Any]) -> str | None:
    a = m.get("artist_norm")
    if a is None:
        return None
    rows = [(name, a[name]["eer"], a[name]["min_dcf"], a[name]["bona_fide_flag_rate"], a[name]["recall"],
             ", ".join(a[name]["voices_falsely_flagged"]) or "none") for name in ("raw", "normalised")]
    levels = a.get("reference_levels_logit") or {}
    level_text = ", ".join(f"{v} {fmt(x)}" for v, x in sorted(levels.items(), key=lambda kv: -kv[1]))
    return (
        "## Per-artist normalisation\n\n"
        "Each track's pooled logit lowered by its voice's offset, slope × max(0, level − anchor), where the "
        "level is the mean logit of the voice's reference recordings "
        f"({a.get('levels_from') or 'reference recordings'}); slope {fmt(a['slope'])} and anchor "
        f"{fmt(a['anchor_logit'])} (the highest level among the voices the detector was trained and calibrated on; "
        "`trackguard train artist-norm`). "
        "Every scored voice is treated as enrolled and identified; in a sweep the offset applies only to "
        "uploads the verifier matches to an enrolled artist. Flag rate and recall are at the stored threshold."
        "\n\n" + markdown_table(("Scores", "EER (fraction)", "minDCF (fraction)", "Bona fide flag rate",
                                 "Recall", "Voices falsely flagged"), rows)
        + _paired_text(a.get("normalised_minus_raw"))
        + (f"\n\nReference levels (logit), highest first: {level_text}." if level_text else "")
        + (f" Correlation over voices between the level and the mean logit of the voice's bona fide uploads: "
           f"{fmt(a['level_vs_bona_fide_logit_correlation'])}."
           if a.get("level_vs_bona_fide_logit_correlation") is not None else "")
    )


def _paired_text(d: Mapping[str, Any] | None) -> str:
    if not d:
        return ""
    parts = [f"{name} {fmt(r['difference'])} (95 % interval {format_interval(r['difference_ci95'])}; lower in "
             f"{fmt(r['share_candidate_lower'])} of resamples)" for name, r in (("EER", d["eer"]),
                                                                            ("minDCF", d["min_dcf"]))]
    return ("\n\nNormalised minus raw, voices resampled with their uploads on the same resamples for both: "
            + "; ".join(parts) + ".")
