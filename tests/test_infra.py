"""infra/: Flex Template metadata vs the CLI, the launcher's argv translation, Dockerfiles, Terraform, scripts.

Nothing here talks to Google Cloud; tools that may be absent (terraform providers, hadolint) are used
only when present, and the test says why it skipped otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
DATAFLOW = INFRA / "dataflow"
TERRAFORM = INFRA / "terraform"
DOCKERFILES = [INFRA / "docker" / "Dockerfile", DATAFLOW / "Dockerfile"]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # the launchers import flex_args by this name
    spec.loader.exec_module(module)
    return module


flex_args = _load(DATAFLOW / "flex_args.py")
launch_sweep = _load(DATAFLOW / "launch_sweep.py")
launch_stream = _load(DATAFLOW / "launch_stream.py")


def _metadata(pipeline: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATAFLOW / f"{pipeline}-metadata.json").read_text())
    return data


def _subparser(command: str) -> argparse.ArgumentParser | None:
    from trackguard.cli import build_parser

    if command == "stream":  # `trackguard stream` parses its own options (trackguard.cli.PASS_THROUGH)
        from trackguard.stream_cmd import stream_parser

        return stream_parser()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: a for a in parser._actions for opt in a.option_strings}


# ---------------------------------------------------------------------------- Flex Template metadata


@pytest.mark.parametrize("pipeline", ["sweep", "stream"])
def test_metadata_is_well_formed(pipeline: str) -> None:
    meta = _metadata(pipeline)
    assert meta["name"] == f"trackguard-{pipeline}" and meta["description"]
    names = [p["name"] for p in meta["parameters"]]
    assert len(names) == len(set(names)), "duplicate parameter names"
    for p in meta["parameters"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", p["name"]), f"{p['name']}: use lower_snake names"
        assert p["label"] and p["helpText"] and isinstance(p["isOptional"], bool)
        for rx in p.get("regexes", []):
            re.compile(rx)


@pytest.mark.parametrize(("pipeline", "launcher"), [("sweep", launch_sweep), ("stream", launch_stream)])
def test_metadata_parameters_are_cli_flags_or_launcher_parameters(pipeline: str, launcher: ModuleType) -> None:
    parser = _subparser(pipeline)
    if parser is None:
        pytest.skip(f"`trackguard {pipeline}` is not a subcommand yet")
    options = _options(parser)
    meta = {p["name"]: p for p in _metadata(pipeline)["parameters"]}
    cli_names = set(meta) - set(flex_args.LAUNCHER_PARAMS)
    assert cli_names == set(launcher.CLI_PARAMS), "the launcher renames exactly the metadata's CLI parameters"
    for name in cli_names:
        flag = "--" + name.replace("_", "-")
        assert flag in options, f"{pipeline}: template parameter {name} is no `trackguard {pipeline}` flag ({flag})"
    for flag, action in options.items():
        if action.required:
            name = flag.lstrip("-").replace("-", "_")
            assert name in meta and not meta[name]["isOptional"], f"required {flag} must be a required parameter"


def test_sweep_parameters_reach_the_pipeline_parser() -> None:
    """The launcher hands them to pipelines.sweep.parse_args: all must be consumed there, none left to Beam."""
    from pipelines import sweep

    argv = flex_args.pipeline_argv(
        ["--catalog=gs://b/m.parquet", "--out=gs://b/o", "--policy=/p.yaml", "--db_url=postgresql://h/db"],
        launch_sweep.CLI_PARAMS)
    args, beam_args = sweep.parse_args(argv)
    assert (args.catalog, args.out, args.policy, args.db_url) == ("gs://b/m.parquet", "gs://b/o", "/p.yaml",
                                                                  "postgresql://h/db")
    assert all(not a.startswith("--db-url") for a in beam_args)
    assert "--runner=DataflowRunner" in beam_args


# ---------------------------------------------------------------------------- the launcher's argv translation


def test_launcher_renames_cli_parameters_and_passes_beam_options_through() -> None:
    out = flex_args.pipeline_argv(["--dead_letter_topic=projects/p/topics/t", "--db_url=postgresql://x/y",
                                   "--temp_location=gs://b/tmp", "--runner", "DirectRunner"],
                                  launch_stream.CLI_PARAMS, streaming=True)
    assert "--dead-letter-topic=projects/p/topics/t" in out and "--db-url=postgresql://x/y" in out
    assert "--temp_location=gs://b/tmp" in out, "Beam options keep their underscore names"
    assert "--runner=DirectRunner" in out and "--runner=DataflowRunner" not in out
    assert "--streaming" in out and "--sdk_location=container" in out


def test_launcher_reads_the_database_url_from_the_secret() -> None:
    asked: list[str] = []

    def reader(name: str) -> str:
        asked.append(name)
        return "postgresql+psycopg://u:pw@10.0.0.3:5432/tg"

    out = flex_args.pipeline_argv(["--db_url_secret=projects/p/secrets/trackguard-db-url"], (), secret_reader=reader)
    assert asked == ["projects/p/secrets/trackguard-db-url"]
    assert "--db-url=postgresql+psycopg://u:pw@10.0.0.3:5432/tg" in out
    assert not any("db_url_secret" in a for a in out)


@pytest.mark.parametrize("argv", [[], ["--db_url=sqlite:///tmp/x.db"]])
def test_launcher_refuses_a_job_without_a_shared_database(argv: list[str]) -> None:
    with pytest.raises(ValueError, match=r"database|SQLite"):
        flex_args.pipeline_argv(argv, ("db_url",))


def test_gpu_parameter_becomes_service_option_and_machine_type() -> None:
    db = ["--db_url=postgresql://h/d"]
    out = flex_args.pipeline_argv(db, ("db_url",), default_gpu="nvidia-l4:1",
                                  env={flex_args.WORKER_IMAGE_ENV: "r/worker:1"})
    assert "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver" in out
    assert "--machine_type=g2-standard-4" in out and "--sdk_container_image=r/worker:1" in out
    kept = flex_args.pipeline_argv([*db, "--gpu=nvidia-l4:2", "--worker_machine_type=g2-standard-24"], ("db_url",))
    assert not any(a.startswith("--machine_type") for a in kept), "a given machine type wins"
    assert any("count:2" in a for a in kept)
    off = flex_args.pipeline_argv([*db, "--gpu=none"], ("db_url",), default_gpu="nvidia-l4:1")
    assert not any("worker_accelerator" in a for a in off)
    with pytest.raises(ValueError, match="TYPE:COUNT"):
        flex_args.pipeline_argv([*db, "--gpu=l4"], ("db_url",))


def test_defaults_match_what_the_metadata_promises() -> None:
    assert launch_stream.DEFAULT_GPU == "nvidia-l4:1"
    assert "nvidia-l4:1" in {p["name"]: p for p in _metadata("stream")["parameters"]}["gpu"]["helpText"]


def test_secret_name_is_validated_before_any_network_call() -> None:
    with pytest.raises(ValueError, match="projects/P/secrets"):
        flex_args.read_secret("trackguard-db-url")


# ---------------------------------------------------------------------------- Dockerfiles


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def _copy_sources(path: Path) -> list[str]:
    sources: list[str] = []
    for op, rest in _instructions(path):
        if op != "COPY" or "--from=" in rest:
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copied_file_exists_and_is_not_dockerignored(dockerfile: Path) -> None:
    ignore = Path(f"{dockerfile}.dockerignore").read_text().splitlines()
    allowed = [ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")]
    for src in _copy_sources(dockerfile):
        if "$" in src:  # MODELS_DIR: a build-context dir filled by `make models` / training, checked by the build
            continue
        assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src} does not exist"
        assert any(src == a or src.startswith(a + "/") or fnmatch.fnmatch(src, a) for a in allowed), \
            f"{src} is excluded by {dockerfile.name}.dockerignore"


def test_worker_image_is_a_dataflow_custom_container_of_the_pinned_beam() -> None:
    dockerfile = (INFRA / "docker" / "Dockerfile").read_text()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    beam_pin = next(d.split("==")[1] for d in deps if d.startswith("apache-beam"))
    assert f"apache/beam_python3.11_sdk:{beam_pin}" in dockerfile, "SDK boot image must match the apache-beam pin"
    assert "COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam" in dockerfile
    worker = dockerfile.split("AS worker", 1)[1]
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in worker
    assert re.search(r"FROM \$\{PYTHON_IMAGE\} AS base", dockerfile) and "python:3.11-slim" in dockerfile
    for pkg in ("ffmpeg", "libsndfile1", "libchromaprint-tools"):
        assert pkg in dockerfile
    assert "AS app" in dockerfile and '"serve"' in dockerfile.split("AS app", 1)[1].split("FROM", 1)[0]


def test_template_image_points_at_a_launcher_module_for_each_pipeline() -> None:
    text = (DATAFLOW / "Dockerfile").read_text()
    assert "python311-template-launcher-base" in text
    assert "FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/trackguard/launch/launch_${PIPELINE}.py" in text
    for pipeline in ("sweep", "stream"):
        assert f"infra/dataflow/launch_{pipeline}.py" in text and (DATAFLOW / f"launch_{pipeline}.py").exists()


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed on this machine")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint(dockerfile: Path) -> None:
    proc = subprocess.run(["hadolint", "--failure-threshold", "error", str(dockerfile)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_models_names_every_missing_artifact(tg_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check = _load(INFRA / "docker" / "check_models.py")
    assert check.main([]) == 1
    err = capsys.readouterr().err
    for slot in ("detector", "verifier", "spam"):
        assert f"check_models: {slot}: artifact {tg_home}" in err


# ---------------------------------------------------------------------------- Terraform


def _hcl_code(text: str) -> str:
    """HCL without comments and string contents (so braces inside strings do not count)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return "\n".join(re.sub(r"(#|//).*$", "", ln) for ln in text.splitlines())


