"""`trackguard eval voices` on constructed embeddings and a tiny generated corpus (synthetic tones, stub encoder).

The stub encoder stands in for ECAPA-TDNN (a pooled magnitude spectrum, so tones of
different pitch get different embeddings): these tests check the trial construction,
the metrics, the report and the notebook, not the accuracy of a real speaker model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from models.asnorm import VoiceCalibration, cohort_stats
from models.eval_voices import (
    CONDITIONS,
    condition_of,
    evaluate_voices,
    fixed_crops,
    report_threshold,
    trial_table,
    unit_rows,
)
from models.verifier import DEFAULT_THRESHOLD, MEAN, operating_point, scorer_id
from models.voiceprints import Voiceprints
from trackguard.reports.voices_report import binomial_ci95, eer_block, rates_at, write_voices_report

SR = 16_000
F0 = {"art-a": 140.0, "art-b": 230.0, "art-c": 370.0}  # art-c is never enrolled


class StubEncoder:
    """Stands in for ECAPA: the mean magnitude spectrum (bins 1-192 of 1024-sample frames) of each waveform."""

    def encode_batch(self, wavs: torch.Tensor) -> torch.Tensor:
        frames = wavs[:, : wavs.shape[1] // 1024 * 1024].reshape(wavs.shape[0], -1, 1024)
        spec = torch.fft.rfft(frames * torch.hann_window(1024), dim=-1).abs().mean(dim=1)
        return torch.log1p(spec[:, 1:193]).unsqueeze(1)


def tone(f0: float, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """A sung-vowel-like harmonic tone with syllable gating and a little noise (synthetic voice)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * f0 * (t + 0.003 * np.sin(2 * np.pi * 5 * t))
    wave = sum(np.sin(k * phase) * 0.7**k for k in range(1, 10)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.3 * wave + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def accompaniment(seconds: float = 6.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (523.0, 659.0, 784.0))
    return (0.2 * chord + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def make_corpus(root: Path) -> Path:
    """9 vocal uploads (3 voices × a cappella / +9 dB / +3 dB), one clone, one undecodable, one instrumental."""
    (root / "audio").mkdir(parents=True)
    rows, labels = [], []
    for v, (artist, f0) in enumerate(F0.items()):
        for j, level in enumerate((None, 9.0, 3.0)):
            uid = f"u-{artist}-{j}"
            voice = tone(f0, seed=10 * v + j)
            mix = voice if level is None else voice + accompaniment(seed=j) * 10 ** (-level / 20) * 1.5
            sf.write(root / "audio" / f"{uid}.wav", 0.5 * mix / np.abs(mix).max(), SR)
            rows.append({"upload_id": uid, "audio_uri": f"audio/{uid}.wav"})
            labels.append({"upload_id": uid, "voice_artist_id": artist, "kind": "clean", "a_cappella": level is None,
                           "vocal_to_accompaniment_db": level})
    sf.write(root / "audio" / "u-clone.wav", 0.4 * tone(F0["art-a"] * 1.02, seed=99), SR)
    (root / "audio" / "u-broken.wav").write_bytes(b"not audio at all")
    sf.write(root / "audio" / "u-instr.wav", accompaniment(seed=5), SR)
    rows += [{"upload_id": u, "audio_uri": f"audio/{u}.wav"} for u in ("u-clone", "u-broken", "u-instr")]
    labels += [
        {"upload_id": "u-clone", "voice_artist_id": "art-a", "kind": "clone", "a_cappella": True,
         "vocal_to_accompaniment_db": None},
        {"upload_id": "u-broken", "voice_artist_id": "art-b", "kind": "bad_input", "a_cappella": True,
         "vocal_to_accompaniment_db": None},
        {"upload_id": "u-instr", "voice_artist_id": None, "kind": "spam", "a_cappella": False,
         "vocal_to_accompaniment_db": None},
    ]
    pd.DataFrame(rows).to_parquet(root / "manifest.parquet")
    pd.DataFrame(labels).to_parquet(root / "labels.parquet")
    return root


def enrol_stub(url: str, encoder: StubEncoder) -> None:
    """Enrol art-a and art-b from fresh takes of their tones (consent recorded; stub embeddings)."""
    from models.speaker import embed_windows
    from models.voiceprints import VoiceprintStore

    store = VoiceprintStore(url)
    for artist in ("art-a", "art-b"):
        takes = torch.from_numpy(np.stack([tone(F0[artist], 4.0, seed=500 + i) for i in range(2)]))
        emb = embed_windows(encoder, takes).numpy()
        store.enroll(artist, artist, "block", "test", emb, ["take-1", "take-2"], model_id="stub")


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    corpus = make_corpus(root / "corpus")
    url = f"sqlite:///{root / 'tg.db'}"
    encoder = StubEncoder()
    enrol_stub(url, encoder)
    out = root / "report"
    evaluate_voices(corpus, out, url, encoder=encoder, model_id="stub@0", cache_dir=root / "cache")
    return out


def snapshot(matrix: np.ndarray, cohort: np.ndarray | None = None, top_k: int = 10,
             calibration: VoiceCalibration | None = None) -> Voiceprints:
    """The registry's snapshot of artists a and b, with AS-norm statistics when a cohort is given."""
    matrix = unit_rows(matrix)
    if cohort is None:
        return Voiceprints(("a", "b"), matrix, {}, top_k=top_k, calibration=calibration)
    cohort = unit_rows(cohort)
    return Voiceprints(("a", "b"), matrix, {}, cohort, cohort_stats(matrix, cohort, top_k), top_k, calibration)


def constructed(n_per_voice: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, Voiceprints]:
    """Uploads of voices a, b (enrolled) and c (not), as noisy copies of orthogonal voiceprints."""
    rng = np.random.default_rng(seed)
    basis = np.eye(3, 16, dtype=np.float32)
    rows, emb = [], []
    conditions = [(True, None), (False, 9.0), (False, 3.0), (False, 12.0)]
    for v, voice in enumerate(("a", "b", "c")):
        for i in range(n_per_voice):
            a_cap, level = conditions[i % len(conditions)]
            rows.append({"upload_id": f"{voice}{i}", "voice_artist_id": voice, "kind": "clean", "a_cappella": a_cap,
                         "vocal_to_accompaniment_db": level})
            emb.append(basis[v] + 0.05 * rng.standard_normal(16).astype(np.float32))
    return pd.DataFrame(rows), np.stack(emb), snapshot(basis[:2])


META = {"model_id": "constructed", "data": "constructed embeddings (synthetic)", "command": "test",
        "enrolled": ["a", "b"], "variants": {"raw": "verifier"}, "limitations": ["synthetic"],
        "threshold": {"threshold": 0.5, "score": "raw", "calibrated": False, "source": "UNCALIBRATED test"}}


def test_condition_bins() -> None:
    assert condition_of(True, None) == "a cappella"
    assert condition_of(False, 6.0) == "mixed ≥ 6 dB" and condition_of(False, 12.0) == "mixed ≥ 6 dB"
    assert condition_of(False, 0.0) == "mixed 0–6 dB" and condition_of(False, 5.9) == "mixed 0–6 dB"
    assert condition_of(False, -3.0) == "mixed < 0 dB"
    assert condition_of(False, float("nan")) == "mixed, level unknown"


def test_trial_table_marks_targets_per_upload_and_enrolled_artist() -> None:
    uploads, emb, prints = constructed()
    trials = trial_table(uploads, list(emb[:, None, :]), prints)
    assert len(trials) == 12 * 2
    assert int(trials["is_target"].sum()) == 8  # 4 uploads of a and 4 of b, each once
    assert not trials.loc[trials["voice_artist_id"] == "c", "is_target"].any()  # not enrolled: impostor only
    assert trials.loc[trials["voice_artist_id"] == "c", "voice_enrolled"].eq(False).all()
    a0 = trials[(trials["upload_id"] == "a0")].set_index("artist_id")["raw"]
    assert a0["a"] > 0.9 > 0.2 > a0["b"]
    assert trials.loc[trials["a_cappella"], "vocal_to_accompaniment_db"].isna().all()


def test_perfect_separation_gives_eer_zero_and_swapped_labels_one(tmp_path: Path) -> None:
    uploads, emb, prints = constructed()
    trials = trial_table(uploads, list(emb[:, None, :]), prints)
    m = write_voices_report(trials, tmp_path / "ok", title="constructed", meta=META)
    assert m["eer"]["raw"] == {"eer": 0.0, "eer_threshold": m["eer"]["raw"]["eer_threshold"], "n_target": 8,
                               "n_impostor": 16}
    assert m["operating_point"]["far"] == 0.0 and m["operating_point"]["frr"] == 0.0
    assert m["identification"]["n_correct"] == 8 and m["identification"]["n_false_match"] == 0
    swapped = trials.assign(is_target=~trials["is_target"])
    assert eer_block(swapped["is_target"].to_numpy(), swapped["raw"].to_numpy())["eer"] == 1.0


@pytest.mark.parametrize(("threshold", "target_far", "verdict"), [
    (0.5, 0.01, "inside the interval"),  # 0 of 16 impostors accepted: the interval reaches 0.21
    (-1.0, 0.01, "above the target beyond sampling noise"),  # every impostor accepted
])
def test_the_report_says_whether_far_misses_the_calibrated_target_beyond_noise(
        tmp_path: Path, threshold: float, target_far: float, verdict: str) -> None:
    uploads, emb, prints = constructed()
    trials = trial_table(uploads, list(emb[:, None, :]), prints)
    meta = {**META, "threshold": {"threshold": threshold, "score": "raw", "calibrated": True, "source": "test"},
            "calibration": {"target_far": target_far}}
    m = write_voices_report(trials, tmp_path, title="constructed", meta=meta)
    assert m["operating_point"]["far_ci95"] == binomial_ci95(m["operating_point"]["n_false_accept"], 16)
    report = (tmp_path / "report.md").read_text()
    assert "FAR 95 % CI" in report
    assert f"against the calibration's target {target_far}" in report and verdict in report


def test_split_tables_list_every_group_with_its_counts(tmp_path: Path) -> None:
    uploads, emb, prints = constructed(n_per_voice=4)
    trials = trial_table(uploads, list(emb[:, None, :]), prints)
    m = write_voices_report(trials, tmp_path, title="constructed", meta=META)
    groups = m["by_condition"]["raw"]
    assert list(groups) == ["all", "a cappella", "mixed (all levels)", "mixed ≥ 6 dB", "mixed 0–6 dB", "mixed < 0 dB"]
    assert set(CONDITIONS) <= set(groups)
    assert [groups[g]["n_uploads"] for g in groups] == [12, 3, 9, 6, 3, 0]
    assert groups["a cappella"]["n_target"] == 2 and groups["a cappella"]["n_impostor"] == 4
    assert groups["mixed < 0 dB"]["eer"] is None  # empty group: undefined, not zero-error (strict JSON null)
    assert set(m["by_level_db"]["raw"]) == {"12 dB", "9 dB", "3 dB", "a cappella"}
    report = (tmp_path / "report.md").read_text()
    assert "| mixed < 0 dB | 0 | 0 | 0 | n/a |" in report
    assert "| mixed 0–6 dB | 3 | 2 | 4 | 0.0000 |" in report
    assert "UNCALIBRATED" in report and "synthetic" in report
    assert json.loads((tmp_path / "metrics.json").read_text())["n_trials"] == 24
    assert (tmp_path / "det.png").stat().st_size > 10_000 and (tmp_path / "scores.png").stat().st_size > 10_000


def test_rates_at_threshold_count_false_accepts_and_rejects() -> None:
    y = np.array([True, True, True, False, False, False, False])
    s = np.array([0.9, 0.5, 0.2, 0.6, 0.5, 0.1, 0.0])
    r = rates_at(y, s, 0.5)  # accept at >= 0.5
    assert (r["n_false_accept"], r["n_impostor"], r["n_false_reject"], r["n_target"]) == (2, 4, 1, 3)
    assert r["far"] == 0.5 and r["frr"] == pytest.approx(1 / 3)
    assert r["far_ci95"] == binomial_ci95(2, 4) and r["frr_ci95"] == binomial_ci95(1, 3)


def test_binomial_intervals_are_exact_at_the_edges_and_narrow_with_more_trials() -> None:
    assert binomial_ci95(0, 10) == pytest.approx([0.0, 1 - 0.025 ** (1 / 10)])  # closed forms at k = 0 and k = n
    assert binomial_ci95(10, 10) == pytest.approx([0.025 ** (1 / 10), 1.0])
    low, high = binomial_ci95(8, 751)
    assert low < 8 / 751 < high and low < 0.01 < high  # 8 of 751 cannot be told from a 1 % target
    wide, narrow = binomial_ci95(8, 751), binomial_ci95(80, 7510)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert all(np.isnan(binomial_ci95(0, 0)))


def test_asnorm_scores_when_a_cohort_is_given() -> None:
    uploads, emb, prints = constructed()
    cohort = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
    trials = trial_table(uploads, list(emb[:, None, :]), snapshot(prints.matrix, cohort, top_k=10),
                         {"raw_other": emb})
    assert "asnorm" in trials and trials["asnorm"].notna().all()
    assert eer_block(trials["is_target"].to_numpy(), trials["asnorm"].to_numpy())["eer"] == 0.0
    assert not np.allclose(trials["asnorm"], trials["raw"])
    assert np.allclose(trials["raw_other"], trials["raw"])  # variants are raw cosine only


def test_verifier_columns_pool_the_best_window_per_artist() -> None:
    uploads, emb, prints = constructed()
    noise = np.eye(16, dtype=np.float32)[5]  # a window that sounds like nobody enrolled (accompaniment only)
    windows = [np.stack([e, noise]) for e in emb]
    best = trial_table(uploads, windows, prints, pooling="best-window")
    means = unit_rows(np.stack([unit_rows(w).mean(axis=0) for w in windows]))
    mean = trial_table(uploads, windows, prints, {"mean": means})
    assert np.allclose(best["raw_mean3"], mean["raw"]) and np.allclose(mean["raw_best3"], best["raw"])
    alone = trial_table(uploads, list(emb[:, None, :]), prints, pooling="best-window")["raw"].to_numpy()
    assert np.allclose(best["raw"], np.maximum(alone, 0.0), atol=1e-6)  # per artist, the higher of the two windows
    assert np.allclose(mean["raw"], mean["mean"], atol=1e-6)
    targets = best["is_target"].to_numpy()
    assert (best["raw"][targets] > mean["raw"][targets] + 0.1).all()  # the spoilt window no longer drags them down


def test_report_threshold_is_the_verifiers_operating_point() -> None:
    _, _, prints = constructed()
    cohort = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
    uncalibrated = report_threshold(operating_point(prints, "ecapa@x"), None)
    assert (uncalibrated.threshold, uncalibrated.score, uncalibrated.calibrated) == (DEFAULT_THRESHOLD, "raw", False)
    assert uncalibrated.source.startswith("UNCALIBRATED")
    cal = VoiceCalibration(2.5, 0.01, 0.009, 5000, "as-norm", 40, 10, "ecapa@x", "synthetic impostor trials")
    with_cohort = snapshot(prints.matrix, cohort, calibration=cal)
    op = report_threshold(operating_point(with_cohort, "ecapa@x"), cal)
    assert (op.threshold, op.score, op.calibrated) == (2.5, "asnorm", True) and "5000 impostor trials" in op.source
    no_cohort = report_threshold(operating_point(snapshot(prints.matrix, calibration=cal), "ecapa@x"), cal)
    assert not no_cohort.calibrated and no_cohort.score == "raw" and "cohort is empty" in no_cohort.source
    other_encoder = report_threshold(operating_point(with_cohort, "another@y"), cal)
    assert not other_encoder.calibrated and "ecapa@x" in other_encoder.source  # not comparable: fall back
    raw = VoiceCalibration(0.6, 0.01, 0.01, 5000, "raw", 0, 0, "ecapa@x", "synthetic")
    assert report_threshold(operating_point(snapshot(prints.matrix, calibration=raw), "ecapa@x"), raw).score == "raw"


def test_fixed_crops_are_evenly_spaced_and_padded() -> None:
    x = np.arange(10 * SR, dtype=np.float32)
    crops = fixed_crops(x, SR, 3, 2.0)
    assert crops.shape == (3, 2 * SR)
    assert [int(c[0]) for c in crops] == [int(10 * SR / 6) - SR, 5 * SR - SR, int(10 * SR * 5 / 6) - SR]
    assert fixed_crops(np.ones(SR, dtype=np.float32), SR, 3, 2.0).shape == (3, 2 * SR)


def test_evaluate_voices_end_to_end_with_a_stub_encoder(tiny_report: Path) -> None:
    m = json.loads((tiny_report / "metrics.json").read_text())
    assert m["n_enrolled"] == 2 and m["skipped_undecodable"] == ["u-broken"]
    assert m["n_uploads"] == 10  # 9 sung + the clone; the instrumental has no voice, the broken file no audio
    assert m["n_target"] == 7 and m["n_impostor"] == 13  # clone counts as art-a's voice
    assert set(m["variants"]) == {"raw", "raw_best3", "raw_vocal1", "raw_vocal8", "raw_vocalscore3", "raw_fixed3",
                                  "raw_full"}
    assert m["operating_point"]["calibrated"] is False and m["operating_point"]["threshold"] == DEFAULT_THRESHOLD
    assert m["by_kind"]["clone"]["n_target"] == 1
    assert m["eer"]["raw"]["eer"] <= 0.25  # different pitches separate even through a stub encoder
    scores = pd.read_parquet(tiny_report / "scores.parquet")
    assert len(scores) == 20 and {"raw_vocal8", "raw_fixed3", "raw_full", "condition"} <= set(scores.columns)
    assert "same synthetic TTS voices" in (tiny_report / "report.md").read_text()


def test_voices_notebook_executes_against_a_tiny_report(tiny_report: Path, tmp_path: Path) -> None:
    import nbformat

    from trackguard.notebooks import execute

    path = execute("voices", tiny_report, out=tmp_path / "nb.ipynb", timeout_s=120)
    nb = nbformat.read(str(path), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o for o in outputs if o.get("output_type") in ("stream", "execute_result")])
    assert "synthetic" in text and "a cappella" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_registry_cohort_and_calibration_are_used_and_cohort_voices_left_out(tmp_path: Path) -> None:
    from models.speaker import embed_windows
    from models.voiceprints import VoiceprintStore

    corpus = make_corpus(tmp_path / "corpus")
    url = f"sqlite:///{tmp_path / 'tg.db'}"
    encoder = StubEncoder()
    enrol_stub(url, encoder)
    store = VoiceprintStore(url)
    cohort = embed_windows(encoder, torch.from_numpy(np.stack(
        [tone(f0, 4.0, seed=700 + i) for i, f0 in enumerate((F0["art-c"], 300.0, 520.0, 610.0, 95.0))]))).numpy()
    store.set_cohort(cohort, ["take"] * 5, ["art-c", None, None, None, None])
    store.set_calibration(VoiceCalibration(1.5, 0.05, 0.04, 100, "as-norm", 5, 3, scorer_id("stub@0", MEAN),
                                           "stub trials"))
    m = evaluate_voices(corpus, tmp_path / "out", url, encoder=encoder, model_id="stub@0",
                        cache_dir=tmp_path / "cache", variants=False)
    assert m["cohort_voices_left_out"] == ["art-c"]  # AS-norm would find art-c's own voice in the cohort
    assert m["n_uploads"] == 7 and m["n_target"] == 7 and m["n_impostor"] == 7
    assert m["score_columns"] == ["raw", "asnorm"] and m["cohort_size"] == 5 and m["top_k"] == 3
    op = m["operating_point"]
    assert (op["threshold"], op["score"], op["calibrated"]) == (1.5, "asnorm", True)
    assert set(m["variants"]) == {"raw", "raw_best3", "raw_vocal1"}  # --no-variants keeps the free variants
    report = (tmp_path / "out" / "report.md").read_text()
    assert "stub trials" in report and "Corpus voices in the cohort, left out of the trials:** art-c" in report
