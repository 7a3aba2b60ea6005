"""A small review world for the web tests: users, cases with uploads and audio, an enrolled artist.

Everything is real (SQLite file, argon2 hashes, soundfile WAVs) except the clock,
which tests can move forward to expire leases.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient

from models.voiceprints import VoiceprintStore
from moderation.cases import CaseStore
from moderation.review import ReviewService, Role
from moderation.web.app import create_app
from tests.review_support import Clock
from trackguard.contracts import Decision, Queue, Segment, Verdict

PASSWORD = "correct horse battery"
SR = 16000
DURATION_S = 4.0
USERS: dict[str, tuple[Role, str | None]] = {
    "ada": (Role.ADMIN, None),
    "lee": (Role.LEAD, None),
    "rita": (Role.REVIEWER, None),
    "rob": (Role.REVIEWER, None),
    "dora": (Role.DISTRIBUTOR, "dist-a"),
    "dan": (Role.DISTRIBUTOR, "dist-b"),
}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LEASE_RE = re.compile(r'name="lease_token" value="([^"]+)"')


def write_wav(path: Path, freq: float = 220.0, seconds: float = DURATION_S) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path


def verdicts() -> list[Verdict]:
    seg = [Segment(0.5, 1.5, 0.93), Segment(2.0, 3.0, 0.81)]
    return [
        Verdict("up-imp", Decision.BLOCK, Queue.IMPERSONATION, 100,
                ["synthetic_voice", "matches_enrolled_artist", "artist_policy_block"], synthetic_score=0.95,
                synthetic_segments=seg, matched_artist_id="art-1", voice_similarity=0.81, spam_score=0.1,
                model_versions={"detector": "lcnn-test"}),
        Verdict("up-ai", Decision.REVIEW, Queue.UNDISCLOSED_AI, 60, ["synthetic_voice", "undisclosed_ai"],
                synthetic_score=0.8, synthetic_segments=seg[:1]),
        Verdict("up-dup", Decision.REVIEW, Queue.DUPLICATES, 40, ["duplicate"], duplicate_of="up-ai",
                spam_score=0.7, spam_reasons=["near-duplicate of 1 earlier upload", "uploader has 40 earlier uploads"]),
        Verdict("up-gone", Decision.REVIEW, Queue.SPAM, 30, ["spam"], spam_score=0.9),
        Verdict("up-b", Decision.REVIEW, Queue.SPAM, 30, ["spam"], spam_score=0.8),
    ]


def uploads(audio: dict[str, Path]) -> list[dict[str, Any]]:
    rows = []
    for uid, path in audio.items():
        title = "<script>alert(1)</script>" if uid == "up-b" else f"Song {uid}"  # distributor text is untrusted
        rows.append({"upload_id": uid, "audio_uri": f"file://{path}", "title": title,
                     "artist_name": "Some Artist", "distributor_id": "dist-b" if uid == "up-b" else "dist-a",
                     "uploader_id": "uploader-1", "uploaded_at": "2026-01-02T03:04:05Z", "declared_ai": False})
    return rows


@dataclasses.dataclass
class World:
    service: ReviewService
    app: Any
    db_url: str
    audio: dict[str, Path]
    clock: Clock
    cache_dir: Path

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://testserver", follow_redirects=False)

    def case_id(self, upload_id: str) -> int:
        case_id = self.service.case_id_for_upload(upload_id)
        assert case_id is not None
        return case_id

    def user(self, username: str) -> Any:
        return next(u for u in self.service.list_users() if u.username == username)


@dataclasses.dataclass(frozen=True)
class Seed:
    """A seeded database and its audio, built once per test module; each test gets its own copy of the database."""

    db: Path
    audio: dict[str, Path]


def seed_world(tmp: Path) -> Seed:
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'seed.db'}"
    audio = {uid: write_wav(tmp / f"{uid}.wav", 200.0 + 40 * i)
             for i, uid in enumerate(["up-imp", "up-ai", "up-dup", "up-gone", "up-b"])}
    store = CaseStore(url)
    store.upsert_uploads(uploads(audio))
    store.upsert_verdicts(verdicts())
    audio["up-gone"].unlink()  # its file disappeared after the sweep
    ref = write_wav(tmp / "reference.wav", 330.0)
    VoiceprintStore(url).enroll("art-1", "Artist One", "block", "consent office", np.ones((1, 8), np.float32),
                                [str(ref)], licensed_partner_ids=["partner-9"])
    service = ReviewService(url)
    for name, (role, dist) in USERS.items():  # argon2 hashing: the slow part, done once per module
        service.create_user(name, PASSWORD, role, distributor_id=dist)
    return Seed(tmp / "seed.db", audio)


def build_world(tmp: Path, seed: Seed | None = None, *, secure_cookies: bool = False) -> World:
    """A fresh copy of the seeded database (the SQLite backup API copies WAL content too) behind a new app."""
    seed = seed or seed_world(tmp / "seed")
    tmp.mkdir(parents=True, exist_ok=True)
    db = tmp / "web.db"
    with sqlite3.connect(seed.db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    url = f"sqlite:///{db}"
    clock = Clock()
    service = ReviewService(url, clock=clock)
    app = create_app(service, secret_key="test-secret-key", secure_cookies=secure_cookies, db_url=url)
    app.state.cache_dir = tmp / "cache"
    return World(service, app, url, seed.audio, clock, tmp / "cache")


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token (from the next page)."""
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/").text)

