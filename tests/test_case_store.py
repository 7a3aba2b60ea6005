"""Case store on real SQLite and PostgreSQL: one case per upload, idempotent upserts, evidence versions."""

from __future__ import annotations

import pytest

from moderation.cases import CaseStore
from trackguard.contracts import Decision, ErrorCode, Queue, Verdict, error_verdict


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> CaseStore:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return CaseStore(url)


def flagged(uid: str, score: float = 0.9) -> Verdict:
    return Verdict(uid, Decision.REVIEW, Queue.UNDISCLOSED_AI, 60, ["synthetic_voice"], synthetic_score=score)


def test_rerun_is_idempotent(store: CaseStore) -> None:
    verdicts = [flagged("a"), error_verdict("b", ErrorCode.AUDIO_EMPTY, "zero bytes"), Verdict("c", Decision.PASS)]
    first = store.upsert_verdicts(verdicts)
    second = store.upsert_verdicts(verdicts)
    assert first["cases_new"] == 2 and first["evidence_new"] == 2
    assert second["cases_new"] == 0 and second["evidence_new"] == 0 and second["unchanged"] == 2
    assert store.queue_counts() == {"undisclosed-ai": 1, "errors": 1}
    assert store.get_verdict("c") is not None and store.get_verdict("c").decision is Decision.PASS  # type: ignore[union-attr]


def test_rescoring_adds_evidence_version_not_a_case(store: CaseStore) -> None:
    store.upsert_verdicts([flagged("a", 0.9)])
    store.upsert_verdicts([flagged("a", 0.95)])
    assert store.case_count() == 1
    versions = store.evidence_versions("a")
    assert [v["_version"] for v in versions] == [1, 2]
    assert versions[-1]["synthetic_score"] == 0.95
    assert store.get_verdict("a").synthetic_score == 0.95  # type: ignore[union-attr]


def test_pass_verdicts_file_no_case(store: CaseStore) -> None:
    store.upsert_verdicts([Verdict("p", Decision.PASS)])
    assert store.case_count() == 0
