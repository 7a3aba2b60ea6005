"""`trackguard` command line. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackguard.home import Home

Handler = Callable[[argparse.Namespace], int]


def _corpus_make(a: argparse.Namespace) -> int:
    from trackguard.corpus import make_corpus

    summary = make_corpus(Path(a.out), seed=a.seed, size=a.size, stems=a.stems)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _setup_models(a: argparse.Namespace) -> int:
    from models.weights import setup_models

    for name, path in setup_models(a.only or None).items():
        print(f"{name}: {path}")
    return 0


def _train_detector(a: argparse.Namespace) -> int:
    from models.train_detector import train_detector

    out = Path(a.out or Home.from_env().models / "detector")
    chosen = (("frontend", a.frontend), ("feature_norm", a.feature_norm), ("spoof_head", a.spoof_head),
              ("channels", a.channels))
    net_kwargs = {k: v for k, v in chosen if v}
    card = train_detector(Path(a.corpus), out, epochs=a.epochs, seed=a.seed, holdout_family=a.holdout_family,
                          arch=a.arch, init=a.init, augment=not a.no_augment, device=a.device or _device(),
                          net_kwargs=net_kwargs or None, extra_corpora=[Path(d) for d in a.extra_corpus],
                          train_params=_detector_train_params(a))
    if (Path(a.corpus) / "artists.parquet").exists():  # the corpus has reference recordings to fit it on
        from models.fit_artist_norm import fit_artist_norm

        try:
            card.metrics["artist_norm"] = fit_artist_norm(out, Path(a.corpus))
        except ValueError as exc:  # a detector without it still works; say why it is missing
            print(f"per-artist normalisation not fitted: {exc}", file=sys.stderr)
    from trackguard.copy_margin import fit_copy_margin

    try:  # the copy rule's margin, measured on this detector's dev split (else the rule stays off)
        card.metrics["copy_margin"] = fit_copy_margin(out, Path(a.corpus))
    except ValueError as exc:
        print(f"copy margin not measured: {exc}", file=sys.stderr)
    print(json.dumps({"artifact": str(out), "model_id": card.model_id, "metrics": card.metrics}, indent=2))
    return 0


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _channels(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of channel counts") from None
    if len(channels) < 2 or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least two positive channel counts, e.g. 16,32,48,64")
    return channels


def _detector_train_params(a: argparse.Namespace) -> dict[str, Any] | None:
    """Training options given on the command line (the rest keep `TRAIN_DEFAULTS`)."""
    given: dict[str, Any] = {"voice_adversary_weight": a.voice_adversary or None, "pair_frac": a.pair_frac}
    if a.on_stems:
        given["on_stems"] = True
    if a.nest_in:
        given["nest_in"] = a.nest_in
    if a.separator:
        from models.separator import SEPARATOR_DEFAULTS, SEPARATOR_EPOCHS

        given["separator"] = {**SEPARATOR_DEFAULTS, "epochs": a.separator_epochs or SEPARATOR_EPOCHS}
    return {k: v for k, v in given.items() if v is not None} or None


def _train_artist_norm(a: argparse.Namespace) -> int:
    from models.fit_artist_norm import fit_artist_norm

    artifact = Path(a.artifact or Home.from_env().models / "detector")
    fitted = fit_artist_norm(artifact, Path(a.corpus))
    print(json.dumps({"artifact": str(artifact), **fitted}, indent=2))
    return 0


def _train_copy_margin(a: argparse.Namespace) -> int:
    from trackguard.copy_margin import fit_copy_margin

    artifact = Path(a.artifact or Home.from_env().models / "detector")
    fitted = fit_copy_margin(artifact, Path(a.corpus), split=a.split, max_flag_rate=a.max_flag_rate)
    print(json.dumps({"artifact": str(artifact), **fitted}, indent=2))
    return 0


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _train_spam(a: argparse.Namespace) -> int:
    from models.train_spam import train_spam

    out = Path(a.out or Home.from_env().models / "spam")
    card = train_spam(Path(a.corpus), out, seed=a.seed, target_precision=a.target_precision,
                      eval_corpora=[Path(c) for c in a.eval_corpus])
    print(json.dumps({"artifact": str(out), "model_id": card.model_id, "metrics": card.metrics}, indent=2))
    return 0


def _artists_enroll(a: argparse.Namespace) -> int:
    from models.speaker import load_speaker_encoder, speaker_model_id
    from models.voiceprints import VoiceprintStore
    from moderation.audit import record_registry_change
    from trackguard.enrol import enroll_artist

    url = a.db_url or Home.from_env().db_url
    store = VoiceprintStore(url)
    backing = _backing_or_default(a.backing_db)
    n = enroll_artist(store, load_speaker_encoder(a.model_dir), a.artist_id, a.name, a.policy, a.consent_by,
                      a.audio, profile_id=a.profile_id, licensed_partner_ids=a.licensed_partner,
                      model_id=speaker_model_id(a.model_dir), backing_db=backing)
    record_registry_change(url, a.consent_by, "enroll", a.artist_id,
                           {"policy": a.policy, "n_sources": n, "licensed_partner_ids": list(a.licensed_partner),
                            "backing_db": list(backing)})
    print(f"enrolled {a.artist_id} from {n} reference recordings (policy {a.policy}, consent by {a.consent_by})")
    return 0


def _artists_enroll_corpus(a: argparse.Namespace) -> int:
    from trackguard.enrol import enroll_corpus

    ids = enroll_corpus(Path(a.corpus), a.db_url or Home.from_env().db_url, a.consent_by, a.model_dir,
                        _backing_or_default(a.backing_db))
    print(f"enrolled {len(ids)} opted-in corpus artists: {', '.join(ids)}")
    return 0


def _artists_list(a: argparse.Namespace) -> int:
    from models.voiceprints import VoiceprintStore

    for p in VoiceprintStore(a.db_url or Home.from_env().db_url).policies().values():
        print(f"{p.artist_id}\t{p.name}\t{p.policy}\tprofile={p.profile_id}\tpartners={','.join(p.licensed_partner_ids)}")
    return 0


def _artists_optout(a: argparse.Namespace) -> int:
    from trackguard.enrol import optout_artist

    erased = optout_artist(a.db_url or Home.from_env().db_url, a.artist_id, a.actor)
    print(f"erased voiceprint data of {a.artist_id}: {erased}")
    return 0


def _artists_show(a: argparse.Namespace) -> int:
    from models.voiceprints import VoiceprintStore

    info = VoiceprintStore(a.db_url or Home.from_env().db_url).artist(a.artist_id)
    for key in ("artist_id", "name", "profile_id", "policy", "licensed_partner_ids", "consent_by", "consent_scope",
                "consent_at", "model_id", "n_embeddings", "sources", "detector_levels"):
        value = info[key]
        print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def _artists_detector_levels(a: argparse.Namespace) -> int:
    from trackguard.artist_levels import store_detector_levels

    artifact = Path(a.artifact or Home.from_env().models / "detector")
    levels = store_detector_levels(a.db_url or Home.from_env().db_url, artifact, a.actor)
    print("artist_id\tlevel_logit\tn_references\toffset_logit")
    for lv in levels:
        level = "no reference decoded" if lv.level is None else f"{lv.level:.3f}"
        print(f"{lv.artist_id}\t{level}\t{lv.n_references}\t{lv.offset:.3f}")
    return 0


def _artists_policy(a: argparse.Namespace) -> int:
    from models.voiceprints import VoiceprintStore
    from moderation.audit import record_registry_change

    url = a.db_url or Home.from_env().db_url
    p = VoiceprintStore(url).set_policy(a.artist_id, a.policy, a.actor, a.licensed_partner or None)
    record_registry_change(url, a.actor, "policy", a.artist_id,
                           {"policy": p.policy, "licensed_partner_ids": list(p.licensed_partner_ids)})
    print(f"{p.artist_id}: policy {p.policy}, licensed partners {', '.join(p.licensed_partner_ids) or '-'} "
          f"(changed by {a.actor})")
    return 0


def _artists_ledger(a: argparse.Namespace) -> int:
    from moderation.ledger import AttributionLedger

    ledger = AttributionLedger(a.db_url or Home.from_env().db_url)
    if a.out:
        n = ledger.export_csv(a.out, a.artist_id)
        print(f"wrote {n} attribution entries to {a.out}")
        return 0
    entries = ledger.entries(a.artist_id)
    if not entries:
        print("no attribution entries" + (f" for {a.artist_id}" if a.artist_id else ""))
    for e in entries:
        sim = "erased" if e["similarity"] is None else f"{e['similarity']:.3f}"
        print(f"{e['artist_id']}\t{e['upload_id']}\tuploader={e['uploader_id'] or '-'}\tsimilarity={sim}\t"
              f"{e['recorded_at']}")
    return 0


def _artists_calibrate(a: argparse.Namespace) -> int:
    from trackguard.enrol import calibrate_corpus

    r = calibrate_corpus(Path(a.corpus), a.db_url or Home.from_env().db_url, a.target_far, a.cohort_from_corpus,
                         a.model_dir, top_k=a.top_k, pooling=a.pooling)
    cal = r.calibration
    print(f"{cal.data}\n")
    print(f"| scale | impostor trials | threshold | FAR (target {cal.target_far:g}) | target trials | FRR | "
          "FRR by kind |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = [(f"{cal.normalisation} (stored)", r.rates)] + ([("raw cosine (comparison)", r.raw_rates)]
                                                          if r.raw_rates else [])
    for name, x in rows:
        kinds = ", ".join(f"{k} {frr:.2f} (n {n})" for k, (n, frr) in x.frr_by_kind.items())
        print(f"| {name} | {x.n_impostor} | {x.threshold:.3f} | {x.far:.4f} | {x.n_target} | {x.frr:.3f} | {kinds} |")
    print(f"\nstored: {cal.normalisation}, threshold {cal.threshold:.3f}, cohort {cal.cohort_size}, top-k {cal.top_k}, "
          f"model {cal.model_id}")
    return 0


def _sweep(a: argparse.Namespace) -> int:
    from pipelines import sweep
    from trackguard.summary import format_summary, summarise

    argv = ["--catalog", a.catalog, "--out", a.out, "--workers", str(a.workers)]
    argv += (["--policy", a.policy] if a.policy else []) + (["--db-url", a.db_url] if a.db_url else [])
    argv += ["--catalogue", a.catalogue] if a.catalogue else []
    result = sweep.run(argv + a.beam_args)
    print(format_summary(summarise(result.verdicts_path, result.seconds, result.metrics)))
    print(f"verdicts: {result.verdicts_path}")
    return 0


def _demo(a: argparse.Namespace) -> int:
    from trackguard.demo import run_demo

    return run_demo(size=a.size, seed=a.seed)


def _eval_detector(a: argparse.Namespace) -> int:
    from models.eval_detector import Source, evaluate_detector

    artifact = Path(a.artifact or Home.from_env().models / "detector")
    out = Path(a.out or Home.from_env().root / "reports" / "detector")
    sources = [Source.parse(text, a.split) for text in a.corpus]
    metrics = evaluate_detector(artifact, sources, out, artist_references=a.artist_references, on_stems=a.on_stems)
    print(json.dumps(metrics, indent=2, default=str))
    print(f"report: {out / 'report.md'}")
    return 0


def _eval_detector_compare(a: argparse.Namespace) -> int:
    from models.compare_detectors import compare_detectors
    from trackguard.reports.common import fmt, format_interval, json_safe, markdown_table

    r = compare_detectors(Path(a.baseline), Path(a.candidate), baseline_column=a.baseline_column,
                          candidate_column=a.candidate_column, n_resamples=a.resamples)
    rows = []
    for scope, diffs in (("pooled", r["pooled"]), *r["per_family"].items()):
        for metric, d in diffs.items():
            rows.append((scope, "EER" if metric == "eer" else "minDCF", fmt(d["baseline"]), fmt(d["candidate"]),
                         fmt(d["difference"]), format_interval(d["difference_ci95"]), fmt(d["share_candidate_lower"])))
    print(f"baseline:  {r['baseline']}\ncandidate: {r['candidate']}")
    print(f"{r['n_uploads']} uploads scored by both ({r['n_bona_fide']} bona fide, {r['n_synthetic']} synthetic, "
          f"{r['n_voices']} voices); only in baseline {r['uploads_only_in_baseline']}, only in candidate "
          f"{r['uploads_only_in_candidate']}\n{r['method']}\n")
    print(markdown_table(("scope", "metric", "baseline", "candidate", "candidate − baseline", "95 % interval",
                          "share of resamples candidate lower"), rows))
    if a.json:
        Path(a.json).write_text(json.dumps(json_safe(r), indent=2, allow_nan=False) + "\n")
    return 0


def _eval_spam(a: argparse.Namespace) -> int:
    from models.eval_spam import evaluate_spam
    from trackguard.reports.common import fmt

    home = Home.from_env()
    corpus = Path(a.corpus)
    artifact = Path(a.artifact or home.models / "spam")
    out = Path(a.out or home.root / "reports" / f"spam-{corpus.resolve().name}")
    m = evaluate_spam(artifact, corpus, out, split=a.split)
    model, rules = m["model"], m["rules_baseline"]
    print(f"{m['data']}\n{m['split_note']}\n")
    print(f"uploads {m['n']} ({m['n_spam']} spam): PR-AUC {fmt(m['pr_auc'])}, precision at recall 0.9 "
          f"{fmt(m['precision_at_recall_0.9'])}")
    for name, r in (("model at stored threshold " + fmt(m["threshold"]), model), ("rules baseline", rules)):
        print(f"{name}: precision {fmt(r['precision'])}, recall {fmt(r['recall'])} ({r['n_true_positive']} of "
              f"{r['n_spam']} spam; {r['n_flagged']} flagged)")
    for kind, r in model["recall_by_spam_type"].items():
        print(f"  recall {kind}: model {fmt(r['recall'])}, rules {fmt(rules['recall_by_spam_type'][kind]['recall'])}"
              f" (n {r['n']})")
    print(f"report: {out / 'report.md'} (with metrics.json, pr.png, importance.png, scores.parquet)")
    return 0


def _eval_voices(a: argparse.Namespace) -> int:
    from models.eval_voices import evaluate_voices
    from trackguard.reports.common import fmt, format_interval

    home = Home.from_env()
    corpus = Path(a.corpus)
    out = Path(a.out or home.root / "reports" / f"voices-{corpus.resolve().name}")
    command = f"trackguard eval voices --corpus {a.corpus}" + (f" --out {a.out}" if a.out else "") + \
        ("" if a.variants else " --no-variants") + ("" if a.pooling == "mean" else f" --pooling {a.pooling}")
    m = evaluate_voices(corpus, out, a.db_url, variants=a.variants, command=command,
                        progress=lambda msg: print(msg, file=sys.stderr), pooling=a.pooling)
    print(f"{m['data']}\n")
    for column in m["score_columns"]:
        print(f"EER ({column}) by condition:")
        for group, r in m["by_condition"][column].items():
            print(f"  {group:20s} EER {fmt(r['eer'])}  (n uploads {r['n_uploads']}, target {r['n_target']}, "
                  f"impostor {r['n_impostor']})")
    op = m["operating_point"]
    label = "calibrated" if op["calibrated"] else "UNCALIBRATED default"
    far_ci, frr_ci = format_interval(op["far_ci95"]), format_interval(op["frr_ci95"])
    print(f"at threshold {fmt(op['threshold'])} on {op['score']} ({label}): FAR {fmt(op['far'])} "
          f"({op['n_false_accept']}/{op['n_impostor']}; 95 % CI {far_ci}), FRR {fmt(op['frr'])} "
          f"({op['n_false_reject']}/{op['n_target']}; 95 % CI {frr_ci})")
    for column, v in m["variants"].items():
        print(f"  variant {column:11s} EER {fmt(v['by_condition']['all']['eer'])}  ({v['description']})")
    print(f"report: {out / 'report.md'} (with metrics.json, det.png, scores.png, scores.parquet)")
    return 0


def _bench_voices(a: argparse.Namespace) -> int:
    from trackguard.bench.voices import bench_voices

    sizes = [int(float(x)) for x in a.enrolled.split(",") if x.strip()]
    bench_voices(a.tracks, sizes, a.json, Path(a.corpus) if a.corpus else None, a.db_url)
    return 0


def _bench_spam(a: argparse.Namespace) -> int:
    from trackguard.bench.spam import bench_spam

    bench_spam([int(float(x)) for x in a.rows.split(",")], a.artifact, a.json)
    return 0


def _bench_detector(a: argparse.Namespace) -> int:
    from trackguard.bench.detector import bench_detector

    bench_detector(a.tiers.split(","), a.device, a.artifact, a.json,
                   lengths_s=[float(x) for x in a.lengths.split(",")])
    return 0


def _bench_fingerprint(a: argparse.Namespace) -> int:
    from trackguard.bench.fingerprint import bench_fingerprint_robustness, bench_fingerprint_scale

    if a.catalogue:
        bench_fingerprint_scale([int(float(x)) for x in a.catalogue.split(",")], a.json)
    if a.references:
        robustness_json = a.json.replace(".json", "-robustness.json") if a.json and a.catalogue else a.json
        bench_fingerprint_robustness(a.references, robustness_json)
    return 0


def _bench_sweep(a: argparse.Namespace) -> int:
    from trackguard.bench.sweep import bench_sweep

    bench_sweep([int(x) for x in a.tracks.split(",")], json_path=a.json, workers=a.workers)
    return 0


def _eval_sweep(a: argparse.Namespace) -> int:
    from trackguard.bench.report import emit, format_table
    from trackguard.evaluate import expected_vs_routed, reasons_table, routing_table

    joined = expected_vs_routed(Path(a.verdicts), Path(a.corpus))
    table, confusion = routing_table(joined)
    copies = _copy_rises(joined, a.catalogue, a.policy)
    emit(f"routing vs labels: {a.verdicts} on {a.corpus} (synthetic corpus)", table.to_dict(orient="records"),
         a.json)
    print("\nexpected (rows) vs routed (columns):\n" + confusion.to_string())
    print("\nreason codes (rows) by expected queue (columns):\n" + reasons_table(joined).to_string())
    if copies is not None:
        print("\ncopies against the original they copy (pooled detector logits from the catalogue ledger):\n"
              + format_table(copies))
        if a.json:  # the same figures, beside the routing rows
            written = json.loads(Path(a.json).read_text())
            Path(a.json).write_text(json.dumps({**written, "copies_vs_original": copies}, indent=2))
    return 0


def _copy_rises(joined: Any, catalogue: str | None, policy: str | None) -> list[dict[str, Any]] | None:
    """The copies table of `trackguard eval sweep`, when the sweep's catalogue ledger is there."""
    import pandas as pd

    from models.duplicates import LEDGER_FILE
    from pipelines.config import load_config
    from pipelines.duplicates import catalogue_dir
    from trackguard.evaluate import copy_rises

    cfg = load_config(policy)
    ledger = Path(catalogue or catalogue_dir(cfg)) / LEDGER_FILE
    if not ledger.exists():
        print(f"\n(no catalogue ledger at {ledger}: pass the sweep's --catalogue for the copies table)")
        return None
    frame = pd.read_parquet(ledger)
    if "detector_logit" not in frame:
        return None
    from pipelines.decide import thresholds_from
    from pipelines.transforms import stored_thresholds

    return copy_rises(joined, frame, thresholds_from(cfg, stored_thresholds(cfg)).synthetic_over_original)


