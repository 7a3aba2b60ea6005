"""`trackguard stream`'s own plumbing: options, the emulator hand-over between commands, runner pinning."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackguard.home import Home
from trackguard.stream_cmd import (
    cancel_pipeline,
    parse_args,
    run_file,
    running_emulator,
    stream_options,
    submit_only,
)


def test_beam_options_after_the_separator_are_passed_through() -> None:
    args, beam = parse_args(["--window-s", "2", "--", "--runner=DataflowRunner", "--region=europe-west1"])
    assert args.window_s == 2.0 and args.subscription == "uploads-stream"
    assert beam == ["--runner=DataflowRunner", "--region=europe-west1"]
    assert submit_only(beam) and not submit_only(["--runner=DirectRunner"]) and not submit_only([])


def test_the_local_runner_is_pinned_and_streaming() -> None:
    opts = stream_options([], "trackguard-local").get_all_options()
    assert opts["runner"] == "DirectRunner" and opts["streaming"] and opts["project"] == "trackguard-local"


class _Result:
    """A PipelineResult whose cancel() blocks until released, as the local runner's does during its Pub/Sub pull."""

    def __init__(self) -> None:
        self.release, self.cancelled = threading.Event(), threading.Event()

    def cancel(self) -> None:
        self.release.wait(10)
        self.cancelled.set()


def test_cancel_does_not_wait_out_a_blocked_pull() -> None:
    blocked = _Result()
    started = time.monotonic()
    assert cancel_pipeline(blocked, wait_s=0.2) is False
    assert time.monotonic() - started < 2 and not blocked.cancelled.is_set()
    blocked.release.set()  # the pull returns later; the abandoned cancel still completes
    assert blocked.cancelled.wait(5)
    prompt = _Result()
    prompt.release.set()
    assert cancel_pipeline(prompt, wait_s=5) is True and prompt.cancelled.is_set()


@pytest.fixture()
def answering_server() -> Iterator[str]:
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the emulator answers "Ok" on /
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_serve_finds_the_emulator_that_stream_started(tmp_path: Path, answering_server: str) -> None:
    home = Home(tmp_path)
    assert running_emulator(home) is None  # no record
    run_file(home).parent.mkdir(parents=True)
    run_file(home).write_text(json.dumps({"host": answering_server, "project": "trackguard-local"}))
    assert running_emulator(home) == answering_server
    run_file(home).write_text(json.dumps({"host": "127.0.0.1:9", "project": "trackguard-local"}))
    assert running_emulator(home) is None  # recorded but gone
