"""What every evaluation report shares: number format, Markdown tables, strict JSON, figures, input checks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

DET_CLIP = 0.001  # rates below (e.g. exactly 0) are drawn here, just inside the axes
DET_LIMITS = (0.0007, 0.8)  # DET axes range as rates
DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def json_safe(value: Any) -> Any:
    """Plain-JSON copy: numpy scalars to Python, NaN / ±inf to None (strict JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fmt(value: Any) -> str:
    """One number format for every report: 4 decimals; None / NaN as n/a; ints as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        return f"{value:.4f}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """GitHub-flavoured Markdown table; cells go through :func:`fmt`, pipes are escaped."""

    def cell(v: Any) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)  # attaches the Agg canvas; no pyplot, no global backend switch
    fig.savefig(path, dpi=120, bbox_inches="tight")


def require(scores: pd.DataFrame, columns: Iterable[str], meta: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Fail early, naming what is missing, instead of a KeyError halfway through a report."""
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack columns {missing}")
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ValueError(f"meta lacks keys {missing}")


def probit(rate: np.ndarray | float) -> np.ndarray:
    """DET-axis coordinate of an error rate (normal deviate), clipped inside the axes."""
    return np.asarray(norm.ppf(np.clip(rate, DET_CLIP, 1.0 - DET_CLIP)), dtype=np.float64)


def det_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Normal-deviate axes with percent ticks and the EER diagonal."""
    ticks = norm.ppf(np.asarray(DET_TICKS))
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    lim = norm.ppf(np.asarray(DET_LIMITS))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="0.8", linewidth=0.8, zorder=0)  # EER line
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def format_interval(ci: Sequence[float | None]) -> str:
    """"low–high" with ``fmt``'s precision ("low to high" when low is negative, so its minus sign reads
    clearly); "–" when the interval is missing or NaN."""
    low, high = ci
    if low is None or high is None or np.isnan(low):
        return "–"
    return f"{fmt(low)} to {fmt(high)}" if low < 0 else f"{fmt(low)}–{fmt(high)}"


def voice_groups(scores: pd.DataFrame) -> np.ndarray | None:
    """Each row's voice, the bootstrap's cluster (`models.bootstrap`); None when the scores name no voice, so
    rows are resampled one by one."""
    return scores["voice"].astype(str).to_numpy() if "voice" in scores.columns else None
