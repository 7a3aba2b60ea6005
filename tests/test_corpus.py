"""The synthetic labelled upload corpus: determinism, label consistency, no easy shortcuts.

The session's small corpus (conftest's ``small_corpus_build``, shared with the other tests) is
built a second time with the same seed for the determinism test. Everything else reads the
built files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import struct
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from tests.conftest import SMALL_CORPUS_SEED
from trackguard.contracts import MANIFEST_FIELDS, ErrorCode, TrackguardError, parse_timestamp, validate_manifest_row
from trackguard.corpus import make_corpus
from trackguard.corpus.assemble import Plan, build_plan
from trackguard.corpus.build import _clear
from trackguard.corpus.encode import wav_bytes
from trackguard.corpus.generators import FAMILIES
from trackguard.corpus.jobs import SongJob, run_job
from trackguard.corpus.midi import Note, smf_bytes
from trackguard.corpus.spec import SIZES, SPAM_TYPES
from trackguard.corpus.text import confusable
from trackguard.corpus.transforms import rate_factor

slow = pytest.mark.slow  # builds the small corpus (shared by the session)

SEED = SMALL_CORPUS_SEED
AUDIO_CODES = {"audio_empty", "audio_truncated", "audio_undecodable", "audio_nonfinite", "audio_too_short",
               "audio_missing"}
METADATA_CODES = {"missing_field", "invalid_timestamp", "invalid_uri", "invalid_field"}


@dataclasses.dataclass
class Built:
    root: Path
    summary: dict[str, Any]
    manifest: pd.DataFrame
    labels: pd.DataFrame
    artists: pd.DataFrame

    def row(self, upload_id: str) -> pd.Series:
        return self.joined.loc[upload_id]

    @functools.cached_property
    def joined(self) -> pd.DataFrame:
        return self.manifest.merge(self.labels, on="upload_id", how="inner").set_index("upload_id")


def _load(root: Path, summary: dict[str, Any]) -> Built:
    root = root.resolve()
    return Built(root, summary, pd.read_parquet(root / "manifest.parquet"), pd.read_parquet(root / "labels.parquet"),
                 pd.read_parquet(root / "artists.parquet"))


@pytest.fixture(scope="session")
def corpus(small_corpus_build: tuple[Path, dict[str, Any]]) -> Built:
    return _load(*small_corpus_build)


@pytest.fixture(scope="session")
def corpus_again(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("corpus-b") / "small"
    return _load(root, make_corpus(root, SEED, "small"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file except the tables that embed absolute paths."""
    skip = {"manifest.parquet", "artists.parquet"}
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


