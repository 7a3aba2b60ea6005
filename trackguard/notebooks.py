"""Write and execute the evaluation notebooks (``python -m trackguard.notebooks detector|spam|voices REPORT_DIR``).

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
             "ci = metrics.get('intervals')  # reports written before the intervals have none\n"
             "if ci:\n"
             "    print(f\"95 % intervals ({ci['method']}, {ci['n_clusters']} {ci['resampled']}s resampled): \"\n"
             "          f\"EER {ci['eer_ci95'][0]:.4f}-{ci['eer_ci95'][1]:.4f}, \"\n"
             "          f\"minDCF {ci['min_dcf_ci95'][0]:.4f}-{ci['min_dcf_ci95'][1]:.4f}\")\n"
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
    ("markdown", "Per singing voice at the stored threshold: the threshold was set on the dev voices' bona fide "
                 "uploads, so a voice far above that flag rate is one it does not transfer to."),
    ("code", "voices = pd.DataFrame(metrics.get('per_voice') or {}).T\n"
             "voices.sort_values('bona_fide_flag_rate', ascending=False) if len(voices) else 'no voice column'"),
    ("markdown", "Where the errors come from: each clone against its own bona fide twin (a clone below its twin "
                 "is one whose artefacts the detector does not hear), and the scatter of clone-minus-twin logits "
                 "against the twin's own logit (a wide spread of twin logits means no one threshold fits); then the "
                 "voices' spread; then the per-genre, per-vocal-style and per-mix means, each with its "
                 "within-voice shift (the group's bona fide songs against the same voices' other songs)."),
    ("code", "twins = metrics.get('twin_comparison')\n"
             "if twins is None or 'twin_upload_id' not in scores:\n"
             "    print('no twins in these scores')\n"
             "else:\n"
             "    display(pd.DataFrame(twins).T)\n"
             "    logit = scores.set_index('upload_id')['logit']\n"
             "    clones = scores[scores['is_synthetic'] & scores['twin_upload_id'].isin(logit.index)]\n"
             "    twin = clones['twin_upload_id'].map(logit)\n"
             "    fig, ax = plt.subplots(figsize=(6, 3))\n"
             "    for fam, idx in clones.groupby('generator_family').groups.items():\n"
             "        ax.scatter(twin[idx], clones.loc[idx, 'logit'] - twin[idx], s=12, label=fam)\n"
             "    ax.axhline(0, color='grey', lw=0.8)\n"
             "    ax.set_xlabel('bona fide twin logit'); ax.set_ylabel('clone - twin logit'); ax.legend(fontsize=7)\n"
             "    plt.show()\n"
             "print(metrics.get('voice_spread'))\n"
             "for key in ('per_genre', 'per_vocal_style', 'per_mix'):\n"
             "    if metrics.get(key):\n"
             "        display(pd.DataFrame(metrics[key]).T)"),
    ("markdown", "Per-artist normalisation (`--artist-references`): each voice's pooled logits lowered by the offset "
                 "its own reference recordings give; raw vs normalised at the stored threshold."),
    ("code", "norm = metrics.get('artist_norm')\n"
             "if norm is None:\n"
             "    print('not measured for this report (eval without --artist-references)')\n"
             "else:\n"
             "    print(f\"slope {norm['slope']:.3f}, anchor {norm['anchor_logit']:.3f}\")\n"
             "    display(pd.DataFrame({k: norm[k] for k in ('raw', 'normalised')}).T)\n"
             "    fig, ax = plt.subplots(figsize=(6, 3))\n"
             "    for synthetic, part in scores.groupby('is_synthetic'):\n"
             "        name = 'synthetic' if synthetic else 'bona fide'\n"
             "        ax.hist(part['normalised_logit'], bins=30, alpha=0.6, label=name)\n"
             "    ax.set_xlabel('normalised pooled logit'); ax.legend(); plt.show()"),
]

SPAM_CELLS: list[tuple[str, str]] = [
    ("markdown", "# Spam model evaluation\n\n"
                 "Redraws `trackguard eval spam`'s report from its `scores.parquet` (one row per evaluated upload: "
                 "label, calibrated score, stored-threshold flag, rules-baseline flag, reasons and one "
                 "`contrib_<feature>` SHAP column per model feature) and `metrics.json`. The report directory comes "
                 "from `TRACKGUARD_REPORT_DIR`. Every figure here is measured on the **synthetic** corpus named "
                 "below; with n uploads in a group one upload moves its rate by 1/n."),
    ("code", "import json, os\nfrom pathlib import Path\nimport numpy as np\nimport pandas as pd\n"
             "report = Path(os.environ['TRACKGUARD_REPORT_DIR'])\n"
             "scores = pd.read_parquet(report / 'scores.parquet')\n"
             "metrics = json.loads((report / 'metrics.json').read_text())\n"
             "print(metrics['data']); print(metrics['split_note'])\n"
             "print(f\"model {metrics['model_id']}, stored threshold {metrics['threshold']:.4f}\")\n"
             "scores.groupby(['is_spam', 'spam_type'], dropna=False).size().rename('n')"),
    ("code", "import matplotlib.pyplot as plt\n"
             "from models.train_spam import average_precision, pr_points\n"
             "y, s = scores['is_spam'].to_numpy(bool), scores['score'].to_numpy(float)\n"
             "_, precision, recall = pr_points(y, s)\n"
             "fig, ax = plt.subplots(figsize=(5.5, 4.5))\n"
             "ax.plot(np.r_[0, recall], np.r_[precision[0], precision], drawstyle='steps-pre', color='black',\n"
             "        label=f'model: PR-AUC {average_precision(y, s):.4f}')\n"
             "m, r = metrics['model'], metrics['rules_baseline']\n"
             "ax.plot(m['recall'], m['precision'], 'o', color='tab:red', label=f\"stored threshold "
             "(n flagged {m['n_flagged']})\")\n"
             "ax.plot(r['recall'], r['precision'], 's', color='tab:blue', label=f\"rules (n flagged "
             "{r['n_flagged']})\")\n"
             "ax.axhline(y.mean(), color='0.6', ls='--', label='base rate')\n"
             "ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.02), ylim=(0, 1.02)); ax.legend(fontsize=8)\n"
             "plt.show()"),
    ("code", "counts = {'n': int, 'n_flagged': int}\n"
             "types = pd.DataFrame(metrics['model']['recall_by_spam_type']).T.astype(counts)\n"
             "rules = pd.DataFrame(metrics['rules_baseline']['recall_by_spam_type']).T.astype(counts)\n"
             "types.join(rules.add_prefix('rules_'))[['n', 'recall', 'n_flagged', 'rules_recall', "
             "'rules_n_flagged']]"),
    ("code", "kinds = pd.DataFrame(metrics['model']['flag_rate_by_kind']).T.astype(counts)\n"
             "rules_k = pd.DataFrame(metrics['rules_baseline']['flag_rate_by_kind']).T.astype(counts)\n"
             "kinds.join(rules_k.add_prefix('rules_'))[['n', 'flag_rate', 'n_flagged', 'rules_flag_rate', "
             "'rules_n_flagged']]"),
    ("code", "contrib = scores.filter(like='contrib_').rename(columns=lambda c: c.removeprefix('contrib_'))\n"
             "mean_abs = contrib.abs().mean().sort_values(ascending=False).head(15)\n"
             "gain = pd.DataFrame(metrics['importance']['gain']).set_index('feature')['gain_share']\n"
             "fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))\n"
             "mean_abs[::-1].plot.barh(ax=left, color='0.45', title=f'mean |SHAP| on {len(scores)} uploads')\n"
             "gain[::-1].plot.barh(ax=right, color='0.45', title='share of training gain')\n"
             "fig.tight_layout(); plt.show()"),
    ("code", "pd.set_option('display.max_colwidth', 200)\n"
             "flagged = scores[scores['flagged']].sort_values('score', ascending=False)\n"
             "print(f\"{len(flagged)} flagged, {int((flagged['is_spam']).sum())} of them spam\")\n"
             "flagged.head(10)[['upload_id', 'is_spam', 'spam_type', 'kind', 'score', 'reasons']]"),
    ("code", "pd.DataFrame(metrics['examples'])"),
    ("code", "from IPython.display import Image, display\n"
             "for name in ('pr.png', 'importance.png'):\n"
             "    display(Image(filename=str(report / name)))"),
]

VOICES_CELLS: list[tuple[str, str]] = [
    ("markdown", "# Singer verification evaluation\n\n"
                 "Redraws `trackguard eval voices`'s report from its `scores.parquet` (one row per trial: an upload "
                 "against one enrolled artist, `is_target` when the upload's voice is that artist's, clones "
                 "included; scores `raw` = cosine of the verifier's track embedding, `asnorm` when the registry "
                 "has a cohort, and `raw_*` track-embedding variants) and `metrics.json`. The report directory "
                 "comes from `TRACKGUARD_REPORT_DIR`. Every figure here is measured on the **synthetic** corpus "
                 "named below, whose enrolment references and trials come from the same synthetic TTS voices; "
                 "with n trials in a group one trial moves its rate by 1/n."),
    ("code", "import json, os\nfrom pathlib import Path\nimport numpy as np\nimport pandas as pd\n"
             "report = Path(os.environ['TRACKGUARD_REPORT_DIR'])\n"
             "scores = pd.read_parquet(report / 'scores.parquet')\n"
             "metrics = json.loads((report / 'metrics.json').read_text())\n"
             "print(metrics['data'])\nfor line in metrics['limitations']:\n    print('-', line)\n"
             "op = metrics['operating_point']\n"
             "print(f\"threshold {op['threshold']:.4f} on {op['score']} "
             "({'calibrated' if op['calibrated'] else 'UNCALIBRATED'}): {op['source']}\")\n"
             "scores.groupby(['condition', 'is_target']).size().unstack(fill_value=0)"),
    ("code", "from models.spoof_metrics import equal_error_rate\n"
             "def eer(part, col):\n"
             "    y = part['is_target'].to_numpy(bool)\n"
             "    return equal_error_rate(y, part[col]) if 0 < y.sum() < len(y) else np.nan\n"
             "cols = metrics['score_columns']\n"
             "rows = {'all': scores, 'a cappella': scores[scores['a_cappella']], "
             "'mixed (all levels)': scores[~scores['a_cappella']]}\n"
             "order = [g for g in metrics['by_condition']['raw'] if g not in rows]  # level bins, quietest mix first\n"
             "rows.update({g: scores[scores['condition'] == g] for g in order})\n"
             "counts = {'n uploads': int, 'n target': int, 'n impostor': int}\n"
             "pd.DataFrame({g: {'n uploads': p['upload_id'].nunique(), 'n target': int(p['is_target'].sum()),\n"
             "                  'n impostor': int((~p['is_target']).sum()), **{f'EER {c}': eer(p, c) for c in cols}}\n"
             "              for g, p in rows.items()}).T.astype(counts)"),
    ("code", "levels = pd.DataFrame(metrics['by_level_db'][metrics['primary_score']]).T\n"
             "levels[['n_uploads', 'n_target', 'n_impostor', 'eer', 'mean_target_score', 'mean_impostor_score']]"
             ".astype({'n_uploads': int, 'n_target': int, 'n_impostor': int})"),
    ("code", "r = metrics['operating_point']\n"
             "table = {'all': {k: r[k] for k in ('far', 'far_ci95', 'n_false_accept', 'n_impostor', 'frr', "
             "'frr_ci95', 'n_false_reject', 'n_target')}}\n"
             "table.update({g: {k: v[k] for k in table['all']} for g, v in r['by_condition'].items()})\n"
             "pd.DataFrame(table).T.astype({k: int for k in table['all'] if k.startswith('n_')})"),
    ("code", "pd.DataFrame({v['description']: {g: v['by_condition'][g]['eer'] for g in "
             "('all', 'a cappella', 'mixed ≥ 6 dB', 'mixed 0–6 dB')}\n"
             "              for v in metrics['variants'].values()}).T"),
    ("code", "import matplotlib.pyplot as plt\nfrom scipy.stats import norm\n"
             "from models.spoof_metrics import det_curve\n"
             "clip = lambda r: norm.ppf(np.clip(r, 1e-3, 1 - 1e-3))\n"
             "fig, ax = plt.subplots(figsize=(5.5, 5))\n"
             "primary = metrics['primary_score']\n"
             "for name, part in [('all', scores), *scores.groupby('condition')]:\n"
             "    y = part['is_target'].to_numpy(bool)\n"
             "    if 0 < y.sum() < len(y):\n"
             "        c = det_curve(y, part[primary])\n"
             "        ax.plot(clip(c.bona_fide_flag_rate), clip(c.synthetic_pass_rate), "
             "label=f'{name}: EER {eer(part, primary):.3f}')\n"
             "ticks = [0.001, 0.01, 0.05, 0.2, 0.5]\n"
             "ax.set_xticks(norm.ppf(ticks), [f'{100 * t:g}' for t in ticks])\n"
             "ax.set_yticks(norm.ppf(ticks), [f'{100 * t:g}' for t in ticks])\n"
             "ax.set(xlabel='false-accept rate (%)', ylabel='false-reject rate (%)'); ax.legend(fontsize=8)\n"
             "plt.show()"),
    ("code", "groups = [g for g in ('a cappella', 'mixed ≥ 6 dB', 'mixed 0–6 dB', 'mixed < 0 dB') "
             "if (scores['condition'] == g).any()]\n"
             "fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3), squeeze=False)\n"
             "for ax, g in zip(axes[0], groups):\n"
             "    part = scores[scores['condition'] == g]\n"
             "    for target, sub in part.groupby('is_target'):\n"
             "        ax.hist(sub[primary], bins=30, alpha=0.6, density=True, "
             "label=('target' if target else 'impostor') + f' (n {len(sub)})')\n"
             "    ax.set_title(g); ax.legend(fontsize=7)\n"
             "fig.tight_layout(); plt.show()"),
    ("code", "artists = pd.DataFrame(metrics['by_artist']).T\n"
             "artists.astype({k: int for k in artists.columns if k.startswith('n_')})"),
    ("code", "from IPython.display import Image, display\n"
             "for name in ('det.png', 'scores.png'):\n"
             "    display(Image(filename=str(report / name)))"),
]

NOTEBOOKS = {"detector": ("detector_evaluation.ipynb", DETECTOR_CELLS), "spam": ("spam_evaluation.ipynb", SPAM_CELLS),
             "voices": ("voices_evaluation.ipynb", VOICES_CELLS)}


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
