"""Where the embedded default keeps its state.

Everything a run writes (database, object store, models, caches) lives under
``TRACKGUARD_HOME`` (default ``./.trackguard``), so a test or a user can isolate a
run by pointing it elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get("TRACKGUARD_HOME", ".trackguard")).resolve())

    @property
    def db_url(self) -> str:
        return os.environ.get("TRACKGUARD_DB_URL") or f"sqlite:///{self.root / 'trackguard.db'}"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def corpora(self) -> Path:
        return self.root / "corpora"

    def ensure(self) -> Home:
        for path in (self.root, self.models, self.objects, self.cache, self.corpora):
            path.mkdir(parents=True, exist_ok=True)
        return self
