"""`make demo`: everything from an empty TRACKGUARD_HOME to a filled moderation queue.

Each step is skipped when its output already exists, so a second run only
re-runs the sweep (idempotently: same verdicts, no duplicate cases).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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


# Checkpoints shipped in the repo (small, each names the command that made it); the demo
# installs them instead of training on the demo corpus, which makes the demo's routing a
# held-out check of that model.
SHIPPED_CHECKPOINTS = {"detector": Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "detector-lcnn"}


def install_checkpoint(src: Path, dest: Path) -> Any:
    """Copy a shipped artifact into TRACKGUARD_HOME (verifying its file hashes on load)."""
    import shutil

    from models.artifact import load_card

    card = load_card(src)  # verifies the sha256 of every file it lists
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return card


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
        shipped = SHIPPED_CHECKPOINTS.get(name)
        if shipped is not None and (shipped / "artifact.json").exists():
            card = install_checkpoint(shipped, out)
            _done(t0, f"installed the shipped checkpoint {card.model_id} (trained on another synthetic corpus by "
                      f"`{card.command}`; test EER {float(card.metrics.get('test_eer') or 'nan'):.3f} there)")
            continue
        card = train(corpus, out)
        _done(t0, f"trained {card.model_id}; {_headline(card.metrics)} (held-out split of the synthetic corpus)")


def _headline(metrics: dict[str, object]) -> str:
    """The few figures worth a line; the full metrics are in the artifact's card."""
    keys = ("dev_eer", "test_eer", "test_min_dcf")
    if all(k in metrics for k in keys):
        return ", ".join(f"{k}={float(metrics[k]):.3f}" for k in keys)  # type: ignore[arg-type]
    test = metrics.get("test")
    if isinstance(test, dict):
        return ", ".join(f"test_{k}={test[k]:.3f}" for k in ("pr_auc", "precision", "recall") if k in test)
    return "see artifact.json for metrics"


def run_demo(size: str = "medium", seed: int = 7) -> int:
    from trackguard.quiet import native_stderr_to

    home = Home.from_env().ensure()
    log = home.root / "logs" / "demo-stderr.log"
    print(f"(decoder and library notes go to {log})")
    with native_stderr_to(log):
        return _run_demo(home, size, seed)


def _run_demo(home: Home, size: str, seed: int) -> int:
    from models.voiceprints import VoiceprintStore
    from pipelines import sweep
    from trackguard.enrol import enroll_corpus
    from trackguard.summary import format_summary, summarise

    corpus = ensure_corpus(home, size, seed)
    ensure_models(home, corpus)
    t0 = _step("enrol opted-in artists (consented voiceprints)")
    if VoiceprintStore(home.db_url).policies():
        _done(t0, "registry already filled, reused")
    else:
        ids = enroll_corpus(corpus, home.db_url, consent_by="demo-rightsholder")
        _done(t0, f"enrolled {len(ids)}")
    _ensure_voice_calibration(home, corpus)
    _ensure_detector_levels(home)
    t0 = _step("batch catalogue sweep (Beam DirectRunner, one in-memory worker)")
    out = home.root / "runs" / f"demo-{size}"
    result = sweep.run(["--catalog", str(corpus / "manifest.parquet"), "--out", str(out)])
    _done(t0, "done")
    print()
    print(format_summary(summarise(result.verdicts_path, result.seconds, result.metrics)))
    print(f"\nverdicts:  {result.verdicts_path}\ncases:     {home.db_url}\nlabels:    {corpus / 'labels.parquet'}")
    _print_routing(result.verdicts_path, corpus)
    _print_review_app(home)
    return 0


def _ensure_detector_levels(home: Home) -> None:
    """Each enrolled artist's reference level on the installed detector (per-artist normalisation)."""
    from models.artifact import load_card
    from models.artist_norm import ArtistNorm
    from models.voiceprints import VoiceprintStore
    from trackguard.artist_levels import store_detector_levels

    t0 = _step("enrolled artists' reference levels on the detector (per-artist normalisation)")
    card = load_card(home.models / "detector", verify=False)
    if ArtistNorm.from_calibration(card.calibration) is None:
        _done(t0, "skipped: the detector has no per-artist normalisation (`trackguard train artist-norm`)")
        return
    if VoiceprintStore(home.db_url).detector_levels(card.model_id):
        _done(t0, "already measured for this detector, reused")
        return
    levels = store_detector_levels(home.db_url, home.models / "detector", actor="demo")
    lowered = [lv.artist_id for lv in levels if lv.offset > 0]
    _done(t0, f"{len(levels)} artists measured; scores lowered for {', '.join(lowered) or 'none'}")


def _print_review_app(home: Home) -> None:
    """The sweep filled the queues; make the demo sign-ins and say how to open the app."""
    from moderation.review import ReviewService
    from trackguard.demo_users import ensure_demo_users, sign_in_help

    service = ReviewService(home.db_url)
    passwords = ensure_demo_users(home, service)
    queues = ", ".join(f"{q.queue} {q.open}" for q in service.queue_stats() if q.open)
    print(f"\nmoderation queues (open cases): {queues}")
    print(sign_in_help(home, passwords))


def _ensure_voice_calibration(home: Home, corpus: Path) -> None:
    """AS-norm cohort and a 1 % FAR threshold, measured on the demo corpus's own voices.

    In-sample (the sweep then runs on the same corpus), which the step says: a
    deployment calibrates on trials it does not evaluate on.
    """
    from models.speaker import speaker_model_id
    from models.verifier import MEAN, scorer_id
    from models.voiceprints import VoiceprintStore
    from trackguard.enrol import calibrate_corpus

    t0 = _step("voice-match calibration (AS-norm cohort, threshold for 1 % false accepts)")
    existing = VoiceprintStore(home.db_url).calibration()
    # Reused only if measured for this encoder and the shipped policy's pooling (a threshold for another does not hold).
    if existing is not None and existing.model_id == scorer_id(speaker_model_id(), MEAN):
        _done(t0, f"reused: {existing.normalisation} threshold {existing.threshold:.3f}")
        return
    result = calibrate_corpus(corpus, home.db_url, target_far=0.01, cohort_from_corpus=True)
    cal = result.calibration
    _done(t0, f"{cal.normalisation} threshold {cal.threshold:.3f}: FAR {cal.measured_far:.4f} on "
              f"{cal.n_impostor_trials} impostor trials of this corpus (in-sample)")


def _print_routing(verdicts: Path | str, corpus: Path) -> None:
    from trackguard.bench.report import format_table
    from trackguard.evaluate import expected_vs_routed, routing_table

    table, _ = routing_table(expected_vs_routed(verdicts, corpus))
    print("\nrouting against the corpus labels (synthetic data; the shipped detector never saw this corpus's songs,")
    print("though some of its voices; the spam model was trained on part of it, so spam rows are a smoke check —")
    print("see `trackguard eval sweep`):\n")
    print(format_table(table.to_dict(orient="records")))