def _relative(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Replace the build directory in path columns, so two builds in two directories compare equal."""
    prefix = str(root.resolve())

    def strip(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(prefix, "<root>")
        if isinstance(value, np.ndarray | list):
            return [strip(v) for v in value]
        return value

    return df.map(strip)


# -- determinism -----------------------------------------------------------------------------------


@slow
def test_same_seed_gives_identical_bytes(corpus: Built, corpus_again: Built) -> None:
    first, second = _tree_hashes(corpus.root), _tree_hashes(corpus_again.root)
    assert len(first) > 80  # audio, references, labels, card, json
    assert first == second
    for name in ("manifest.parquet", "artists.parquet"):
        a = _relative(pd.read_parquet(corpus.root / name), corpus.root)
        b = _relative(pd.read_parquet(corpus_again.root / name), corpus_again.root)
        pd.testing.assert_frame_equal(a, b)
    assert pq.read_schema(corpus.root / "manifest.parquet") == pq.read_schema(corpus_again.root / "manifest.parquet")


def _titles(plan: Plan) -> list[str]:
    return [u.manifest["title"] for u in plan.planner.uploads.values()]


@slow
def test_different_seed_differs(corpus: Built, tmp_path: Path) -> None:
    other = build_plan(SEED + 1, SIZES["small"], tmp_path)
    mine = build_plan(SEED, SIZES["small"], corpus.root)
    assert _titles(other) != _titles(mine)
    assert [a.name for a in other.planner.artists] != [a.name for a in mine.planner.artists]
    # render the first clean upload of the other seed and compare it with this seed's file
    key = "clean-00000"
    target = other.planner.uploads[key].path
    job = next(j for j in other.phase1 if isinstance(j, SongJob) and any(o.path == target for o in j.outputs))
    (tmp_path / "audio").mkdir(exist_ok=True)
    run_job(job)
    assert _sha(Path(other.planner.uploads[key].path)) != _sha(Path(mine.planner.uploads[key].path))


def test_unknown_size_is_refused_before_touching_files(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "keep.wav").write_bytes(b"old")
    with pytest.raises(ValueError, match="small, medium, detector, detector-wide, spam, large"):
        make_corpus(tmp_path, SEED, "huge")
    assert (tmp_path / "audio" / "keep.wav").exists()


def test_previous_build_outputs_are_cleared(tmp_path: Path) -> None:
    """A stale file from an earlier build must not survive into the next (it would break byte identity)."""
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "u999999.wav").write_bytes(b"old")
    (tmp_path / "manifest.parquet").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    _clear(tmp_path)
    assert not (tmp_path / "audio").exists() and not (tmp_path / "manifest.parquet").exists()
    assert (tmp_path / "notes.txt").exists()  # only the corpus's own outputs are removed


# -- tables ----------------------------------------------------------------------------------------


@slow
def test_manifest_has_exactly_the_contract_columns(corpus: Built) -> None:
    assert list(corpus.manifest.columns) == list(MANIFEST_FIELDS)
    schema = pq.read_schema(corpus.root / "manifest.parquet")
    assert str(schema.field("declared_ai").type) == "bool"
    assert str(schema.field("uploaded_at").type) == "string"


@slow
def test_every_upload_has_exactly_one_label(corpus: Built) -> None:
    ids = corpus.manifest["upload_id"]
    assert ids.is_unique and corpus.labels["upload_id"].is_unique
    assert set(ids) == set(corpus.labels["upload_id"])
    assert len(corpus.joined) == len(ids)


@slow
def test_summary_counts_match_labels(corpus: Built) -> None:
    kinds = corpus.labels["kind"].value_counts().to_dict()
    assert corpus.summary["kinds"] == dict(sorted(kinds.items()))
    assert set(kinds) == {"clean", "clone", "spam", "bad_input"}
    assert kinds["clean"] / len(corpus.labels) > 0.5  # clean uploads are the majority
    assert set(corpus.labels["spam_type"].dropna()) == set(SPAM_TYPES)
    assert corpus.summary["build_seconds"] > 0
    card = json.loads((corpus.root / "corpus.json").read_text())
    assert (card["seed"], card["size"], card["uploads"]) == (SEED, "small", len(corpus.labels))
    assert card["audio_seconds"] == pytest.approx(corpus.labels["duration_s"].sum(), rel=1e-6)
    text = (corpus.root / "CORPUS.md").read_text()
    assert "## Limitations" in text and all(f in text for f in FAMILIES)


@slow
def test_labels_are_internally_consistent(corpus: Built) -> None:
    lab = corpus.labels
    assert (lab["is_synthetic"] == (lab["kind"] == "clone")).all()
    assert (lab["is_spam"] == (lab["kind"] == "spam")).all()
    assert (lab["spam_type"].notna() == lab["is_spam"]).all()
    assert (lab["generator_family"].notna() == lab["is_synthetic"]).all()
    assert (lab["expected_error_code"].notna() == (lab["kind"] == "bad_input")).all()
    valid_codes = {c.value for c in ErrorCode}
    assert set(lab["expected_error_code"].dropna()) <= valid_codes
    # a-cappella uploads have no accompaniment level; accompanied vocals do
    sung = lab[lab["voice_artist_id"].notna()]
    assert (sung["a_cappella"] == sung["vocal_to_accompaniment_db"].isna()).all()
    # every vocal upload says how it was sung (spoken: rap, the TTS engine's own intonation kept); no other does
    assert set(sung["vocal_style"]) <= {"sung", "spoken"}
    assert lab.loc[lab["voice_artist_id"].isna(), "vocal_style"].isna().all()
    assert lab["a_cappella"].sum() >= 2


@slow
def test_uploads_are_in_time_order_over_a_month(corpus: Built) -> None:
    m = corpus.manifest
    ok = m[m["uploaded_at"].map(_parses)]
    times = ok["uploaded_at"].map(parse_timestamp)
    assert times.is_monotonic_increasing
    assert 20 <= (times.max() - times.min()).days <= 30
    assert m["upload_id"].str[:7].tolist() == sorted(m["upload_id"].str[:7])


def _parses(value: str) -> bool:
    try:
        parse_timestamp(value)
    except TrackguardError:
        return False
    return True


# -- bad inputs ------------------------------------------------------------------------------------


@slow
def test_metadata_errors_are_the_ones_validation_raises(corpus: Built) -> None:
    for _, row in corpus.manifest.iterrows():
        expected = corpus.row(row["upload_id"])["expected_error_code"]
        raw = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        if expected in METADATA_CODES:
            with pytest.raises(TrackguardError) as err:
                validate_manifest_row(raw)
            assert err.value.code.value == expected
        else:
            validate_manifest_row(raw)  # every other row is valid metadata


def _declared_wav_bytes(data: bytes) -> int:
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"data":
            return int(size)
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def _assert_bad_file(code: str, path: Path) -> None:
    if code == "audio_missing":
        assert not path.exists()
        return
    data = path.read_bytes()
    if code == "audio_empty":
        assert data == b""
    elif code == "audio_truncated" and path.suffix == ".wav":
        assert _declared_wav_bytes(data) > len(data)  # the header promises more than is there
    elif code == "audio_truncated":  # FLAC: a lenient decoder stops early, a strict one fails
        declared = sf.info(str(path)).frames
        try:
            decoded = len(sf.read(str(path))[0])
        except sf.LibsndfileError:
            decoded = 0
        assert decoded < 0.9 * declared
    elif code == "audio_undecodable":
        assert b"\xff" not in data or data.startswith(b"<!DOCTYPE")
        with pytest.raises(sf.LibsndfileError):
            sf.info(str(path))
    elif code == "audio_nonfinite":
        assert not np.isfinite(sf.read(str(path), dtype="float32")[0]).all()
    elif code == "audio_too_short":
        assert sf.info(str(path)).duration == pytest.approx(0.05, abs=1e-3)


@slow
def test_bad_audio_files_are_in_the_state_described(corpus: Built) -> None:
    bad = corpus.joined[corpus.joined["expected_error_code"].isin(AUDIO_CODES)]
    assert set(bad["expected_error_code"]) == AUDIO_CODES
    for _, row in bad.iterrows():
        _assert_bad_file(row["expected_error_code"], Path(row["audio_uri"]))


@slow
def test_every_other_file_decodes_as_labelled(corpus: Built) -> None:
    good = corpus.joined[~corpus.joined["expected_error_code"].isin(AUDIO_CODES | {"invalid_uri"})]
    for _, row in good.iterrows():
        info = sf.info(row["audio_uri"])
        assert Path(row["audio_uri"]).suffix == "." + row["format"]
        assert (info.samplerate, info.channels) == (row["sample_rate"], row["channels"])
        assert info.duration == pytest.approx(row["duration_s"], abs=0.15)  # lossy codecs pad a little
        stretch = 1 / rate_factor(str(row["duplicate_transform"]))  # a tempo/speed duplicate's length changes
        assert (30.0 - 0.5) * stretch <= row["duration_s"] <= (40.0 + 0.5) * stretch


# -- clones ----------------------------------------------------------------------------------------


@slow
def test_every_clone_has_a_bona_fide_twin(corpus: Built) -> None:
    j = corpus.joined
    clones = j[j["kind"] == "clone"]
    assert clones["generator_family"].value_counts().to_dict() == {f: 2 for f in FAMILIES}
    for uid, clone in clones.iterrows():
        twin = j.loc[clone["twin_upload_id"]]
        assert twin["kind"] == "clean" and not twin["is_synthetic"]
        assert twin["twin_upload_id"] == uid
        assert twin["content_id"] == clone["content_id"]
        assert twin["voice_artist_id"] == clone["voice_artist_id"]
        assert clone["duration_s"] == pytest.approx(twin["duration_s"], rel=0.01)
        assert (twin["format"], twin["sample_rate"], twin["channels"]) == (
            clone["format"], clone["sample_rate"], clone["channels"])
        assert parse_timestamp(twin["uploaded_at"]) < parse_timestamp(clone["uploaded_at"])
        assert twin["uploader_id"] != clone["uploader_id"]


@slow
def test_clone_scenarios_cover_consent_cases(corpus: Built) -> None:
    j = corpus.joined
    artists = corpus.artists.set_index("artist_id")
    clones = j[j["kind"] == "clone"]
    opted = clones["voice_artist_id"].map(artists["opted_in"])
    assert opted.any() and (~opted).any()  # impersonation and undisclosed-AI cases
    assert clones["declared_ai"].any() and (~clones["declared_ai"]).any()
    licensed = clones[clones["licensed_use"]]
    assert len(licensed) >= 1
    for _, row in licensed.iterrows():
        artist = artists.loc[row["voice_artist_id"]]
        assert artist["policy"] == "allow_licensed" and row["uploader_id"] in list(artist["licensed_partner_ids"])


def _envelope(path: str) -> tuple[float, float, float]:
    """Leading silence (s), trailing silence (s), RMS (dBFS) of a decoded file (silence: below -60 dBFS)."""
    x, sr = sf.read(path, always_2d=True)
    loud = np.abs(x).max(axis=1) > 10 ** (-60 / 20)
    first, last = int(np.argmax(loud)), len(loud) - int(np.argmax(loud[::-1]))
    return first / sr, (len(loud) - last) / sr, float(10 * np.log10(np.mean(x**2)))


@slow
def test_no_silence_or_level_shortcut_between_clone_and_twin(corpus: Built) -> None:
    j = corpus.joined
    clones = j[j["kind"] == "clone"]
    leads = []
    for _, clone in clones.iterrows():
        c_lead, c_tail, c_rms = _envelope(clone["audio_uri"])
        t_lead, t_tail, t_rms = _envelope(j.loc[clone["twin_upload_id"], "audio_uri"])
        # a few ms of onset smearing is the generator's own artefact; a silence shortcut would be far larger
        assert c_lead == pytest.approx(t_lead, abs=0.03)
        assert c_tail == pytest.approx(t_tail, abs=0.05)
        assert c_rms == pytest.approx(t_rms, abs=0.3)
        leads.append(t_lead)
    assert max(leads) - min(leads) > 0.2  # silences vary across pairs, they are not a constant


# -- spam ------------------------------------------------------------------------------------------


@slow
def test_duplicates_point_to_earlier_uploads_of_the_same_content(corpus: Built) -> None:
    j = corpus.joined
    dups = j[j["spam_type"] == "duplicate"]
    assert len(dups) >= 2
    for _, dup in dups.iterrows():
        src = j.loc[dup["duplicate_of"]]
        assert parse_timestamp(src["uploaded_at"]) < parse_timestamp(dup["uploaded_at"])
        assert src["content_id"] == dup["content_id"] and dup["duplicate_transform"]
        assert src["uploader_id"] != dup["uploader_id"]
        assert _sha(Path(src["audio_uri"])) != _sha(Path(dup["audio_uri"]))


@slow
def test_bulk_and_burst_spam_shapes(corpus: Built) -> None:
    j = corpus.joined
    bulk = j[j["spam_type"] == "short_bulk"]
    assert bulk["uploader_id"].nunique() == 1 and len(bulk) >= 2
    assert np.allclose(bulk["duration_s"], 31.0, atol=0.01)
    burst = j[j["spam_type"] == "bulk_burst"]
    times = burst["uploaded_at"].map(parse_timestamp)
    assert burst["uploader_id"].nunique() == 1 and (times.max() - times.min()).total_seconds() <= 3600


def _skeleton(name: str) -> str:
    cyrillic = dict(zip("аеорсАЕОТМН", "aeopcAEOTMH", strict=True))
    return "".join(cyrillic.get(ch, ch) for ch in name if unicodedata.category(ch) != "Cf")


@slow
def test_impostor_spam_targets_opted_in_artists(corpus: Built) -> None:
    j = corpus.joined
    artists = corpus.artists.set_index("artist_id")
    opted = artists[artists["opted_in"]]
    for _, row in j[j["spam_type"] == "confusable_name"].iterrows():
        assert row["artist_name"] not in set(artists["name"])
        assert _skeleton(row["artist_name"]) in set(opted["name"])
    for _, row in j[j["spam_type"] == "profile_mismatch"].iterrows():
        victim = opted[opted["profile_id"] == row["claimed_artist_id"]]
        assert len(victim) == 1 and victim.index[0] != row["voice_artist_id"]


# -- artists ---------------------------------------------------------------------------------------


@slow
def test_artists_consent_and_policies(corpus: Built) -> None:
    a = corpus.artists
    assert len(a) == 8 and a["artist_id"].is_unique and a["name"].is_unique
    assert a["opted_in"].sum() == 4
    assert (a["policy"].notna() == a["opted_in"]).all()
    assert set(a["policy"].dropna()) == {"block", "allow_licensed", "monitor"}
    for _, artist in a.iterrows():
        partners = list(artist["licensed_partner_ids"])
        assert (1 <= len(partners) <= 2) if artist["policy"] == "allow_licensed" else not partners
        params = json.loads(artist["voice_params"])
        assert params["voice"]
    assert len(set(zip(a["voice_engine"], a["voice_params"], strict=True))) == len(a)  # one voice per artist


@slow
def test_reference_takes_exist_and_are_not_uploads(corpus: Built) -> None:
    uris = set(corpus.manifest["audio_uri"])
    upload_hashes = {_sha(Path(u)) for u in uris if os.path.isfile(u) and os.path.getsize(u) > 0}
    for _, artist in corpus.artists.iterrows():
        refs = list(artist["reference_uris"])
        assert len(refs) == 3
        for ref in refs:
            info = sf.info(ref)
            assert (info.format, info.samplerate, info.channels) == ("WAV", 16_000, 1)
            assert 7.0 <= info.duration <= 13.0
            assert ref not in uris and _sha(Path(ref)) not in upload_hashes


# -- small units -----------------------------------------------------------------------------------


def test_wav_writer_round_trips(tmp_path: Path) -> None:
    x = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)], axis=1)
    for fmt, tol in (("pcm16", 1 / 32767), ("pcm24", 1 / 8388607), ("float", 1e-7)):
        path = tmp_path / f"{fmt}.wav"
        path.write_bytes(wav_bytes(x, 22_050, fmt))
        y, sr = sf.read(str(path))
        assert sr == 22_050 and y.shape == x.shape and np.max(np.abs(y - x)) <= tol


def test_midi_writer_encodes_delta_times() -> None:
    data = smf_bytes([Note(0, 60, 0.0, 1.0, 100), Note(0, 64, 300.0, 1.0, 90)], {0: 5}, 120.0, 302.0)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert struct.unpack(">I", data[18:22])[0] == len(data) - 22
    # the second note-on comes 300 beats * 480 ticks - 480 (first note-off) = 143520 ticks later:
    # as a variable-length quantity 143520 = 8*128**2 + 97*128 + 32 -> 0x88 0xE1 0x20, then note-on 0x90 64 90
    assert bytes([0x88, 0xE1, 0x20, 0x90, 64, 90]) in data


def test_confusable_names_look_alike_but_differ() -> None:
    rng = np.random.default_rng(0)
    for name in ("Mara Quill", "The Velvet Foxes", "Theo Moreau"):
        for _ in range(5):
            fake = confusable(rng, name)
            assert fake != name and _skeleton(fake) == name
