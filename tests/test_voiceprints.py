"""Voiceprint registry: AS-norm scoring from the stored cohort, calibration, erasure completeness, the ledger.

Vectors here are hand-made (no speaker model): the registry stores and erases
bytes, and the normalisation is arithmetic on cosines.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import MetaData, select

from models.asnorm import VoiceCalibration, threshold_for_far
from models.base import TrackInput
from models.verifier import (
    AS_NORM,
    BEST_WINDOW,
    DEFAULT_THRESHOLD,
    MEAN,
    RAW,
    EcapaVerifier,
    LoadedVerifier,
    operating_point,
    score_matrix,
    scorer_id,
    search_tracks,
    track_scores,
)
from models.voiceprints import LEDGER_TABLE, VoiceprintStore, subject_ref
from moderation.cases import CaseStore
from moderation.ledger import AttributionLedger
from trackguard import cli
from trackguard.contracts import Decision, ManifestRow, Queue, Verdict
from trackguard.enrol import trial_rates
from trackguard.sql import get_engine

D = 16
MODEL = "ecapa-test@000000000000"


@pytest.fixture(params=["sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def basis(i: int) -> np.ndarray:
    e = np.zeros(D, np.float32)
    e[i] = 1.0
    return e


def enroll(store: VoiceprintStore, artist_id: str, vectors: np.ndarray, policy: str = "block",
           partners: list[str] | None = None) -> None:
    store.enroll(artist_id, f"name of {artist_id}", policy, "label:test", vectors,
                 [f"ref{i}.wav" for i in range(len(vectors))], profile_id=f"prf-{artist_id}",
                 licensed_partner_ids=partners, model_id=MODEL)


def cal(threshold: float, normalisation: str = AS_NORM, top_k: int = 2) -> VoiceCalibration:
    return VoiceCalibration(threshold=threshold, target_far=0.01, measured_far=0.009, n_impostor_trials=500,
                            normalisation=normalisation, cohort_size=4, top_k=top_k, model_id=MODEL, data="test")


# ---------------------------------------------------------------------------- AS-norm


def reference_as_norm(q: np.ndarray, e: np.ndarray, cohort: np.ndarray, k: int) -> float:
    """AS-norm of one trial written out longhand: each side's top-k cohort cosines → z-scores → mean."""
    raw = float(q @ e)
    zs = []
    for side in (q, e):
        top = sorted((float(side @ c) for c in cohort), reverse=True)[:k]
        mean = sum(top) / k
        std = (sum((t - mean) ** 2 for t in top) / k) ** 0.5
        zs.append((raw - mean) / std)
    return 0.5 * (zs[0] + zs[1])


def test_a_query_equally_close_to_everything_normalises_to_zero(sqlite_url: str) -> None:
    # Query q = u + x, enrolled voices e_j = u + y_j (u shared, x, y_j orthogonal): cos(q, e_j) = 0.5. Cohort
    # voice k = u + t_k w_k has the same cosine with q as with every e_j, chosen as 0.6, 0.5, 0.4, 0.1, 0.05:
    # each side's top-3 cohort mean is 0.5 (std 0.082), the trial's raw score is that mean, so both z-terms are 0.
    u = basis(0)
    cosines = (0.6, 0.5, 0.4, 0.1, 0.05)
    cohort = [unit(u + np.sqrt(1 / (2 * c**2) - 1) * basis(4 + k)) for k, c in enumerate(cosines)]
    store = VoiceprintStore(sqlite_url)
    enroll(store, "a1", unit(u + basis(2))[None])
    enroll(store, "a2", unit(u + basis(3))[None])
    store.set_cohort(np.stack(cohort), [f"voice {k}" for k in range(5)])
    prints = store.voiceprints(top_k=3)
    query = unit(u + basis(1))
    assert np.allclose(query @ np.stack(cohort).T, cosines, atol=1e-6)
    raw, normed = score_matrix(query[None], prints, AS_NORM)
    assert np.allclose(raw, 0.5, atol=1e-6)
    assert np.allclose(normed, 0.0, atol=1e-4)


