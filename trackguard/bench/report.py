"""Shared output for benchmarks: an aligned text table and the same figures as JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every column any row has, first-seen order
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v != v:  # NaN: not defined (e.g. precision of an empty queue)
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


def machine() -> dict[str, Any]:
    import os

    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available()
            else None}


def emit(title: str, rows: list[dict[str, Any]], json_path: str | None, extra: dict[str, Any] | None = None) -> None:
    print(f"\n{title}\n")
    print(format_table(rows))
    if extra:
        for k, v in extra.items():
            print(f"{k}: {v}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"benchmark": title, "machine": machine(), "rows": rows,
                                               **(extra or {})}, indent=2, default=str))
        print(f"\nwrote {json_path}")
