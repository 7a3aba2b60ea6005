"""Per-artist detector normalisation: the offset rule, its fit, the registry's levels, the decide
step, and the commands end to end on a tiny trained detector (synthetic audio)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.artist_norm import ArtistNorm, ArtistScoreNorm, normalised_logits, reference_levels
from models.base import DetectorOutput
from models.voiceprints import VoiceprintStore
from pipelines.config import load_config
from pipelines.decide import decide
from pipelines.transforms import artist_score_norm
from tests.test_decide import ARTISTS, CFG, THRESHOLDS, scores, track
from tests.test_eval_detector import trained  # noqa: F401  (module fixture: a tiny trained detector)
from tests.test_voiceprints import D, enroll, unit
from trackguard.cli import main

MODEL = "detector/lcnn@1+abc"


def test_offset_only_lowers_and_scales_with_the_excess_over_the_anchor() -> None:
    norm = ArtistNorm(anchor=-4.0, slope=0.5)
    assert norm.offset(-10.0) == 0.0 and norm.offset(-4.0) == 0.0  # a bona fide-looking voice gets no stricter
    assert norm.offset(2.0) == pytest.approx(3.0)
    assert norm.offset(None) == 0.0 and norm.offset(float("nan")) == 0.0
    adjusted = normalised_logits(np.array([1.0, 1.0]), ["loud", "unknown"], {"loud": 2.0}, norm)
    assert adjusted.tolist() == [pytest.approx(-2.0), 1.0]  # a voice without a level is left alone
    assert ArtistNorm.from_calibration({"a": 1.0, "b": 0.0}) is None
    assert ArtistNorm.from_calibration({**norm.to_calibration(), "a": 1.0}) == norm


def test_reference_levels_are_the_mean_per_voice() -> None:
    assert reference_levels(["a", "b", "a"], [1.0, -3.0, 3.0]) == {"a": 2.0, "b": -3.0}


def test_levels_are_per_model_refused_for_strangers_and_dropped_on_re_enrolment(sqlite_url: str) -> None:
    store = VoiceprintStore(sqlite_url)
    enroll(store, "a1", unit(np.random.default_rng(1).normal(size=(2, D))))
    store.set_detector_level("a1", MODEL, 3.0, 2, actor="t")
    store.set_detector_level("a1", MODEL, 2.5, 3, actor="t")  # replaced, not duplicated
    assert store.detector_levels(MODEL) == {"a1": 2.5} and store.detector_levels("detector/other@2") == {}
    assert store.artist("a1")["detector_levels"] == [f"{MODEL}=2.500"]  # what `artists show` and the app show
    with pytest.raises(KeyError, match="not enrolled"):
        store.set_detector_level("nobody", MODEL, 1.0, 1, actor="t")
    enroll(store, "a1", unit(np.random.default_rng(2).normal(size=(2, D))))  # new references: the old level is stale
    assert store.detector_levels(MODEL) == {}


NORM = ArtistScoreNorm(ArtistNorm(anchor=-1.0), {"a": 1.0, "b": 0.0}, {"a-block": 2.0}, MODEL)  # offset 3 logits


def _synthetic(logit: float, matched: str | None) -> tuple[str | None, list[str]]:
    s = scores(synthetic=float(1 / (1 + np.exp(-logit))), matched=matched)
    s = dataclasses.replace(s, detector=DetectorOutput(s.detector.score, [], logit=logit, vocal_windows=3))  # type: ignore[union-attr]
    v = decide(track(), s, ARTISTS, THRESHOLDS, CFG, NORM)
    return (v.queue.value if v.queue else None), v.reasons


def test_an_enrolled_artists_own_level_sets_aside_a_flag_it_explains() -> None:
    # logit 1.0 → 0.73 ≥ 0.5 flags; after a-block's offset of 3 it is 0.12: their own voice, not a clone.
    assert _synthetic(1.0, "a-block") == (None, ["synthetic_score_within_artist_reference"])
    # A clone well above the artist's level is still an impersonation.
    queue, reasons = _synthetic(5.0, "a-block")
    assert queue == "impersonation" and "synthetic_voice" in reasons
    # Only the identified singer's level counts: an unmatched upload, or one matched to an artist
    # without a level, is judged as before.
    assert _synthetic(1.0, None)[0] == "undisclosed-ai"
    assert _synthetic(1.0, "a-mon")[0] == "impersonation"


def test_the_sweep_loads_the_current_models_levels_unless_the_policy_turns_it_off(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    from models.artifact import ArtifactCard, save_card

    card = ArtifactCard("detector", "lcnn", "models.detector.WindowDetector", {}, "1", "test",
                        calibration={"a": 1.0, "b": 0.0, **ArtistNorm(-4.0).to_calibration()})
    save_card(tmp_path / "det", card)
    store = VoiceprintStore(sqlite_url)
    enroll(store, "a1", unit(np.random.default_rng(1).normal(size=(2, D))))
    cfg = load_config(db_url=sqlite_url)
    spec = next(s for s in cfg.scorers if s.slot == "detector")
    cfg = dataclasses.replace(cfg, scorers=[dataclasses.replace(spec, artifact=str(tmp_path / "det"))])
    assert artist_score_norm(cfg, store) is None  # no artist has a level for this model yet
    store.set_detector_level("a1", "detector/other@9", 2.0, 3, actor="t")
    assert artist_score_norm(cfg, store) is None  # another model's level does not count
    store.set_detector_level("a1", card.model_id, 2.0, 3, actor="t")
    loaded = artist_score_norm(cfg, store)
    assert loaded is not None and dict(loaded.levels) == {"a1": 2.0} and loaded.model_id == card.model_id
    off = dataclasses.replace(cfg, policy={**cfg.policy, "artist_normalisation": False})
    assert artist_score_norm(off, store) is None


def _add_references(corpus: Path, per_artist: int = 2) -> None:
    """artists.parquet with a-cappella reference takes (the corpus generator's layout) for the tiny corpus."""
    from tests.audio_factory import voice_like, write_audio
    from tests.test_detector import SR

    labels = pd.read_parquet(corpus / "labels.parquet")
    rows = []
    for i, artist in enumerate(sorted(labels["voice_artist_id"].dropna().unique())):
        uris = []
        for j in range(per_artist):
            path = corpus / "references" / artist / f"ref{j + 1}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_audio(path, voice_like(SR, 5.0, f0=110.0 + 17.0 * i, amplitude=0.5, seed=900 + 10 * i + j), SR)
            uris.append(str(path))
        rows.append({"artist_id": artist, "name": artist, "opted_in": i % 2 == 0, "policy": "block",
                     "profile_id": f"prf-{i}", "licensed_partner_ids": [], "reference_uris": uris})
    pd.DataFrame(rows).to_parquet(corpus / "artists.parquet")


def test_anchor_is_fitted_only_on_the_corpus_the_detector_was_split_on(trained: dict[str, Path],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """split.json's test ids carry no corpus prefix: read against another corpus (which numbers its uploads
    alike) they would name the wrong test voices, so the anchor could be fitted on voices held out."""
    import shutil

    from models.fit_artist_norm import developed_voices

    other = tmp_path / "corpus-b"
    shutil.copytree(trained["corpus"], other)  # same upload ids, a corpus the model never used
    with pytest.raises(ValueError, match=r"not the corpus .* fit the anchor on that corpus"):
        developed_voices(trained["model"], other)
    # its own corpus is accepted: the end-to-end test below fits there and checks no test voice is used


@pytest.mark.slow
def test_fit_eval_and_registry_levels_end_to_end(trained: dict[str, Path], tmp_path: Path,  # noqa: F811
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    corpus, model = trained["corpus"], tmp_path / "model"
    import shutil

    shutil.copytree(trained["model"], model)
    _add_references(corpus)
    out = tmp_path / "report"
    argv = ["eval", "detector", "--corpus", str(corpus), "--artifact", str(model), "--out", str(out), "--split", "all",
            "--artist-references"]
    assert main(argv) != 0  # not fitted yet: says which command fits it
    assert "trackguard train artist-norm" in capsys.readouterr().err
    assert main(["train", "artist-norm", "--artifact", str(model), "--corpus", str(corpus)]) == 0
    card = json.loads((model / "artifact.json").read_text())
    fitted = card["metrics"]["artist_norm"]
    split = json.loads((model / "split.json").read_text())
    labels = pd.read_parquet(corpus / "labels.parquet").set_index("upload_id")
    test_voices = set(labels.loc[split["test"], "voice_artist_id"])
    # The anchor is the most synthetic-looking of the voices it was developed on; test voices are never looked at.
    assert fitted["reference_levels"] and not set(fitted["reference_levels"]) & test_voices
    assert fitted["anchor"] == max(fitted["reference_levels"].values()) == card["calibration"]["artist_anchor"]
    assert card["calibration"]["artist_slope"] == 1.0 and "trackguard train artist-norm" in fitted["command"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    section = metrics["artist_norm"]
    assert set(section["reference_levels_logit"]) == set(pd.read_parquet(out / "scores.parquet")["voice"])
    assert section["raw"]["eer"] == pytest.approx(metrics["eer"])  # the raw row is the report's own figure
    assert "## Per-artist normalisation" in (out / "report.md").read_text()
    for metric in ("eer", "min_dcf"):  # the paired difference is of the section's own two figures
        paired = section["normalised_minus_raw"][metric]
        assert paired["difference"] == pytest.approx(section["normalised"][metric] - section["raw"][metric])
        assert paired["difference_ci95"][0] <= paired["difference_ci95"][1]
    corr = section["level_vs_bona_fide_logit_correlation"]
    assert corr is None or -1.0 <= corr <= 1.0

    db = f"sqlite:///{tmp_path / 'reg.db'}"
    artists = pd.read_parquet(corpus / "artists.parquet")
    store = VoiceprintStore(db)
    for a in artists[artists["opted_in"]].itertuples():  # voiceprints are random: only the sources matter here
        vectors = unit(np.random.default_rng(3).normal(size=(len(a.reference_uris), D)))
        store.enroll(a.artist_id, a.name, "block", "t", vectors, list(a.reference_uris))
    capsys.readouterr()
    assert main(["artists", "detector-levels", "--artifact", str(model), "--actor", "t", "--db-url", db]) == 0
    printed = capsys.readouterr().out
    from models.artifact import load_card

    levels = store.detector_levels(load_card(model).model_id)
    assert set(levels) == set(artists[artists["opted_in"]]["artist_id"]) and all(np.isfinite(list(levels.values())))
    assert all(a in printed for a in levels)
    assert main(["artists", "detector-levels", "--artifact", str(model), "--actor", " ", "--db-url", db]) != 0
    assert "--actor" in capsys.readouterr().err


def test_level_correlation_is_over_voices_bona_fide_means_only() -> None:
    from trackguard.reports.artist_norm_section import level_correlation

    scores = pd.DataFrame({"voice": ["a", "a", "b", "b", "c", "c"], "is_synthetic": [False, True] * 3,
                           "logit": [1.0, -50.0, 2.0, 50.0, 3.0, 0.0]})  # clones must not count
    assert level_correlation(scores, {"a": -1.0, "b": 0.0, "c": 1.0}) == pytest.approx(1.0)
    assert level_correlation(scores, {"a": 1.0, "b": 0.0, "c": -1.0}) == pytest.approx(-1.0)
    assert level_correlation(scores, {"a": 1.0, "b": 0.0}) is None  # two voices say nothing