def test_as_norm_matches_the_longhand_formula_and_keeps_the_true_match_first(sqlite_url: str) -> None:
    rng = np.random.default_rng(0)
    voices = unit(rng.normal(size=(3, D)))
    cohort = unit(rng.normal(size=(6, D)))
    store = VoiceprintStore(sqlite_url)
    for i, v in enumerate(voices):
        enroll(store, f"a{i}", v[None])
    store.set_cohort(cohort, [f"voice {i}" for i in range(6)])
    prints = store.voiceprints(top_k=3)
    query = unit(voices[1] + 0.4 * unit(rng.normal(size=D)))  # artist a1, recorded differently
    raw, normed = score_matrix(query[None], prints, AS_NORM)
    expected = [reference_as_norm(query, prints.matrix[j], cohort, 3) for j in range(3)]
    assert np.allclose(normed[0], expected, rtol=1e-4, atol=1e-4)
    assert prints.artist_ids[int(np.argmax(raw[0]))] == "a1"
    assert prints.artist_ids[int(np.argmax(normed[0]))] == "a1"  # ranking of the true match survives


def test_enrolled_voices_are_left_out_of_the_cohort(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    store.set_cohort(unit(np.eye(D)[:4]), ["v1", "v2", "v3", "v4"], ["a-late", None, None, None])
    enroll(store, "a0", unit(np.eye(D)[5])[None])
    assert len(store.voiceprints().cohort) == 4
    enroll(store, "a-late", unit(np.eye(D)[6])[None])  # the voice behind cohort row v1 enrols
    assert len(store.voiceprints().cohort) == 3
    assert store.cohort_subjects(["a-late", "a0"]) == {"a-late"}
    assert len(store.cohort()[0]) == 4  # still stored: erased on opt-out, not on enrolment


# ---------------------------------------------------------------------------- calibration


def test_threshold_selection_holds_the_target_far_and_counts_frr() -> None:
    rng = np.random.default_rng(1)
    enrolled = ("a", "b")
    voices = ["a"] * 20 + ["b"] * 20 + ["x"] * 300
    kinds = ["clean"] * 30 + ["clone"] * 10 + ["clean"] * 300
    scores = rng.normal(0.0, 1.0, size=(len(voices), 2))
    target = np.array([[v == a for a in enrolled] for v in voices])
    scores[target] = rng.normal(4.0, 1.0, size=int(target.sum()))
    rates = trial_rates(scores, voices, kinds, enrolled, target_far=0.01)
    impostor = scores[~target]
    assert (rates.n_impostor, rates.n_target) == (len(impostor), 40)
    assert (rates.threshold, rates.far) == threshold_for_far(impostor, 0.01)
    assert rates.far <= 0.01 and np.mean(impostor >= rates.threshold) == rates.far
    assert rates.frr == pytest.approx(np.mean(scores[target] < rates.threshold))
    assert set(rates.frr_by_kind) == {"clean", "clone"} and rates.frr_by_kind["clone"][0] == 10
    with pytest.raises(ValueError, match="cannot be measured"):
        trial_rates(scores[:30], voices[:30], kinds[:30], enrolled, target_far=0.001)


def test_calibration_is_stored_with_history_and_chooses_the_operating_point(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    enroll(store, "a0", unit(np.eye(D)[0])[None])
    assert store.calibration() is None
    point = operating_point(store.voiceprints(), MODEL)
    assert (point.normalisation, point.threshold, point.calibrated) == (RAW, DEFAULT_THRESHOLD, False)
    assert "uncalibrated" in point.why

    store.set_calibration(cal(3.0))  # AS-norm calibration but no cohort yet: cannot use it
    assert operating_point(store.voiceprints(), MODEL).normalisation == RAW
    store.set_cohort(unit(np.eye(D)[4:8]), ["v1", "v2", "v3", "v4"])
    store.set_calibration(cal(2.5))
    assert store.calibration() == cal(2.5)
    assert [c.threshold for _, c in store.calibration_history()] == [3.0, 2.5]
    point = operating_point(store.voiceprints(), MODEL)
    assert (point.normalisation, point.threshold, point.calibrated) == (AS_NORM, 2.5, True)
    other_model = operating_point(store.voiceprints(), "another-encoder@ffffffffffff")
    assert (other_model.normalisation, other_model.calibrated) == (RAW, False)
    assert operating_point(store.voiceprints(), MODEL, override=1.5).threshold == 1.5


def test_verifier_reports_the_normalised_score_and_keeps_the_raw_cosine(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    rng = np.random.default_rng(2)
    voices = unit(rng.normal(size=(2, D)))
    for i, v in enumerate(voices):
        enroll(store, f"a{i}", v[None])
    store.set_cohort(unit(rng.normal(size=(8, D))), [f"v{i}" for i in range(8)])
    store.set_calibration(cal(1.0, top_k=3))
    prints = store.voiceprints()
    point = operating_point(prints, MODEL)
    model = LoadedVerifier(None, prints, point.threshold, MODEL, point.normalisation, BEST_WINDOW)
    windows = unit(voices[0][None] + 0.2 * rng.normal(size=(3, D)))
    row = ManifestRow("u1", "file:///x.wav", "t", "n", "d", "up", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    track = TrackInput(row, np.zeros(16000, np.float32), 16000, 1.0, [], {})
    out = EcapaVerifier()._verify(track, windows, [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)], model)
    a0 = prints.row_of["a0"]
    raw, normed = score_matrix(windows, prints, AS_NORM)  # per window
    best = int(np.argmax(normed[:, a0]))
    assert out.best_artist_id == "a0" and out.matched_artist_id == "a0"
    assert out.similarity == pytest.approx(float(normed[best, a0]), abs=1e-5)  # the best window decides
    assert out.raw_similarity == pytest.approx(float(raw[best, a0]), abs=1e-5)
    assert out.similarity > 1.0 > out.raw_similarity  # z-scale, not cosine
    assert out.segments[0].score == pytest.approx(out.similarity, abs=1e-5)  # and is the first evidence segment
    mean_model = LoadedVerifier(None, prints, point.threshold, MODEL, point.normalisation)  # pooling mean: default
    mean_out = EcapaVerifier()._verify(track, windows, [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)], mean_model)
    mean_raw, mean_normed = score_matrix(unit(windows.mean(axis=0))[None], prints, AS_NORM)
    assert mean_out.similarity == pytest.approx(float(mean_normed[0, a0]), abs=1e-5)
    assert mean_out.similarity is not None and out.similarity is not None and mean_out.similarity < out.similarity
    assert mean_out.raw_similarity == pytest.approx(float(mean_raw[0, a0]), abs=1e-5)


def test_a_calibration_holds_only_for_the_pooling_it_was_measured_with(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    enroll(store, "a0", basis(0)[None])
    store.set_cohort(unit(np.random.default_rng(4).normal(size=(8, D))), [f"v{i}" for i in range(8)])
    store.set_calibration(dataclasses.replace(cal(2.0, top_k=3), model_id=scorer_id(MODEL, BEST_WINDOW)))
    prints = store.voiceprints()
    assert operating_point(prints, scorer_id(MODEL, BEST_WINDOW)).calibrated
    fallback = operating_point(prints, scorer_id(MODEL, MEAN))
    assert not fallback.calibrated and fallback.threshold == DEFAULT_THRESHOLD and "best-window" in fallback.why
    with pytest.raises(ValueError, match="pooling"):
        scorer_id(MODEL, "median")


# ---------------------------------------------------------------------------- erasure

VECTOR_TEXT = re.compile(r"(-?\d+\.\d+(e-?\d+)?\s*,\s*){15,}")  # 16+ numbers in a row: a vector in text/JSON


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None or isinstance(value, bytes | memoryview) else str(value)


def scan_database(url: str, artist_id: str, secrets: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (reflected) that holds any of ``secrets`` or mentions the artist."""
    engine = get_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    keys = (artist_id, subject_ref(artist_id))
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                blobs = [bytes(v) for v in row.values() if isinstance(v, bytes | memoryview)]
                holds_secret = any(s in b for s in secrets for b in blobs)
                mentions = any(k in _text(v) for k in keys for v in row.values())
                if holds_secret or mentions:
                    found.setdefault(table.name, []).append({**dict(row), "_holds_secret": holds_secret})
    assert {"artists", "voiceprint_embeddings", "voiceprint_cohort", "voiceprint_calibration", LEDGER_TABLE,
            "verdicts", "cases"} <= set(meta.tables), sorted(meta.tables)
    return found


def test_optout_leaves_no_biometric_trace_in_any_table(any_url: str) -> None:
    rng = np.random.default_rng(3)
    mine, theirs = unit(rng.normal(size=(3, D))), unit(rng.normal(size=(3, D)))
    store = VoiceprintStore(any_url)
    enroll(store, "a-gone", mine, policy="allow_licensed", partners=["partner-1"])
    enroll(store, "a-stays", theirs)
    own_cohort = unit(rng.normal(size=(2, D)))  # the artist's voice had been a cohort voice before
    store.set_cohort(np.concatenate([own_cohort, unit(rng.normal(size=(3, D)))]),
                     ["c1", "c2", "c3", "c4", "c5"], ["a-gone", "a-gone", None, None, None])
    store.set_calibration(cal(2.0))
    ledger = AttributionLedger(any_url)
    ledger.record([{"artist_id": "a-gone", "upload_id": "u1", "similarity": 3.1, "uploader_id": "partner-1"},
                   {"artist_id": "a-stays", "upload_id": "u2", "similarity": 2.9, "uploader_id": "partner-2"}])
    store.set_detector_level("a-gone", "detector/lcnn@1+abc", 2.5, 3, actor="label:test")
    store.set_detector_level("a-stays", "detector/lcnn@1+abc", -4.0, 3, actor="label:test")
    secrets = [v.tobytes() for v in mine] + [unit(mine.mean(axis=0)).tobytes()] + [v.tobytes() for v in own_cohort]
    before = store.biometric_rows("a-gone")
    assert before == {"voiceprint_embeddings": 3, "voiceprint_centroids": 1, "voiceprint_cohort": 2,
                      "detector_reference_levels": 1, LEDGER_TABLE: 1}
    assert scan_database(any_url, "a-gone", secrets)["voiceprint_embeddings"]  # the scan does see the bytes

    erased = store.optout("a-gone", actor="label:test")

    assert erased == {"embeddings": 3, "centroids": 1, "cohort": 2, "ledger_scores": 1, "detector_levels": 1,
                      "artist_rows": 1}
    assert set(store.biometric_rows("a-gone").values()) == {0}
    found = scan_database(any_url, "a-gone", secrets)
    assert not any(r["_holds_secret"] for rows in found.values() for r in rows), found
    assert set(found) <= {"registry_audit", LEDGER_TABLE}, found  # nothing biometric is keyed by the artist
    assert [(r["upload_id"], r["similarity"], r["uploader_id"]) for r in found[LEDGER_TABLE]] == [
        ("u1", None, "partner-1")]  # the credit stays, its score is gone
    audit = found["registry_audit"]
    assert [r["action"] for r in audit] == ["enroll", "detector_level", "optout"]
    assert not any(VECTOR_TEXT.search(_text(r["details"])) for r in audit)
    # Only that artist: the other enrolment, its ledger score and the calibration are untouched.
    assert store.biometric_rows("a-stays")["voiceprint_embeddings"] == 3
    assert [e["similarity"] for e in ledger.entries("a-stays")] == [2.9]
    assert store.calibration() == cal(2.0) and len(store.cohort()[0]) == 3
    assert store.voiceprints().artist_ids == ("a-stays",)
    assert store.detector_levels("detector/lcnn@1+abc") == {"a-stays": -4.0}


def test_optout_also_blanks_match_scores_in_filed_verdicts(any_url: str) -> None:
    from trackguard.enrol import optout_artist

    store = VoiceprintStore(any_url)
    enroll(store, "a-gone", unit(np.random.default_rng(5).normal(size=(2, D))))
    cases = CaseStore(any_url)
    flagged = Verdict("u-imp", Decision.BLOCK, Queue.IMPERSONATION, 100, ["synthetic_voice"],
                      matched_artist_id="a-gone", voice_similarity=4.2)
    other = Verdict("u-other", Decision.BLOCK, Queue.IMPERSONATION, 100, ["synthetic_voice"],
                    matched_artist_id="a-other", voice_similarity=3.9)
    cases.upsert_verdicts([flagged, other])
    erased = optout_artist(any_url, "a-gone", "label:test")
    assert erased["verdict_scores"] == 2  # the verdict row and its case's evidence version
    kept = cases.get_verdict("u-imp")
    assert kept is not None and kept.voice_similarity is None and kept.matched_artist_id == "a-gone"
    assert [e["voice_similarity"] for e in cases.evidence_versions("u-imp")] == [None]
    assert cases.evidence_versions("u-other")[0]["voice_similarity"] == 3.9  # other artists untouched


# ---------------------------------------------------------------------------- ledger and commands


def licensed(uid: str, artist: str = "a-lic", similarity: float = 3.4) -> Verdict:
    return Verdict(uid, Decision.PASS, None, 0,
                   ["synthetic_voice", "matches_enrolled_artist", "artist_policy_allow_licensed", "licensed_use"],
                   synthetic_score=0.9, matched_artist_id=artist, voice_similarity=similarity)


def test_licensed_verdicts_are_credited_once_and_exported(any_url: str, tmp_path: Path) -> None:
    cases = CaseStore(any_url)
    blocked = Verdict("u-blocked", Decision.BLOCK, Queue.IMPERSONATION, 100,
                      ["synthetic_voice", "matches_enrolled_artist"], matched_artist_id="a-other", voice_similarity=4.0)
    first = cases.upsert_verdicts([licensed("u1"), blocked])
    second = cases.upsert_verdicts([licensed("u1", similarity=3.6)])
    assert (first["ledger"], second["ledger"]) == (1, 1)
    entries = AttributionLedger(any_url).entries()
    assert [(e["artist_id"], e["upload_id"], e["similarity"]) for e in entries] == [("a-lic", "u1", 3.6)]
    out = tmp_path / "ledger.csv"
    assert AttributionLedger(any_url).export_csv(out) == 1
    rows = list(csv.DictReader(out.open()))
    assert [(r["artist_id"], r["upload_id"], float(r["similarity"])) for r in rows] == [("a-lic", "u1", 3.6)]


def test_ledger_names_the_uploader_whichever_the_sweep_stores_first(any_url: str) -> None:
    cases = CaseStore(any_url)
    cases.upsert_uploads([{"upload_id": "u-meta-first", "uploader_id": "partner-1", "distributor_id": "d1"}])
    cases.upsert_verdicts([licensed("u-meta-first"), licensed("u-verdict-first")])
    before = {e["upload_id"]: e["uploader_id"] for e in AttributionLedger(any_url).entries()}
    assert before == {"u-meta-first": "partner-1", "u-verdict-first": None}
    cases.upsert_uploads([{"upload_id": "u-verdict-first", "uploader_id": "partner-2", "distributor_id": "d1"},
                          {"upload_id": "u-meta-first", "uploader_id": "someone-else", "distributor_id": "d1"}])
    after = {e["upload_id"]: e["uploader_id"] for e in AttributionLedger(any_url).entries()}
    assert after == {"u-meta-first": "partner-1", "u-verdict-first": "partner-2"}  # a named uploader is kept


def test_artist_commands_show_policy_ledger(sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    store = VoiceprintStore(sqlite_url)
    vectors = unit(np.random.default_rng(4).normal(size=(2, D)))
    enroll(store, "a-lic", vectors)
    CaseStore(sqlite_url).upsert_verdicts([licensed("u1"), licensed("u2", similarity=2.2)])
    db = ["--db-url", sqlite_url]
    assert cli.main(["artists", "policy", "--artist-id", "a-lic", "--policy", "allow_licensed",
                     "--licensed-partner", "upl-1", "--licensed-partner", "upl-2", "--actor", "label:test", *db]) == 0
    assert cli.main(["artists", "show", "--artist-id", "a-lic", *db]) == 0
    shown = capsys.readouterr().out
    assert "policy: allow_licensed" in shown and "licensed_partner_ids: upl-1, upl-2" in shown
    assert "consent_by: label:test" in shown and "n_embeddings: 2" in shown and "profile_id: prf-a-lic" in shown
    assert f"{vectors[0][0]:.4f}"[:6] not in shown and not VECTOR_TEXT.search(shown)
    assert store.audit("a-lic")[-1]["details"] == {"policy": "allow_licensed",
                                                   "licensed_partner_ids": ["upl-1", "upl-2"]}
    assert cli.main(["artists", "policy", "--artist-id", "a-lic", "--policy", "monitor", "--actor", " ", *db]) == 2
    assert "--actor" in capsys.readouterr().err
    out = tmp_path / "ledger.csv"
    assert cli.main(["artists", "ledger", "--artist-id", "a-lic", "--out", str(out), *db]) == 0
    assert [r["upload_id"] for r in csv.DictReader(out.open())] == ["u1", "u2"]
    assert cli.main(["artists", "show", "--artist-id", "nobody", *db]) == 2


@pytest.mark.parametrize("pooling", [MEAN, BEST_WINDOW])
@pytest.mark.parametrize("normalisation", [AS_NORM, RAW])
def test_the_batched_search_picks_what_scoring_every_voiceprint_picks(sqlite_url: str, pooling: str,
                                                                      normalisation: str) -> None:
    store = VoiceprintStore(sqlite_url)
    rng = np.random.default_rng(11)
    for i in range(12):
        enroll(store, f"a{i:02d}", unit(rng.normal(size=(2, D))))
    store.set_cohort(unit(rng.normal(size=(10, D))), [f"v{i}" for i in range(10)])
    prints = store.voiceprints(top_k=3)
    tracks = [unit(prints.matrix[i % 12][None] + 0.6 * rng.normal(size=(1 + i % 3, D))) for i in range(9)]
    found = search_tracks(tracks, prints, normalisation, pooling)
    for k, windows in enumerate(tracks):
        raw, scores = track_scores(windows, prints, normalisation, pooling)
        best = int(np.argmax(scores))
        assert found.index[k] == best
        assert found.score[k] == pytest.approx(float(scores[best]), rel=1e-5)
        assert found.raw[k] == pytest.approx(float(raw[best]), abs=1e-5)


def test_a_running_verifier_stops_matching_an_artist_at_the_batch_after_the_opt_out(any_url: str) -> None:
    store = VoiceprintStore(any_url)
    enroll(store, "a0", basis(0)[None])
    enroll(store, "a1", basis(1)[None])
    verifier = EcapaVerifier()
    loaded = LoadedVerifier(None, store.voiceprints(), 0.5, MODEL, RAW, MEAN, store, store.generation())
    row = ManifestRow("u1", "file:///x.wav", "t", "n", "d", "up", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    track = TrackInput(row, np.zeros(16000, np.float32), 16000, 1.0, [], {})
    voice = unit(basis(0) + 0.1 * basis(2))[None]

    def matched() -> str | None:
        return verifier._verify(track, voice, [(0.0, 2.0)], verifier.current(loaded)).matched_artist_id

    assert matched() == "a0"
    unchanged = loaded.voiceprints
    assert matched() == "a0" and loaded.voiceprints is unchanged  # no change: no reload
    store.optout("a0", actor="test")
    assert matched() is None  # the next batch already matches against the registry without a0
    assert loaded.voiceprints.artist_ids == ("a1",) and loaded.generation == store.generation()
    enroll(store, "a2", basis(2)[None])
    assert verifier.current(loaded).voiceprints.row_of.keys() == {"a1", "a2"}


def test_the_threshold_sits_midway_between_impostors_so_rounding_cannot_flip_a_trial() -> None:
    impostor = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] * 10)  # 100 trials, 10 at each value
    threshold, far = threshold_for_far(impostor, 0.1)  # may accept 10: the ten at 1.0
    assert threshold == pytest.approx(0.95) and far == pytest.approx(0.1)
    wobble = np.random.default_rng(0).normal(0.0, 1e-5, impostor.shape)  # float32-sized noise on a rescore
    assert np.mean(impostor + wobble >= threshold) == far
    threshold, far = threshold_for_far(impostor, 0.15)  # 15 allowed, but the next ten tie at 0.9: none of them
    assert threshold == pytest.approx(0.95) and far == pytest.approx(0.1)
    threshold, far = threshold_for_far(np.arange(100.0), 0.01)  # one allowed: 99 accepted, 98 rejected
    assert threshold == pytest.approx(98.5) and far == pytest.approx(0.01)
    threshold, far = threshold_for_far(np.full(100, 3.0), 0.01)  # all tied: none accepted, just above them
    assert 3.0 < threshold < 3.001 and far == 0.0
