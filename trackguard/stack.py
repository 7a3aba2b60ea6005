"""The local streaming stack as separate processes: Pub/Sub emulator, hook app, streaming worker.

Real processes, so that faults are real: the end-to-end tests kill the worker
with SIGKILL and restart the emulator under it, and `trackguard bench stream`
measures upload-to-verdict latency through the same path a distributor uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from trackguard.emulators import PubSubEmulator, free_port, http_ok
from trackguard.stream_cmd import LOCAL_PROJECT


class LocalStack:
    def __init__(self, home: Path, db_url: str, *, republish_after_s: float = 60.0, window_s: float = 1.0,
                 extra_env: dict[str, str] | None = None, app_workers: int = 1) -> None:
        self.home, self.db_url = home, db_url
        self.app_workers = app_workers
        self.republish_after_s, self.window_s = republish_after_s, window_s
        self.port = free_port()
        self.emulator = PubSubEmulator(data_dir=home / "run" / "pubsub-test")
        self.app: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.extra_env = extra_env or {}
        self._logs: list[IO[bytes]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "TRACKGUARD_HOME": str(self.home), "TRACKGUARD_DB_URL": self.db_url,
                "TRACKGUARD_PUBSUB_PROJECT": LOCAL_PROJECT, "HF_HUB_OFFLINE": "1", **self.emulator.env(),
                **self.extra_env}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.home / f"{name}.log").open("ab")
        self._logs.append(log)
        return subprocess.Popen([sys.executable, "-m", "trackguard.cli", *args], env=self.env(), stdout=log,
                                stderr=subprocess.STDOUT)

    def start(self) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        self.emulator.start()
        self.start_app()
        self.start_worker()
        return self

    def start_app(self) -> None:
        self.app = self._spawn("app", ["serve", "--insecure-cookies", "--port", str(self.port),
                                       "--workers", str(self.app_workers)])
        _wait(lambda: http_ok(f"{self.base_url}/login"), 60, "the hook app", self.home / "app.log")

    def start_worker(self) -> None:
        marker = self.home / "worker.log"
        before = marker.stat().st_size if marker.exists() else 0
        self.worker = self._spawn("worker", ["stream", "--republish-after-s", str(self.republish_after_s),
                                             "--window-s", str(self.window_s), "--poll-s", "0.5"])
        _wait(lambda: b"streaming from" in _read_from(marker, before), 120, "the streaming worker", marker)

    def kill_worker(self) -> None:
        """SIGKILL: no clean-up runs, as when a machine dies."""
        if self.worker is not None:
            self.worker.send_signal(signal.SIGKILL)
            self.worker.wait(30)

    def restart_app(self) -> None:
        if self.app is not None:
            self.app.terminate()
            self.app.wait(30)
        self.start_app()

    def stop(self) -> None:
        for proc in (self.worker, self.app):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.emulator.stop()
        for log in self._logs:
            log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _wait(ready: object, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(ready) and ready():
            return
        time.sleep(0.25)
    tail = _read_from(log, max(0, log.stat().st_size - 3000) if log.exists() else 0).decode(errors="replace")
    raise TimeoutError(f"{what} did not start within {timeout_s:.0f} s; log tail:\n{tail}")
