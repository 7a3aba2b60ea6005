"""Write and execute the evaluation notebooks (``python -m trackguard.notebooks detector REPORT_DIR``).

A notebook reads a report directory written by ``trackguard eval ...`` (its
``scores.parquet`` and ``metrics.json``) and redraws the report's plots inline, so an
ML engineer can explore further from the same data. It is rebuilt from the cells
below and executed in place with nbclient, so the committed notebook always holds
outputs of the code it shows.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

DETECTOR_CELLS: list[tuple[str, str]] = [
    ("markdown", "# Synthetic-voice detector evaluation\n\n"
                 "Redraws `trackguard eval detector`'s report from its `scores.parquet` (one row per scored "
                 "track). The report directory comes from `TRACKGUARD_REPORT_DIR`. Every figure here is "
                 "measured on the **synthetic** corpus named below."),
    ("code", "import json, os\nfrom pathlib import Path\nimport pandas as pd\n"
             "report = Path(os.environ['TRACKGUARD_REPORT_DIR'])\n"
             "scores = pd.read_parquet(report / 'scores.parquet')\n"
             "metrics = json.loads((report / 'metrics.json').read_text())\n"
             "print(metrics['data'])\n"
             "scores.groupby(['is_synthetic', 'generator_family'], dropna=False).size()"),
    ("code", "from models.spoof_metrics import equal_error_rate, min_dcf\n"
             "y = scores['is_synthetic'].to_numpy(bool)\n"
             "print(f\"EER {equal_error_rate(y, scores['logit']):.4f}  minDCF {min_dcf(y, scores['logit']):.4f}\")\n"
             "pd.DataFrame(metrics['per_family_eer']).T"),
    ("code", "from IPython.display import Image, display\n"
             "for name in ('det.png', 'calibration.png', 'context.png'):\n"
             "    if (report / name).exists():\n"
             "        display(Image(filename=str(report / name)))"),
    ("code", "import matplotlib.pyplot as plt\n"
             "fig, ax = plt.subplots(figsize=(6, 3))\n"
             "for synthetic, part in scores.groupby('is_synthetic'):\n"
             "    ax.hist(part['logit'], bins=30, alpha=0.6, label='synthetic' if synthetic else 'bona fide')\n"
             "ax.set_xlabel('pooled logit'); ax.legend(); plt.show()"),
]

NOTEBOOKS = {"detector": ("detector_evaluation.ipynb", DETECTOR_CELLS)}


def build(cells: Sequence[tuple[str, str]]) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(name: str, report_dir: Path, out: Path | None = None, timeout_s: int = 600) -> Path:
    """Rebuild notebook ``name`` and execute it against ``report_dir``; returns the written path."""
    import nbformat
    from nbclient import NotebookClient

    filename, cells = NOTEBOOKS[name]
    path = out or NOTEBOOK_DIR / filename
    nb = build(cells)
    os.environ["TRACKGUARD_REPORT_DIR"] = str(Path(report_dir).resolve())
    repo = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = repo + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": repo}}).execute()
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trackguard.notebooks", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(NOTEBOOKS))
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    print(execute(a.name, a.report_dir, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
