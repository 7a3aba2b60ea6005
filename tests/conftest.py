"""Shared fixtures: isolated TRACKGUARD_HOME, a real PostgreSQL database, a small corpus, the ECAPA model."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_HOME = Path(__file__).resolve().parents[1] / ".trackguard"
PRETRAINED_ROOT = Path(os.environ.get("TRACKGUARD_PRETRAINED", REPO_HOME / "models" / "pretrained"))
PG_ADMIN_URL = os.environ.get("TRACKGUARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture()
def tg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TRACKGUARD_HOME", str(home))
    monkeypatch.delenv("TRACKGUARD_DB_URL", raising=False)
    return home


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tg.db'}"


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test, dropped afterwards; skips (with why) when none runs."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tg_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server here: say so instead of failing
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(exc).__name__}); "
                    "set TRACKGUARD_TEST_PG to run the PostgreSQL tests")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from trackguard.sql import dispose_engine

    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


SMALL_CORPUS_SEED = 3


@pytest.fixture(scope="session")
def small_corpus_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The small synthetic corpus (seed 3), built once per test session, and what `make_corpus` returned.

    Tests read it and never write into it: test_corpus's determinism test compares it byte for
    byte with a second build of the same seed.
    """
    from trackguard.corpus import make_corpus

    out = tmp_path_factory.mktemp("corpus-small")
    return out, make_corpus(out, seed=SMALL_CORPUS_SEED, size="small")


@pytest.fixture(scope="session")
def small_corpus(small_corpus_build: tuple[Path, dict[str, Any]]) -> Path:
    return small_corpus_build[0]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The pretrained ECAPA directory (`trackguard setup models`); skips, saying how to get it, when absent."""
    from models.speaker import PRETRAINED
    from models.weights import MissingWeightsError, require_weights

    try:
        return require_weights(PRETRAINED, directory=PRETRAINED_ROOT / PRETRAINED)
    except MissingWeightsError as exc:
        pytest.skip(f"ECAPA weights not set up: run `make models` (trackguard setup models). {exc}")


@pytest.fixture(scope="session")
def encoder(model_dir: Path) -> Any:
    """The ECAPA encoder, loaded once per test session."""
    from models.speaker import load_speaker_encoder

    return load_speaker_encoder(model_dir)


@pytest.fixture(scope="session")
def trained_home(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A TRACKGUARD_HOME with tiny models trained by the project's own commands and the opted-in artists enrolled.

    Built once per session (the sweep and the streaming end-to-end tests share it). ``enrolled.db`` is a copy
    of the database right after enrolment, for tests that need their own database with the same registry.
    """
    import shutil

    from trackguard.cli import main

    if not (PRETRAINED_ROOT / "ecapa-voxceleb").exists():
        pytest.skip(f"ECAPA weights not set up at {PRETRAINED_ROOT}: run `make models` (trackguard setup models)")
    home = tmp_path_factory.mktemp("trained-home")
    old = {k: os.environ.get(k) for k in ("TRACKGUARD_HOME", "TRACKGUARD_DB_URL")}
    os.environ["TRACKGUARD_HOME"] = str(home)
    os.environ.pop("TRACKGUARD_DB_URL", None)
    try:
        (home / "models").mkdir(parents=True)
        (home / "models" / "pretrained").symlink_to(PRETRAINED_ROOT)
        assert main(["train", "detector", "--corpus", str(small_corpus), "--epochs", "2"]) == 0
        assert main(["train", "spam", "--corpus", str(small_corpus)]) == 0
        # A cappella windows only: the backing-track windows are three quarters of enrolment's time (41 s
        # against 10 s here), and no test sharing this home asserts which artist an upload matches
        # (test_enrol covers the backing windows; `make demo` enrols with them).
        assert main(["artists", "enroll-corpus", "--corpus", str(small_corpus), "--consent-by", "test-label",
                     "--backing-db", "none"]) == 0
        shutil.copy(home / "trackguard.db", home / "enrolled.db")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield home
