"""The detector report's "Threshold and the dev voices" section.

Read from the model card (`models.train_detector.dev_voice_dependence`, written by
`trackguard train detector`), not from the scored tracks: per dev voice, the share of
its bona fide uploads the stored threshold flags and the threshold stored without it.
One dev voice that resembles a clone family can hold the threshold up alone; this
section says so next to the figures measured with that threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackguard.reports.common import fmt, markdown_table


def threshold_dev_metrics(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card's per-dev-voice record with its range and the voice that holds the threshold up most
    (None when the card has no record: a model trained before it was written)."""
    by_voice = meta.get("threshold_by_dev_voice")
    if not by_voice:
        return None
    without = {v: float(r["threshold_without_it"]) for v, r in by_voice.items()}
    lowest = min(without, key=lambda v: without[v])
    return {
        "stored_threshold": float(meta["threshold"]),
        "target_false_flag_rate": meta.get("target_false_flag_rate"),
        "n_dev_voices": len(by_voice),
        "threshold_without_one_voice_range": [min(without.values()), max(without.values())],
        "voice_holding_it_up_most": lowest,
        "by_voice": {v: dict(r) for v, r in sorted(by_voice.items(), key=lambda item: without[item[0]])},
    }


def threshold_dev_section(m: Mapping[str, Any]) -> str:
    record = m.get("threshold_dev_voices")
    title = "## Threshold and the dev voices\n\n"
    if record is None:
        return (title + "Not recorded: the model card has no `metrics.threshold_by_dev_voice` (models trained "
                "before `trackguard train detector` wrote it, such as the shipped checkpoint). Retrain to see it.")
    target = record["target_false_flag_rate"]
    target_text = f" (target: at most {fmt(target)} of them flagged)" if target is not None else ""
    lo, hi = record["threshold_without_one_voice_range"]
    top = record["voice_holding_it_up_most"]
    rows = [(v, r["bona_fide_flag_rate"], r["threshold_without_it"]) for v, r in record["by_voice"].items()]
    return (
        title + f"The stored threshold {fmt(record['stored_threshold'])} was set on the bona fide uploads of "
        f"{record['n_dev_voices']} dev voices{target_text}, recorded by `trackguard train detector`. Leaving "
        f"one dev voice out would have stored a threshold between {fmt(lo)} and {fmt(hi)}; `{top}` holds it "
        "up most. A voice whose own flag rate is far above the target is one the threshold was raised for; "
        "the figures above are measured with the stored threshold, not without it.\n\n"
        + markdown_table(("Dev voice", "Its bona fide flag rate", "Threshold without it"), rows)
    )
