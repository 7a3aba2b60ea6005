"""End-to-end routing quality of a sweep against a labelled corpus.

The expected queue of each upload follows from its labels and the design's
routing rules; per-queue precision and recall compare it with the verdicts.
Figures are only as good as the split they are measured on: a model trained on
the same corpus is scored partly on its own training uploads (say so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PASS = "pass"


def expected_queue(label: Any, opted_in: set[str]) -> str:
    if label.kind == "bad_input":
        return "errors"
    if label.kind == "clone":
        if label.licensed_use:
            return PASS
        if label.voice_artist_id in opted_in:
            return "impersonation"
        return PASS if label.get("declared_ai", False) else "undisclosed-ai"
    if label.kind == "spam":
        return {"duplicate": "duplicates", "profile_mismatch": "profile-mismatch"}.get(label.spam_type, "spam")
    return PASS


def expected_vs_routed(verdicts: Path | str, corpus: Path) -> pd.DataFrame:
    """One row per labelled upload: its expected queue, the queue it got, its verdict's reasons and the earlier
    upload the sweep matched it to (``matched_original``)."""
    v = pd.read_parquet(verdicts)[["upload_id", "queue", "reasons", "duplicate_of"]]
    v = v.rename(columns={"duplicate_of": "matched_original"})  # the labels have their own duplicate_of
    labels = pd.read_parquet(corpus / "labels.parquet")
    manifest = pd.read_parquet(corpus / "manifest.parquet")[["upload_id", "declared_ai"]]
    artists = pd.read_parquet(corpus / "artists.parquet")
    opted_in = set(artists[artists["opted_in"]]["artist_id"])
    d = labels.merge(manifest, on="upload_id", how="left").merge(v, on="upload_id", how="left")
    d["expected"] = [expected_queue(r, opted_in) for _, r in d.iterrows()]
    d["got"] = d["queue"].fillna(PASS)
    return d


def routing_table(d: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-queue precision/recall and the expected-vs-routed confusion, from `expected_vs_routed`."""
    confusion = pd.crosstab(d["expected"], d["got"])
    rows = []
    for q in sorted(set(d["expected"]) | set(d["got"])):
        tp = int(((d["expected"] == q) & (d["got"] == q)).sum())
        n_exp, n_got = int((d["expected"] == q).sum()), int((d["got"] == q).sum())
        rows.append({"queue": q, "expected": n_exp, "routed": n_got, "correct": tp,
                     "precision": tp / n_got if n_got else None, "recall": tp / n_exp if n_exp else None})
    return pd.DataFrame(rows), confusion


def reasons_table(d: pd.DataFrame) -> pd.DataFrame:
    """How many uploads of each expected queue carry each reason code (rows: reasons), from `expected_vs_routed`."""
    reason = d["reasons"].map(lambda r: list(r) if r is not None else [])
    pairs = pd.DataFrame({"reason": reason, "expected": d["expected"]}).explode("reason").dropna()
    if pairs.empty:
        return pd.DataFrame()
    return pd.crosstab(pairs["reason"], pairs["expected"])


def copy_rises(d: pd.DataFrame, ledger: pd.DataFrame, margin: float | None) -> list[dict[str, Any]]:
    """Copies the sweep matched to an earlier upload, against that original's detector logit.

    ``d`` is `expected_vs_routed`; ``ledger`` the duplicate catalogue's (it keeps each upload's
    pooled detector logit and model id). Rows: clones (labelled synthetic) and bona fide copies
    (re-uploads, or a clean upload matched to something), each with the logit rise over the
    original and the share at or above ``margin`` (the policy's ``synthetic_over_original``).
    """
    known = ledger.dropna(subset=["detector_logit", "detector_model_id"]).drop_duplicates("upload_id", keep="last")
    logit = dict(zip(known["upload_id"].astype(str), known["detector_logit"].astype(float), strict=True))
    model = dict(zip(known["upload_id"].astype(str), known["detector_model_id"].astype(str), strict=True))
    copies = d[d["matched_original"].notna()]
    rows = []
    for name, part in (("clone", copies[copies["kind"] == "clone"]),
                       ("bona fide copy", copies[copies["kind"] != "clone"])):
        rises = np.array([logit[u] - logit[o] for u, o in zip(part["upload_id"].astype(str),
                                                               part["matched_original"].astype(str), strict=True)
                          if u in logit and o in logit and model[u] == model[o]])
        rows.append({"copies": name, "matched": len(part), "with_both_logits": len(rises),
                     "median_rise_logit": float(np.median(rises)) if len(rises) else None,
                     "max_rise_logit": float(rises.max()) if len(rises) else None,
                     "at_or_over_margin": int((rises >= margin).sum()) if margin is not None else None})
    return rows
