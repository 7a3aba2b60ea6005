"""What the Dataflow Flex Template launcher passes → the argv a trackguard pipeline's `run` parses.

The launcher hands every template parameter over as ``--name=value``. Template parameter
names use underscores (``db_url``); the trackguard CLI flags use hyphens (``--db-url``), so the
pipeline's own parameters are renamed here and everything else (Beam/Dataflow options such as
``--temp_location``) passes through untouched. Two parameters exist only for the launcher:

- ``db_url_secret``: a Secret Manager secret holding the database URL, read here so the password
  is not a plain job parameter shown in the Dataflow console;
- ``gpu``: ``TYPE:COUNT`` (e.g. ``nvidia-l4:1``) or ``none``; becomes Dataflow's
  ``worker_accelerator`` service option and, unless a machine type was given, the machine type
  that GPU needs.

Dataflow defaults are added when absent: the Dataflow runner (the pipelines pin a local runner
otherwise), ``--sdk_location=container`` and the worker image baked into the launcher image
(``TRACKGUARD_WORKER_IMAGE``), so workers run the very code and models the launcher built the job with.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence

LAUNCHER_PARAMS = ("db_url_secret", "gpu")
WORKER_IMAGE_ENV = "TRACKGUARD_WORKER_IMAGE"
# Each accelerator is sold only with some machine series; these are the smallest that fit one GPU.
GPU_MACHINE = {"nvidia-l4": "g2-standard-4", "nvidia-tesla-t4": "n1-standard-4", "nvidia-a100-80gb": "a2-ultragpu-1g"}
_GPU = re.compile(r"^(?P<type>[a-z0-9-]+):(?P<count>[1-8])$")
_SECRET = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")
_MACHINE_OPTIONS = ("machine_type", "worker_machine_type")


def split_args(argv: Sequence[str]) -> list[tuple[str, str | None]]:
    """``--k=v`` / ``--k v`` / ``--flag`` → (k, v or None), in order; anything else is refused."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ValueError(f"unexpected argument {arg!r}: template parameters arrive as --name=value")
        name, eq, value = arg[2:].partition("=")
        if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, eq, i = argv[i + 1], "=", i + 1
        out.append((name, value if eq else None))
        i += 1
    return out


def _flag(name: str, value: str | None) -> str:
    return f"--{name}" if value is None else f"--{name}={value}"


def gpu_options(spec: str, have_machine_type: bool) -> list[str]:
    """Dataflow options for one ``TYPE:COUNT`` accelerator spec (``none``: no options)."""
    if spec == "none":
        return []
    m = _GPU.match(spec)
    if not m:
        raise ValueError(f"gpu must be TYPE:COUNT (e.g. nvidia-l4:1) or none, got {spec!r}")
    opts = [f"--dataflow_service_options=worker_accelerator=type:{m['type']};count:{m['count']};"
            "install-nvidia-driver"]
    if not have_machine_type:
        if m["type"] not in GPU_MACHINE:
            raise ValueError(f"no default machine type for {m['type']}: pass machine_type too")
        opts.append(f"--machine_type={GPU_MACHINE[m['type']]}")
    return opts


def read_secret(resource: str) -> str:
    """The payload of a Secret Manager secret version, with the launcher VM's credentials (REST, no extra SDK)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    if not _SECRET.match(resource):
        raise ValueError(f"db_url_secret must be projects/P/secrets/NAME[/versions/V], got {resource!r}")
    name = resource if "/versions/" in resource else f"{resource}/versions/latest"
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    response = AuthorizedSession(credentials).get(f"https://secretmanager.googleapis.com/v1/{name}:access",
                                                  timeout=30)
    response.raise_for_status()
    return base64.b64decode(json.loads(response.text)["payload"]["data"]).decode("utf-8").strip()


def pipeline_argv(argv: Sequence[str], cli_params: Collection[str], *, default_gpu: str = "none",
                  streaming: bool = False, env: Mapping[str, str] | None = None,
                  secret_reader: Callable[[str], str] = read_secret) -> list[str]:
    """The pipeline argv for `argv` as the launcher passed it (see the module docstring)."""
    env = env or {}
    pairs = split_args(argv)
    given = {name for name, _ in pairs}
    out: list[str] = []
    gpu, secret = default_gpu, None
    for name, value in pairs:
        if name in cli_params:
            out.append(_flag(name.replace("_", "-"), value))
        elif name == "gpu":
            gpu = value or "none"
        elif name == "db_url_secret":
            secret = value
        else:
            out.append(_flag(name, value))
    if secret and "db_url" not in given:
        out.append(f"--db-url={secret_reader(secret)}")
    out += gpu_options(gpu, bool(given & set(_MACHINE_OPTIONS)))
    if "runner" not in given:
        out.append("--runner=DataflowRunner")
    if "sdk_location" not in given:
        out.append("--sdk_location=container")
    if "sdk_container_image" not in given and env.get(WORKER_IMAGE_ENV):
        out.append(f"--sdk_container_image={env[WORKER_IMAGE_ENV]}")
    if streaming and "streaming" not in given:
        out.append("--streaming")
    _require_shared_db(out)
    return out


def _require_shared_db(argv: Sequence[str]) -> None:
    """Workers on many machines need one database: the default SQLite file would be one per machine."""
    urls = [a.split("=", 1)[1] for a in argv if a.startswith("--db-url=")]
    if not urls:
        raise ValueError("a Dataflow job needs the shared database: pass db_url_secret (or db_url)")
    if urls[-1].startswith("sqlite"):
        raise ValueError("db_url is SQLite: each Dataflow worker would write its own file; use PostgreSQL")
