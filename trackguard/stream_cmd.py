"""`trackguard stream`: the streaming pipeline plus its local supervisor.

Locally it runs everything one machine needs: when no Pub/Sub is configured
(no ``PUBSUB_EMULATOR_HOST``, no ``--project``) it starts Google's Pub/Sub
emulator (or reuses the one a previous run left, found through
``TRACKGUARD_HOME/run/pubsub.json``, which `trackguard serve --hooks` reads
too), creates the topics, runs the Beam pipeline on the local runner, and every
``--poll-s`` relays the outbox (publishes accepted uploads that have no verdict)
and delivers due callbacks. A failed pipeline (say, the emulator restarted under
it) is rebuilt and started again; idempotent writes make that safe.

With ``-- --runner=DataflowRunner ...`` it submits the job and returns: the relay
and callbacks then run as `trackguard relay` (a scheduled job).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from trackguard.home import Home

log = logging.getLogger(__name__)
LOCAL_PROJECT = "trackguard-local"
TERMINAL = {"DONE", "FAILED", "CANCELLED", "UPDATED", "DRAINED"}
# The local runner's Pub/Sub read is a blocking pull of up to 30 s, and its cancel() waits for it:
# a SIGTERM took 25 s to end the worker, near a container's usual 30 s grace period. Waiting
# this long is enough for a runner that can stop; the rest is abandoned (see `cancel_pipeline`).
CANCEL_WAIT_S = 5.0


@dataclasses.dataclass
class PubSubTarget:
    project: str
    emulator: Any = None  # the PubSubEmulator this process started, if any


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """`trackguard stream`'s options, and the Beam options (after ``--``, or any it does not know)."""
    ap = stream_parser()
    argv = list(argv or [])
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args, unknown = ap.parse_known_args(argv[:argv.index("--")] if "--" in argv else argv)
    return args, unknown + beam_args


def stream_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trackguard stream", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default=os.environ.get("TRACKGUARD_PUBSUB_PROJECT"),
                    help="Pub/Sub project (default: the local emulator's project)")
    ap.add_argument("--subscription", default="uploads-stream", help="subscription to read (name or full path)")
    ap.add_argument("--dead-letter-topic", default="uploads-dead-letter", help="topic for poison messages")
    ap.add_argument("--db-url", default=None, help="moderation DB URL (default: SQLite under TRACKGUARD_HOME)")
    ap.add_argument("--policy", default=None, help="decision policy YAML (default: pipelines/policy.yaml)")
    ap.add_argument("--catalogue", default=None, help="duplicate catalogue directory")
    ap.add_argument("--window-s", type=float, default=1.0, help="scoring window (duplicate matching batch)")
    ap.add_argument("--metrics-window-s", type=int, default=60, help="window of the uploads/verdicts/errors counters")
    ap.add_argument("--republish-after-s", type=float, default=60.0,
                    help="re-publish an accepted upload that has no verdict after this long")
    ap.add_argument("--poll-s", type=float, default=1.0, help="supervisor period (relay, callbacks, health)")
    ap.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (0: until SIGINT/SIGTERM)")
    ap.add_argument("--emulator-port", type=int, default=8085, help="port for a Pub/Sub emulator this command starts")
    return ap


def run_file(home: Home) -> Path:
    return home.root / "run" / "pubsub.json"


def pubsub_target(args: argparse.Namespace, home: Home) -> PubSubTarget:
    """Real Pub/Sub when a project is named, else an emulator: the environment's, a running one, or a new one."""
    from trackguard.emulators import PubSubEmulator, pubsub_emulator_available

    if os.environ.get("PUBSUB_EMULATOR_HOST") or args.project:
        return PubSubTarget(args.project or LOCAL_PROJECT)
    found = running_emulator(home)
    if found:
        os.environ["PUBSUB_EMULATOR_HOST"] = found
        return PubSubTarget(LOCAL_PROJECT)
    reason = pubsub_emulator_available()
    if reason:
        raise SystemExit(f"trackguard stream: no Pub/Sub configured and the local emulator cannot start: {reason}")
    emulator = PubSubEmulator(port=args.emulator_port, data_dir=home.root / "run" / "pubsub").start()
    os.environ.update(emulator.env())
    run_file(home).parent.mkdir(parents=True, exist_ok=True)
    run_file(home).write_text(json.dumps({"host": emulator.host, "project": LOCAL_PROJECT}))
    return PubSubTarget(LOCAL_PROJECT, emulator)