def _serve(a: argparse.Namespace) -> int:
    from moderation.web.server import serve

    serve(a.host, a.port, a.db_url, insecure_cookies=a.insecure_cookies, verbose=a.verbose,
          hooks="hooks" in a.roles.split(","), object_store=a.object_store, pubsub_project=a.pubsub_project,
          workers=a.workers)
    return 0


def _stream(a: argparse.Namespace) -> int:
    from trackguard.stream_cmd import run

    return run(a.stream_args)


def _relay(a: argparse.Namespace) -> int:
    from trackguard.stream_cmd import relay

    return relay(a.relay_args)


def _bench_hook(a: argparse.Namespace) -> int:
    from trackguard.bench.hook import bench_hook

    rows = bench_hook([float(x) for x in a.rates.split(",")], a.seconds, a.threads, a.db_url, a.json,
                      [int(x) for x in a.workers.split(",")])
    return 0 if rows else 1


def _bench_stream(a: argparse.Namespace) -> int:
    from trackguard.bench.stream import bench_stream

    bench_stream(a.track_s, a.steady, a.rate, a.burst, a.db_url, a.json)
    return 0


def _bench_queue(a: argparse.Namespace) -> int:
    from trackguard.bench.queue import bench_queue

    rows = bench_queue([int(x) for x in a.reviewers.split(",")], a.cases, a.backends.split(","), a.pg_url, a.json)
    return 0 if all(r["double_claims"] == 0 and r["undecided"] == 0 and r["audit_ok"] for r in rows) else 1


