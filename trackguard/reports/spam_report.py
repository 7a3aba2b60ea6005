"""Evaluation report for the spam model: report.md, pr.png, importance.png, metrics.json.

One call turns a per-upload score table (`models.eval_spam.score_table`) into a report a
reviewer can read without the code: ranking quality (PR-AUC, precision at recall 0.9), the
stored operating point against the hand-written rules baseline on the same uploads, recall
per spam type, how often each kind of legitimate upload is flagged, which features drive
the scores, and example flagged uploads with the reasons a reviewer would see. Every rate
sits next to its counts: one upload moves a rate by 1/n and these sets are small.

Figures are drawn on explicit Agg ``Figure`` objects, as in `detector_report`, so nothing
here touches pyplot's process-wide backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.train_spam import average_precision, pr_points, precision_at_recall
from trackguard.reports.common import fmt, json_safe, markdown_table, require, save_figure

SCORE_COLUMNS = ("upload_id", "is_spam", "spam_type", "kind", "score", "flagged", "rules_flag", "reasons")
META_KEYS = ("model_id", "threshold", "data", "command", "split", "split_note")
OPTIONAL_META_KEYS = ("target_precision", "corpus", "training_data", "trained_on_this_corpus")  # copied if given
CONTRIB_PREFIX = "contrib_"
TOP_FEATURES = 15
N_EXAMPLES = 5
UNKNOWN_TYPE = "unknown"

UNITS = {
    "rates": "fractions in [0, 1] (0.0123 = 1.23 %); null/n/a when undefined (e.g. precision with nothing flagged)",
    "pr_auc": "average precision of the calibrated score (step-wise area under the precision-recall curve)",
    "precision_at_recall_0.9": "best precision among thresholds whose recall is at least 0.9",
    "threshold": "stored operating point on calibrated probability, chosen on the dev split; flag when score >= it",
    "mean_abs_contrib": "mean |SHAP contribution| over the evaluated uploads, in margin (log-odds) units",
    "gain": "total split gain of the feature in the booster's trees (training-time importance)",
    "flag_rate_by_kind": "share of the kind's NON-spam uploads that are flagged (false-positive rate per kind)",
}


# --------------------------------------------------------------------------- public entry point


def write_spam_report(
    scores: pd.DataFrame,
    out_dir: Path,
    *,
    title: str,
    meta: Mapping[str, Any],
    gain: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Write report.md, pr.png, importance.png and metrics.json; return the metrics as written.

    ``scores``: one row per evaluated upload with ``SCORE_COLUMNS`` and, for SHAP
    importance, ``contrib_<feature>`` columns; ``meta``: the keys in ``META_KEYS``;
    ``gain``: the booster's gain importance per feature. Raises ValueError on
    missing columns or keys, or when there are no uploads.
    """
    _validate(scores, meta)
    metrics = {"title": title, **spam_metrics(scores, meta, gain)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_pr(scores, metrics, out_dir / "pr.png")
    _plot_importance(metrics["importance"], out_dir / "importance.png")
    (out_dir / "report.md").write_text(render_markdown(metrics, title, meta))
    clean: dict[str, Any] = json_safe(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return clean


def _validate(scores: pd.DataFrame, meta: Mapping[str, Any]) -> None:
    require(scores, SCORE_COLUMNS, meta, META_KEYS)
    if scores.empty:
        raise ValueError("no uploads to evaluate")


# --------------------------------------------------------------------------- numbers


def spam_metrics(
    scores: pd.DataFrame, meta: Mapping[str, Any], gain: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """All report figures as one dict (the body of metrics.json, before NaN becomes null)."""
    y = scores["is_spam"].to_numpy(dtype=bool)
    s = scores["score"].to_numpy(dtype=np.float64)
    flagged = scores["flagged"].to_numpy(dtype=bool)
    rules = scores["rules_flag"].to_numpy(dtype=bool)
    threshold = None if meta["threshold"] is None else float(meta["threshold"])
    return {
        "model_id": meta["model_id"],
        "data": meta["data"],
        "command": meta["command"],
        "split": meta["split"],
        "split_note": meta["split_note"],
        **{k: meta[k] for k in OPTIONAL_META_KEYS if k in meta},
        "units": UNITS,
        "n": len(y),
        "n_spam": int(y.sum()),
        "n_not_spam": int((~y).sum()),
        "base_rate": float(y.mean()),
        "splits": {str(k): int(v) for k, v in scores["split"].astype(str).value_counts().sort_index().items()}
        if "split" in scores.columns
        else None,
        "pr_auc": average_precision(y, s),
        "precision_at_recall_0.9": precision_at_recall(y, s, 0.9) if y.any() else float("nan"),
        "threshold": threshold,
        "stored_flags_agree": None if threshold is None else float(np.mean((s >= threshold) == flagged)),
        "model": flag_summary(y, flagged, scores),
        "rules_baseline": {
            "rule": "duration 30-32 s or >= 3 title keywords or confusable artist name or >= 10 uploads in 1 h",
            **flag_summary(y, rules, scores),
        },
        "model_or_duplicate": flag_summary(y, flagged | duplicate_flags(scores), scores),
        "importance": {
            "mean_abs_contrib": contribution_importance(scores),
            "gain": gain_table(gain or {}),
            "n_uploads": len(y),
        },
        "examples": example_uploads(scores),
    }


def duplicate_flags(scores: pd.DataFrame) -> np.ndarray:
    """Uploads the duplicate catalogue matched (all False when the table has no such column)."""
    if "duplicate_of" not in scores.columns:
        return np.zeros(len(scores), dtype=bool)
    return scores["duplicate_of"].notna().to_numpy(dtype=bool)


def flag_summary(y: np.ndarray, flagged: np.ndarray, scores: pd.DataFrame) -> dict[str, Any]:
    """Precision, recall, counts, recall per spam type and flag rate per legitimate kind of one flagger."""
    tp = int((flagged & y).sum())
    n_flagged = int(flagged.sum())
    return {
        "precision": tp / n_flagged if n_flagged else float("nan"),
        "recall": tp / int(y.sum()) if y.any() else float("nan"),
        "n_flagged": n_flagged,
        "n_true_positive": tp,
        "n_false_positive": n_flagged - tp,
        "n_spam": int(y.sum()),
        "recall_by_spam_type": recall_by_spam_type(y, flagged, scores),
        "flag_rate_by_kind": flag_rate_by_kind(y, flagged, scores),
    }


def spam_types(scores: pd.DataFrame) -> np.ndarray:
    """Spam type per row as str; spam rows without one are ``UNKNOWN_TYPE``."""
    types = scores["spam_type"].astype(object)
    return np.asarray(types.where(types.notna() & (types != ""), UNKNOWN_TYPE).astype(str).to_numpy())


def recall_by_spam_type(y: np.ndarray, flagged: np.ndarray, scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per spam type: its spam uploads, how many are flagged, and the recall."""
    types = spam_types(scores)
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(types[y])):
        mask = y & (types == kind)
        n, caught = int(mask.sum()), int(flagged[mask].sum())
        out[kind] = {"recall": caught / n, "n": n, "n_flagged": caught}
    return out


def flag_rate_by_kind(y: np.ndarray, flagged: np.ndarray, scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per label kind: its NON-spam uploads and how many are flagged (who pays for the false positives)."""
    kinds = scores["kind"].astype(str).to_numpy()
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(kinds[~y])):
        mask = ~y & (kinds == kind)
        n, hit = int(mask.sum()), int(flagged[mask].sum())
        out[kind] = {"flag_rate": hit / n, "n": n, "n_flagged": hit}
    return out


def contribution_importance(scores: pd.DataFrame, top: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """Features ranked by mean |SHAP contribution| on these uploads, with the mean signed
    contribution on spam and non-spam uploads (which way the feature pushes each class)."""
    cols = [c for c in scores.columns if c.startswith(CONTRIB_PREFIX)]
    if not cols:
        return []
    y = scores["is_spam"].to_numpy(dtype=bool)
    contrib = scores[cols].to_numpy(dtype=np.float64)
    mean_abs = np.abs(contrib).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")[:top]
    return [
        {
            "feature": cols[j][len(CONTRIB_PREFIX) :],
            "mean_abs_contrib": float(mean_abs[j]),
            "mean_contrib_spam": float(contrib[y, j].mean()) if y.any() else float("nan"),
            "mean_contrib_not_spam": float(contrib[~y, j].mean()) if (~y).any() else float("nan"),
        }
        for j in order
    ]


def gain_table(gain: Mapping[str, float], top: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """Features ranked by total split gain, with each one's share of the total."""
    total = sum(gain.values())
    ranked = sorted(gain.items(), key=lambda fg: -fg[1])[:top]
    return [{"feature": f, "gain": float(g), "gain_share": g / total if total else float("nan")} for f, g in ranked]


def _label(is_spam: bool, spam_type: Any, kind: Any) -> str:
    if is_spam:
        return f"spam: {spam_type if isinstance(spam_type, str) and spam_type else UNKNOWN_TYPE}"
    return f"not spam: {kind}"


def example_uploads(scores: pd.DataFrame, k: int = N_EXAMPLES) -> list[dict[str, Any]]:
    """Up to ``k`` flagged uploads, highest score first but one per label before any repeat,
    so the examples show different spam types (and a false positive, if there is one)."""
    flagged = scores[scores["flagged"].to_numpy(dtype=bool)].sort_values("score", ascending=False, kind="stable")
    rows: list[dict[str, Any]] = [
        {
            "upload_id": str(r["upload_id"]),
            "label": _label(bool(r["is_spam"]), r["spam_type"], r["kind"]),
            "score": float(r["score"]),
            "reasons": [str(x) for x in (r["reasons"] if r["reasons"] is not None else [])],
        }
        for r in flagged.to_dict("records")
    ]
    first: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in rows:
        (rest if r["label"] in seen else first).append(r)
        seen.add(r["label"])
    return (first + rest)[:k]


# --------------------------------------------------------------------------- Markdown


def render_markdown(metrics: Mapping[str, Any], title: str, meta: Mapping[str, Any]) -> str:
    """The whole report.md text, section by section."""
    sections = [
        _header_section(metrics, title, meta),
        _ranking_section(metrics),
        _operating_section(metrics),
        _type_section(metrics),
        _kind_section(metrics),
        _importance_section(metrics),
        _examples_section(metrics),
        "## Figures\n\n![Precision-recall: model vs rules baseline, operating point marked](pr.png)\n\n"
        "![Feature importance: mean |SHAP| on these uploads, and training gain](importance.png)",
    ]
    return "\n\n".join(sections) + "\n"


def _header_section(m: Mapping[str, Any], title: str, meta: Mapping[str, Any]) -> str:
    splits = m["splits"]
    split_text = "" if not splits else " (time splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()) + ")"
    return "\n".join(
        [
            f"# {title}",
            "",
            str(meta["data"]),
            "",
            str(meta["split_note"]),
            "",
            f"- **Model:** `{meta['model_id']}`",
            f"- **Command:** `{meta['command']}`",
            f"- **Split evaluated:** `{meta['split']}`{split_text}",
            f"- **Uploads:** {m['n']} ({m['n_spam']} spam, {m['n_not_spam']} not spam; base rate "
            f"{fmt(m['base_rate'])})",
            f"- **Stored threshold:** {fmt(m['threshold'])} on calibrated probability (chosen on the dev split for "
            f"target precision {fmt(meta.get('target_precision'))})",
            "",
            "Rates are fractions shown to 4 decimals (0.0123 = 1.23 %). With n uploads in a group one upload moves "
            "its rate by 1/n, so every rate is shown with its counts; rates on a handful of uploads are noise.",
        ]
    )


def _ranking_section(m: Mapping[str, Any]) -> str:
    rows = [
        ("PR-AUC (average precision)", m["pr_auc"], m["n_spam"], m["n_not_spam"]),
        ("Precision at recall 0.9", m["precision_at_recall_0.9"], m["n_spam"], m["n_not_spam"]),
    ]
    return (
        "## Ranking\n\nThreshold-free quality of the calibrated score (the rules baseline is a single point, "
        "not a ranking; see the next section and pr.png).\n\n"
        + markdown_table(("Metric", "Value (fraction)", "n spam", "n not spam"), rows)
    )


def _operating_section(m: Mapping[str, Any]) -> str:
    def row(name: str, r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            name,
            r["precision"],
            r["recall"],
            r["n_flagged"],
            r["n_true_positive"],
            r["n_false_positive"],
            r["n_spam"],
        )

    header = ("Flagger", "Precision", "Recall", "n flagged", "n true positive", "n false positive", "n spam")
    rows = [row("model", m["model"]), row("rules baseline", m["rules_baseline"])]
    if "model_or_duplicate" in m:
        rows.append(row("model or duplicate match (as the sweep routes)", m["model_or_duplicate"]))
    text = (
        "## Operating point vs rules baseline\n\nThe model at its stored threshold and the hand-written rules "
        f"({m['rules_baseline']['rule']}) on the same uploads. The sweep also sends every duplicate-catalogue "
        "match to the `duplicates` queue, whatever its spam score; the last row counts both. A clone matching "
        "the accompaniment of its bona fide twin is a real content match but not labelled spam.\n\n"
        + markdown_table(header, rows)
    )
    if m["stored_flags_agree"] is not None and m["stored_flags_agree"] < 1.0:
        off = fmt(1 - m["stored_flags_agree"])
        text += f"\n\n**Stored flags disagree with score ≥ threshold on a fraction {off} of the uploads.**"
    return text


def _type_section(m: Mapping[str, Any]) -> str:
    model, rules = m["model"]["recall_by_spam_type"], m["rules_baseline"]["recall_by_spam_type"]
    both = m.get("model_or_duplicate", {}).get("recall_by_spam_type", {})
    rows = [
        (t, r["n"], r["recall"], r["n_flagged"], rules[t]["recall"], rules[t]["n_flagged"],
         both.get(t, {}).get("recall"))
        for t, r in model.items()
    ]
    header = ("Spam type", "n", "Model recall", "Model n flagged", "Rules recall", "Rules n flagged",
              "Model or duplicate recall")
    body = markdown_table(header, rows) if rows else "No spam uploads in this split."
    return "## Recall per spam type\n\n" + body


def _kind_section(m: Mapping[str, Any]) -> str:
    model, rules = m["model"]["flag_rate_by_kind"], m["rules_baseline"]["flag_rate_by_kind"]
    rows = [
        (k, r["n"], r["flag_rate"], r["n_flagged"], rules[k]["flag_rate"], rules[k]["n_flagged"])
        for k, r in model.items()
    ]
    header = ("Kind (not spam)", "n", "Model flag rate", "Model n flagged", "Rules flag rate", "Rules n flagged")
    body = markdown_table(header, rows) if rows else "No legitimate uploads in this split."
    return (
        "## Flag rate among legitimate uploads, by kind\n\nFalse positives per label kind: which honest "
        "uploads would land in the spam queue.\n\n" + body
    )


def _importance_section(m: Mapping[str, Any]) -> str:
    imp = m["importance"]
    shap_rows = [
        (r["feature"], r["mean_abs_contrib"], r["mean_contrib_spam"], r["mean_contrib_not_spam"])
        for r in imp["mean_abs_contrib"]
    ]
    gain_rows = [(r["feature"], r["gain"], r["gain_share"]) for r in imp["gain"]]
    shap = (
        markdown_table(("Feature", "Mean |SHAP| (log-odds)", "Mean SHAP on spam", "Mean SHAP on not spam"), shap_rows)
        if shap_rows
        else "No contribution columns in the scores."
    )
    gain = markdown_table(("Feature", "Gain", "Share of total gain"), gain_rows) if gain_rows else "Not available."
    return (
        f"## Feature importance\n\nMean absolute SHAP contribution over the {imp['n_uploads']} evaluated uploads "
        f"(what drives these scores; top {TOP_FEATURES}):\n\n{shap}\n\n"
        f"Total split gain in the booster (what the trees relied on in training; top {TOP_FEATURES}):\n\n{gain}"
    )


def _examples_section(m: Mapping[str, Any]) -> str:
    rows = [(e["upload_id"], e["label"], e["score"], "; ".join(e["reasons"]) or "(none)") for e in m["examples"]]
    if not rows:
        return "## Example flagged uploads\n\nNothing was flagged."
    return (
        "## Example flagged uploads\n\nHighest scores first, one per label before any repeats; the reasons are "
        "the ones a reviewer sees (top SHAP contributions in words).\n\n"
        + markdown_table(("Upload", "Label", "Score", "Reasons"), rows)
    )


# --------------------------------------------------------------------------- figures


def _plot_pr(scores: pd.DataFrame, metrics: Mapping[str, Any], path: Path) -> None:
    """Model PR curve with the stored operating point, the rules baseline point and the base rate."""
    y = scores["is_spam"].to_numpy(dtype=bool)
    s = scores["score"].to_numpy(dtype=np.float64)
    fig = Figure(figsize=(6.0, 5.0))
    ax = fig.add_subplot()
    if y.any():
        _, precision, recall = pr_points(y, s)
        ax.plot(
            np.r_[0.0, recall],
            np.r_[precision[0], precision],
            drawstyle="steps-pre",
            color="black",
            label=f"model: PR-AUC {fmt(metrics['pr_auc'])}",
        )
    op, rules = metrics["model"], metrics["rules_baseline"]
    points = [(op, "o", "tab:red", f"stored threshold {fmt(metrics['threshold'])}"),
              (rules, "s", "tab:blue", "rules baseline")]
    for point, marker, color, name in points:
        if point["n_flagged"]:
            ax.plot(point["recall"], point["precision"], marker, color=color, markersize=8,
                    label=f"{name} (n flagged {point['n_flagged']})")
    ax.axhline(metrics["base_rate"], color="0.6", linestyle="--", linewidth=0.8, label="base rate (flag everything)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(
        f"{metrics['split']} split: n spam {metrics['n_spam']}, n not spam {metrics['n_not_spam']} (synthetic)",
        fontsize=9,
    )
    ax.grid(True, color="0.92")
    ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, path)


def _barh(ax: Any, rows: Sequence[Mapping[str, Any]], key: str, xlabel: str, title: str) -> None:
    names = [r["feature"] for r in rows][::-1]
    ax.barh(names, [r[key] for r in rows][::-1], color="0.45")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(True, axis="x", color="0.92")


def _plot_importance(importance: Mapping[str, Any], path: Path) -> None:
    """Mean |SHAP| on the evaluated uploads (left) and training gain (right), top features each."""
    fig = Figure(figsize=(11.0, 5.0))
    left, right = fig.subplots(1, 2)
    _barh(
        left,
        importance["mean_abs_contrib"],
        "mean_abs_contrib",
        "mean |SHAP contribution| (log-odds)",
        f"On the {importance['n_uploads']} evaluated uploads",
    )
    _barh(right, importance["gain"], "gain_share", "share of total split gain", "In training (booster gain)")
    fig.tight_layout()
    save_figure(fig, path)