def _tf() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TERRAFORM.glob("*.tf"))}


def test_terraform_files_have_balanced_braces() -> None:
    for name, text in _tf().items():
        code, depth = _hcl_code(text), 0
        for ch in code:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0, f"{name}: closing brace without an opening one"
        assert depth == 0, f"{name}: {depth} unclosed brace(s)"
        assert code.count("[") == code.count("]") and code.count("(") == code.count(")"), name


def _resource(kind: str, name: str) -> str:
    text = "\n".join(_tf().values())
    m = re.search(rf'resource "{kind}" "{name}" \{{(.*?)\n\}}', text, re.S)
    assert m, f"no resource {kind}.{name}"
    return m.group(1)


def test_pubsub_names_equal_the_pipeline_constants() -> None:
    events = pytest.importorskip("pipelines.events")
    assert f'name                       = "{events.TOPIC}"' in _resource("google_pubsub_topic", "uploads")
    assert f'"{events.DEAD_LETTER_TOPIC}"' in _resource("google_pubsub_topic", "dead_letter")
    stream = _resource("google_pubsub_subscription", "stream")
    assert f'"{events.SUBSCRIPTION}"' in stream
    assert "dead_letter_topic     = google_pubsub_topic.dead_letter.id" in stream and "retry_policy" in stream
    assert f'"{events.DEAD_LETTER_SUBSCRIPTION}"' in _resource("google_pubsub_subscription", "dead_letter")
    defaults = inspect.signature(events.ensure_topology).parameters
    variables = "\n".join(_tf().values())
    for var, arg in (("ack_deadline_s", "ack_deadline_s"), ("max_delivery_attempts", "max_delivery_attempts")):
        m = re.search(rf'variable "{var}" \{{.*?default\s*=\s*(\d+)', variables, re.S)
        assert m and int(m.group(1)) == defaults[arg].default, f"{var} default differs from ensure_topology"


