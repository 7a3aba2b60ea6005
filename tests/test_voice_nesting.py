"""Nesting a detector's split in an earlier one's, and the catalogue voices that the detector-wide size adds.

The voice tests render real speech with Debian's festival and espeak-ng voices (installed by `make setup`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.artifact import ArtifactCard, save_card
from models.train_detector import assign_splits
from models.voice_nesting import HELD_OUT, TRAIN_ONLY, artifact_corpus_size, nested_voice_rule
from trackguard.corpus.spec import SIZES
from trackguard.corpus.voices import CATALOGUE, VOICE_SR, speak

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "detector-lcnn"


def _card(directory: Path, train_voices: list[str], training_data: str = "",
          corpora: list[dict[str, str]] | None = None) -> Path:
    spec = {"corpora": corpora} if corpora is not None else {}
    save_card(directory, ArtifactCard("detector", "lcnn", "models.detector.WindowDetector", spec, "test",
                                      training_data, metrics={"train_voices": train_voices}))
    return directory


def _tracks(n_artists: int, songs: int = 3) -> pd.DataFrame:
    rows = []
    for a in range(1, n_artists + 1):
        for s in range(songs):
            rows.append((f"u{a}-{s}", False, f"art-{a:03d}", f"c{a}-{s}"))
            rows.append((f"u{a}-{s}-clone", True, f"art-{a:03d}", f"c{a}-{s}"))
    tracks = pd.DataFrame(rows, columns=["upload_id", "is_synthetic", "artist", "content_id"])
    return tracks.set_index("upload_id")


def test_rule_from_corpora_record_and_from_older_training_text(tmp_path: Path) -> None:
    recorded = _card(tmp_path / "a", ["art-001", "art-003"],
                     corpora=[{"identity": "seed=11 size=small version=1.2.0", "prefix": ""}])
    rule = nested_voice_rule(recorded)
    assert len(rule) == SIZES["small"].n_artists
    assert rule["art-001"] == rule["art-003"] == TRAIN_ONLY
    assert all(rule[f"art-{i:03d}"] == HELD_OUT for i in (2, 4, 5, 6, 7, 8))
    older = _card(tmp_path / "b", ["art-002"], training_data="synthetic corpus seed=11 size=medium version=1.1.0 (x)")
    assert artifact_corpus_size(older) == "medium" and len(nested_voice_rule(older)) == SIZES["medium"].n_artists
    with pytest.raises(ValueError, match="names no corpus size"):
        nested_voice_rule(_card(tmp_path / "c", ["art-001"], training_data="somewhere"))
    with pytest.raises(ValueError, match="training voices"):
        nested_voice_rule(_card(tmp_path / "d", [], corpora=[{"identity": "size=small"}]))


def test_shipped_detector_nests_seventeen_train_voices_and_eleven_held_out() -> None:
    rule = nested_voice_rule(SHIPPED)
    assert len(rule) == 28
    assert sum(v == TRAIN_ONLY for v in rule.values()) == 17
    assert sum(v == HELD_OUT for v in rule.values()) == 11


def test_nested_split_obeys_the_rule_and_splits_new_voices(tmp_path: Path) -> None:
    tracks = _tracks(12)
    trained = [f"art-{i:03d}" for i in (1, 2, 3, 4, 5)]
    rule = nested_voice_rule(_card(tmp_path / "a", trained, corpora=[{"identity": "size=small"}]))  # voices 1-8
    split = assign_splits(tracks, seed=0, voice_rule=rule)
    by_voice = tracks.assign(s=split).groupby("artist")["s"].agg(set)
    assert all(by_voice[v] == {"train"} for v in trained)
    assert all(by_voice[f"art-{i:03d}"] <= {"dev", "test"} for i in (6, 7, 8))
    new = set().union(*(by_voice[f"art-{i:03d}"] for i in (9, 10, 11, 12)))
    assert "train" in new  # new voices fill train toward its share
    free = assign_splits(tracks, seed=0)
    assert not free.equals(split)  # the rule changed something (free assignment ignores it)


def test_a_song_shared_across_the_rule_is_refused(tmp_path: Path) -> None:
    tracks = _tracks(8)
    tracks.loc[tracks["artist"].eq("art-006"), "content_id"] = "c1-0"  # voice 6 covers voice 1's song
    rule = nested_voice_rule(_card(tmp_path / "a", ["art-001"], corpora=[{"identity": "size=small"}]))
    with pytest.raises(ValueError, match="different splits"):
        assign_splits(tracks, seed=0, voice_rule=rule)


def test_detector_wide_extends_the_detector_catalogue() -> None:
    assert SIZES["detector-wide"].n_artists == len(CATALOGUE) == 40
    assert SIZES["detector"].n_artists == 28
    assert len(set(CATALOGUE)) == len(CATALOGUE)  # no voice twice


@pytest.mark.parametrize("index", range(28, 40))
def test_new_catalogue_voice_sings_a_line(index: int) -> None:
    voice = CATALOGUE[index]
    (line,) = speak(voice, ["the silver river calls me home tonight"])
    assert 1.0 < len(line) / VOICE_SR < 6.0, voice
    assert np.sqrt(np.mean(line**2)) > 0.005 and np.isfinite(line).all()


def test_card_command_replays_the_nesting() -> None:
    from models.train_detector import _command

    cmd = _command(Path("c11"), Path("out"), 8, 0, None, {"augment": True, "nest_in": "models/checkpoints/x"}, "lcnn")
    assert cmd.endswith("--nest-in models/checkpoints/x")
    assert "--nest-in" not in _command(Path("c11"), Path("out"), 8, 0, None, {"augment": True}, "lcnn")


def test_corpus_make_offers_every_size() -> None:
    from trackguard.cli import build_parser

    parser = build_parser()
    for size in SIZES:  # the CLI spells the sizes out (see its comment): none may be missing
        assert parser.parse_args(["corpus", "make", "--out", "x", "--size", size]).size == size