def running_emulator(home: Home) -> str | None:
    """The host of a Pub/Sub emulator recorded under TRACKGUARD_HOME that still answers, else None."""
    from trackguard.emulators import http_ok

    try:
        host = str(json.loads(run_file(home).read_text())["host"])
    except (OSError, ValueError, KeyError):
        return None
    return host if http_ok(f"http://{host}/") else None


def _full(project: str, kind: str, name: str) -> str:
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


class OutboxRounds:
    """One round = relay the outbox, then deliver due callbacks (the supervisor's tick and `trackguard relay`)."""

    def __init__(self, db_url: str, project: str, republish_after_s: float) -> None:
        from moderation.callbacks import CallbackDispatcher
        from moderation.distributors import DistributorStore
        from moderation.hook_ledger import HookLedger
        from pipelines.events import PubSubPublisher

        self.ledger, self.publisher = HookLedger(db_url), PubSubPublisher(project)
        self.callbacks = CallbackDispatcher(db_url, DistributorStore(db_url))
        self.republish_after_s = republish_after_s

    def run_once(self) -> tuple[int, int]:
        """(events published, callbacks delivered)."""
        from moderation.outbox import relay_outbox
        from moderation.txn import now

        published = relay_outbox(self.ledger, self.publisher, now(), self.republish_after_s)
        return published, self.callbacks.run_once()

    def close(self) -> None:
        self.publisher.close()
        self.callbacks.close()


class Supervisor:
    """Runs the pipeline, restarts it when it fails, and relays the outbox and callbacks meanwhile."""

    def __init__(self, args: argparse.Namespace, beam_args: list[str], project: str) -> None:
        from pipelines.config import load_config
        from pipelines.duplicates import with_catalogue

        self.args, self.beam_args, self.project = args, beam_args, project
        cfg = load_config(args.policy, args.db_url)
        self.cfg = with_catalogue(cfg, args.catalogue) if args.catalogue else cfg
        self.outbox = OutboxRounds(self.cfg.db_url, project, args.republish_after_s)
        self.result: Any = None
        self.restarts = 0
        self._subscriber: Any = None
        self._next_health_check = 0.0

    def start_pipeline(self) -> None:
        import apache_beam as beam

        from pipelines import stream
        from pipelines.events import ensure_topology

        ensure_topology(self.project)  # an emulator that restarted has forgotten its topics
        p = beam.Pipeline(options=stream_options(self.beam_args, self.project))
        stream.build(p, _full(self.project, "subscriptions", self.args.subscription), self.cfg,
                     stream.StreamOptions(_full(self.project, "topics", self.args.dead_letter_topic),
                                          self.args.window_s, self.args.metrics_window_s))
        self.result = p.run()
        log.info("streaming pipeline started (%s)", self.result.state)

    def tick(self) -> None:
        state = str(getattr(self.result, "state", "")).split(".")[-1]
        lost = self._subscription_lost()
        if state in TERMINAL or lost:
            self.restarts += 1
            log.warning("streaming pipeline %s; restarting it (restart %d)",
                        "lost its subscription (the broker restarted)" if lost else state, self.restarts)
            if state not in TERMINAL:
                cancel_pipeline(self.result)
            time.sleep(min(30.0, 2.0 * self.restarts))
            self.start_pipeline()
        try:
            self.outbox.run_once()
        except Exception:  # a broker or database hiccup must not end the supervisor; next tick retries
            log.exception("outbox round failed")

    def _subscription_lost(self) -> bool:
        """True when the broker no longer knows the subscription (an emulator restart forgets everything).

        The local runner's Pub/Sub read then keeps failing without ending the pipeline, so the
        supervisor checks every few seconds, recreates the topology and restarts the pipeline.
        """
        from google.api_core.exceptions import NotFound
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        if time.monotonic() < self._next_health_check:
            return False
        self._next_health_check = time.monotonic() + 5.0
        if self._subscriber is None:
            self._subscriber = pubsub_v1.SubscriberClient()
        try:
            self._subscriber.get_subscription(
                subscription=_full(self.project, "subscriptions", self.args.subscription), timeout=5)
        except NotFound:
            return True
        except Exception:  # broker unreachable right now: nothing to decide yet
            log.warning("Pub/Sub health check failed", exc_info=True)
        return False

    def stop(self) -> None:
        if self.result is not None and str(self.result.state).split(".")[-1] not in TERMINAL:
            cancel_pipeline(self.result)
        self.outbox.close()


