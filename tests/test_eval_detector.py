"""`trackguard eval detector` and `trackguard bench detector` on a tiny trained model, and AASIST fine-tuning.

The corpus is the tiny bona fide/clone twin set of test_detector (synthetic); the
figures are not meant to be good, only computed by the real commands.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.eval_detector import Source, covered_seconds, evaluate_detector, select_tracks
from models.train_detector import TrainingSet, corpora_record, corpus_identity, fit_net, split_prefix, train_detector
from tests.test_detector import _tiny_twin_corpus
from trackguard.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaldet")
    corpus = _tiny_twin_corpus(root / "corpus", n_artists=8, stems=True)
    out = root / "model"
    train_detector(corpus, out, epochs=3, seed=1, cache_dir=root / "cache", workers=1, threads=1,
                   train_params={"batch_size": 16}, augment=False)
    return {"root": root, "corpus": corpus, "model": out}


def test_covered_seconds_counts_overlaps_once() -> None:
    assert covered_seconds(np.array([0.0, 2.0, 4.0]), 4.0) == 8.0
    assert covered_seconds(np.array([10.0, 0.0]), 4.0) == 8.0
    assert covered_seconds(np.array([]), 4.0) == 0.0


@pytest.mark.slow
def test_eval_writes_report_on_the_test_split_only(trained: dict[str, Path]) -> None:
    out = trained["root"] / "report"
    metrics = evaluate_detector(trained["model"], trained["corpus"], out, split="test")
    for name in ("report.md", "det.png", "calibration.png", "context.png", "metrics.json", "scores.parquet"):
        assert (out / name).stat().st_size > 0, name
    split = json.loads((trained["model"] / "split.json").read_text())
    import pandas as pd

    scores = pd.read_parquet(out / "scores.parquet")
    scored = set(scores["upload_id"])
    assert scored == set(split["test"]) and not scored & set(split["train"])
    assert 0.0 <= metrics["eer"] <= 1.0
    assert set(metrics["per_voice"]) == set(scores["voice"]) and len(metrics["per_voice"]) >= 1  # one row per singer
    stored = [r for r in metrics["pooling"] if r["stored"]]
    assert len(stored) == 1 and stored[0]["eer"] == pytest.approx(metrics["eer"])  # the stored k is the report's
    report = (out / "report.md").read_text()
    assert "griffin_lim" in report and "context" in report.lower()
    card = json.loads((trained["model"] / "artifact.json").read_text())
    dev = metrics["threshold_dev_voices"]  # the card's per-dev-voice record, shown beside the test figures
    assert set(dev["by_voice"]) == set(card["metrics"]["threshold_by_dev_voice"])
    assert "## Threshold and the dev voices" in report and f"`{dev['voice_holding_it_up_most']}`" in report


def test_unseen_voices_split_scores_only_voices_it_did_not_train_on(trained: dict[str, Path]) -> None:
    """Another seed reuses the voices: only uploads by voices outside the artifact's train split count."""
    card = json.loads((trained["model"] / "artifact.json").read_text())
    voices = set(card["metrics"]["train_voices"])
    tracks = select_tracks(trained["corpus"], trained["model"], "unseen-voices")
    every = select_tracks(trained["corpus"], trained["model"], "all")
    split = json.loads((trained["model"] / "split.json").read_text())
    assert voices and not set(tracks["artist"]) & voices
    # the corpus it trained on: its unseen voices less the dev voices, whose uploads it calibrated on
    assert set(every["artist"]) - voices - set(every.loc[split["dev"], "artist"]) == set(tracks["artist"])
    assert set(tracks.index) == set(split["test"]) and not set(tracks.index) & set(split["dev"])
    card["metrics"].pop("train_voices")
    old = trained["root"] / "old-model"
    old.mkdir(exist_ok=True)
    (old / "artifact.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="training voices"):
        select_tracks(trained["corpus"], old, "unseen-voices")


def test_test_split_of_another_corpus_is_refused(trained: dict[str, Path], tmp_path: Path) -> None:
    """Every corpus numbers its uploads alike, so split.json's unprefixed test ids would pick uploads of
    any other corpus: its own corpus (recorded in the card) is the only one with a test split."""
    import shutil

    other = tmp_path / "corpus-b"
    shutil.copytree(trained["corpus"], other)  # same ids, a corpus the model never used
    assert not select_tracks(trained["corpus"], trained["model"], "test").empty
    for split in ("test", "dev"):
        with pytest.raises(ValueError, match="not the corpus"):
            select_tracks(other, trained["model"], split)
    assert not select_tracks(other, trained["model"], "unseen-voices").empty
    from trackguard.copy_margin import bona_fide_originals

    with pytest.raises(ValueError, match=r"not the corpus .* --split all"):  # the copy margin's dev originals too
        bona_fide_originals(trained["model"], other, "dev")
    assert bona_fide_originals(trained["model"], other, "all")


def test_on_stems_scores_each_uploads_vocal_stem(trained: dict[str, Path], tmp_path: Path) -> None:
    uploads = select_tracks(trained["corpus"], trained["model"], "test")
    stems = select_tracks(trained["corpus"], trained["model"], "test", on_stems=True)
    assert list(stems.index) == list(uploads.index)
    for uid, uri in stems["audio_uri"].items():
        assert uri == str(trained["corpus"].resolve() / "stems" / f"{uid}.flac")
    bare = _tiny_twin_corpus(tmp_path / "bare", n_artists=4, songs=1, seconds=3.0)
    with pytest.raises(ValueError, match="corpus make --stems"):
        select_tracks(bare, trained["model"], "all", on_stems=True)


@pytest.mark.slow
def test_eval_cli_on_every_upload_and_context_grows(trained: dict[str, Path]) -> None:
    out = trained["root"] / "report-all"
    argv = ["eval", "detector", "--corpus", str(trained["corpus"]), "--artifact", str(trained["model"]),
            "--out", str(out), "--split", "all"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ctx = metrics["context"]
    seconds = [row["context_s"] for row in ctx]
    assert seconds == sorted(seconds) and seconds[0] <= 4.0 < seconds[-1]
    # every clone of the tiny corpus has its bona fide twin among the scored uploads
    import pandas as pd

    scores = pd.read_parquet(out / "scores.parquet")
    clones = scores[scores["is_synthetic"]]
    assert clones["twin_upload_id"].isin(scores["upload_id"]).all()
    assert metrics["twin_comparison"]["all"]["n_pairs"] == len(clones)
    # the mix column follows the labels: a cappella, or the vocal's level over the accompaniment
    labels = pd.read_parquet(trained["corpus"] / "labels.parquet").reset_index(drop=True).set_index("upload_id")
    a_cappella = labels.loc[scores["upload_id"], "a_cappella"].to_numpy(dtype=bool)
    assert ((scores["mix"] == "a cappella").to_numpy() == a_cappella).all()
    assert scores.loc[~a_cappella, "mix"].str.fullmatch(r"[+-]\d+ dB").all()
    assert sum(r["n_bona_fide"] + r["n_synthetic"] for r in metrics["per_mix"].values()) == len(scores)
    assert "## Where the errors come from" in (out / "report.md").read_text()


@pytest.mark.slow
def test_bench_detector_prints_and_writes_json(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = trained["root"] / "bench.json"
    argv = ["bench", "detector", "--tiers", "cpu", "--device", "cpu", "--lengths", "8,16", "--json", str(path),
            "--artifact", str(trained["model"])]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "windows batch=16" in printed and "batched vs naive" in printed
    rows = json.loads(path.read_text())["rows"]
    speedup = [r["batched_over_naive_speedup"] for r in rows if "batched_over_naive_speedup" in r]
    assert len(speedup) == 1 and speedup[0] > 0
    assert all(r["rt_factor"] > 0 for r in rows)


def test_aasist_fine_tunes_from_the_published_checkpoint() -> None:
    from models.aasist import AASIST, published_checkpoint_path
    from models.train_detector import _load_published
    from models.weights import MissingWeightsError

    try:
        published_checkpoint_path()
    except MissingWeightsError as err:
        pytest.skip(f"published AASIST checkpoint absent ({err}); run `trackguard setup models`")
    net = AASIST(n_families=2)
    _load_published(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    data = TrainingSet(x=0.1 * torch.randn(4, 16000, generator=gen), y=np.array([True, False, True, False]),
                       family=np.array([0, -1, 1, -1]), pair=np.full(4, -1), voice=np.array([0, 0, 1, 1]))
    params = {"batch_size": 4, "lr": 1e-4, "weight_decay": 1e-4, "family_loss_weight": 0.3, "pair_frac": 0.0,
              "gain_db": (0.0, 0.0), "snr_db": (60.0, 60.0)}
    losses = fit_net(net, data, epochs=1, seed=0, device=torch.device("cpu"), params=params)
    assert np.isfinite(losses).all()
    changed = [k for k, v in net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert "out_layer.weight" in changed and "family_head.weight" in changed


@pytest.mark.slow
def test_detector_notebook_executes_against_a_report(trained: dict[str, Path]) -> None:
    pytest.importorskip("nbclient", reason="notebook execution needs the dev extras (nbclient, ipykernel)")
    import nbformat

    from trackguard.notebooks import execute

    report = trained["root"] / "report-nb"
    evaluate_detector(trained["model"], trained["corpus"], report, split="all")
    path = execute("detector", report, out=trained["root"] / "nb.ipynb")
    nb = nbformat.read(str(path), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert any("bona_fide_flag_rate" in str(o.get("data", {})) for o in outputs)  # the per-voice table


def test_shipped_checkpoint_is_small_verified_and_scores(tmp_path: Path) -> None:
    """The demo installs this checkpoint: it must stay under 5 MB, name its command, and load and score."""
    from models.artifact import load_card
    from models.base import create_scorer
    from trackguard.bench.detector import _track_input, synthetic_track
    from trackguard.demo import SHIPPED_CHECKPOINTS, install_checkpoint

    src = SHIPPED_CHECKPOINTS["detector"]
    assert sum(f.stat().st_size for f in src.iterdir()) < 5 * 2**20
    card = load_card(src)  # verifies every file's sha256
    assert card.command.startswith("trackguard train detector") and card.threshold is not None
    dest = tmp_path / "detector"
    install_checkpoint(src, dest)
    import soundfile as sf

    sf.write(tmp_path / "t.flac", synthetic_track(12.0), 16000)
    scorer = create_scorer("detector", "lcnn", str(dest))
    (out,) = scorer.score_batch([_track_input(tmp_path / "t.flac", "t")], scorer.load_model())
    assert 0.0 <= out.score <= 1.0 and out.segments


def test_pooling_once_scored_windows_equals_scoring_each_budget(trained: dict[str, Path]) -> None:
    """The report pools one pass of window logits; that must equal re-scoring with each window budget."""
    from models.detector import load_detector
    from models.eval_detector import select_tracks
    from models.train_detector import load_windows, pool_tracks, track_logits, window_logits

    model = load_detector(trained["model"], "cpu")
    tracks = select_tracks(trained["corpus"], trained["model"], "all")
    _, windows, _ = load_windows(tracks, trained["root"] / "pool-cache", model.card.spec, 4, 1)
    per_track = window_logits(model.net, windows, 4)
    for k, n in ((1, 1), (2, 2), (3, 4)):
        np.testing.assert_allclose(pool_tracks(per_track, k, first=n), track_logits(model.net, windows, k, n),
                                   rtol=1e-5, atol=1e-6)


def test_copy_margin_flags_at_most_the_allowed_share_of_rises() -> None:
    from trackguard.copy_margin import margin_for

    rises = np.array([0.0] * 95 + [1.0, 1.5, 2.04, 3.0, 6.9])  # 100 copies
    assert margin_for(rises, 0.01) == pytest.approx(3.1)  # only the 6.9 may reach it
    assert margin_for(rises, 0.03) == pytest.approx(1.6)  # 6.9, 3.0 and 2.04 may
    assert int((rises >= margin_for(rises, 0.02)).sum()) <= 2
    assert margin_for(np.array([-3.0, -2.0]), 0.0) == 0.1  # a copy below its original is never evidence
    with pytest.raises(ValueError, match="no copy"):
        margin_for(np.array([]), 0.01)


@pytest.mark.slow
def test_train_copy_margin_measures_every_transform_and_the_sweep_reads_it(trained: dict[str, Path]) -> None:
    """On the tiny detector's dev split: each bona fide upload gets every re-upload transform, the
    margin goes into the artifact, and the pipeline's thresholds take it from there."""
    import shutil

    from pipelines.config import load_config
    from pipelines.decide import thresholds_from
    from pipelines.transforms import stored_thresholds
    from trackguard.corpus.transforms import TRANSFORMS

    artifact = trained["root"] / "copy-margin-model"
    shutil.copytree(trained["model"], artifact)
    argv = ["train", "copy-margin", "--artifact", str(artifact), "--corpus", str(trained["corpus"])]
    assert main(argv) == 0
    card = json.loads((artifact / "artifact.json").read_text())
    fitted = card["metrics"]["copy_margin"]
    assert fitted["n_originals"] > 0 and fitted["n_copies"] == fitted["n_originals"] * len(TRANSFORMS)
    assert set(fitted["max_rise_logit_per_transform"]) == set(TRANSFORMS)
    margin = card["calibration"]["copy_margin_logit"]
    assert margin == fitted["margin_logit"] and margin >= 0.1
    if fitted["n_copies"] < 100:  # 1 % of fewer than 100 copies is none: the margin clears every rise
        assert margin > fitted["max_rise_logit"]
    cfg = load_config()
    detector = dataclasses.replace(next(s for s in cfg.scorers if s.slot == "detector"), artifact=str(artifact))
    cfg = dataclasses.replace(cfg, scorers=tuple(detector if s.slot == "detector" else s for s in cfg.scorers))
    assert thresholds_from(cfg, stored_thresholds(cfg)).synthetic_over_original == margin


def test_split_prefix_finds_a_corpus_by_identity_and_old_artifacts_by_name(tmp_path: Path) -> None:
    seed13 = tmp_path / "det28-seed13"
    seed13.mkdir()
    (seed13 / "corpus.json").write_text(json.dumps({"seed": 13, "size": "detector", "version": "1.2.0"}))
    renamed = tmp_path / "copy-of-13"
    renamed.mkdir()
    (renamed / "corpus.json").write_text((seed13 / "corpus.json").read_text())
    primary = tmp_path / "det28-seed11"
    primary.mkdir()
    spec = {"corpora": corpora_record(primary, [seed13])}
    assert spec["corpora"][1]["identity"] == "seed=13 size=detector version=1.2.0"
    assert split_prefix(primary, spec) == ""
    assert split_prefix(seed13, spec) == split_prefix(renamed, spec) == "det28-seed13/"
    assert split_prefix(tmp_path / "det28-seed12", spec) is None  # never used: nothing of it was calibrated on
    assert split_prefix(renamed, {}) == "copy-of-13/"  # no record: by directory name, as before


def test_identity_tells_apart_builds_whose_corpus_json_agree_but_whose_uploads_do_not(tmp_path: Path) -> None:
    import shutil

    import pandas as pd

    built = tmp_path / "built"
    built.mkdir()
    (built / "corpus.json").write_text(json.dumps({"seed": 13, "size": "detector", "version": "1.2.0"}))
    labels = pd.DataFrame({"upload_id": ["u1", "u2"], "is_synthetic": [False, True], "generator_family": [None, "x"]})
    labels.to_parquet(built / "labels.parquet")
    copy, other = tmp_path / "copy", tmp_path / "other"
    shutil.copytree(built, copy)
    shutil.copytree(built, other)
    labels.assign(is_synthetic=[True, True]).to_parquet(other / "labels.parquet")  # same corpus.json
    identity = corpus_identity(built)
    assert identity.startswith("seed=13 size=detector version=1.2.0 labels=")
    assert corpus_identity(copy) == identity != corpus_identity(other)
    primary = tmp_path / "primary"
    spec = {"corpora": [{"identity": "p", "prefix": ""}, *corpora_record(primary, [built])[1:]]}
    assert split_prefix(copy, spec) == "built/" and split_prefix(other, spec) is None
    old_card = {"corpora": [{"identity": "p", "prefix": ""},
                            {"identity": "seed=13 size=detector version=1.2.0", "prefix": "built/"}]}
    assert split_prefix(other, old_card) == "built/"  # recorded before the digest: matched on the rest


def test_source_parse_takes_a_split_only_when_it_names_one() -> None:
    assert Source.parse("c/det13:unseen-voices", "test") == Source(Path("c/det13"), "unseen-voices")
    assert Source.parse("c/det13", "all") == Source(Path("c/det13"), "all")
    assert Source.parse("gs:bucket", "test") == Source(Path("gs:bucket"), "test")  # not a split: part of the path


@pytest.mark.slow
def test_several_corpora_pool_into_one_report_with_voices_resampled_across_them(
        trained: dict[str, Path], tmp_path: Path) -> None:
    """Two seeds of one catalogue: ids prefixed by corpus, one voice = one bootstrap cluster across both,
    and an --extra-corpus upload the model calibrated on is not counted as unseen."""
    import shutil

    import pandas as pd

    other = tmp_path / "corpus-b"
    shutil.copytree(trained["corpus"], other)
    model = tmp_path / "model"
    shutil.copytree(trained["model"], model)
    split = json.loads((model / "split.json").read_text())
    unseen = select_tracks(other, model, "unseen-voices")
    # a corpus the model never used (this copy, until it is recorded below): only the training voices go
    assert set(unseen.index) == set(split["dev"]) | set(split["test"])
    # Pretend corpus-b is a renamed copy of an --extra-corpus (seed 99) whose dev held this upload:
    # it is recognised by its corpus.json, not its directory name.
    (other / "corpus.json").write_text(json.dumps({"seed": 99, "size": "tiny", "version": "0"}))
    calibrated = str(unseen.index[0])
    split["dev"].append(f"det-seed99/{calibrated}")
    (model / "split.json").write_text(json.dumps(split))
    card = json.loads((model / "artifact.json").read_text())
    card["spec"]["corpora"].append({"dir": "c/det-seed99", "identity": corpus_identity(other), "prefix": "det-seed99/"})
    card["files"]["split.json"] = hashlib.sha256((model / "split.json").read_bytes()).hexdigest()
    (model / "artifact.json").write_text(json.dumps(card))
    out = tmp_path / "pooled"
    assert main(["eval", "detector", "--artifact", str(model), "--corpus", f"{trained['corpus']}:test",
                 "--corpus", f"{other}:unseen-voices", "--out", str(out)]) == 0
    scores = pd.read_parquet(out / "scores.parquet")
    name = trained["corpus"].resolve().name
    assert set(scores["corpus"]) == {name, "corpus-b"}
    own = scores[scores["corpus"] == name]
    assert set(own["upload_id"]) == {f"{name}/{i}" for i in split["test"]} and set(own["split"]) == {"test"}
    assert len(scores[scores["corpus"] == "corpus-b"]) == len(unseen) - 1
    assert f"corpus-b/{calibrated}" not in set(scores["upload_id"])
    twins = scores["twin_upload_id"].dropna()
    assert len(twins) and all(t.split("/")[0] in {name, "corpus-b"} for t in twins)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["intervals"]["n_clusters"] == scores["voice"].nunique()  # a voice is one cluster in both
    assert f"--corpus {trained['corpus']}:test --corpus {other}:unseen-voices" in (out / "report.md").read_text()
    with pytest.raises(ValueError, match="distinct directory names"):
        evaluate_detector(model, [Source(trained["corpus"], "test"), Source(trained["corpus"], "all")], tmp_path / "x")
