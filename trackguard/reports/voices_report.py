"""Evaluation report for singer verification: report.md, det.png, scores.png, metrics.json.

One call turns a trial table (`models.eval_voices.trial_table`: one row per upload ×
enrolled artist, ``is_target`` and score columns, higher = same voice) into a report a
reviewer can read without the code: EER overall and per recording condition (a
cappella, and mixed at bins of vocal-to-accompaniment level), false-accept and
false-reject rates at the operating threshold, open-set identification as the sweep
routes it (top-1 artist at or above the threshold), how the track-embedding variants
compare, per-artist rates, and the limitations of the data. Every rate sits next to
its counts: one trial moves a rate by 1/n and these sets are small.

Naming: a *false accept* is an impostor trial (the upload's voice is not the artist's)
scoring at or above the threshold; a *false reject* a target trial scoring below it.
`models.spoof_metrics` is reused with labels = is_target, so its "bona fide flag rate"
is the FAR and its "synthetic pass rate" the FRR.

Figures are drawn on explicit Agg ``Figure`` objects, as in `detector_report`, so
nothing here touches pyplot's process-wide backend.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.spoof_metrics import det_curve, eer_with_threshold
from trackguard.reports.common import (
    DET_CLIP,
    det_axes,
    fmt,
    format_interval,
    json_safe,
    markdown_table,
    probit,
    require,
    save_figure,
)

TRIAL_COLUMNS = ("upload_id", "artist_id", "voice_artist_id", "is_target", "kind", "a_cappella",
                 "vocal_to_accompaniment_db", "condition", "voice_enrolled", "raw")
META_KEYS = ("model_id", "data", "command", "enrolled", "threshold", "variants", "limitations")
CONDITION_ORDER = ("a cappella", "mixed ≥ 6 dB", "mixed 0–6 dB", "mixed < 0 dB")
MIXED_LEVELS = CONDITION_ORDER[1:]
SCORE_NAMES = {"raw": "raw cosine", "asnorm": "AS-norm"}
VARIANT_NAMES = {"raw": "3 vocal windows (verifier)", "raw_mean3": "3 vocal windows, mean embedding",
                 "raw_best3": "3 vocal windows, best window",
                 "raw_vocal1": "1 vocal window", "raw_vocal8": "8 vocal windows, mean embedding",
                 "raw_vocalscore3": "3 windows by vocal score, mean embedding",
                 "raw_fixed3": "3 fixed windows, mean embedding", "raw_full": "whole track"}

UNITS = {
    "rates": "fractions in [0, 1] (0.0123 = 1.23 %); null/n/a when undefined (a group without target or "
             "impostor trials)",
    "eer": "equal error rate at the achievable threshold where FAR and FRR are closest (their mean there)",
    "far": "false-accept rate: impostor trials (upload's voice is not the artist's) scoring >= threshold",
    "frr": "false-reject rate: target trials (upload's voice is the artist's, clones included) scoring < threshold",
    "raw": "cosine of L2-normalised ECAPA-TDNN embeddings, in [-1, 1]",
    "asnorm": "adaptive s-norm: mean of the two z-scores against the top-k cohort scores of each side",
    "vocal_to_accompaniment_db": "vocal level over the accompaniment in dB (label; null for a cappella)",
}


# --------------------------------------------------------------------------- public entry point


def write_voices_report(trials: pd.DataFrame, out_dir: Path, *, title: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write report.md, det.png, scores.png and metrics.json; return the metrics as written.

    ``trials``: ``TRIAL_COLUMNS`` plus optional ``asnorm`` and variant columns
    (``meta['variants']``: column → description); ``meta``: ``META_KEYS``, with
    ``threshold`` a dict (threshold, score, calibrated, source). Raises ValueError on
    missing columns or keys, or when there are no trials.
    """
    require(trials, TRIAL_COLUMNS, meta, META_KEYS)
    if trials.empty:
        raise ValueError("no trials to evaluate")
    metrics = {"title": title, **voice_metrics(trials, meta)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_det(trials, metrics, out_dir / "det.png")
    _plot_scores(trials, metrics, out_dir / "scores.png")
    (out_dir / "report.md").write_text(render_markdown(metrics, title))
    clean: dict[str, Any] = json_safe(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return clean


# --------------------------------------------------------------------------- numbers


def score_columns(trials: pd.DataFrame) -> list[str]:
    """The verifier's score columns present with a value on every trial: raw, and AS-norm when scored."""
    return [c for c in ("raw", "asnorm") if c in trials.columns and trials[c].notna().all()]


def eer_block(is_target: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """EER, its threshold and the counts behind it (EER NaN when either class is empty)."""
    y = np.asarray(is_target, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_t, n_i = int(y.sum()), int((~y).sum())
    eer, thr = eer_with_threshold(y, s) if n_t and n_i else (float("nan"), float("nan"))
    return {"eer": eer, "eer_threshold": thr, "n_target": n_t, "n_impostor": n_i}


def binomial_ci95(k: int, n: int) -> list[float]:
    """Exact (Clopper-Pearson) 95 % interval of a rate measured as k of n trials ([NaN, NaN] for n = 0).

    A FAR of 8 in 751 is not evidence of missing a 1 % target: the interval says how far
    the true rate may lie from the measured one on this many trials."""
    from scipy.stats import beta

    if n == 0:
        return [float("nan"), float("nan")]
    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [low, high]


def rates_at(is_target: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """FAR and FRR at ``threshold`` (accept when score ≥ threshold) with their counts and 95 % intervals."""
    y = np.asarray(is_target, dtype=bool)
    accepted = np.asarray(scores, dtype=np.float64) >= threshold
    n_t, n_i = int(y.sum()), int((~y).sum())
    fa, fr = int((accepted & ~y).sum()), int((~accepted & y).sum())
    return {"far": fa / n_i if n_i else float("nan"), "n_false_accept": fa, "n_impostor": n_i,
            "far_ci95": binomial_ci95(fa, n_i),
            "frr": fr / n_t if n_t else float("nan"), "n_false_reject": fr, "n_target": n_t,
            "frr_ci95": binomial_ci95(fr, n_t)}


def groups_of(trials: pd.DataFrame) -> list[str]:
    """Every standard condition (so empty ones show with n 0), then any others present."""
    present = list(dict.fromkeys(trials["condition"].astype(str)))
    return [*CONDITION_ORDER, *[g for g in present if g not in CONDITION_ORDER]]


def _masks(trials: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    cond = trials["condition"].astype(str).to_numpy()
    mixed = ~trials["a_cappella"].to_numpy(dtype=bool)
    rows = [("all", np.ones(len(trials), dtype=bool))]
    rows += [(g, cond == g) for g in groups_of(trials)[:1]]
    rows += [("mixed (all levels)", mixed)]
    rows += [(g, cond == g) for g in groups_of(trials)[1:]]
    return rows


def condition_table(trials: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """Per condition group (all, a cappella, mixed, each level bin): uploads, trials, EER and mean scores."""
    y = trials["is_target"].to_numpy(dtype=bool)
    s = trials[column].to_numpy(dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for name, mask in _masks(trials):
        out[name] = {"n_uploads": int(trials.loc[mask, "upload_id"].nunique()), **eer_block(y[mask], s[mask]),
                     **_means(y[mask], s[mask])}
    return out


def _means(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    return {"mean_target_score": float(s[y].mean()) if y.any() else float("nan"),
            "mean_impostor_score": float(s[~y].mean()) if (~y).any() else float("nan")}


def level_table(trials: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """Per exact vocal-to-accompaniment level (dB) of mixed uploads, and a cappella: EER and mean scores."""
    y = trials["is_target"].to_numpy(dtype=bool)
    s = trials[column].to_numpy(dtype=np.float64)
    a_cap = trials["a_cappella"].to_numpy(dtype=bool)
    levels = trials["vocal_to_accompaniment_db"].to_numpy(dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for level in sorted(set(levels[~a_cap & ~np.isnan(levels)]), reverse=True):
        mask = ~a_cap & (levels == level)
        out[f"{level:g} dB"] = {"n_uploads": int(trials.loc[mask, "upload_id"].nunique()),
                                **eer_block(y[mask], s[mask]), **_means(y[mask], s[mask])}
    if a_cap.any():
        out["a cappella"] = {"n_uploads": int(trials.loc[a_cap, "upload_id"].nunique()),
                             **eer_block(y[a_cap], s[a_cap]), **_means(y[a_cap], s[a_cap])}
    return out


def operating_point(trials: pd.DataFrame, threshold: Mapping[str, Any]) -> dict[str, Any]:
    """FAR/FRR at the operating threshold, overall and per condition, on the score it applies to."""
    column, value = str(threshold["score"]), float(threshold["threshold"])
    y = trials["is_target"].to_numpy(dtype=bool)
    s = trials[column].to_numpy(dtype=np.float64)
    return {**dict(threshold), **rates_at(y, s, value),
            "by_condition": {name: {"n_uploads": int(trials.loc[m, "upload_id"].nunique()),
                                    **rates_at(y[m], s[m], value)} for name, m in _masks(trials)[1:]}}


def identification(trials: pd.DataFrame, column: str, threshold: float) -> dict[str, Any]:
    """Open-set top-1 identification as the sweep routes it: the best-scoring enrolled artist, if ≥ threshold.

    For uploads sung by an enrolled voice: matched to it, matched to another artist, or
    not matched; for the other uploads: falsely matched to someone, or not matched.
    """
    best = trials.loc[trials.groupby("upload_id", sort=True)[column].idxmax()]
    hit = best[column].to_numpy(dtype=np.float64) >= threshold
    enrolled = best["voice_enrolled"].to_numpy(dtype=bool)
    right = best["artist_id"].astype(str).to_numpy() == best["voice_artist_id"].astype(str).to_numpy()
    n_e, n_o = int(enrolled.sum()), int((~enrolled).sum())
    correct, wrong, false_match = int((hit & right & enrolled).sum()), int((hit & ~right & enrolled).sum()), \
        int((hit & ~enrolled).sum())
    return {
        "score": column, "threshold": threshold,
        "n_enrolled_voice_uploads": n_e, "n_correct": correct, "n_wrong_artist": wrong,
        "n_not_matched": n_e - correct - wrong,
        "correct_rate": correct / n_e if n_e else float("nan"),
        "wrong_artist_rate": wrong / n_e if n_e else float("nan"),
        "n_other_voice_uploads": n_o, "n_false_match": false_match,
        "false_match_rate": false_match / n_o if n_o else float("nan"),
        "rank1_accuracy": float((right & enrolled).sum()) / n_e if n_e else float("nan"),
    }


def by_artist(trials: pd.DataFrame, column: str, threshold: float | None) -> dict[str, dict[str, Any]]:
    """Per enrolled artist: its target/impostor trials, EER, and FAR/FRR at the threshold (if on this score)."""
    out: dict[str, dict[str, Any]] = {}
    for artist, part in trials.groupby("artist_id", sort=True):
        y = part["is_target"].to_numpy(dtype=bool)
        s = part[column].to_numpy(dtype=np.float64)
        row = eer_block(y, s)
        if threshold is not None:
            rates = rates_at(y, s, threshold)
            row.update({k: rates[k] for k in ("far", "n_false_accept", "frr", "n_false_reject")})
        out[str(artist)] = row
    return out


def by_kind(trials: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """Per upload kind (clean, clone, spam): target trials and their mean score; impostor trials likewise."""
    y = trials["is_target"].to_numpy(dtype=bool)
    s = trials[column].to_numpy(dtype=np.float64)
    kinds = trials["kind"].astype(str).to_numpy()
    return {k: {"n_uploads": int(trials.loc[kinds == k, "upload_id"].nunique()),
                **eer_block(y[kinds == k], s[kinds == k]), **_means(y[kinds == k], s[kinds == k])}
            for k in sorted(set(kinds))}


def variant_table(trials: pd.DataFrame, variants: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per track-embedding variant (raw cosine): description, EER overall, per mixed level and a cappella."""
    y = trials["is_target"].to_numpy(dtype=bool)
    out: dict[str, dict[str, Any]] = {}
    for column, description in variants.items():
        if column not in trials.columns:
            continue
        s = trials[column].to_numpy(dtype=np.float64)
        out[column] = {"description": description,
                       "by_condition": {name: eer_block(y[m], s[m]) for name, m in _masks(trials)}}
    return out


def voice_metrics(trials: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    """All report figures as one dict (the body of metrics.json, before NaN becomes null)."""
    y = trials["is_target"].to_numpy(dtype=bool)
    columns = score_columns(trials)
    threshold = dict(meta["threshold"])
    if threshold["score"] not in trials.columns:
        raise ValueError(f"the threshold applies to {threshold['score']!r} scores, which the trials lack")
    primary = str(threshold["score"])
    return {
        "model_id": meta["model_id"],
        "data": meta["data"],
        "command": meta["command"],
        "limitations": list(meta["limitations"]),
        **{k: meta[k] for k in ("corpus", "n_vocal_uploads", "skipped_undecodable", "cohort_size", "top_k",
                                "cohort_voices_left_out", "calibration") if k in meta},
        "units": UNITS,
        "enrolled": list(meta["enrolled"]),
        "n_enrolled": len(meta["enrolled"]),
        "n_uploads": int(trials["upload_id"].nunique()),
        "n_trials": len(trials),
        "n_target": int(y.sum()),
        "n_impostor": int((~y).sum()),
        "score_columns": columns,
        "primary_score": primary,
        "eer": {c: eer_block(y, trials[c].to_numpy(dtype=np.float64)) for c in columns},
        "by_condition": {c: condition_table(trials, c) for c in columns},
        "by_level_db": {c: level_table(trials, c) for c in columns},
        "by_kind": by_kind(trials, primary),
        "by_artist": by_artist(trials, primary, float(threshold["threshold"])),
        "operating_point": operating_point(trials, threshold),
        "identification": identification(trials, primary, float(threshold["threshold"])),
        "variants": variant_table(trials, meta["variants"]),
    }


# --------------------------------------------------------------------------- findings in words


def findings(m: Mapping[str, Any]) -> list[str]:
    """Plain sentences drawn from the numbers: how the level changes accuracy, and what helps."""
    raw = m["by_condition"]["raw"]
    lines: list[str] = []
    present = [g for g in CONDITION_ORDER if raw[g]["n_target"] and raw[g]["n_impostor"]]
    if present:
        parts = [f"{g} {fmt(raw[g]['eer'])} (mean target cosine {fmt(raw[g]['mean_target_score'])}, "
                 f"{raw[g]['n_target']} target trials)" for g in present]
        lines.append("EER of the verifier's raw cosine by condition: " + "; ".join(parts) + ".")
        imp = [raw[g]["mean_impostor_score"] for g in present]
        tgt = [raw[g]["mean_target_score"] for g in present]
        gaps = {g: t - i for g, t, i in zip(present, tgt, imp, strict=True)}
        worst = min(gaps, key=lambda g: gaps[g])
        best = max(gaps, key=lambda g: gaps[g])
        text = (f"The target-impostor gap in mean cosine is widest {best} ({fmt(gaps[best])}) and narrowest "
                f"{worst} ({fmt(gaps[worst])}).")
        if len(tgt) > 1 and all(a >= b for a, b in itertools.pairwise(tgt)):
            text += (" Mean target cosine falls as the accompaniment gets louder (" + " → ".join(fmt(t) for t in tgt)
                     + "): accompaniment inside the crops pulls the track embedding away from the voiceprint, "
                     "which is what costs accuracy in loud mixes.")
        else:
            text += " Mean target cosine does not fall steadily with the accompaniment level on these uploads."
        lines.append(text)
    empty = [g for g in CONDITION_ORDER if not raw[g]["n_uploads"]]
    if empty:
        lines.append(f"No uploads in: {', '.join(empty)}; those rows are empty (n 0), not zero-error.")
    lines += _variant_findings(m)
    loud, quiet = raw[MIXED_LEVELS[1]], raw[MIXED_LEVELS[0]]
    if loud["n_target"] and quiet["n_target"] and loud["eer"] > quiet["eer"]:
        lines.append("In place against loud mixes: voiceprints enrolled from each reference alone and under a "
                     "synthetic backing track (`trackguard artists enroll --backing-db`; a registry enrolled with "
                     "`--backing-db none` measures what it brings), and crops chosen by voice-band power (variant "
                     "raw_vocalscore3 is the vocal-score choice). Not measured here: separating the vocal from the "
                     "accompaniment before embedding.")
    if "asnorm" in m["eer"]:
        lines.append(f"AS-norm (cohort {m.get('cohort_size')}, top-k {m.get('top_k')}) vs raw cosine, overall "
                     f"EER: {fmt(m['eer']['asnorm']['eer'])} vs {fmt(m['eer']['raw']['eer'])}.")
    else:
        lines.append("The registry holds no AS-norm cohort, so only raw cosine is scored.")
    lines += _far_target_finding(m)
    n_t = m["n_target"]
    lines.append(f"With {n_t} target trials overall one trial moves the FRR by {fmt(1 / n_t if n_t else None)}; "
                 "group EERs on a few dozen targets differ by noise of that order.")
    return lines


def _far_target_finding(m: Mapping[str, Any]) -> list[str]:
    """Whether FAR at the calibrated threshold misses the calibration's target beyond sampling noise."""
    op, cal = m["operating_point"], m.get("calibration")
    if not op["calibrated"] or not cal or not op["n_impostor"]:
        return []
    target, (low, high) = float(cal["target_far"]), op["far_ci95"]
    if high < target:
        verdict = "below the target beyond sampling noise"
    elif low > target:
        verdict = "above the target beyond sampling noise: the threshold does not hold its FAR on this corpus"
    else:
        verdict = "the target lies inside the interval, so these trials cannot tell the FAR from the target"
    return [f"FAR at the calibrated threshold: {fmt(op['far'])} ({op['n_false_accept']} of {op['n_impostor']} "
            f"impostor trials; 95 % interval {fmt(low)}–{fmt(high)}) against the calibration's target "
            f"{fmt(target)}: {verdict}."]


def _variant_findings(m: Mapping[str, Any]) -> list[str]:
    """Per group, which variants differ from the verifier's embedding by more than one target trial (1/n)."""
    variants = m["variants"]
    if len(variants) < 2 or "raw" not in variants:
        return []
    lines = []
    for group in ("all", "a cappella", "mixed ≥ 6 dB", "mixed 0–6 dB"):
        base = variants["raw"]["by_condition"][group]
        if not (base["n_target"] and base["n_impostor"]):
            continue
        step = 1 / base["n_target"]
        others = {c: v["by_condition"][group]["eer"] for c, v in variants.items() if c != "raw"}
        better = [f"{VARIANT_NAMES.get(c, c)} {fmt(e)}" for c, e in others.items() if e <= base["eer"] - step]
        worse = [f"{VARIANT_NAMES.get(c, c)} {fmt(e)}" for c, e in others.items() if e >= base["eer"] + step]
        text = f"{group} (verifier {fmt(base['eer'])}, 1/n target = {fmt(step)}): "
        text += "better: " + ", ".join(better) if better else "nothing better by a target trial or more"
        text += ("; worse: " + ", ".join(worse)) if worse else ""
        lines.append(text + ".")
    return ["What helps (track-embedding variants on the same trials, raw cosine EER; a difference smaller than "
            "one target trial is not counted): " + " ".join(lines)] if lines else []


# --------------------------------------------------------------------------- Markdown


def render_markdown(m: Mapping[str, Any], title: str) -> str:
    """The whole report.md text, section by section."""
    sections = [
        _header_section(m, title),
        "## Findings\n\n" + "\n".join(f"- {line}" for line in findings(m)),
        _eer_section(m),
        _level_section(m),
        _operating_section(m),
        _identification_section(m),
        _variant_section(m),
        _kind_section(m),
        _artist_section(m),
        "## Limitations\n\n" + "\n".join(f"- {line}" for line in m["limitations"]),
        "## Figures\n\n![DET curve: overall per score, and per condition (normal-deviate axes)](det.png)\n\n"
        "![Score distributions of target and impostor trials per condition](scores.png)",
    ]
    return "\n\n".join(sections) + "\n"


def _header_section(m: Mapping[str, Any], title: str) -> str:
    op = m["operating_point"]
    skipped = m.get("skipped_undecodable") or []
    calibrated = "calibrated" if op["calibrated"] else "**UNCALIBRATED**"
    return "\n".join([
        f"# {title}",
        "",
        str(m["data"]),
        "",
        f"- **Speaker encoder:** `{m['model_id']}`",
        f"- **Command:** `{m['command']}`",
        f"- **Enrolled artists (registry):** {m['n_enrolled']} ({', '.join(m['enrolled'])})",
        f"- **Trials:** {m['n_trials']} = {m['n_uploads']} uploads × {m['n_enrolled']} enrolled artists "
        f"({m['n_target']} target, {m['n_impostor']} impostor); a trial is a target when the upload's voice "
        "(`voice_artist_id`; a clone carries the voice it imitates) is that artist's",
        f"- **Undecodable vocal uploads left out:** {len(skipped)}" + (f" ({', '.join(skipped)})" if skipped else ""),
        f"- **Scores:** {', '.join(SCORE_NAMES.get(c, c) for c in m['score_columns'])}"
        + ("" if m.get("cohort_size") is None else f" (cohort {m['cohort_size']}, top-k {m.get('top_k')})"),
        f"- **Operating threshold ({calibrated}):** {fmt(op['threshold'])} on {SCORE_NAMES[op['score']]}: "
        f"{op['source']}",
        *([f"- **Calibration data:** {m['calibration'].get('data', '')}"] if m.get("calibration") else []),
        *([f"- **Corpus voices in the cohort, left out of the trials:** {', '.join(m['cohort_voices_left_out'])}"]
          if m.get("cohort_voices_left_out") else []),
        "",
        "Rates are fractions shown to 4 decimals (0.0123 = 1.23 %). With n trials in a group one trial moves its "
        "rate by 1/n, so every rate is shown with its counts; rates on a handful of trials are noise.",
    ])


def _eer_section(m: Mapping[str, Any]) -> str:
    header = ("Condition", "n uploads", "n target", "n impostor", *[f"EER {SCORE_NAMES[c]}" for c in
                                                                     m["score_columns"]],
              "mean target cosine", "mean impostor cosine")
    raw = m["by_condition"]["raw"]
    rows = [(g, r["n_uploads"], r["n_target"], r["n_impostor"],
             *[m["by_condition"][c][g]["eer"] for c in m["score_columns"]],
             r["mean_target_score"], r["mean_impostor_score"]) for g, r in raw.items()]
    return ("## EER overall and by condition\n\nA cappella vs mixed, and mixed uploads binned by the vocal level over "
            "the accompaniment (label `vocal_to_accompaniment_db`). Impostor trials are the same uploads against "
            "the other enrolled artists, so each group is a verification task under that condition.\n\n"
            + markdown_table(header, rows))


def _level_section(m: Mapping[str, Any]) -> str:
    col = m["primary_score"]
    rows = [(lv, r["n_uploads"], r["n_target"], r["n_impostor"], r["eer"], r["mean_target_score"],
             r["mean_impostor_score"]) for lv, r in m["by_level_db"][col].items()]
    return (f"## By exact accompaniment level ({SCORE_NAMES[col]})\n\n"
            + markdown_table(("Vocal over accompaniment", "n uploads", "n target", "n impostor", "EER",
                              "mean target score", "mean impostor score"), rows))


def _operating_section(m: Mapping[str, Any]) -> str:
    op = m["operating_point"]
    header = ("Condition", "n uploads", "FAR", "FAR 95 % CI", "n false accept", "n impostor", "FRR", "FRR 95 % CI",
              "n false reject", "n target")

    def row(name: str, n_uploads: int, r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (name, n_uploads, r["far"], format_interval(r["far_ci95"]), r["n_false_accept"], r["n_impostor"],
                r["frr"], format_interval(r["frr_ci95"]), r["n_false_reject"], r["n_target"])

    rows = [row("all", m["n_uploads"], op)]
    rows += [row(g, r["n_uploads"], r) for g, r in op["by_condition"].items()]
    label = "calibrated" if op["calibrated"] else "UNCALIBRATED default"
    return (f"## FAR and FRR at the operating threshold ({label})\n\nThreshold {fmt(op['threshold'])} on "
            f"{SCORE_NAMES[op['score']]} ({op['source']}). Accept when score ≥ threshold. The intervals are "
            "exact binomial (Clopper-Pearson) 95 % intervals for the counts behind each rate.\n\n"
            + markdown_table(header, rows))


def _identification_section(m: Mapping[str, Any]) -> str:
    ident = m["identification"]
    rows = [
        ("uploads sung by an enrolled voice", ident["n_enrolled_voice_uploads"], "matched to that artist",
         ident["n_correct"], ident["correct_rate"]),
        ("uploads sung by an enrolled voice", ident["n_enrolled_voice_uploads"], "matched to another artist",
         ident["n_wrong_artist"], ident["wrong_artist_rate"]),
        ("uploads sung by an enrolled voice", ident["n_enrolled_voice_uploads"], "top-1 is the right artist (any "
         "score)", None, ident["rank1_accuracy"]),
        ("uploads sung by a voice not enrolled", ident["n_other_voice_uploads"], "matched to some artist",
         ident["n_false_match"], ident["false_match_rate"]),
    ]
    return ("## Open-set identification as the sweep routes it\n\nPer upload, the best-scoring enrolled artist, "
            f"matched when its score ≥ {fmt(ident['threshold'])} ({SCORE_NAMES[ident['score']]}).\n\n"
            + markdown_table(("Uploads", "n", "Outcome", "n with outcome", "Rate"), rows))


def _variant_section(m: Mapping[str, Any]) -> str:
    groups = ("all", "a cappella", "mixed ≥ 6 dB", "mixed 0–6 dB")
    header = ("Track embedding (raw cosine)", *[f"EER {g}" for g in groups], "n target (all)")
    rows = [(v["description"], *[v["by_condition"][g]["eer"] for g in groups], v["by_condition"]["all"]["n_target"])
            for v in m["variants"].values()]
    counts = m["by_condition"]["raw"]
    note = ", ".join(f"{g}: {counts[g]['n_target']} target / {counts[g]['n_impostor']} impostor" for g in groups)
    return ("## What helps: track-embedding variants\n\nThe same trials scored with other ways of embedding the "
            f"upload (trial counts per column: {note}).\n\n" + markdown_table(header, rows))


def _kind_section(m: Mapping[str, Any]) -> str:
    rows = [(k, r["n_uploads"], r["n_target"], r["n_impostor"], r["eer"], r["mean_target_score"],
             r["mean_impostor_score"]) for k, r in m["by_kind"].items()]
    return (f"## By upload kind ({SCORE_NAMES[m['primary_score']]})\n\nClone target trials are clones scored "
            "against the artist they imitate.\n\n"
            + markdown_table(("Kind", "n uploads", "n target", "n impostor", "EER", "mean target score",
                              "mean impostor score"), rows))


def _artist_section(m: Mapping[str, Any]) -> str:
    rows = [(a, r["n_target"], r["n_impostor"], r["eer"], r.get("far"), r.get("n_false_accept"), r.get("frr"),
             r.get("n_false_reject")) for a, r in m["by_artist"].items()]
    return (f"## By enrolled artist ({SCORE_NAMES[m['primary_score']]}, FAR/FRR at the operating threshold)\n\n"
            + markdown_table(("Artist", "n target", "n impostor", "EER", "FAR", "n false accept", "FRR",
                              "n false reject"), rows))


# --------------------------------------------------------------------------- figures


def _det_line(ax: Any, y: np.ndarray, s: np.ndarray, label: str, **style: Any) -> None:
    if not y.any() or y.all():
        return
    curve = det_curve(y, s)
    eer, _ = eer_with_threshold(y, s)
    (line,) = ax.plot(probit(curve.bona_fide_flag_rate), probit(curve.synthetic_pass_rate),
                      label=f"{label}: EER {eer:.4f} (n tgt {int(y.sum())}, imp {int((~y).sum())})", **style)
    ax.plot(probit(eer), probit(eer), "o", color=line.get_color(), markersize=4)


def _plot_det(trials: pd.DataFrame, metrics: Mapping[str, Any], path: Path) -> None:
    """Overall DET per score column, per-condition DET of the primary score, and the operating point."""
    y = trials["is_target"].to_numpy(dtype=bool)
    fig = Figure(figsize=(6.5, 6.0))
    ax = fig.add_subplot()
    det_axes(ax, "False-accept rate (%)", "False-reject rate (%)")
    for column in metrics["score_columns"]:
        _det_line(ax, y, trials[column].to_numpy(dtype=np.float64), f"all, {SCORE_NAMES[column]}", linewidth=2)
    primary = metrics["primary_score"]
    cond = trials["condition"].astype(str).to_numpy()
    for group in groups_of(trials):
        mask = cond == group
        _det_line(ax, y[mask], trials.loc[mask, primary].to_numpy(dtype=np.float64),
                  f"{group}, {SCORE_NAMES[primary]}", linestyle="--", linewidth=1)
    op = metrics["operating_point"]
    ax.plot(probit(op["far"]), probit(op["frr"]), "X", color="black", markersize=9,
            label=f"threshold {op['threshold']:.3f} ({'calibrated' if op['calibrated'] else 'uncalibrated'})")
    ax.legend(fontsize=6.5, loc="upper right")
    ax.set_title(f"Singer verification DET, synthetic corpus (rates below {100 * DET_CLIP:g} % drawn at "
                 f"{100 * DET_CLIP:g} %)", fontsize=8)
    save_figure(fig, path)


def _plot_scores(trials: pd.DataFrame, metrics: Mapping[str, Any], path: Path) -> None:
    """Histograms of target and impostor scores (primary score) per non-empty condition, threshold marked."""
    primary = metrics["primary_score"]
    cond = trials["condition"].astype(str).to_numpy()
    groups: Sequence[str] = [g for g in groups_of(trials) if (cond == g).any()]
    fig = Figure(figsize=(4.0 * max(1, len(groups)), 3.4))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(groups)), sharey=False))
    s_all = trials[primary].to_numpy(dtype=np.float64)
    op = metrics["operating_point"]
    marks = [*s_all.tolist(), float(op["threshold"])] if op["score"] == primary else s_all.tolist()
    bins = np.linspace(min(marks), max(marks), 40)
    for ax, group in zip(axes, groups, strict=False):
        part = trials[cond == group]
        y = part["is_target"].to_numpy(dtype=bool)
        s = part[primary].to_numpy(dtype=np.float64)
        ax.hist(s[~y], bins=bins, alpha=0.6, density=True, color="tab:blue", label=f"impostor (n {int((~y).sum())})")
        ax.hist(s[y], bins=bins, alpha=0.6, density=True, color="tab:red", label=f"target (n {int(y.sum())})")
        if op["score"] == primary:
            ax.axvline(op["threshold"], color="black", linestyle="--", linewidth=1, label="operating threshold")
        ax.set_title(group, fontsize=9)
        ax.set_xlabel(SCORE_NAMES[primary])
        ax.legend(fontsize=7)
    fig.suptitle("Score distributions per condition (synthetic corpus; densities)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
