"""The README's quick start stays true: exactly two commands, both real Makefile targets."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from trackguard import stream_cmd
from trackguard.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "quick start has no bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_is_exactly_make_demo_and_make_test() -> None:
    assert quick_start_commands() == ["make demo", "make test"]


def test_make_targets_exist_and_set_everything_up() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^([a-z]+):([^\n=]*)$", makefile, re.M))
    assert "setup" in targets["demo"] and "setup" in targets["test"]
    assert {"system", "venv", "models"} <= set(targets["setup"].split())
    assert "apt-get install" in makefile and "pip install" in makefile


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_trackguard_command_in_readme_parses() -> None:
    parser = build_parser()
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    commands = [line.split("#")[0].strip() for line in text.splitlines() if line.strip().startswith("trackguard ")]
    assert len(commands) >= 8
    own_parsers = {"stream": stream_cmd.parse_args, "relay": stream_cmd.relay_parser().parse_args}
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        if argv[0] in own_parsers:  # these parse their own options (`trackguard.cli.PASS_THROUGH`)
            own_parsers[argv[0]](argv[1:])
        else:
            parser.parse_args(argv)  # raises SystemExit on an unknown command or flag
