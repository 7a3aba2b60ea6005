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
* per genre, per vocal style and per mix (``genre``; ``vocal_style``: sung, or spoken as in rap; ``mix``:
  a cappella, or the vocal's level over the accompaniment): bona fide and
  clone mean logits and the EER within each, and (with ``voice``) the within-voice shift: an artist
  sings only some genres, so a group's raw mean also says who sings it. The shift compares each voice's
  bona fide songs in the group with the same voice's other bona fide songs, which takes the voice out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.spoof_metrics import equal_error_rate
from trackguard.reports.common import fmt, markdown_table


def score_structure_metrics(scores: pd.DataFrame, copy_margin: float | None = None) -> dict[str, Any]:
    return {"twin_comparison": twin_comparison(scores, copy_margin), "voice_spread": voice_spread(scores),
            "per_genre": per_group(scores, "genre"), "per_vocal_style": per_group(scores, "vocal_style"),
            "per_mix": per_group(scores, "mix")}


def per_group(scores: pd.DataFrame, column: str) -> dict[str, dict[str, Any]] | None:
    """Per value of an optional song attribute (``genre``, ``vocal_style``): mean logit of its bona fide uploads
    and of its clones, its own EER, and the within-voice shift of its bona fide logits (`within_voice_shift`).
    None without the column or any value in it."""
    if column not in scores.columns or scores[column].isna().all():
        return None
    out = {}
    known = scores[scores[column].notna()]
    values = np.where(scores[column].notna(), scores[column].astype(str), None)
    for value, group in sorted(known.groupby(known[column].astype(str)), key=lambda kv: _natural(str(kv[0]))):
        labels = group["is_synthetic"].to_numpy(dtype=bool)
        logits = group["logit"].to_numpy(dtype=np.float64)
        both = labels.any() and not labels.all()
        out[str(value)] = {
            "n_bona_fide": int((~labels).sum()), "n_synthetic": int(labels.sum()),
            "mean_bona_fide_logit": float(logits[~labels].mean()) if (~labels).any() else None,
            "mean_synthetic_logit": float(logits[labels].mean()) if labels.any() else None,
            "eer": equal_error_rate(labels, logits) if both else None,
            **within_voice_shift(scores, values == value),
        }
    return out


def _natural(text: str) -> list[Any]:
    """Sort key that orders "+3 dB" before "+12 dB"."""
    return [(0, float(part), "") if part.replace(".", "", 1).isdigit() else (1, 0.0, part)
            for part in re.split(r"(\d+(?:\.\d+)?)", text)]


def within_voice_shift(scores: pd.DataFrame, in_group: np.ndarray) -> dict[str, Any]:
    """For each voice with bona fide uploads both in and out of the group: the mean bona fide logit of its
    songs in the group minus that of its other songs; averaged over those voices. Near 0: the group's raw
    level comes from who sings it. None without a ``voice`` column or such a voice."""
    if "voice" not in scores.columns:
        return {"within_voice_bona_fide_shift": None, "n_voices_compared": 0}
    bona = ~scores["is_synthetic"].to_numpy(dtype=bool)
    voice = scores["voice"].astype(str).to_numpy()
    logits = scores["logit"].to_numpy(dtype=np.float64)
    shifts = []
    for v in sorted(set(voice[bona])):
        here, other = bona & (voice == v) & in_group, bona & (voice == v) & ~in_group
        if here.any() and other.any():
            shifts.append(float(logits[here].mean() - logits[other].mean()))
    return {"within_voice_bona_fide_shift": float(np.mean(shifts)) if shifts else None,
            "n_voices_compared": len(shifts)}


def twin_comparison(scores: pd.DataFrame, copy_margin: float | None = None) -> dict[str, dict[str, Any]] | None:
    """Per generator family (and ``all``): clones whose twin was scored too, the share scoring above it,
    the median clone-minus-twin logit and, given the detector's copy margin, the share at least that far
    above it (what the sweep's copy rule would flag if the duplicate stage matched every clone to its twin).
    None without a ``twin_upload_id`` column or such pairs."""
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
                     "median_clone_minus_twin_logit": float(np.median(gap[keep])),
                     "clone_over_twin_by_copy_margin_share": None if copy_margin is None else
                     float(np.mean(gap[keep] >= copy_margin))}
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
    groups = {"genre": m.get("per_genre"), "vocal style": m.get("per_vocal_style"),
              "mix (vocal level over the accompaniment)": m.get("per_mix")}
    if twins is None and spread is None and not any(groups.values()):
        return None
    parts = ["## Where the errors come from"]
    if twins is not None:
        rows = [(fam, r["n_pairs"], r["clone_above_twin_share"], r["median_clone_minus_twin_logit"],
                 r.get("clone_over_twin_by_copy_margin_share")) for fam, r in twins.items()]
        parts.append(
            "Each clone against its own bona fide twin (same song, mix and voice; raw logits). A share near 1 "
            "with a poor EER means the detector hears the artefacts, but on a scale that moves from song to "
            "song more than the clone-over-twin gap. The last column is the share at least the detector's copy "
            "margin above its twin: what the sweep's copy rule would flag if the duplicate stage matched "
            "every clone to its twin (n/a: the detector has no measured margin).\n\n"
            + markdown_table(("Generator family", "n pairs", "Clone above its twin (fraction)",
                              "Median clone - twin (logit)", "Clone >= copy margin over its twin (fraction)"),
                             rows))
    if spread is not None:
        parts.append(
            f"Across the {spread['n_voices']} voices, their mean bona fide logits have a standard deviation of "
            f"{fmt(spread['voice_mean_bona_fide_logit_sd'])}, against a mean clone-over-bona-fide gap inside a "
            f"voice of {fmt(spread['within_voice_clone_minus_bona_fide_logit'])} (ratio "
            f"{fmt(spread['spread_over_gap'])}): the larger the ratio, the more the pooled score says who sings "
            "rather than how it was made. With each voice centred on its own bona fide mean (an oracle that "
            f"reads the labels) the pooled EER would be {fmt(spread['voice_centred_eer_oracle'])}.")
    for name, table in groups.items():
        if table is not None:
            parts.append(_group_section(name, table))
    if any(groups.values()):
        parts.append(_SHIFT_NOTE)
    return "\n\n".join(parts)


_SHIFT_NOTE = (
    "The within-voice shift: an artist sings only some genres, styles and mixes, so a group's raw bona fide mean "
    "also says who sings it. For each voice with bona fide songs both in the group and outside it, the shift is "
    "the mean logit of the former minus the latter, averaged over those voices (the last column counts them). A "
    "high raw mean with a shift near 0 comes from the voices, not from the group.")


def _group_section(name: str, table: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [(g, r["n_bona_fide"], r["mean_bona_fide_logit"], r["n_synthetic"], r["mean_synthetic_logit"], r["eer"],
             r.get("within_voice_bona_fide_shift"), r.get("n_voices_compared", 0)) for g, r in table.items()]
    return (f"Per {name} of the song (raw logits):\n\n"
            + markdown_table((name.split(" (")[0].capitalize(), "n bona fide", "Mean bona fide logit", "n synthetic",
                              "Mean synthetic logit", "EER (fraction)", "Within-voice bona fide shift (logit)",
                              "n voices compared"), rows))
