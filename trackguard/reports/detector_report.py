"""Evaluation report for the synthetic-voice detector: report.md, DET / calibration PNGs, metrics.json.

One call turns a per-track score table into a report a reviewer can read without the code:
pooled discrimination (EER, minDCF), calibration (actDCF, Cllr), the stored operating point,
per-generator-family, per-codec and per-voice figures, and accuracy vs seconds of context and
vs the pooling size. Every EER is shown
next to its per-class track counts, since one track moves a rate by 1/n and small sets are noisy.

Figures are drawn with matplotlib's Agg canvas on explicit ``Figure`` objects rather than through
pyplot, so nothing here touches the process-wide backend (importing this module from a notebook
leaves its interactive backend alone) and no figure outlives its function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.bootstrap import N_RESAMPLES, bootstrap_interval
from models.spoof_metrics import (
    act_dcf,
    cllr,
    det_curve,
    eer_with_threshold,
    equal_error_rate,
    llr_from_probability,
    min_cllr,
    min_dcf,
    operating_point,
)
from trackguard.reports.artist_norm_section import artist_norm_metrics, artist_norm_section
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
    voice_groups,
)
from trackguard.reports.score_structure import per_group, score_structure_metrics, score_structure_section
from trackguard.reports.threshold_section import threshold_dev_metrics, threshold_dev_section

SCORE_COLUMNS = ("upload_id", "is_synthetic", "generator_family", "codec", "logit", "probability")
META_KEYS = ("model_id", "threshold", "data", "command", "heldout_family")
CONTEXT_COLUMNS = ("context_s", "eer", "min_dcf", "n_tracks")
POOLING_COLUMNS = ("pooling_k", "eer", "min_dcf", "n_tracks")
UNKNOWN_FAMILY = "(unknown)"
CALIBRATION_BINS = 10

UNITS = {
    "rates": "fractions in [0, 1] (0.0123 = 1.23 %)",
    "eer": "equal error rate on raw logits: mean of the two rates where they are closest",
    "min_dcf": "normalised detection cost, best threshold; 1.0 = the better trivial system",
    "act_dcf": "normalised detection cost at the Bayes threshold of the calibrated probabilities",
    "cllr_bits": "log-likelihood-ratio cost of the calibrated probabilities, bits; 1.0 = uninformative",
    "min_cllr_bits": "Cllr after the best monotone recalibration of the logits (PAV), bits",
    "c_miss": "cost of flagging a bona fide upload",
    "c_fa": "cost of passing a synthetic upload",
    "p_spoof": "prior probability that an upload is synthetic",
    "train_prior": "synthetic prior the probabilities were calibrated under",
    "operating_point.threshold": "stored threshold on calibrated probability; flag when probability >= it",
}


@dataclass(frozen=True)
class CostModel:
    """Detection-cost parameters (see ``models.spoof_metrics.min_dcf``) and the calibration prior."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0
    train_prior: float = 0.5


# --------------------------------------------------------------------------- public entry point


