"""Flex Template entry point of the catalogue sweep (FLEX_TEMPLATE_PYTHON_PY_FILE of the sweep template).

It submits the job and returns: the Flex Template launcher must exit after `run` (Google's Flex Template
docs: do not call wait_until_finish). `pipelines.sweep.run` waits for the job and then reads
verdicts.parquet from the local disk to check completeness, so this module builds the same pipeline from
sweep's own parts (`parse_args`, `load_config`, `prepare_stores`, `pipeline_options`, `build`) and stops
after submission. The completeness check of a Dataflow sweep is therefore not run here (see docs/production.md).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # flex_args.py lives beside this file in the image

from flex_args import pipeline_argv

# Template parameters that are flags of `trackguard sweep` (underscore spelling); see sweep-metadata.json.
CLI_PARAMS = ("catalog", "out", "policy", "db_url")


def submit(argv: Sequence[str]) -> str:
    """Build the sweep for `argv` (pipeline argv, after `pipeline_argv`) and submit it; returns the job id."""
    import apache_beam as beam

    from pipelines import sweep
    from pipelines.config import load_config

    args, beam_args = sweep.parse_args(list(argv))
    cfg = load_config(args.policy, args.db_url)
    sweep.prepare_stores(cfg.db_url)  # schema migrations once, before any worker opens the database
    p = beam.Pipeline(options=sweep.pipeline_options(beam_args, 1))
    sweep.build(p, args.catalog, args.out, cfg)
    return _job_id(p.run())


def _job_id(result: Any) -> str:
    job_id = getattr(result, "job_id", None)
    return str(job_id() if callable(job_id) else job_id or "")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = pipeline_argv(sys.argv[1:] if argv is None else argv, CLI_PARAMS, default_gpu="none",
                         env=os.environ)
    print(f"submitted sweep job {submit(args)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
