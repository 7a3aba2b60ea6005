"""Human-readable summary of a sweep's verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def summarise(verdicts_path: Path | str, seconds: float, metrics: dict[str, float]) -> dict[str, Any]:
    df = pd.read_parquet(verdicts_path)
    audio_s = metrics.get("audio_ms", 0.0) / 1000.0
    return {
        "uploads_read": int(metrics.get("uploads_read", len(df))),
        "verdicts": len(df),
        "by_decision": df["decision"].value_counts().sort_index().to_dict(),
        "by_queue": df["queue"].fillna("(none)").value_counts().sort_index().to_dict(),
        "errors_by_code": df["error_code"].dropna().value_counts().sort_index().to_dict(),
        "wall_s": round(seconds, 2),
        "tracks_per_s": round(len(df) / seconds, 2) if seconds else None,
        "audio_s": round(audio_s, 1),
        "rt_factor": round(audio_s / seconds, 1) if seconds else None,
    }


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"uploads read        {s['uploads_read']}", f"verdicts written    {s['verdicts']}"]
    lines.append("by decision         " + ", ".join(f"{k}={v}" for k, v in s["by_decision"].items()))
    lines.append("by queue            " + ", ".join(f"{k}={v}" for k, v in s["by_queue"].items()))
    lines.append("errors by code      " + (", ".join(f"{k}={v}" for k, v in s["errors_by_code"].items()) or "none"))
    lines.append(f"wall time           {s['wall_s']} s")
    lines.append(f"throughput          {s['tracks_per_s']} tracks/s")
    lines.append(f"audio real-time     {s['rt_factor']}x  ({s['audio_s']} s of audio decoded)")
    return "\n".join(lines)
