"""Pipeline configuration: the decision policy file, resolved against TRACKGUARD_HOME."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from trackguard.home import Home

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")


@dataclasses.dataclass(frozen=True)
class ScorerSpec:
    slot: str
    name: str
    artifact: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything a pipeline worker needs; small and picklable."""

    policy: dict[str, Any]
    scorers: tuple[ScorerSpec, ...]
    db_url: str
    home: str

    @property
    def sample_rate(self) -> int:
        return int(self.policy["decode"]["sample_rate"])

    def threshold(self, name: str) -> float | None:
        value = self.policy.get("thresholds", {}).get(name)
        return None if value is None else float(value)

    def priority(self, queue: str) -> int:
        return int(self.policy["priorities"].get(queue, 0))


def load_config(policy_path: str | Path | None = None, db_url: str | None = None,
                home: Home | None = None) -> PipelineConfig:
    home = home or Home.from_env()
    policy = yaml.safe_load(Path(policy_path or DEFAULT_POLICY).read_text())
    scorers = tuple(
        ScorerSpec(slot, spec["name"], str(spec["artifact"]).format(models=home.models, home=home.root),
                   dict(spec.get("params") or {}))
        for slot, spec in policy["scorers"].items()
        if spec
    )
    return PipelineConfig(policy=policy, scorers=scorers, db_url=db_url or home.db_url, home=str(home.root))
