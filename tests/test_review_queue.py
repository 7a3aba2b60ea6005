"""Review queue on real SQLite and PostgreSQL: claim order, leases, decisions, escalation, appeals, credit, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moderation.cases import CaseStore
from moderation.ledger import AttributionLedger
from moderation.review import (
    Action,
    ConflictError,
    InvalidDecisionError,
    NotAllowedError,
    NotFoundError,
    ReviewService,
    Role,
    StaleLeaseError,
)
from tests.review_support import (  # noqa: F401  (fixtures)
    Clock,
    People,
    cheap_argon2_fixture,
    claim,
    clock_fixture,
    db_url_fixture,
    file_cases,
    flagged,
    people_fixture,
    service_fixture,
)
from trackguard.contracts import Queue


def test_claims_come_by_priority_then_age(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("old-low", priority=10), flagged("old-high", priority=90),
               flagged("new-high", priority=90), flagged("mid", Queue.IMPERSONATION, priority=50))
    order = [claim(service, people.alice).upload_id for _ in range(4)]
    assert order == ["old-high", "new-high", "mid", "old-low"]
    assert service.claim_next(people.alice) is None
    assert service.claim_next(people.dist) is None  # distributors never claim


def test_claim_next_by_queue(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("s", priority=90), flagged("i", Queue.IMPERSONATION, priority=10))
    assert claim(service, people.alice, "impersonation").upload_id == "i"
    assert service.claim_next(people.alice, "impersonation") is None


def test_expired_lease_returns_the_case(service: ReviewService, people: People, db_url: str, clock: Clock) -> None:
    file_cases(db_url, flagged("a"))
    first = claim(service, people.alice)
    assert service.claim_next(people.bob) is None
    with pytest.raises(StaleLeaseError):
        service.claim_case(people.bob, first.case_id)
    clock.advance(61)  # lease_s is 60 in these tests
    second = claim(service, people.bob)
    assert second.case_id == first.case_id and second.lease_token != first.lease_token
    with pytest.raises(StaleLeaseError):  # alice's lease expired and was taken over
        service.decide(people.alice, first.case_id, first.lease_token, Action.DISMISS, "late")
    assert service.decide(people.bob, second.case_id, second.lease_token, Action.DISMISS, "ok").reviewer == "bob"


def test_decisions_need_the_live_lease_of_the_decider(service: ReviewService, people: People, db_url: str,
                                                      clock: Clock) -> None:
    file_cases(db_url, flagged("a"), flagged("b"))
    c = claim(service, people.alice)
    with pytest.raises(StaleLeaseError):
        service.decide(people.alice, c.case_id, "not-the-token", Action.UPHOLD, "spam")
    with pytest.raises(StaleLeaseError):
        service.decide(people.bob, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    with pytest.raises(InvalidDecisionError):
        service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "   ")
    with pytest.raises(InvalidDecisionError):
        service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "x" * 2001)
    clock.advance(10)
    renewed = service.renew(people.alice, c.case_id, c.lease_token)
    assert renewed.lease_until > c.lease_until
    service.release(people.alice, c.case_id, c.lease_token)
    with pytest.raises(StaleLeaseError):  # released
        service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    with pytest.raises(StaleLeaseError):
        service.renew(people.alice, c.case_id, c.lease_token)
    d = claim(service, people.alice)
    clock.advance(61)
    with pytest.raises(StaleLeaseError):  # expired (nobody took it, still refused)
        service.decide(people.alice, d.case_id, d.lease_token, Action.UPHOLD, "spam")
    with pytest.raises(NotFoundError):
        service.decide(people.alice, 999_999, "t", Action.UPHOLD, "spam")
    assert [s.status for s in service.list_cases(status="all")] == ["open", "open"]


def test_a_decided_case_cannot_be_decided_again(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("a"))
    c = claim(service, people.alice)
    service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    with pytest.raises(StaleLeaseError):
        service.decide(people.alice, c.case_id, c.lease_token, Action.DISMISS, "changed my mind")
    with pytest.raises(InvalidDecisionError):
        service.claim_case(people.bob, c.case_id)
    [summary] = service.list_cases(status="decided")
    assert summary.resolution is Action.UPHOLD and summary.claimed_by is None


def test_claims_are_never_shared(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, *[flagged(f"u{i}") for i in range(6)])
    claims = [claim(service, u) for u in (people.alice, people.bob, people.lena, people.alice, people.bob,
                                          people.lena)]
    assert len({c.case_id for c in claims}) == 6
    assert service.claim_next(people.adam) is None
    stats = {s.queue: s for s in service.queue_stats()}
    assert stats["spam"].open == 6 and stats["spam"].claimed == 6


def test_escalation_goes_to_a_lead(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("a"))
    c = claim(service, people.alice)
    record = service.decide(people.alice, c.case_id, c.lease_token, Action.ESCALATE, "needs a lead")
    assert record.action is Action.ESCALATE
    [summary] = service.list_cases()
    assert summary.status == "open" and summary.min_role is Role.LEAD and summary.resolution is None
    assert service.claim_next(people.bob) is None
    with pytest.raises(NotAllowedError):
        service.claim_case(people.bob, c.case_id)
    lead = claim(service, people.lena)
    service.decide(people.lena, lead.case_id, lead.lease_token, Action.UPHOLD, "confirmed")
    assert service.list_cases(status="decided")[0].resolution is Action.UPHOLD


def test_appeal_goes_to_another_lead_and_closes(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("a"))
    c = claim(service, people.lena)  # decided by a lead, so that lead is excluded from the appeal
    first = service.decide(people.lena, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    with pytest.raises(NotAllowedError):
        service.file_appeal(people.other, "a", "not ours")  # another distributor
    with pytest.raises(NotAllowedError):
        service.file_appeal(people.alice, "a", "reviewers do not appeal")
    appeal = service.file_appeal(people.dist, "a", "this is an original recording")
    assert appeal.decision_id == first.id and appeal.status == "open" and appeal.distributor_id == "d1"
    with pytest.raises(ConflictError):
        service.file_appeal(people.adam, "a", "again")
    [summary] = service.list_cases("appeals")
    assert summary.min_role is Role.LEAD and summary.status == "open"
    assert service.claim_next(people.alice) is None  # reviewers cannot take appeals
    assert service.claim_next(people.lena) is None  # the lead who decided is excluded
    with pytest.raises(NotAllowedError):
        service.claim_case(people.lena, c.case_id)
    a = claim(service, people.lars, "appeals")
    record = service.decide(people.lars, a.case_id, a.lease_token, Action.DISMISS, "appeal granted")
    assert record.appeal_id == appeal.id
    detail = service.case_detail(c.case_id, people.adam)
    assert [ap.status for ap in detail.appeals] == ["overturned"]
    assert detail.summary.queue == "spam" and detail.summary.status == "decided"
    assert detail.summary.resolution is Action.DISMISS
    status = service.verdict_status("a", people.dist)
    assert status["final_decision"]["action"] == "dismiss" and status["appeal"]["status"] == "overturned"
    assert "reviewer" not in status["final_decision"]


def test_only_final_decisions_can_be_appealed(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("a"))
    with pytest.raises(InvalidDecisionError):
        service.file_appeal(people.dist, "a", "nothing decided yet")
    with pytest.raises(NotFoundError):
        service.file_appeal(people.adam, "nope", "unknown upload")


def test_credit_writes_one_ledger_entry(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("lic", Queue.IMPERSONATION, 100, matched_artist_id="a-1", voice_similarity=3.3),
               flagged("plain"))
    c = claim(service, people.alice)
    service.decide(people.alice, c.case_id, c.lease_token, Action.CREDIT, "licensed partner upload")
    entries = AttributionLedger(db_url).entries()
    assert [(e["artist_id"], e["upload_id"], e["uploader_id"]) for e in entries] == [("a-1", "lic", "label-1")]
    p = claim(service, people.alice)
    with pytest.raises(InvalidDecisionError):  # no matched artist: refused, and nothing changed
        service.decide(people.alice, p.case_id, p.lease_token, Action.CREDIT, "credit whom?")
    assert len(AttributionLedger(db_url).entries()) == 1
    assert service.decide(people.alice, p.case_id, p.lease_token, Action.DISMISS, "fine").action is Action.DISMISS


def test_rescoring_a_decided_case_keeps_it_decided(service: ReviewService, people: People, db_url: str) -> None:
    store = file_cases(db_url, flagged("a", spam_score=0.7))
    c = claim(service, people.alice)
    service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    again = store.upsert_verdicts([flagged("a", spam_score=0.7)])
    assert again["unchanged"] == 1 and again["evidence_new"] == 0
    changed = store.upsert_verdicts([flagged("a", Queue.DUPLICATES, 90, spam_score=0.9)])
    assert changed["evidence_new"] == 1 and changed["cases_new"] == 0
    [summary] = service.list_cases(status="all")
    assert summary.status == "decided" and summary.queue == "spam" and summary.evidence_version == 2
    assert service.claim_next(people.bob) is None


def test_queue_stats_cover_every_queue_and_sla(service: ReviewService, people: People, db_url: str,
                                               clock: Clock) -> None:
    file_cases(db_url, flagged("i", Queue.IMPERSONATION), flagged("s"))
    claim(service, people.alice, "spam")
    stats = {s.queue: s for s in service.queue_stats()}
    assert set(stats) == {q.value for q in Queue}
    assert stats["appeals"].open == 0 and stats["appeals"].oldest_age_s is None
    assert stats["spam"].claimed == 1 and stats["impersonation"].sla_breaches == 0
    clock.advance(5 * 3600)  # past impersonation's 4 h, within spam's 72 h
    stats = {s.queue: s for s in service.queue_stats()}
    assert stats["impersonation"].sla_breaches == 1 and stats["spam"].sla_breaches == 0
    assert stats["impersonation"].sla_s == 4 * 3600 and stats["impersonation"].oldest_age_s > 5 * 3600 - 60
    assert stats["spam"].claimed == 0  # the lease has expired meanwhile


def test_case_detail_and_biometric_views_are_audited(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("imp", Queue.IMPERSONATION, 100, matched_artist_id="a-1", voice_similarity=3.1),
               flagged("s"))
    imp, plain = service.case_id_for_upload("imp"), service.case_id_for_upload("s")
    assert imp is not None and plain is not None and service.case_id_for_upload("nope") is None
    detail = service.case_detail(imp, people.alice)
    assert detail.verdict["matched_artist_id"] == "a-1" and detail.upload is not None
    assert detail.upload["distributor_id"] == "d1" and [v["_version"] for v in detail.evidence_versions] == [1]
    assert [e.action for e in detail.history] == ["view_biometric"]
    service.case_detail(plain, people.alice)
    assert [e.action for e in service.audit_log(subject_type="case", subject_id=str(plain))] == []
    with pytest.raises(NotAllowedError):
        service.case_detail(imp, people.dist)
    with pytest.raises(NotFoundError):
        service.case_detail(999_999, people.alice)


def test_distributors_see_only_their_uploads(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("mine", Queue.IMPERSONATION, matched_artist_id="a-1", voice_similarity=3.0))
    status = service.verdict_status("mine", people.dist)
    assert status["case"]["status"] == "open" and status["verdict"]["voice_similarity"] is None
    assert service.verdict_status("mine", people.alice)["verdict"]["voice_similarity"] == 3.0
    with pytest.raises(NotAllowedError):
        service.verdict_status("mine", people.other)
    with pytest.raises(NotFoundError):
        service.verdict_status("unknown", people.dist)


def test_reference_recordings_are_for_leads_and_audited(service: ReviewService, people: People, db_url: str) -> None:
    from models.voiceprints import VoiceprintStore

    emb = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    refs = ["/refs/a1-1.wav", "/refs/a1-2.wav"]
    VoiceprintStore(db_url).enroll("a-1", "Artist One", "block", "label:test", emb, refs)
    with pytest.raises(NotAllowedError):
        service.reference_recordings("a-1", people.alice)
    assert service.reference_recordings("a-1", people.lena) == ["/refs/a1-1.wav", "/refs/a1-2.wav"]
    service.record_reference_play(people.lena, "a-1", "/refs/a1-2.wav")
    with pytest.raises(NotFoundError):  # only the artist's own enrolment recordings
        service.record_reference_play(people.lena, "a-1", "/etc/passwd")
    with pytest.raises(NotAllowedError):
        service.record_reference_play(people.bob, "a-1", "/refs/a1-1.wav")
    actions = [e.action for e in service.audit_log(subject_type="artist", subject_id="a-1")]
    assert actions == ["play_reference", "list_references"]


def test_export_labels_one_row_per_final_decision(service: ReviewService, people: People, db_url: str) -> None:
    file_cases(db_url, flagged("up", spam_score=0.9, model_versions={"spam": "spam-v1"}), flagged("down"),
               flagged("open"), flagged("esc"))
    for action in (Action.UPHOLD, Action.DISMISS):
        c = claim(service, people.alice)
        service.decide(people.alice, c.case_id, c.lease_token, action, f"reason {action.value}")
    service.file_appeal(people.dist, "down", "please look again")
    a = claim(service, people.lena, "appeals")
    service.decide(people.lena, a.case_id, a.lease_token, Action.UPHOLD, "it is spam after all")
    esc = claim(service, people.alice)
    service.decide(people.alice, esc.case_id, esc.lease_token, Action.ESCALATE, "unsure")
    rows = {r["upload_id"]: r for r in service.export_labels()}
    assert set(rows) == {"up", "down"}
    assert rows["up"]["label"] == 1 and rows["up"]["spam_score"] == 0.9 and not rows["up"]["appealed"]
    assert rows["up"]["model_versions"] == {"spam": "spam-v1"} and rows["up"]["evidence_version"] == 1
    assert rows["down"]["queue"] == "spam" and rows["down"]["action"] == "uphold" and rows["down"]["appealed"]
    assert rows["down"]["reason"] == "it is spam after all"
    assert all(len(r["reviewer"]) == 12 and r["reviewer"] not in ("alice", "lena") for r in rows.values())


def test_upsert_uploads_keeps_what_parses(db_url: str) -> None:
    store = CaseStore(db_url)
    rows = [{"upload_id": "u1", "audio_uri": "/a/u1.flac", "title": "Song", "artist_name": "A",
             "distributor_id": "d1", "uploader_id": "l1", "uploaded_at": "2025-02-01T10:00:00Z",
             "declared_ai": "yes", "genre": float("nan")},
            {"upload_id": "u2", "audio_uri": "ftp://nope", "uploaded_at": "yesterday", "declared_ai": "maybe",
             "title": 42},
            {"upload_id": None, "title": "no id"}, {"title": "no id either"}]
    assert store.upsert_uploads(rows) == 2
    assert store.upsert_uploads(rows) == 2  # idempotent
    svc = ReviewService(db_url)
    try:
        from moderation.views import upload_row

        with svc.engine.connect() as conn:
            u1, u2 = upload_row(conn, "u1"), upload_row(conn, "u2")
    finally:
        svc.close()
    assert u1 is not None and u2 is not None
    assert u1["audio_uri"] == "file:///a/u1.flac" and u1["declared_ai"] is True and u1["uploaded_at"].year == 2025
    assert u1["raw"]["genre"] is None  # NaN is not JSON
    assert u2["audio_uri"] is None and u2["uploaded_at"] is None and u2["declared_ai"] is None and u2["title"] is None
    assert u2["raw"]["title"] == 42 and u2["raw"]["audio_uri"] == "ftp://nope"


def test_labels_command_writes_parquet_and_csv(service: ReviewService, people: People, db_url: str,
                                               tmp_path: Path) -> None:
    import pandas as pd

    from trackguard import cli

    file_cases(db_url, flagged("up", spam_score=0.8, model_versions={"spam": "spam-v1"}), flagged("open"))
    c = claim(service, people.alice)
    service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, "spam")
    for name in ("labels.parquet", "labels.csv"):
        assert cli.main(["export", "labels", "--out", str(tmp_path / name), "--db-url", db_url]) == 0
    frame = pd.read_parquet(tmp_path / "labels.parquet")
    assert list(frame["upload_id"]) == ["up"] and frame["label"].tolist() == [1]
    assert frame["model_versions"].tolist() == ['{"spam": "spam-v1"}']
    assert pd.read_csv(tmp_path / "labels.csv")["action"].tolist() == ["uphold"]
    assert cli.main(["export", "labels", "--out", str(tmp_path / "labels.txt"), "--db-url", db_url]) == 2
