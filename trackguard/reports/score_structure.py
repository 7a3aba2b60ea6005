"""The detector report's "Where the errors come from" section: twins, voices, genres and vocal styles.

A pooled EER mixes two failures: the detector not hearing a clone's artefacts at all,
and the detector hearing them but on a scale that moves from song to song and voice to
voice, so no single threshold fits. Two measures tell them apart:

* twin comparison (needs ``twin_upload_id``): how often a clone scores above its own bona
  fide twin (same song, mix and voice), and by how much. A clone below its twin is one
  whose artefacts the detector does not hear.
* voice spread (needs ``voice``): the spread of voices' mean bona fide logits against the
  clone-over-bona-fide gap inside a voice, and the pooled EER once each voice is centred
  on its own bona fide mean (an oracle: it reads the labels; it is the most per-artist
  normalisation could give).
* per genre and per vocal style (``genre``, ``vocal_style``: sung, or spoken as in rap): bona fide and
  clone mean logits and the EER within each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.spoof_metrics import equal_error_rate
from trackguard.reports.common import fmt, markdown_table


def score_structure_metrics(scores: pd.DataFrame) -> dict[str, Any]:
    return {"twin_comparison": twin_comparison(scores), "voice_spread": voice_spread(scores),
            "per_genre": per_group(scores, "genre"), "per_vocal_style": per_group(scores, "vocal_style")}


def per_group(scores: pd.DataFrame, column: str) -> dict[str, dict[str, Any]] | None:
    """Per value of an optional song attribute (``genre``, ``vocal_style``): mean logit of its bona fide uploads
    and of its clones, and its own EER. Where bona fide means differ by more than the clone gap, the attribute
    moves the score. None without the column or any value in it."""
    if column not in scores.columns or scores[column].isna().all():
        return None
    out = {}
    known = scores[scores[column].notna()]
    for value, group in known.groupby(known[column].astype(str), sort=True):
        labels = group["is_synthetic"].to_numpy(dtype=bool)
        logits = group["logit"].to_numpy(dtype=np.float64)
        both = labels.any() and not labels.all()
        out[str(value)] = {
            "n_bona_fide": int((~labels).sum()), "n_synthetic": int(labels.sum()),
            "mean_bona_fide_logit": float(logits[~labels].mean()) if (~labels).any() else None,
            "mean_synthetic_logit": float(logits[labels].mean()) if labels.any() else None,
            "eer": equal_error_rate(labels, logits) if both else None,
        }
    return out


def twin_comparison(scores: pd.DataFrame) -> dict[str, dict[str, Any]] | None:
    """Per generator family (and ``all``): clones whose twin was scored too, the share scoring above it,
    and the median clone-minus-twin logit. None without a ``twin_upload_id`` column or such pairs."""
    if "twin_upload_id" not in scores.columns:
        return None
    logit_of = dict(zip(scores["upload_id"].astype(str), scores["logit"].astype(float), strict=True))
    clones = scores[scores["is_synthetic"].astype(bool)]
    twin_logit = clones["twin_upload_id"].map(lambda t: logit_of.get(str(t), math.nan) if isinstance(t, str) else
                                              math.nan).to_numpy(dtype=np.float64)
    gap = clones["logit"].to_numpy(dtype=np.float64) - twin_logit
    paired = ~np.isnan(gap)
    if not paired.any():
        return None
    families = clones["generator_family"].astype(object).where(clones["generator_family"].notna(), "(unknown)")
    out = {}
    for name in ["all", *sorted(set(families[paired].astype(str)))]:
        keep = paired & ((families.astype(str) == name).to_numpy() if name != "all" else True)
        out[name] = {"n_pairs": int(keep.sum()), "clone_above_twin_share": float(np.mean(gap[keep] > 0)),
                     "median_clone_minus_twin_logit": float(np.median(gap[keep]))}
    return out


def voice_spread(scores: pd.DataFrame) -> dict[str, Any] | None:
    """See the module doc; None without a ``voice`` column or with fewer than two voices with bona fide uploads."""
    if "voice" not in scores.columns:
        return None
    labels = scores["is_synthetic"].to_numpy(dtype=bool)
    logits = scores["logit"].to_numpy(dtype=np.float64)
    voice = scores["voice"].astype(str).to_numpy()
    bona_mean = {v: float(logits[~labels & (voice == v)].mean()) for v in sorted(set(voice[~labels]))}
    if len(bona_mean) < 2:
        return None
    gaps = [float(logits[labels & (voice == v)].mean()) - m for v, m in bona_mean.items()
            if (labels & (voice == v)).any()]
    centred = logits - np.array([bona_mean.get(v, np.nan) for v in voice])
    keep = ~np.isnan(centred)
    sd = float(np.std(list(bona_mean.values()), ddof=1))
    gap = float(np.mean(gaps)) if gaps else math.nan
    both = labels[keep].any() and not labels[keep].all()
    return {
        "n_voices": len(bona_mean),
        "voice_mean_bona_fide_logit_sd": sd,
        "within_voice_clone_minus_bona_fide_logit": gap,
        "spread_over_gap": sd / gap if gap > 0 else None,
        "voice_centred_eer_oracle": equal_error_rate(labels[keep], centred[keep]) if both else None,
    }


def score_structure_section(m: Mapping[str, Any]) -> str | None:
    twins, spread = m.get("twin_comparison"), m.get("voice_spread")
    groups = {"genre": m.get("per_genre"), "vocal style": m.get("per_vocal_style")}
    if twins is None and spread is None and not any(groups.values()):
        return None
    parts = ["## Where the errors come from"]
    if twins is not None:
        rows = [(fam, r["n_pairs"], r["clone_above_twin_share"], r["median_clone_minus_twin_logit"])
                for fam, r in twins.items()]
        parts.append(
            "Each clone against its own bona fide twin (same song, mix and voice; raw logits). A share near 1 "
            "with a poor EER means the detector hears the artefacts, but on a scale that moves from song to "
            "song more than the clone-over-twin gap.\n\n"
            + markdown_table(("Generator family", "n pairs", "Clone above its twin (fraction)",
                              "Median clone - twin (logit)"), rows))
    if spread is not None:
        parts.append(
            f"Across the {spread['n_voices']} voices, their mean bona fide logits have a standard deviation of "
            f"{fmt(spread['voice_mean_bona_fide_logit_sd'])}, against a mean clone-over-bona-fide gap inside a "
            f"voice of {fmt(spread['within_voice_clone_minus_bona_fide_logit'])} (ratio "
            f"{fmt(spread['spread_over_gap'])}): the larger the ratio, the more the pooled score says who sings "
            "rather than how it was made. With each voice centred on its own bona fide mean (an oracle that "
            f"reads the labels) the pooled EER would be {fmt(spread['voice_centred_eer_oracle'])}.")
    for name, table in groups.items():
        if table is None:
            continue
        group_rows = [(g, r["n_bona_fide"], r["mean_bona_fide_logit"], r["n_synthetic"], r["mean_synthetic_logit"],
                       r["eer"]) for g, r in table.items()]
        parts.append(
            f"Per {name} of the song (raw logits): where bona fide means differ by more than the clone gap, "
            f"the {name} moves the score.\n\n"
            + markdown_table((name.capitalize(), "n bona fide", "Mean bona fide logit", "n synthetic",
                              "Mean synthetic logit", "EER (fraction)"), group_rows))
    return "\n\n".join(parts)
