"""Flex Template entry point of the upload stream (FLEX_TEMPLATE_PYTHON_PY_FILE of the stream template).

Calls `trackguard.stream_cmd.run(argv)` (what `trackguard stream` runs) with the Dataflow defaults of
`flex_args` (GPU workers by default: nvidia-l4:1 on g2-standard-4, streaming mode). With a Dataflow
runner `run` submits the job and returns (the Flex Template launcher waits for this process to exit);
the outbox relay and callbacks then run as `trackguard relay`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # flex_args.py lives beside this file in the image

from flex_args import pipeline_argv

# Template parameters that are flags of `trackguard stream` (underscore spelling); see stream-metadata.json.
CLI_PARAMS = ("subscription", "dead_letter_topic", "db_url", "policy")
DEFAULT_GPU = "nvidia-l4:1"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = pipeline_argv(sys.argv[1:] if argv is None else argv, CLI_PARAMS, default_gpu=DEFAULT_GPU,
                         streaming=True, env=os.environ)
    from trackguard import stream_cmd

    return stream_cmd.run(args)


if __name__ == "__main__":
    sys.exit(main())