def test_terraform_declares_what_the_docs_describe() -> None:
    for kind, name in [
        ("google_storage_bucket", "main"), ("google_storage_notification", "uploads"),
        ("google_sql_database_instance", "main"), ("google_secret_manager_secret", "db_password"),
        ("google_secret_manager_secret", "db_url"), ("google_secret_manager_secret", "session_key"),
        ("google_service_account", "dataflow"), ("google_service_account", "app"),
        ("google_artifact_registry_repository", "images"), ("google_cloud_run_v2_service", "app"),
    ]:
        _resource(kind, name)
    bucket = _resource("google_storage_bucket", "main")
    assert "uniform_bucket_level_access = true" in bucket and "enabled = true" in bucket
    assert 'matches_prefix = ["dataflow/"]' in bucket
    sql = _resource("google_sql_database_instance", "main")
    assert '"POSTGRES_16"' in sql and "ipv4_enabled    = false" in sql
    assert "point_in_time_recovery_enabled = true" in sql
    assert "roles/storage.objectCreator" in _resource("google_storage_bucket_iam_member", "app_uploads")
    assert "/uploads/" in _resource("google_storage_bucket_iam_member", "app_uploads")
    roles = "\n".join(_tf().values())
    for role in ("roles/dataflow.worker", "roles/cloudsql.client", "roles/pubsub.subscriber",
                 "roles/pubsub.publisher", "roles/secretmanager.secretAccessor", "roles/storage.objectViewer"):
        assert role in roles
    versions = _tf()["versions.tf"]
    assert re.search(r'source\s*=\s*"hashicorp/google"\s*\n\s*version\s*=\s*">= 6.0, < 8.0"', versions)