def cancel_pipeline(result: Any, wait_s: float = CANCEL_WAIT_S) -> bool:
    """Cancel a running pipeline, waiting at most ``wait_s``; True when cancel() returned in time.

    A cancel still waiting on the local runner's Pub/Sub pull is left to its daemon thread. That pull
    may yet acknowledge a message no bundle will process; the outbox re-publishes every accepted upload
    without a verdict after ``--republish-after-s``, as it does after the worker is SIGKILLed.
    """
    cancelling = threading.Thread(target=result.cancel, name="pipeline-cancel", daemon=True)
    cancelling.start()
    cancelling.join(wait_s)
    if cancelling.is_alive():
        log.info("pipeline cancel still waiting after %.0f s (the runner's Pub/Sub pull); not waiting for it",
                 wait_s)
        return False
    return True


def stream_options(beam_args: list[str], project: str) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args.append("--runner=DirectRunner")  # pinned: the unpinned default tries to download Prism
    if "--streaming" not in args:
        args.append("--streaming")
    if not any(a.startswith("--project") for a in args):
        args.append(f"--project={project}")
    return PipelineOptions(args, save_main_session=False)


def submit_only(beam_args: list[str]) -> bool:
    return any(a.startswith("--runner") and "Direct" not in a for a in beam_args)


def run(argv: list[str] | None = None) -> int:
    from pipelines.sweep import prepare_stores

    args, beam_args = parse_args(argv)
    home = Home.from_env()
    target = pubsub_target(args, home) if not submit_only(beam_args) else PubSubTarget(args.project or "")
    sup = Supervisor(args, beam_args, target.project)
    prepare_stores(sup.cfg.db_url)
    sup.start_pipeline()
    if submit_only(beam_args):
        print(f"submitted: {getattr(sup.result, 'job_id', lambda: '?')()}; run `trackguard relay` for the outbox")
        return 0
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    print(f"streaming from {_full(target.project, 'subscriptions', args.subscription)} "
          f"(Pub/Sub at {os.environ.get('PUBSUB_EMULATOR_HOST', 'Google Cloud')}); db {sup.cfg.db_url}", flush=True)
    deadline = time.monotonic() + args.duration_s if args.duration_s > 0 else None
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            sup.tick()
            stop.wait(args.poll_s)
    finally:
        sup.stop()
        if target.emulator is not None:
            target.emulator.stop()
            run_file(home).unlink(missing_ok=True)
    return 0


def relay_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trackguard relay",
                                 description="outbox relay + verdict callbacks without a pipeline (a scheduled job)")
    ap.add_argument("--project", default=os.environ.get("TRACKGUARD_PUBSUB_PROJECT", LOCAL_PROJECT))
    ap.add_argument("--db-url", default=None)
    ap.add_argument("--republish-after-s", type=float, default=60.0)
    ap.add_argument("--once", action="store_true", help="one round, then exit (for a scheduler)")
    ap.add_argument("--poll-s", type=float, default=5.0)
    return ap


def relay(argv: list[str] | None = None) -> int:
    """`trackguard relay`: outbox relay + callbacks without a pipeline (production: a scheduled job)."""
    args = relay_parser().parse_args(argv)
    outbox = OutboxRounds(args.db_url or Home.from_env().db_url, args.project, args.republish_after_s)
    try:
        while True:
            published, delivered = outbox.run_once()
            print(f"relayed {published} events, delivered {delivered} callbacks", flush=True)
            if args.once:
                return 0
            time.sleep(args.poll_s)
    finally:
        outbox.close()
