"""Duplicate matching in upload-time order: earlier-only matches, persistence, re-runs, uploader history.

Audio is generated (``music_like``, synthetic) and transformed with sox, as in
``trackguard bench fingerprint``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from features.fingerprint import Fingerprint, fingerprint, load_fingerprint, save_fingerprint
from models.duplicates import (
    DetectorLogit,
    DuplicateCatalogue,
    DuplicateFinding,
    UploadFingerprint,
    findings_frame,
    for_query,
)
from trackguard.bench.fingerprint import music_like, transform

SR = 16000
SECONDS = 20.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SOX = pytest.mark.skipif(not shutil.which("sox"), reason="needs the sox binary (Debian package sox) for pitch shift")


@pytest.fixture(scope="module")
def songs() -> list[np.ndarray]:
    return [music_like(seed, SECONDS, SR) for seed in range(3)]


@pytest.fixture(scope="module")
def fps(songs: list[np.ndarray]) -> dict[str, Fingerprint]:
    """song-0..2 originals, a pitch-shifted copy of song 0 and a tempo-changed copy of song 1."""
    out = {f"song-{i}": for_query(fingerprint(x, SR)) for i, x in enumerate(songs)}
    if shutil.which("sox"):
        out["copy-of-0"] = for_query(fingerprint(transform(songs[0], SR, "pitch+2st", seed=1), SR))
        out["copy-of-1"] = for_query(fingerprint(transform(songs[1], SR, "tempo+10%", seed=2), SR))
    return out


def upload(uid: str, fps: dict[str, Fingerprint], hours: float, uploader: str = "u-1") -> UploadFingerprint:
    return UploadFingerprint(uid, T0 + timedelta(hours=hours), uploader, SECONDS, fps[uid])


@SOX
def test_copies_match_their_earlier_original_with_span(fps: dict[str, Fingerprint]) -> None:
    batch = [upload("song-0", fps, 0), upload("song-1", fps, 1), upload("song-2", fps, 2),
             upload("copy-of-0", fps, 3, "farm"), upload("copy-of-1", fps, 4, "farm")]
    found = {f.upload_id: f for f in DuplicateCatalogue(None).match(batch)}
    assert found["copy-of-0"].duplicate_of == "song-0"
    assert found["copy-of-1"].duplicate_of == "song-1"
    assert {found[k].duplicate_of for k in ("song-0", "song-1", "song-2")} == {None}
    shifted = found["copy-of-0"]
    assert shifted.pitch_shift_semitones == pytest.approx(2.0, abs=0.5)
    assert shifted.query_span_s[1] - shifted.query_span_s[0] > SECONDS / 2  # the span covers most of the song
    assert found["copy-of-1"].time_scale == pytest.approx(1 / 1.1, abs=0.03)  # query s per reference s
    assert "tempo +10%" in (found["copy-of-1"].reason() or "")
    reason = shifted.reason()
    assert reason is not None and "song-0" in reason and re.search(r"pitch \+(1\.[5-9]|2\.[0-5]) st", reason)


@SOX
def test_an_original_is_never_the_duplicate_of_a_later_copy(fps: dict[str, Fingerprint]) -> None:
    """The copy arrives first in the batch list but later in time: only the copy is flagged."""
    batch = [upload("copy-of-0", fps, 5, "farm"), upload("song-0", fps, 1)]
    found = {f.upload_id: f for f in DuplicateCatalogue(None).match(batch)}
    assert found["song-0"].duplicate_of is None
    assert found["copy-of-0"].duplicate_of == "song-0"


@SOX
def test_persistent_catalogue_matches_across_sweeps_and_reruns_are_stable(
        tmp_path: Path, fps: dict[str, Fingerprint]) -> None:
    first = DuplicateCatalogue(tmp_path)
    first.match([upload("song-0", fps, 0), upload("song-1", fps, 1)])
    first.save()
    second = DuplicateCatalogue(tmp_path)  # a later sweep, fresh process
    later = [upload("copy-of-0", fps, 3, "farm"), upload("song-2", fps, 4)]
    found = {f.upload_id: f for f in second.match(later)}
    assert found["copy-of-0"].duplicate_of == "song-0"
    second.save()
    again = DuplicateCatalogue(tmp_path)  # re-running the first sweep sees later uploads in the index
    rerun = {f.upload_id: f for f in again.match([upload("song-0", fps, 0), upload("song-1", fps, 1)])}
    assert rerun["song-0"].duplicate_of is None
    assert len(again.index) == 4 and len(again.ledger) == 4  # nothing added twice


@SOX
def test_uploader_duplicate_share_is_as_of(fps: dict[str, Fingerprint]) -> None:
    batch = [upload("song-0", fps, 0, "label"), upload("song-1", fps, 1, "label"),
             upload("copy-of-0", fps, 2, "farm"), upload("copy-of-1", fps, 3, "farm"),
             upload("song-2", fps, 4, "farm")]
    found = {f.upload_id: f for f in DuplicateCatalogue(None).match(batch)}
    assert math.isnan(found["copy-of-0"].features()["uploader_duplicate_share"])  # the farm's first upload
    assert found["copy-of-1"].features()["uploader_duplicate_share"] == 1.0  # one earlier, a duplicate
    assert found["song-2"].features()["uploader_duplicate_share"] == 1.0  # two earlier, both duplicates
    assert found["song-1"].features()["uploader_duplicate_share"] == 0.0
    assert found["copy-of-1"].features()["duplicate_prior_matches"] == 1.0
    frame = findings_frame(list(found.values()))
    assert frame.loc["copy-of-0", "duplicate_of"] == "song-0"


def test_unrelated_songs_do_not_match(fps: dict[str, Fingerprint]) -> None:
    batch = [upload(f"song-{i}", fps, i) for i in range(3)]
    assert all(f.duplicate_of is None for f in DuplicateCatalogue(None).match(batch))


def test_forget_removes_an_upload_from_matching(tmp_path: Path, fps: dict[str, Fingerprint]) -> None:
    catalogue = DuplicateCatalogue(tmp_path)
    catalogue.match([upload("song-0", fps, 0)])
    catalogue.forget(["song-0"])
    again = UploadFingerprint("song-0-again", T0 + timedelta(hours=2), "u-2", SECONDS, fps["song-0"])
    assert catalogue.match([again])[0].duplicate_of is None
    assert "song-0" not in set(catalogue.ledger["upload_id"])


def test_fingerprint_round_trips_through_npz(tmp_path: Path, fps: dict[str, Fingerprint]) -> None:
    path = tmp_path / "fp.npz"
    save_fingerprint(fps["song-0"], path)
    back = load_fingerprint(path)
    assert back.duration_s == fps["song-0"].duration_s and back.n_peaks == fps["song-0"].n_peaks
    np.testing.assert_array_equal(back.hashes, fps["song-0"].hashes)
    np.testing.assert_array_equal(back.probe_rows, fps["song-0"].probe_rows)


def test_no_match_reason_is_none() -> None:
    assert DuplicateFinding("x", None).reason() is None
    assert DuplicateFinding("x", None).features()["duplicate_match_score"] == 0.0


def _scored(uid: str, fps: dict[str, Fingerprint], hours: float, model: str, logit: float) -> UploadFingerprint:
    return dataclasses.replace(upload(uid, fps, hours), detector=DetectorLogit(model, logit))


@SOX
def test_a_copy_carries_its_originals_detector_logit_in_batch_and_across_sweeps(
        tmp_path: Path, fps: dict[str, Fingerprint]) -> None:
    """In one batch, from the ledger of an earlier sweep, and never across detector models."""
    first = DuplicateCatalogue(tmp_path)
    found = {f.upload_id: f for f in first.match([_scored("song-0", fps, 0, "det@1", -5.0),
                                                  _scored("copy-of-0", fps, 1, "det@1", 2.0)])}
    assert found["copy-of-0"].reference_detector_logit == -5.0
    assert found["song-0"].reference_detector_logit is None  # an original has no reference
    first.match([_scored("song-1", fps, 2, "det@1", -3.0)])
    first.save()
    later = DuplicateCatalogue(tmp_path)  # a later sweep in a fresh process reads the ledger
    assert later.detector_logits()["song-1"] == DetectorLogit("det@1", -3.0)
    again = {f.upload_id: f for f in later.match([_scored("copy-of-1", fps, 3, "det@1", 1.0)])}
    assert again["copy-of-1"].duplicate_of == "song-1" and again["copy-of-1"].reference_detector_logit == -3.0
    other = DuplicateCatalogue(tmp_path).match([_scored("copy-of-1", fps, 3, "det@2", 1.0)])
    assert other[0].duplicate_of == "song-1" and other[0].reference_detector_logit is None  # another model
    unscored = DuplicateCatalogue(tmp_path).match([upload("copy-of-1", fps, 3)])
    assert unscored[0].reference_detector_logit is None
