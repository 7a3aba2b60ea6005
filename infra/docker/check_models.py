"""Build-time check of the worker image: every model the default policy scores with is present and verified.

Run by the worker image build (`RUN python /opt/trackguard/check_models.py`) so that a missing or altered
model fails the build, not the first bundle on a Dataflow worker. Exit 0 when all is well, 1 with one line
per problem otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from models.weights import load_registry, verify_weights, weights_dir
from pipelines.config import load_config


def problems(policy: str | None = None) -> list[str]:
    """What is missing: scorer artifacts of `policy` (default policy when None) and the registry weights they use."""
    cfg = load_config(policy)
    found: list[str] = []
    registry = load_registry()
    for scorer in cfg.scorers:
        artifact = Path(scorer.artifact)
        if not artifact.exists():
            found.append(f"{scorer.slot}: artifact {artifact} is missing (train it, or copy it into MODELS_DIR)")
            continue
        for name in registry:  # a pretrained artifact is checked file by file against weights.json
            if artifact.resolve() == weights_dir(name).resolve():
                found += [f"{scorer.slot}: {p}" for p in verify_weights(name, artifact, full=True)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    found = problems(args[0] if args else None)
    for line in found:
        print(f"check_models: {line}", file=sys.stderr)
    if not found:
        print("check_models: every scorer artifact is present; pretrained weights match weights.json")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