def _review(handler: Handler) -> Handler:
    """Review commands: a refusal of the workflow (`moderation.review.ReviewError`) is a message, not a traceback."""
    def run(a: argparse.Namespace) -> int:
        from moderation.review import ReviewError

        try:
            return handler(a)
        except ReviewError as err:
            print(f"trackguard: {err.code}: {err}", file=sys.stderr)
            return 2

    return run


def _read_password(a: argparse.Namespace) -> str:
    import getpass

    if a.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {a.username}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _users_add(a: argparse.Namespace) -> int:
    from moderation.review import ReviewService, Role

    user = ReviewService(a.db_url or Home.from_env().db_url).create_user(
        a.username, _read_password(a), Role(a.role), distributor_id=a.distributor_id, actor=a.actor)
    print(f"created {user.username} (id {user.id}, role {user.role.value}"
          + (f", distributor {user.distributor_id})" if user.distributor_id else ")"))
    return 0


def _users_list(a: argparse.Namespace) -> int:
    from moderation.review import ReviewService

    for u in ReviewService(a.db_url or Home.from_env().db_url).list_users():
        print(f"{u.id}\t{u.username}\t{u.role.value}\t{u.distributor_id or '-'}")
    return 0


def _users_token(a: argparse.Namespace) -> int:
    from moderation.review import ReviewService

    token = ReviewService(a.db_url or Home.from_env().db_url).issue_api_token(a.username, actor=a.actor)
    print(token)
    print(f"(API token for {a.username}: shown once, only its sha256 is stored)", file=sys.stderr)
    return 0