def write_detector_report(
    scores: pd.DataFrame,
    out_dir: Path,
    *,
    title: str,
    meta: Mapping[str, Any],
    context: pd.DataFrame | None = None,
    pooling: pd.DataFrame | None = None,
    p_spoof: float = 0.05,
    c_miss: float = 1.0,
    c_fa: float = 10.0,
    train_prior: float = 0.5,
) -> dict[str, Any]:
    """Write report.md, det.png, calibration.png, context.png (if ``context``) and metrics.json.

    ``scores``: one row per evaluated track with the columns in ``SCORE_COLUMNS`` (optionally
    ``split``, ``threshold_flagged`` and ``voice``); ``meta``: the keys in ``META_KEYS``;
    ``context``: the columns in ``CONTEXT_COLUMNS``; ``pooling``: the columns in
    ``POOLING_COLUMNS`` (accuracy per top-k pooling size; ``meta["pooling_k"]``, if given,
    marks the artifact's own). Returns the metrics exactly as written to metrics.json
    (non-finite numbers become null there). Raises ValueError on missing columns / keys or
    when either class has no tracks.
    """
    _validate(scores, meta, context, pooling)
    costs = CostModel(p_spoof, c_miss, c_fa, train_prior)
    metrics = {"title": title, **detector_metrics(scores, meta, costs, context, pooling)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_det(scores, metrics, out_dir / "det.png")
    _plot_calibration(metrics["calibration_bins"], train_prior, out_dir / "calibration.png")
    if context is not None:
        _plot_context(context, out_dir / "context.png")
    (out_dir / "report.md").write_text(render_markdown(metrics, title, meta, has_context=context is not None))
    clean = json_safe(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    return clean


def _validate(scores: pd.DataFrame, meta: Mapping[str, Any], context: pd.DataFrame | None,
              pooling: pd.DataFrame | None = None) -> None:
    require(scores, SCORE_COLUMNS, meta, META_KEYS)
    for name, table, columns in (("context", context, CONTEXT_COLUMNS), ("pooling", pooling, POOLING_COLUMNS)):
        missing = [] if table is None else [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}")


# --------------------------------------------------------------------------- numbers


def detector_metrics(
    scores: pd.DataFrame, meta: Mapping[str, Any], costs: CostModel, context: pd.DataFrame | None = None,
    pooling: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """All report figures as one dict (the body of metrics.json, before NaN/inf become null)."""
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    logits = scores["logit"].to_numpy(dtype=np.float64)
    probs = scores["probability"].to_numpy(dtype=np.float64)
    llr = llr_from_probability(probs, costs.train_prior)
    eer, eer_threshold = eer_with_threshold(labels, logits)
    heldout = meta["heldout_family"]
    families = family_labels(scores)
    return {
        "model_id": meta["model_id"],
        "data": meta["data"],
        "command": meta["command"],
        "heldout_family": heldout,
        "heldout_family_present": heldout is not None and bool((families[labels] == heldout).any()),
        "units": UNITS,
        "cost_model": asdict(costs),
        "n_bona_fide": int((~labels).sum()),
        "n_synthetic": int(labels.sum()),
        "splits": _split_counts(scores),
        "eer": eer,
        "eer_threshold_logit": eer_threshold,
        "min_dcf": min_dcf(labels, logits, costs.p_spoof, costs.c_miss, costs.c_fa),
        "intervals": pooled_intervals(scores, costs),
        "act_dcf": act_dcf(labels, probs, costs.p_spoof, costs.c_miss, costs.c_fa, costs.train_prior),
        "cllr_bits": cllr(labels, llr),
        "min_cllr_bits": min_cllr(labels, logits),
        "operating_point": operating_point(labels, probs, float(meta["threshold"])),
        "stored_flags_agree": _stored_flag_agreement(scores, float(meta["threshold"])),
        "per_family_eer": per_family_eer(scores, heldout),
        "seen_families_eer": seen_families_eer(labels, logits, families, heldout),
        "per_codec_eer": per_codec_eer(scores),
        "per_voice": per_voice(scores, float(meta["threshold"])),
        "threshold_dev_voices": threshold_dev_metrics(meta),
        **score_structure_metrics(scores, meta.get("copy_margin_logit")),
        "calibration_bins": calibration_bins(scores, costs.train_prior),
        "context": None if context is None else _context_records(context),
        "pooling": None if pooling is None else _pooling_records(pooling, meta.get("pooling_k")),
        "artist_norm": artist_norm_metrics(scores, meta, costs.p_spoof, costs.c_miss, costs.c_fa),
    }


def pooled_intervals(scores: pd.DataFrame, costs: CostModel, n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """95 % intervals of the pooled EER and minDCF: voices resampled with their uploads (`models.bootstrap`);
    uploads one by one when the scores name no voice."""
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    logits = scores["logit"].to_numpy(dtype=np.float64)
    groups = voice_groups(scores)
    dcf = partial(min_dcf, p_spoof=costs.p_spoof, c_miss=costs.c_miss, c_fa=costs.c_fa)
    eer = bootstrap_interval(labels, logits, equal_error_rate, groups, n_resamples=n_resamples)
    cost = bootstrap_interval(labels, logits, dcf, groups, n_resamples=n_resamples)
    return {"method": "percentile bootstrap", "resampled": "voice" if groups is not None else "upload",
            "n_clusters": eer.n_clusters, "n_resamples": n_resamples, "n_resamples_with_both_classes": eer.n_resamples,
            "seed": 0, "eer_ci95": [eer.low, eer.high], "min_dcf_ci95": [cost.low, cost.high]}


def family_labels(scores: pd.DataFrame) -> pd.Series:
    """Generator family per row as str; synthetic rows without one are ``UNKNOWN_FAMILY``."""
    fam = scores["generator_family"].astype(object)
    return fam.where(fam.notna(), UNKNOWN_FAMILY).astype(str)


def per_family_eer(scores: pd.DataFrame, heldout: str | None) -> dict[str, dict[str, Any]]:
    """EER of each family's synthetic tracks against ALL bona fide tracks, with counts.

    Using every bona fide track keeps the families comparable (same negatives); the
    detector cannot know the family of a genuine upload anyway.
    """
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    logits = scores["logit"].to_numpy(dtype=np.float64)
    families = family_labels(scores).to_numpy()
    bona = logits[~labels]
    out: dict[str, dict[str, Any]] = {}
    for fam in sorted(set(families[labels])):
        synth = logits[labels & (families == fam)]
        out[fam] = {
            "eer": _eer_of(bona, synth),
            "n_synthetic": int(synth.size),
            "n_bona_fide": int(bona.size),
            "held_out": fam == heldout,
        }
    return out


def seen_families_eer(labels: np.ndarray, logits: np.ndarray, families: pd.Series,
                      heldout: str | None) -> dict[str, Any] | None:
    """Pooled EER without the held-out family's clones (the "seen in training" target); None
    when no family was held out or none of its clones are in this data."""
    unseen = labels & (families.to_numpy() == heldout)
    if heldout is None or not unseen.any():
        return None
    keep = ~unseen
    return {"eer": equal_error_rate(labels[keep], logits[keep]), "n_synthetic": int(labels[keep].sum())}


def per_codec_eer(scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """EER within each codec (its synthetic vs its bona fide tracks); None when a class is missing.

    Within-codec comparison asks "does the detector still separate the classes after this
    codec?", which a pooled EER hides when codecs are unevenly spread across the classes.
    """
    return {codec: {"eer": r["eer"], "n_synthetic": r["n_synthetic"], "n_bona_fide": r["n_bona_fide"]}
            for codec, r in (per_group(scores, "codec") or {}).items()}


def per_voice(scores: pd.DataFrame, threshold: float) -> dict[str, dict[str, Any]] | None:
    """Per singing voice (optional ``voice`` column): flag rate of its bona fide uploads and
    recall of its clones at the stored threshold, and its own EER; None without the column.

    The threshold is set on the dev voices' bona fide uploads; how far each unseen voice's
    flag rate strays from that target is what this shows (rates on few uploads are coarse).
    """
    if "voice" not in scores.columns:
        return None
    out: dict[str, dict[str, Any]] = {}
    for voice, group in scores.groupby(scores["voice"].astype(str), sort=True):
        labels = group["is_synthetic"].to_numpy(dtype=bool)
        probs = group["probability"].to_numpy(dtype=np.float64)
        logits = group["logit"].to_numpy(dtype=np.float64)
        bona, synth = probs[~labels], probs[labels]
        out[str(voice)] = {
            "n_bona_fide": int(bona.size),
            "bona_fide_flag_rate": float(np.mean(bona >= threshold)) if bona.size else None,
            "n_synthetic": int(synth.size),
            "recall": float(np.mean(synth >= threshold)) if synth.size else None,
            "eer": _eer_of(logits[~labels], logits[labels]) if bona.size and synth.size else None,
        }
    return out


def _eer_of(bona: np.ndarray, synth: np.ndarray) -> float:
    labels = np.r_[np.zeros(bona.size, bool), np.ones(synth.size, bool)]
    return equal_error_rate(labels, np.r_[bona, synth])


def _split_counts(scores: pd.DataFrame) -> dict[str, int] | None:
    if "split" not in scores.columns:
        return None
    return {str(k): int(v) for k, v in scores["split"].astype(str).value_counts().sort_index().items()}


def _stored_flag_agreement(scores: pd.DataFrame, threshold: float) -> float | None:
    """Share of rows whose stored ``threshold_flagged`` equals probability >= threshold.

    A value below 1 means the scores and the stored flags came from different runs or
    thresholds, and the operating-point table would not describe what was deployed.
    """
    if "threshold_flagged" not in scores.columns:
        return None
    recomputed = scores["probability"].to_numpy(dtype=np.float64) >= threshold
    return float(np.mean(scores["threshold_flagged"].to_numpy(dtype=bool) == recomputed))


def _pooling_records(pooling: pd.DataFrame, stored_k: Any) -> list[dict[str, Any]]:
    rows = pooling.sort_values("pooling_k")[list(POOLING_COLUMNS)]
    return [
        {"pooling_k": int(r.pooling_k), "eer": float(r.eer), "min_dcf": float(r.min_dcf), "n_tracks": int(r.n_tracks),
         "stored": stored_k is not None and int(r.pooling_k) == int(stored_k)}
        for r in rows.itertuples(index=False)
    ]


def _context_records(context: pd.DataFrame) -> list[dict[str, Any]]:
    rows = context.sort_values("context_s")[list(CONTEXT_COLUMNS)]
    return [
        {"context_s": float(r.context_s), "eer": float(r.eer), "min_dcf": float(r.min_dcf), "n_tracks": int(r.n_tracks)}
        for r in rows.itertuples(index=False)
    ]


def calibration_bins(scores: pd.DataFrame, train_prior: float, n_bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Reliability-diagram bins: mean predicted probability vs observed synthetic fraction.

    The probabilities claim to be posteriors under ``train_prior``, but the evaluation set has
    its own class mix; raw observed fractions would then look miscalibrated even for a perfect
    calibrator. ``observed_synthetic_fraction`` therefore re-weights each class to
    ``train_prior`` (weights train_prior / n_synthetic and (1 - train_prior) / n_bona_fide);
    ``raw_synthetic_fraction`` is the plain share in the bin. Empty bins are left out.
    """
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    probs = scores["probability"].to_numpy(dtype=np.float64)
    w_synth = train_prior / max(int(labels.sum()), 1)
    w_bona = (1.0 - train_prior) / max(int((~labels).sum()), 1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(probs, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        in_bin = index == b
        n_synth, n_bona = int((in_bin & labels).sum()), int((in_bin & ~labels).sum())
        if n_synth + n_bona == 0:
            continue
        bins.append(
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "n_tracks": n_synth + n_bona,
                "mean_probability": float(probs[in_bin].mean()),
                "observed_synthetic_fraction": n_synth * w_synth / (n_synth * w_synth + n_bona * w_bona),
                "raw_synthetic_fraction": n_synth / (n_synth + n_bona),
            }
        )
    return bins


# --------------------------------------------------------------------------- Markdown


def render_markdown(metrics: Mapping[str, Any], title: str, meta: Mapping[str, Any], *, has_context: bool) -> str:
    """The whole report.md text, section by section."""
    sections = [
        _header_section(metrics, title, meta),
        _pooled_section(metrics),
        _family_section(metrics),
        _codec_section(metrics),
        _operating_section(metrics),
        threshold_dev_section(metrics),
        _voice_section(metrics),
        _context_section(metrics),
        _pooling_section(metrics),
        score_structure_section(metrics),
        artist_norm_section(metrics),
        _figures_section(has_context),
    ]
    return "\n\n".join(s for s in sections if s is not None) + "\n"


def _header_section(m: Mapping[str, Any], title: str, meta: Mapping[str, Any]) -> str:
    c = m["cost_model"]
    heldout = meta["heldout_family"]
    if heldout is None:
        heldout_text = "none (every family was seen in training)"
    elif m["heldout_family_present"]:
        heldout_text = f"`{heldout}` (not seen in training)"
    else:
        heldout_text = f"`{heldout}` (not seen in training; **no tracks of it in this data**)"
    splits = m["splits"]
    split_text = "" if not splits else "; splits: " + ", ".join(f"{k} {v}" for k, v in splits.items())
    return "\n".join(
        [
            f"# {title}",
            "",
            str(meta["data"]),
            "",
            f"- **Model:** `{meta['model_id']}`",
            f"- **Command:** `{meta['command']}`",
            f"- **Held-out generator family:** {heldout_text}",
            f"- **Tracks:** {m['n_bona_fide']} bona fide, {m['n_synthetic']} synthetic{split_text}",
            f"- **Cost model:** P_spoof = {c['p_spoof']:g}, C_miss = {c['c_miss']:g} (flagging a bona fide upload), "
            f"C_fa = {c['c_fa']:g} (passing a synthetic upload); DCF is normalised so 1.0 = the better of "
            "flag-nothing and flag-everything. Probabilities are read as posteriors under a training prior of "
            f"{c['train_prior']:g}.",
            "",
            "All rates and costs are fractions shown to 4 decimals (0.0123 = 1.23 %); Cllr is in bits. "
            "With n tracks in a class one track moves a rate by 1/n, so EERs on small n are noisy: "
            "every EER is shown with its track counts.",
        ]
    )


def _pooled_section(m: Mapping[str, Any]) -> str:
    nb, ns = m["n_bona_fide"], m["n_synthetic"]
    ci = m["intervals"]
    rows = [
        ("EER", m["eer"], format_interval(ci["eer_ci95"]), "raw logit", nb, ns),
        ("minDCF", m["min_dcf"], format_interval(ci["min_dcf_ci95"]), "raw logit, best threshold", nb, ns),
        ("actDCF", m["act_dcf"], "", "calibrated probability, Bayes threshold", nb, ns),
        ("Cllr (bits)", m["cllr_bits"], "", "calibrated probability", nb, ns),
        ("minCllr (bits)", m["min_cllr_bits"], "", "raw logit after PAV", nb, ns),
    ]
    seen = m["seen_families_eer"]
    if seen is not None:
        rows.insert(1, ("EER, seen families only", seen["eer"], "", "raw logit, held-out family's clones left out",
                        nb, seen["n_synthetic"]))
    header = ("Metric", "Value (fraction; Cllr in bits)", "95 % interval", "Scored on", "n bona fide", "n synthetic")
    return "## Pooled metrics\n\n" + markdown_table(header, rows) + "\n\n" + _interval_note(ci)


def _interval_note(ci: Mapping[str, Any]) -> str:
    unit = "voices" if ci["resampled"] == "voice" else "uploads"
    together = ", each voice with all of its uploads" if ci["resampled"] == "voice" else ""
    return (f"Intervals: {ci['method']} over the {ci['n_clusters']} {unit}{together} ({ci['n_resamples']} "
            f"resamples, seed {ci['seed']}; {ci['n_resamples_with_both_classes']} held both classes). Two models "
            "whose intervals overlap may still differ: compare them on the same uploads with "
            "`trackguard eval detector-compare`.")


def _family_section(m: Mapping[str, Any]) -> str:
    rows = [
        (f"{fam} (held out)" if r["held_out"] else fam, r["eer"], r["n_synthetic"], r["n_bona_fide"])
        for fam, r in m["per_family_eer"].items()
    ]
    return (
        "## EER per generator family\n\nEach family's synthetic tracks against all bona fide tracks (raw logits).\n\n"
        + markdown_table(("Generator family", "EER (fraction)", "n synthetic", "n bona fide"), rows)
    )


def _codec_section(m: Mapping[str, Any]) -> str:
    rows = [(codec, r["eer"], r["n_synthetic"], r["n_bona_fide"]) for codec, r in m["per_codec_eer"].items()]
    return (
        "## EER per codec\n\nEach codec's synthetic tracks against the bona fide tracks of the same codec "
        "(raw logits); n/a when the codec has no tracks of one class.\n\n"
        + markdown_table(("Codec", "EER (fraction)", "n synthetic", "n bona fide"), rows)
    )


def _operating_section(m: Mapping[str, Any]) -> str:
    op = m["operating_point"]
    header = (
        "Threshold (probability)",
        "Bona fide flag rate",
        "Synthetic pass rate",
        "Precision",
        "Recall",
        "n flagged",
        "n bona fide",
        "n synthetic",
    )
    row = (
        op["threshold"],
        op["bona_fide_flag_rate"],
        op["synthetic_pass_rate"],
        op["precision"],
        op["recall"],
        op["n_flagged"],
        op["n_bona_fide"],
        op["n_synthetic"],
    )
    text = (
        "## Operating point\n\nThe stored threshold on calibrated probability (flag when probability ≥ threshold). "
        "Precision depends on this set's class mix; the two rates do not.\n\n" + markdown_table(header, [row])
    )
    agree = m["stored_flags_agree"]
    if agree is not None:
        n = op["n_bona_fide"] + op["n_synthetic"]
        text += (
            f"\n\nStored `threshold_flagged` matches probability ≥ threshold on a fraction {fmt(agree)} "
            f"of the {n} tracks."
        )
    return text


def _voice_section(m: Mapping[str, Any]) -> str:
    voices = m["per_voice"]
    if voices is None:
        return "## Per voice\n\nNot measured: the scores carry no `voice` column."
    rows = [(v, r["n_bona_fide"], r["bona_fide_flag_rate"], r["n_synthetic"], r["recall"], r["eer"])
            for v, r in voices.items()]
    rates = [r["bona_fide_flag_rate"] for r in voices.values() if r["bona_fide_flag_rate"] is not None]
    spread = (f" Bona fide flag rate over the {len(rates)} voices: median {fmt(float(np.median(rates)))}, "
              f"highest {fmt(max(rates))}.") if rates else ""
    return (
        "## Per voice\n\nEach singing voice's uploads at the stored threshold, and its own EER (its clones "
        "against its bona fide uploads, raw logits; n/a without both). The threshold was set on the dev "
        f"voices' bona fide uploads, so a voice far above the target flag rate is one it does not transfer to.{spread}"
        "\n\n" + markdown_table(("Voice", "n bona fide", "Bona fide flag rate", "n synthetic", "Recall",
                                   "EER (fraction)"), rows)
    )


def _context_section(m: Mapping[str, Any]) -> str:
    records = m["context"]
    if records is None:
        return "## Accuracy vs context\n\nNot measured for this report."
    rows = [(f"{r['context_s']:g}", r["eer"], r["min_dcf"], r["n_tracks"]) for r in records]
    return (
        "## Accuracy vs context\n\nPooled metrics when only the given seconds of each track are scored.\n\n"
        + markdown_table(("Context (s)", "EER (fraction)", "minDCF (fraction)", "n tracks"), rows)
    )


def _pooling_section(m: Mapping[str, Any]) -> str:
    records = m["pooling"]
    if records is None:
        return "## Accuracy vs pooling\n\nNot measured for this report."
    rows = [(f"{r['pooling_k']}" + (" (stored)" if r["stored"] else ""), r["eer"], r["min_dcf"], r["n_tracks"])
            for r in records]
    return (
        "## Accuracy vs pooling\n\nPooled metrics when a track's logit is the mean of its top k window logits "
        "instead (over the same windows; the largest k is the plain mean, k = 1 the single most "
        "synthetic-looking window). The stored calibration and threshold belong to the stored k.\n\n"
        + markdown_table(("Top k", "EER (fraction)", "minDCF (fraction)", "n tracks"), rows)
    )


def _figures_section(has_context: bool) -> str:
    lines = [
        "## Figures",
        "",
        "![DET curve, pooled and per generator family (normal-deviate axes)](det.png)",
        "",
        "![Reliability diagram of the calibrated probabilities](calibration.png)",
    ]
    if has_context:
        lines += ["", "![EER and minDCF vs seconds of context](context.png)"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _plot_det(scores: pd.DataFrame, metrics: Mapping[str, Any], path: Path) -> None:
    """Pooled and per-family DET curves on normal-deviate axes, each with its EER marked."""
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    logits = scores["logit"].to_numpy(dtype=np.float64)
    families = family_labels(scores).to_numpy()
    fig = Figure(figsize=(6.5, 6.0))
    ax = fig.add_subplot()
    det_axes(ax, "Bona fide flag rate (%)", "Synthetic pass rate (%)")
    curves = [("pooled", labels, logits, metrics["eer"], metrics["n_synthetic"])]
    for fam, r in metrics["per_family_eer"].items():
        keep = ~labels | (families == fam)
        name = f"{fam} (held out)" if r["held_out"] else fam
        curves.append((name, labels[keep], logits[keep], r["eer"], r["n_synthetic"]))
    for i, (name, lab, sc, eer, n_synth) in enumerate(curves):
        curve = det_curve(lab, sc)
        style = {"linewidth": 2.2, "color": "black"} if i == 0 else {"linewidth": 1.2}
        (line,) = ax.plot(
            probit(curve.bona_fide_flag_rate),
            probit(curve.synthetic_pass_rate),
            label=f"{name}: EER {eer:.4f} (n synth {n_synth})",
            **style,
        )
        ax.plot(probit(eer), probit(eer), "o", color=line.get_color(), markersize=5)
    ax.legend(fontsize=7, loc="upper right", title=f"n bona fide {metrics['n_bona_fide']}", title_fontsize=7)
    ax.set_title(f"DET (rates below {100 * DET_CLIP:g} %, e.g. 0, drawn at {100 * DET_CLIP:g} %)", fontsize=9)
    save_figure(fig, path)


def _plot_calibration(bins: list[dict[str, Any]], train_prior: float, path: Path) -> None:
    """Reliability diagram (top) and tracks per bin (bottom)."""
    fig = Figure(figsize=(6.0, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = [b["mean_probability"] for b in bins]
    y = [b["observed_synthetic_fraction"] for b in bins]
    top.plot([0, 1], [0, 1], color="0.7", linewidth=0.8, label="perfect calibration")
    top.plot(x, y, "o-", label=f"observed (classes re-weighted to prior {train_prior:g})")
    for b, xi, yi in zip(bins, x, y, strict=True):
        offset = (4, 6) if yi < 0.1 else (4, -10)  # keep labels off the frame
        top.annotate(f"n={b['n_tracks']}", (xi, yi), textcoords="offset points", xytext=offset, fontsize=7)
    top.set_ylabel("Observed synthetic fraction")
    top.set_ylim(-0.02, 1.02)
    top.legend(fontsize=7, loc="upper left")
    top.grid(True, color="0.92")
    centres = [(b["bin_low"] + b["bin_high"]) / 2 for b in bins]
    widths = [b["bin_high"] - b["bin_low"] for b in bins]
    bottom.bar(centres, [b["n_tracks"] for b in bins], width=widths, color="0.6", edgecolor="white")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("Predicted synthetic probability")
    bottom.set_ylabel("Tracks")
    save_figure(fig, path)


def _plot_context(context: pd.DataFrame, path: Path) -> None:
    """EER and minDCF against seconds of audio scored, each point labelled with its track count."""
    ctx = context.sort_values("context_s")
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(ctx["context_s"], ctx["eer"], "o-", label="EER")
    ax.plot(ctx["context_s"], ctx["min_dcf"], "s--", label="minDCF")
    for s, e, n in zip(ctx["context_s"], ctx["eer"], ctx["n_tracks"], strict=True):
        ax.annotate(f"n={int(n)}", (s, e), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("Seconds of context scored per track")
    ax.set_ylabel("Fraction")
    ax.set_ylim(bottom=0)
    ax.grid(True, color="0.92")
    ax.legend(fontsize=8)
    save_figure(fig, path)