def _terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed on this machine")
    return path


def test_terraform_fmt() -> None:
    """`terraform fmt` parses every file (syntax errors fail) and needs no providers."""
    proc = subprocess.run([_terraform(), "fmt", "-check", "-diff", str(TERRAFORM)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_terraform_validate() -> None:
    terraform = _terraform()
    if not (TERRAFORM / ".terraform" / "providers").exists():
        pytest.skip("terraform validate needs the google/random providers (`terraform init`, which downloads "
                    "them from the Terraform registry); this machine has none")
    proc = subprocess.run([terraform, f"-chdir={TERRAFORM}", "validate"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------- scripts


def _dry_run(script: str, *args: str, **env: str) -> str:
    proc = subprocess.run(["bash", str(DATAFLOW / script), *args], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1", "PROJECT": "p", "REGION": "europe-west1",
                               "BUCKET": "b", **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_build_script_builds_both_templates_from_their_metadata() -> None:
    out = _dry_run("build.sh", TAG="t1")
    for pipeline in ("sweep", "stream"):
        assert f"--metadata-file=infra/dataflow/{pipeline}-metadata.json" in out
        assert f"PIPELINE={pipeline}" in out and f"gs://b/templates/{pipeline}-t1.json" in out
    assert "--target worker" in out and "--target app" in out
    assert "WORKER_IMAGE=europe-west1-docker.pkg.dev/p/trackguard/worker:t1" in out


@pytest.mark.parametrize(("pipeline", "env"), [("stream", {}), ("sweep", {"CATALOG": "gs://b/catalog/m.parquet"})])
def test_run_script_parameters_pass_the_metadata_regexes(pipeline: str, env: dict[str, str]) -> None:
    out = _dry_run("run.sh", pipeline, **env)
    m = re.search(r"--parameters=(\S+)", out)
    assert m, out
    given = dict(kv.split("=", 1) for kv in m.group(1).replace("\\,", ",").split(","))
    meta = {p["name"]: p for p in _metadata(pipeline)["parameters"]}
    assert set(given) <= set(meta)
    assert {n for n, p in meta.items() if not p["isOptional"]} <= set(given)
    for name, value in given.items():
        for rx in meta[name].get("regexes", []):
            assert re.match(rx, value), f"{name}={value} fails {rx}"