def _audit_verify(a: argparse.Namespace) -> int:
    from moderation.audit import verify
    from moderation.audit_anchor import verify_with_anchor

    url = a.db_url or Home.from_env().db_url
    result = verify_with_anchor(url, Path(a.anchor)) if a.anchor else verify(url)
    if result.ok:
        print(f"audit log OK: {result.entries} entries checked")
        return 0
    print(f"audit log TAMPERED: first bad seq {result.first_bad_seq} ({result.problem}); "
          f"{result.entries} entries checked")
    return 1


def _audit_show(a: argparse.Namespace) -> int:
    from moderation.review import ReviewService

    service = ReviewService(a.db_url or Home.from_env().db_url)
    subject = ("case", str(a.case)) if a.case is not None else (None, None)
    for e in reversed(service.audit_log(subject_type=subject[0], subject_id=subject[1], limit=a.limit)):
        print(f"{e.seq}\t{e.at.isoformat()}\t{e.actor}\t{e.action}\t{e.subject_type}:{e.subject_id}\t"
              f"{json.dumps(e.details, sort_keys=True)}")
    return 0


def _export_labels(a: argparse.Namespace) -> int:
    import pandas as pd

    from moderation.review import ReviewService

    rows = ReviewService(a.db_url or Home.from_env().db_url).export_labels()
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["upload_id", "queue", "action", "label"])
    if "model_versions" in frame:
        frame["model_versions"] = frame["model_versions"].map(lambda m: json.dumps(m, sort_keys=True))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"--out must end in .parquet or .csv, got {out.name}")
    print(f"wrote {len(frame)} labels to {out}")
    return 0


