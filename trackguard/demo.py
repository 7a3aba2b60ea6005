"""`make demo`: everything from an empty TRACKGUARD_HOME to a filled moderation queue.

Each step is skipped when its output already exists, so a second run only
re-runs the sweep (idempotently: same verdicts, no duplicate cases).
"""

from __future__ import annotations

import time
from pathlib import Path

from trackguard.home import Home


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(t0: float, what: str) -> None:
    print(f"   {what} ({time.perf_counter() - t0:.1f} s)", flush=True)


def ensure_corpus(home: Home, size: str, seed: int) -> Path:
    from trackguard.corpus import make_corpus

    corpus = home.corpora / f"demo-{size}-seed{seed}"
    t0 = _step(f"corpus {corpus}")
    if (corpus / "corpus.json").exists():
        _done(t0, "present, reused")
    else:
        summary = make_corpus(corpus, seed=seed, size=size)
        _done(t0, f"generated {summary.get('counts', summary)}")
    return corpus


def ensure_models(home: Home, corpus: Path) -> None:
    from models.train_detector import train_detector
    from models.train_spam import train_spam
    from models.weights import setup_models

    t0 = _step("pretrained speaker model (ECAPA-TDNN, offline files)")
    setup_models(["ecapa-voxceleb"])
    _done(t0, "verified")
    for name, train in (("detector", train_detector), ("spam", train_spam)):
        t0 = _step(f"{name} model")
        out = home.models / name
        if (out / "artifact.json").exists():
            _done(t0, f"present at {out}, reused (delete it to retrain)")
            continue
        card = train(corpus, out)
        _done(t0, f"trained {card.model_id}; metrics {card.metrics}")


def run_demo(size: str = "medium", seed: int = 7) -> int:
    from models.voiceprints import VoiceprintStore
    from pipelines import sweep
    from trackguard.enrol import enroll_corpus
    from trackguard.summary import format_summary, summarise

    home = Home.from_env().ensure()
    corpus = ensure_corpus(home, size, seed)
    ensure_models(home, corpus)
    t0 = _step("enrol opted-in artists (consented voiceprints)")
    if VoiceprintStore(home.db_url).policies():
        _done(t0, "registry already filled, reused")
    else:
        ids = enroll_corpus(corpus, home.db_url, consent_by="demo-rightsholder")
        _done(t0, f"enrolled {len(ids)}")
    t0 = _step("batch catalogue sweep (Beam DirectRunner, 2 workers)")
    out = home.root / "runs" / f"demo-{size}"
    result = sweep.run(["--catalog", str(corpus / "manifest.parquet"), "--out", str(out), "--workers", "2"])
    _done(t0, "done")
    print()
    print(format_summary(summarise(result.verdicts_path, result.seconds, result.metrics)))
    print(f"\nverdicts:  {result.verdicts_path}\ncases:     {home.db_url}\nlabels:    {corpus / 'labels.parquet'}")
    return 0
