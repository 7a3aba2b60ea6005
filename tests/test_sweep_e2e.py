"""The batch sweep end to end on the small synthetic corpus, through the CLI.

Trains tiny detector and spam models with the project's own commands, enrols
the corpus's opted-in artists, sweeps, and checks the non-negotiables: uploads
in == verdicts out, bad inputs in `errors` with their labelled codes, and an
idempotent re-run (same verdicts, no duplicate cases).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from trackguard.cli import main
from trackguard.home import Home


@pytest.fixture(scope="module")
def swept(small_corpus: Path, trained_home: Path) -> dict[str, Path]:
    home = trained_home
    old = os.environ.get("TRACKGUARD_HOME")
    os.environ["TRACKGUARD_HOME"] = str(home)
    try:
        out = home / "run1"
        assert main(["sweep", "--catalog", str(small_corpus / "manifest.parquet"), "--out", str(out)]) == 0
        yield {"home": home, "out": out, "corpus": small_corpus}
    finally:
        if old is None:
            os.environ.pop("TRACKGUARD_HOME", None)
        else:
            os.environ["TRACKGUARD_HOME"] = old


def _verdicts(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "verdicts.parquet").sort_values("upload_id").reset_index(drop=True)


def test_uploads_in_equal_verdicts_out(swept: dict[str, Path]) -> None:
    manifest = pd.read_parquet(swept["corpus"] / "manifest.parquet")
    verdicts = _verdicts(swept["out"])
    assert len(verdicts) == manifest["upload_id"].nunique()
    assert verdicts["upload_id"].is_unique
    assert set(verdicts["decision"]) <= {"pass", "review", "block", "error"}


def test_bad_inputs_get_their_codes(swept: dict[str, Path]) -> None:
    labels = pd.read_parquet(swept["corpus"] / "labels.parquet")
    bad = labels[labels["expected_error_code"].notna()]
    assert len(bad) >= 8
    verdicts = _verdicts(swept["out"]).set_index("upload_id")
    for row in bad.itertuples():
        got = verdicts.loc[row.upload_id]
        assert (got["decision"], got["queue"], got["error_code"]) == ("error", "errors", row.expected_error_code), \
            row.upload_id
        assert got["error_message"]


def test_clean_uploads_are_not_errors(swept: dict[str, Path]) -> None:
    labels = pd.read_parquet(swept["corpus"] / "labels.parquet")
    good = set(labels[labels["expected_error_code"].isna()]["upload_id"])
    verdicts = _verdicts(swept["out"])
    assert not set(verdicts[verdicts["decision"] == "error"]["upload_id"]) & good
    scored = verdicts[verdicts["upload_id"].isin(good)]
    assert scored["synthetic_score"].between(0, 1).all() and scored["spam_score"].between(0, 1).all()
    assert all(len(m) == 3 for m in scored["model_versions"])


def test_reuploaded_duplicates_name_their_original(swept: dict[str, Path]) -> None:
    """Each transformed re-upload (pitch, tempo, re-encode, ...) is matched to the song it copies."""
    labels = pd.read_parquet(swept["corpus"] / "labels.parquet").set_index("upload_id")
    verdicts = _verdicts(swept["out"]).set_index("upload_id")
    content = labels["content_id"]
    dups = labels[labels["spam_type"] == "duplicate"]
    assert len(dups) >= 2
    for uid in dups.index:
        found = verdicts.loc[uid, "duplicate_of"]
        assert isinstance(found, str) and content[found] == content[uid], (uid, dups.loc[uid, "duplicate_transform"])
    clean = labels[labels["kind"] == "clean"].index
    wrong = [u for u in clean if isinstance(verdicts.loc[u, "duplicate_of"], str)
             and content[verdicts.loc[u, "duplicate_of"]] != content[u]]
    assert not wrong, wrong


def test_rerun_is_idempotent_and_cases_match_flags(swept: dict[str, Path]) -> None:
    from moderation.cases import CaseStore

    store = CaseStore(Home.from_env().db_url)
    before = store.queue_counts()
    out2 = swept["home"] / "run2"
    assert main(["sweep", "--catalog", str(swept["corpus"] / "manifest.parquet"), "--out", str(out2)]) == 0
    first, second = _verdicts(swept["out"]), _verdicts(out2)
    pd.testing.assert_frame_equal(first, second)
    assert store.queue_counts() == before
    flagged = first[first["queue"].notna()]
    assert store.case_count() == len(flagged)
    assert before == flagged["queue"].value_counts().to_dict()


def test_jsonl_manifest_gives_same_verdicts(swept: dict[str, Path], tmp_path: Path) -> None:
    manifest = pd.read_parquet(swept["corpus"] / "manifest.parquet")
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(r, default=str) for r in manifest.to_dict(orient="records")) + "\n")
    out = tmp_path / "out"
    assert main(["sweep", "--catalog", str(path), "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(_verdicts(swept["out"]), _verdicts(out))


def test_local_parallelism_is_refused_with_a_reason(swept: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Beam's multi-worker DirectRunner dropped uploads here, so the sweep refuses it rather than lose any."""
    argv = ["sweep", "--catalog", str(swept["corpus"] / "manifest.parquet"), "--out", str(swept["home"] / "w2"),
            "--workers", "2"]
    assert main(argv) == 2
    assert "silently dropped uploads" in capsys.readouterr().err


def test_incomplete_output_is_an_error_not_a_silent_loss() -> None:
    from pipelines.sweep import IncompleteSweepError, check_complete

    check_complete({"a", "b"}, ["b", "a"])
    with pytest.raises(IncompleteSweepError, match="1 uploads without a verdict"):
        check_complete({"a", "b", "c"}, ["a", "b"])
    with pytest.raises(IncompleteSweepError, match="1 repeated"):
        check_complete({"a", "b"}, ["a", "b", "b"])