def _db_upgrade(a: argparse.Namespace) -> int:
    from moderation.migrate import upgrade

    print(f"database at revision {upgrade(a.db_url or Home.from_env().db_url, a.revision)}")
    return 0


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db-url", default=None, help="database URL (default: SQLite under TRACKGUARD_HOME)")


def _backing_ratios(text: str) -> tuple[float, ...]:
    """``--backing-db`` value: comma-separated dB ratios; '' or 'none' for none."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--backing-db takes dB ratios like 9,6,3,0 (or none), not {text!r}") from exc


def _add_backing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backing-db", type=_backing_ratios, default=None, metavar="DB,DB,...",
                   help="also embed each reference window under a synthetic backing track at these vocal-to-"
                        "backing ratios (default: trackguard.enrol.BACKING_DB, 9,6,3,0 dB; 'none': a cappella "
                        "windows only)")


def _backing_or_default(value: tuple[float, ...] | None) -> tuple[float, ...]:
    from trackguard.enrol import BACKING_DB

    return BACKING_DB if value is None else value


def _artists_parser(sub: Any) -> None:
    art = sub.add_parser("artists", help="voiceprint registry: enrol, list, show, policy, opt out, calibrate, "
                                        "detector levels, ledger").add_subparsers(required=True)
    p = art.add_parser("enroll", help="enrol an artist's voice (requires a consent record)")
    p.add_argument("--artist-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--consent-by", default="", help="who gave consent (required)")
    p.add_argument("--policy", required=True, choices=["block", "allow_licensed", "monitor"])
    p.add_argument("--audio", nargs="+", required=True, help="reference recordings (a cappella, ≥ 4 s each)")
    p.add_argument("--profile-id", default=None)
    p.add_argument("--licensed-partner", action="append", default=[], help="uploader id of a licensed partner")
    p.add_argument("--model-dir", default=None, help="SpeechBrain speaker model dir (default: pretrained ECAPA)")
    _add_backing(p)
    _add_db(p)
    p.set_defaults(func=_artists_enroll)
    p = art.add_parser("enroll-corpus", help="enrol the opted-in artists of a generated corpus")
    p.add_argument("--corpus", required=True)
    p.add_argument("--consent-by", required=True)
    p.add_argument("--model-dir", default=None)
    _add_backing(p)
    _add_db(p)
    p.set_defaults(func=_artists_enroll_corpus)
    p = art.add_parser("list", help="list enrolled artists and their policies")
    _add_db(p)
    p.set_defaults(func=_artists_list)
    p = art.add_parser("optout", help="erase an artist's voiceprint data (keeps a non-biometric audit record)")
    p.add_argument("--artist-id", required=True)
    p.add_argument("--actor", required=True, help="who requested the opt-out")
    _add_db(p)
    p.set_defaults(func=_artists_optout)
    p = art.add_parser("show", help="an artist's policy, profile, consent record and enrolment count (no vectors)")
    p.add_argument("--artist-id", required=True)
    _add_db(p)
    p.set_defaults(func=_artists_show)
    p = art.add_parser("policy", help="change an enrolled artist's policy (audited)")
    p.add_argument("--artist-id", required=True)
    p.add_argument("--policy", required=True, choices=["block", "allow_licensed", "monitor"])
    p.add_argument("--licensed-partner", action="append", default=[],
                   help="uploader id of a licensed partner (repeatable; replaces the list; omit to keep it)")
    p.add_argument("--actor", required=True, help="who asked for the change")
    _add_db(p)
    p.set_defaults(func=_artists_policy)
    p = art.add_parser("ledger", help="the attribution ledger of licensed uses (print, or --out FILE.csv)")
    p.add_argument("--artist-id", default=None)
    p.add_argument("--out", default=None, help="write CSV here instead of printing")
    _add_db(p)
    p.set_defaults(func=_artists_ledger)
    p = art.add_parser("calibrate", help="measure and store the voice-match threshold for a target FAR on a "
                                         "labelled corpus")
    p.add_argument("--corpus", required=True)
    p.add_argument("--target-far", type=float, default=0.01)
    p.add_argument("--cohort-from-corpus", action="store_true",
                   help="rebuild the AS-norm cohort from half of the corpus's non-enrolled voices")
    p.add_argument("--top-k", type=int, default=None, help="AS-norm top-k (default: a fifth of the cohort, ≤ 50)")
    p.add_argument("--pooling", choices=["mean", "best-window"], default="mean",
                   help="how window scores become a track score; must match the policy's verifier `pooling`")
    p.add_argument("--model-dir", default=None)
    _add_db(p)
    p.set_defaults(func=_artists_calibrate)
    p = art.add_parser("detector-levels", help="score enrolled artists' reference recordings with the detector "
                                               "and store each artist's level (per-artist normalisation)")
    p.add_argument("--artifact", default=None, help="the detector the sweep runs (default: TRACKGUARD_HOME/models/"
                                                    "detector); it must have `trackguard train artist-norm` fitted")
    p.add_argument("--actor", required=True, help="who ran it (recorded in the registry's audit)")
    _add_db(p)
    p.set_defaults(func=_artists_detector_levels)


def _review_parsers(sub: Any) -> None:
    users = sub.add_parser("users", help="accounts of the review app and API").add_subparsers(required=True)
    p = users.add_parser("add", help="create an account (password from a prompt or --password-stdin)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=["distributor", "reviewer", "lead", "admin"])
    p.add_argument("--distributor-id", default=None, help="required for (and only for) --role distributor")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--actor", default="cli", help="who creates the account (audited)")
    _add_db(p)
    p.set_defaults(func=_review(_users_add))
    p = users.add_parser("list", help="active accounts")
    _add_db(p)
    p.set_defaults(func=_review(_users_list))
    p = users.add_parser("token", help="issue an API token (printed once)")
    p.add_argument("username")
    p.add_argument("--actor", default="cli", help="who issues the token (audited)")
    _add_db(p)
    p.set_defaults(func=_review(_users_token))

    aud = sub.add_parser("audit", help="the hash-chained audit log").add_subparsers(required=True)
    p = aud.add_parser("verify", help="check the hash chain (exit 1 when tampered)")
    p.add_argument("--anchor", default=None,
                   help="JSON file holding the last verified head (keep it outside the database's reach): also "
                        "catches entries cut off the end, then moves the anchor to the new head")
    _add_db(p)
    p.set_defaults(func=_audit_verify)
    p = aud.add_parser("show", help="the latest entries, oldest first")
    p.add_argument("--case", type=int, default=None, help="only this case's entries")
    p.add_argument("--limit", type=int, default=50)
    _add_db(p)
    p.set_defaults(func=_review(_audit_show))

    exp = sub.add_parser("export", help="export moderation data").add_subparsers(required=True)
    p = exp.add_parser("labels", help="reviewer decisions as training labels (reviewers pseudonymised)")
    p.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    _add_db(p)
    p.set_defaults(func=_review(_export_labels))

    db = sub.add_parser("db", help="the moderation database").add_subparsers(required=True)
    p = db.add_parser("upgrade", help="run the schema migrations (alembic upgrade)")
    p.add_argument("--revision", default="head")
    _add_db(p)
    p.set_defaults(func=_db_upgrade)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trackguard", description="content-integrity pipeline for music streaming")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="synthetic labelled corpus").add_subparsers(required=True)
    p = corpus.add_parser("make", help="generate a deterministic labelled corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    # The sizes are spelled out, not read from trackguard.corpus.spec: importing the corpus package
    # would add about 1.3 s to every command's start (tests/test_voice_nesting.py keeps them in step).
    p.add_argument("--size", choices=["small", "medium", "detector", "detector-wide", "spam", "large"], default="small",
                   help="small (tests), medium (demo), detector (many bona fide/clone twins), detector-wide (the "
                        "same uploads sung by 40 voices instead of 28), spam (~200 spam uploads of every type), large")
    p.add_argument("--stems", action="store_true",
                   help="also write each sung upload's vocal stem to stems/ (16 kHz FLAC, aligned with the upload): "
                        "what `train detector --separator` learns to separate")
    p.set_defaults(func=_corpus_make)

    setup = sub.add_parser("setup", help="obtain local files").add_subparsers(required=True)
    p = setup.add_parser("models", help="fetch published weights (ECAPA, AASIST) and verify sha256")
    p.add_argument("--only", action="append")
    p.set_defaults(func=_setup_models)

    train = sub.add_parser("train", help="train a model from a corpus").add_subparsers(required=True)
    p = train.add_parser("detector", help="synthetic-voice detector (LCNN CPU tier or AASIST GPU tier)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout-family", default=None, help="leave this generator family out of train and dev")
    p.add_argument("--arch", default="lcnn", help="lcnn (CPU tier, default) or aasist (GPU tier)")
    p.add_argument("--init", default=None, choices=["published"],
                   help="aasist only: fine-tune from clovaai's ASVspoof 2019 checkpoint (`trackguard setup models`)")
    p.add_argument("--no-augment", action="store_true", help="no codec/noise/reverb/pitch augmentation")
    p.add_argument("--frontend", default=None, choices=["logmel", "linspec", "lfcc"],
                   help="lcnn only: log-mel, linear log power spectrogram or LFCC (default: the architecture's)")
    p.add_argument("--channels", type=_channels, default=None, metavar="C1,C2,...",
                   help="lcnn only: channels of each convolution stage (default 8,16,24,32; the README measures "
                        "16,32,48,64: about 2.8 times the parameters, 0.45 times the scoring rate)")
    p.add_argument("--feature-norm", default=None, choices=["window", "band"],
                   help="lcnn only: subtract the window's mean level (window, default) or each frequency band's "
                        "mean over the window (band: also removes the voice's and mix's average spectrum)")
    p.add_argument("--spoof-head", default=None, choices=["linear", "one_class"],
                   help="lcnn only: linear head with cross-entropy (default) or one_class (OC-softmax: bona fide "
                        "pulled into one compact cone, clones pushed out of it)")
    p.add_argument("--pair-frac", type=_fraction, default=None, metavar="F",
                   help="share of each batch's bona fide slots that hold the twin of the clone beside it "
                        "(default 0.5; 1.0: every bona fide window is a twin, so the voice says nothing of the label)")
    p.add_argument("--voice-adversary", type=float, default=0.0, metavar="WEIGHT",
                   help="train the encoder to confuse a classifier of the training voices, so the embedding "
                        "carries less of the singer (0: off; the README measures 0.5)")
    p.add_argument("--extra-corpus", action="append", default=[], metavar="DIR",
                   help="another seed's corpus: its uploads by the train split's voices join train, by the dev "
                        "split's voices join dev (calibration, threshold); test stays this corpus's (repeatable)")
    p.add_argument("--nest-in", default=None, metavar="ARTIFACT",
                   help="keep ARTIFACT's training voices in train and its corpus's other voices out of train "
                        "(dev/test), splitting only new voices freely: the two detectors then compare with "
                        "`eval detector --split unseen-voices` on every voice ARTIFACT did not train on")
    p.add_argument("--separator", action="store_true",
                   help="lcnn only: first train a vocal separator on the train split's vocal stems (corpora made "
                        "with `corpus make --stems`), then the detector on what it keeps of each window's STFT")
    p.add_argument("--separator-epochs", type=int, default=None, help="epochs of separator training (default 6)")
    p.add_argument("--on-stems", action="store_true",
                   help="train, calibrate and test on each upload's vocal stem instead of the upload (corpora made "
                        "with --stems): the detector behind a perfect separator, a bound for --separator")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.set_defaults(func=_train_detector)
    p = train.add_parser("artist-norm", help="measure a detector's per-artist normalisation anchor (the highest "
                                             "reference level of its own voices); stored in the artifact "
                                             "(`train detector` does it too when the corpus has references)")
    p.add_argument("--corpus", required=True,
                   help="the corpus the detector was trained on (its artists' reference recordings)")
    p.add_argument("--artifact", default=None, help="trained detector (default: TRACKGUARD_HOME/models/detector)")
    p.set_defaults(func=_train_artist_norm)
    p = train.add_parser("copy-margin", help="measure how far bona fide re-uploads' detector logits move from their "
                                             "original's; the copy rule's margin, stored in the artifact")
    p.add_argument("--corpus", required=True, help="the corpus the detector was calibrated on")
    p.add_argument("--artifact", default=None, help="trained detector (default: TRACKGUARD_HOME/models/detector)")
    p.add_argument("--split", default="dev", choices=["dev", "test", "all"],
                   help="whose bona fide uploads are copied (default: the artifact's dev split)")
    p.add_argument("--max-flag-rate", type=_fraction, default=0.01,
                   help="share of those copies the margin may flag (default 0.01, like the synthetic threshold)")
    p.set_defaults(func=_train_copy_margin)
    p = train.add_parser("spam", help="LightGBM spam classifier (time-based split, calibrated, with reasons)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-precision", type=float, default=0.95,
                   help="the spam threshold is the lowest reaching this precision on the dev split")
    p.add_argument("--eval-corpus", action="append", default=[],
                   help="another labelled corpus to test on (repeatable); results in metrics.external_test")
    p.set_defaults(func=_train_spam)

    _artists_parser(sub)
    _review_parsers(sub)
    from trackguard.cli_distributors import add_parsers as distributor_parsers

    distributor_parsers(sub)

    p = sub.add_parser("sweep", help="batch catalogue sweep: manifest → verdicts.parquet + cases")
    p.add_argument("--catalog", required=True, help="manifest .parquet or .jsonl (local or gs://)")
    p.add_argument("--out", required=True)
    p.add_argument("--policy", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--catalogue", default=None,
                   help="duplicate catalogue directory (default: the policy's, under TRACKGUARD_HOME); a sweep of "
                        "another corpus should not index into the demo's")
    p.add_argument("beam_args", nargs=argparse.REMAINDER, help="extra Beam pipeline options after --")
    _add_db(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("demo", help="set up, generate the demo corpus, train, enrol, sweep, summarise")
    p.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_demo)

    ev = sub.add_parser("eval", help="evaluate against labels").add_subparsers(required=True)
    p = ev.add_parser("sweep", help="per-queue precision/recall of a sweep's verdicts against corpus labels")
    p.add_argument("--verdicts", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--json", default=None)
    p.add_argument("--catalogue", default=None,
                   help="the sweep's duplicate catalogue (default: the policy's): copies vs their original's logit")
    p.add_argument("--policy", default=None,
                   help="the sweep's policy (the copy margin: its own, else its detector's)")
    p.set_defaults(func=_eval_sweep)

    p = ev.add_parser("detector", help="detector report: EER/minDCF per family and codec, DET, calibration, context")
    p.add_argument("--corpus", required=True, action="append", metavar="DIR[:SPLIT]",
                   help="a labelled corpus; repeat it to pool several seeds into one report (their upload ids are "
                        "prefixed with the directory's name); DIR:SPLIT takes that corpus's own split instead of "
                        "--split, e.g. --corpus c11:test --corpus c13:unseen-voices")
    p.add_argument("--artifact", default=None, help="trained detector (default: TRACKGUARD_HOME/models/detector)")
    p.add_argument("--out", default=None, help="report directory (default: TRACKGUARD_HOME/reports/detector)")
    p.add_argument("--split", default="test", choices=["test", "dev", "all", "unseen-voices"],
                   help="the artifact's own test split; every vocal upload (for a corpus it never saw); or "
                        "uploads sung by voices it did not train on, less those it calibrated on (its own corpus's "
                        "or an --extra-corpus's dev voices'; a corpus is known by its corpus.json, not its name)")
    p.add_argument("--artist-references", action="store_true",
                   help="also score each voice's uploads after per-artist normalisation by the corpus's reference "
                        "recordings of that voice (needs `trackguard train artist-norm` first)")
    p.add_argument("--on-stems", action="store_true",
                   help="score each upload's vocal stem instead of the upload (corpora made with `corpus make "
                        "--stems`): what the detector would do behind a perfect vocal separator")
    p.set_defaults(func=_eval_detector)

    p = ev.add_parser("detector-compare", help="two `eval detector` reports of the same uploads: EER/minDCF "
                                               "difference with a paired voice-bootstrap interval, pooled and "
                                               "per family")
    p.add_argument("baseline", help="report directory of `trackguard eval detector` (its scores.parquet)")
    p.add_argument("candidate", help="report directory of the model to compare (the same corpus and split)")
    p.add_argument("--baseline-column", default="logit",
                   help="score column of the baseline (e.g. normalised_logit with --artist-references)")
    p.add_argument("--candidate-column", default="logit", help="score column of the candidate")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.set_defaults(func=_eval_detector_compare)

    p = ev.add_parser("spam", help="spam report: PR-AUC, recall per spam type vs the rules baseline, importance, "
                                   "reasons")
    p.add_argument("--corpus", required=True)
    p.add_argument("--artifact", default=None, help="trained spam model (default: TRACKGUARD_HOME/models/spam)")
    p.add_argument("--out", default=None, help="report directory (default: TRACKGUARD_HOME/reports/spam-<corpus>)")
    p.add_argument("--split", default="test", choices=["test", "all"],
                   help="the latest 20 %% of uploads by time (honest on the training corpus), or every labelled "
                        "upload (for a corpus the model never saw)")
    p.set_defaults(func=_eval_spam)

    p = ev.add_parser("voices", help="singer verification report: EER a cappella vs mixed and by accompaniment "
                                     "level, FAR/FRR at the registry threshold, DET")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", default=None, help="report directory (default: TRACKGUARD_HOME/reports/voices-<corpus>)")
    p.add_argument("--no-variants", dest="variants", action="store_false",
                   help="skip the slow track-embedding variants (8 windows, fixed windows, whole track); the "
                        "verifier's path and its mean / one-window variants are always scored")
    p.add_argument("--pooling", choices=["mean", "best-window"], default="mean",
                   help="the verifier's pooling (policy `pooling`); the registry's calibration applies only to its own")
    _add_db(p)
    p.set_defaults(func=_eval_voices)

    bench = sub.add_parser("bench", help="benchmarks (print a table; --json PATH writes the figures)")
    bsub = bench.add_subparsers(required=True)
    p = bsub.add_parser("sweep", help="per-stage and end-to-end throughput vs a decode-only floor")
    p.add_argument("--tracks", default="50,200,800")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_sweep)
    p = bsub.add_parser("detector", help="windows/s and real-time factor per tier, batch size and track length")
    p.add_argument("--tiers", default="cpu,cpu-separated,gpu",
                   help="cpu (LCNN), cpu-separated (LCNN behind the vocal separator), gpu (AASIST), "
                        "or architecture names")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--artifact", default=None, help="time a trained CPU-tier artifact instead of fresh weights "
                                                    "(the cpu tier only; cpu-separated always times fresh weights)")
    p.add_argument("--lengths", default="30,180,600", help="track lengths in seconds")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_detector)
    p = bsub.add_parser("fingerprint", help="near-duplicate index: scale (insert/query/memory) and robustness vs "
                                           "Chromaprint")
    p.add_argument("--catalogue", default="1e3,1e4,1e5", help="catalogue sizes (synthetic fingerprints); '' to skip")
    p.add_argument("--references", type=int, default=12, help="generated references for the robustness table (0: skip)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_fingerprint)
    p = bsub.add_parser("spam", help="spam features (metadata, history) and inference tracks/s per row count, "
                                    "batched vs one at a time (synthetic rows)")
    p.add_argument("--rows", default="1e3,1e4,1e5", help="row counts (synthetic uploads)")
    p.add_argument("--artifact", default=None,
                   help="spam model (default: TRACKGUARD_HOME/models/spam; a tiny one is trained if absent)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_spam)
    p = bsub.add_parser("voices", help="windowed vs whole-track speaker embedding (tracks/s, EER) and voiceprint "
                                      "matching per enrolled count (synthetic voiceprints)")
    p.add_argument("--tracks", type=int, default=20, help="demo-corpus uploads to embed both ways (0: skip)")
    p.add_argument("--enrolled", default="1e3,1e4,1e5,1e6", help="enrolled voiceprint counts ('' to skip)")
    p.add_argument("--corpus", default=None, help="labelled corpus (default: TRACKGUARD_HOME/corpora/"
                                                  "demo-medium-seed7)")
    p.add_argument("--json", default=None)
    _add_db(p)
    p.set_defaults(func=_bench_voices)
    p = bsub.add_parser("hook", help="upload API: accepted requests/s and p50/p99 latency (register, status, "
                                     "floor) at fixed offered rates, open loop on loopback")
    p.add_argument("--rates", default="50,100,200,400", help="offered requests/s, comma-separated")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per rate")
    p.add_argument("--threads", type=int, default=32, help="load-generator threads (keep-alive connection each)")
    p.add_argument("--workers", default="1,2", help="app processes (`serve --workers`) to measure, comma-separated")
    p.add_argument("--db-url", default=None, help="database (default: a scratch SQLite file)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_hook)
    p = bsub.add_parser("stream", help="seconds from upload accepted to verdict (p50/p95/p99) at a steady rate and "
                                       "in a burst, through the hook, Pub/Sub emulator and streaming worker")
    p.add_argument("--track-s", default="30,180", help="track lengths in seconds, comma-separated")
    p.add_argument("--steady", type=int, default=30, help="uploads per steady-rate run")
    p.add_argument("--rate", type=float, default=0.5, help="steady rate, uploads/s")
    p.add_argument("--burst", type=int, default=200, help="uploads posted at once (0: no burst run)")
    p.add_argument("--db-url", default=None, help="database (default: a scratch SQLite file)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_stream)

    p = bsub.add_parser("queue", help="review queue: claim + decide cycles/s and latency under concurrent "
                                     "reviewers, with double-claim and audit checks")
    p.add_argument("--reviewers", default="1,10,50", help="reviewer thread counts")
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--pg-url", default=None, help="PostgreSQL server to create the scratch database on "
                                                  "(default postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    p.add_argument("--json", default=None)
    p.set_defaults(func=_bench_queue)

    p = sub.add_parser("serve", help="the reviewer web app and the /v1 JSON API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--insecure-cookies", action="store_true",
                   help="session cookie without the Secure flag: needed for plain http on localhost")
    p.add_argument("--roles", default="review,hooks",
                   help="what this instance serves: review (reviewer app + /v1 API), hooks (distributor uploads)")
    p.add_argument("--object-store", default=None,
                   help="where uploaded audio goes: a directory or gs://bucket[/prefix] "
                        "(default TRACKGUARD_HOME/objects)")
    p.add_argument("--pubsub-project", default=None,
                   help="publish upload events to this Pub/Sub project (default: the emulator of `trackguard stream`)")
    p.add_argument("--workers", type=int, default=1,
                   help="app processes on the one port (nonces, rate limits and uploads are shared through the "
                        "database); about one per core")
    _add_db(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser("stream", help="streaming pipeline: upload events → verdicts + cases (starts a local "
                                      "Pub/Sub emulator when none is configured); see `trackguard stream -h`",
                       add_help=False)
    p.add_argument("stream_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_stream)
    p = sub.add_parser("relay", help="outbox relay + verdict callbacks without a pipeline (production job)",
                       add_help=False)
    p.add_argument("relay_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_relay)
    return ap


PASS_THROUGH = {"stream": "stream_args", "relay": "relay_args"}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is not None and argv[command] in PASS_THROUGH:  # these parse their own options (and Beam's)
        args = parser.parse_args(argv[:command + 1])
        setattr(args, PASS_THROUGH[argv[command]], argv[command + 1:])
    else:
        args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # SpeechBrain logs every file it loads at INFO
        logging.getLogger("speechbrain").setLevel(logging.WARNING)
    if getattr(args, "beam_args", None) and args.beam_args[:1] == ["--"]:
        args.beam_args = args.beam_args[1:]
    func: Handler = args.func
    try:
        return func(args)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        if args.verbose:
            raise
        print(f"trackguard: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
