"""Hash-chained audit log on SQLite and PostgreSQL: it verifies, and edits, deletions and swaps made in SQL show."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from moderation.audit import GENESIS, entry_hash, record_registry_change, verify
from moderation.review import Action, InvalidDecisionError, ReviewService
from moderation.schema import audit_log
from tests.review_support import (  # noqa: F401  (fixtures)
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
from trackguard import cli


def _activity(service: ReviewService, people: People, db_url: str) -> None:
    """Enough traffic for a chain of ~20 entries: users, claims, decisions, an appeal, a release."""
    file_cases(db_url, flagged("a"), flagged("b"), flagged("c"))
    for user in (people.alice, people.bob):
        c = claim(service, user)
        service.decide(user, c.case_id, c.lease_token, Action.UPHOLD, f"spam ({user.username})")
    r = claim(service, people.alice)
    service.release(people.alice, r.case_id, r.lease_token)
    service.file_appeal(people.dist, "a", "appeal")


def test_chain_links_and_verifies(service: ReviewService, people: People, db_url: str) -> None:
    _activity(service, people, db_url)
    result = service.verify_audit()
    assert result.ok and result.first_bad_seq is None and result.entries >= 13
    entries = sorted(service.audit_log(limit=1000), key=lambda e: e.seq)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    first = entries[0]
    assert first.hash == entry_hash(GENESIS, 1, first.at, first.actor, first.action, first.subject_type,
                                    first.subject_id, first.details)
    actions = {e.action for e in entries}
    assert {"user_create", "claim", "decide", "release", "appeal"} <= actions
    assert verify(db_url).ok


def _tamper(service: ReviewService, statement: object) -> None:
    with service.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_an_edited_row_is_found(service: ReviewService, people: People, db_url: str) -> None:
    _activity(service, people, db_url)
    decide = next(e for e in sorted(service.audit_log(limit=1000), key=lambda e: e.seq) if e.action == "decide")
    _tamper(service, update(audit_log).where(audit_log.c.seq == decide.seq)
            .values(details={**decide.details, "action": "dismiss"}))
    result = service.verify_audit()
    assert not result.ok and result.first_bad_seq == decide.seq and "edited" in (result.problem or "")


def test_a_deleted_middle_row_is_found(service: ReviewService, people: People, db_url: str) -> None:
    _activity(service, people, db_url)
    _tamper(service, delete(audit_log).where(audit_log.c.seq == 5))
    result = verify(db_url)
    assert not result.ok and result.first_bad_seq == 6


def test_swapped_rows_are_found(service: ReviewService, people: People, db_url: str) -> None:
    _activity(service, people, db_url)
    with service.engine.begin() as conn:
        rows = {r.seq: r for r in conn.execute(select(audit_log).where(audit_log.c.seq.in_([7, 8])))}
        keep = ("at", "actor", "action", "subject_type", "subject_id", "details", "prev_hash", "hash")
        for seq, other in ((7, 8), (8, 7)):
            conn.execute(update(audit_log).where(audit_log.c.seq == seq)
                         .values({k: getattr(rows[other], k) for k in keep}))
    result = verify(db_url)
    assert not result.ok and result.first_bad_seq == 7


def test_cli_verify_exit_codes(service: ReviewService, people: People, db_url: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    _activity(service, people, db_url)
    assert cli.main(["audit", "verify", "--db-url", db_url]) == 0
    assert "OK" in capsys.readouterr().out
    _tamper(service, update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    assert cli.main(["audit", "verify", "--db-url", db_url]) == 1
    out = capsys.readouterr().out
    assert "first bad seq 3" in out
    assert cli.main(["audit", "show", "--case", "1", "--limit", "5", "--db-url", db_url]) == 0
    assert "\tdecide\tcase:1\t" in capsys.readouterr().out


def test_an_anchor_catches_entries_cut_off_the_end(service: ReviewService, people: People, db_url: str,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from moderation.audit_anchor import read_anchor

    anchor = tmp_path / "offsite" / "audit-head.json"
    _activity(service, people, db_url)
    assert cli.main(["audit", "verify", "--anchor", str(anchor), "--db-url", db_url]) == 0
    head = read_anchor(anchor)
    assert head is not None and head[0] == service.verify_audit().entries
    r = claim(service, people.alice)  # more activity: the anchor moves forward on the next verify
    service.release(people.alice, r.case_id, r.lease_token)
    assert cli.main(["audit", "verify", "--anchor", str(anchor), "--db-url", db_url]) == 0
    newer = read_anchor(anchor)
    assert newer is not None and newer[0] == head[0] + 2
    _tamper(service, delete(audit_log).where(audit_log.c.seq >= newer[0] - 1))  # cut the tail off
    assert service.verify_audit().ok, "the chain alone cannot see a cut tail"
    assert cli.main(["audit", "verify", "--anchor", str(anchor), "--db-url", db_url]) == 1
    assert "cut off its end" in capsys.readouterr().out
    assert read_anchor(anchor) == newer, "a failed verify must not move the anchor"


def test_registry_changes_are_audited_without_biometrics(db_url: str) -> None:
    import numpy as np

    from models.voiceprints import VoiceprintStore
    from trackguard.enrol import optout_artist

    emb = np.random.default_rng(1).normal(size=(3, 16)).astype(np.float32)
    VoiceprintStore(db_url).enroll("a-9", "Nine", "block", "label:test", emb, ["r1.wav", "r2.wav", "r3.wav"])
    record_registry_change(db_url, "label:test", "enroll", "a-9", {"policy": "block", "n_sources": 3})
    erased = optout_artist(db_url, "a-9", "label:test")
    with pytest.raises(ValueError, match="vector"):
        record_registry_change(db_url, "x", "enroll", "a-9", {"centroid": [float(v) for v in emb[0]]})
    with pytest.raises(ValueError, match="score"):
        record_registry_change(db_url, "x", "policy", "a-9", {"voice_similarity": 3.2})
    svc = ReviewService(db_url)
    try:
        entries = sorted(svc.audit_log(subject_type="artist", subject_id="a-9"), key=lambda e: e.seq)
        assert [e.action for e in entries] == ["registry_enroll", "registry_optout"]
        assert entries[1].details == {"erased": erased} and entries[1].actor == "label:test"
        assert svc.verify_audit().ok
    finally:
        svc.close()


def test_any_text_in_a_reason_keeps_the_chain_valid(service: ReviewService, people: People, db_url: str) -> None:
    reasons = ['Réclamation "citée" \\ back\\slash', "tab\there, newline\nthere, emoji 🎵", "</script>&amp;"]
    file_cases(db_url, *[flagged(f"u{i}") for i in range(len(reasons))])
    for reason in reasons:
        c = claim(service, people.alice)
        assert service.decide(people.alice, c.case_id, c.lease_token, Action.UPHOLD, reason).reason == reason.strip()
    with pytest.raises(InvalidDecisionError):
        service.decide(people.alice, 1, "t", Action.UPHOLD, "nul\x00byte")
    decided = [e.details["reason"] for e in sorted(service.audit_log(), key=lambda e: e.seq) if e.action == "decide"]
    assert decided == [r.strip() for r in reasons]
    assert service.verify_audit().ok
