"""Train, calibrate and evaluate the CPU-tier synthetic-voice detector on a labelled corpus.

    python -m models.train_detector CORPUS_DIR OUT_DIR [--epochs 6] [--seed 0] [--holdout-family NAME]

Data: uploads whose label kind is ``clean`` or ``clone``, with a voice
(``voice_artist_id`` set) and no ``expected_error_code``. Each is decoded once, its
best vocal-activity windows are cropped, and the crops are cached per upload (see
`extract_windows`), so a second run does not decode again.

Split (`assign_splits`): uploads linked by a shared ``content_id`` (a clone and its
bona fide twin) or a shared ``voice_artist_id`` form one group (connected
components), and a group goes wholly to train, dev or test. No song and no voice is
in two splits, so dev and test measure unseen singers and unseen songs. Groups are
visited in an order fixed by hashing (seed, group key) and each goes to the split
furthest below its target share (60/20/20) of synthetic tracks, then of all tracks.
The split is saved in the artifact (``split.json``) so evaluation uses its test part.
With ``--nest-in ARTIFACT`` an earlier detector's training voices must go to train and
its corpus's other voices must not (`models.voice_nesting`), so the two can be compared
on every voice the earlier one did not train on.

With ``holdout_family`` the clones of that generator family are left out of train
and dev entirely (those in train/dev groups are used nowhere, split "excluded");
the ones in test groups stay there, so ``holdout_family_test_eer`` reports how the
detector does on an attack it never saw.

Training: class-balanced batches (half bona fide, half synthetic windows; an epoch
shows every window of the larger class once). Half of the bona fide slots hold the
clone's own twin window (same song, mix and time span, `_twin_pairs`), so the
pair differs only by the generator's artefacts (one comparison on the medium
corpus, seed 7: dev EER 0.41 unpaired vs 0.25 paired; 8 synthetic dev tracks, weak
evidence). Augmentation is applied identically to both classes (random gain, small
additive noise at a random SNR). Loss: binary cross-entropy on the spoof logit
plus an auxiliary generator-family cross-entropy on synthetic windows.
Calibration: a logistic (Platt) fit of the pooled track logits on dev. Threshold:
the lowest score that flags at most ``target_false_flag_rate`` of bona fide dev
uploads.

With ``train_params["separator"]`` (`trackguard train detector --separator`), a vocal
separator (`models.separator`) is trained first on the train split's windows and
their vocal stems (`models.train_separator`), then frozen inside the LCNN's front end,
and the detector is trained on what the separator keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import hashlib
import json
import logging
import math
import os
import resource
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from features.io import file_identity
from models.artifact import ArtifactCard, load_card, save_card
from models.bootstrap import bootstrap_interval, metric_or_nan
from models.calibration import fit_platt
from models.detector import WEIGHTS_FILE, calibrate, score_windows, topk_mean
from models.detector_nets import LCNN, DetectorNet, build_net, count_parameters, lcnn_stft, place
from models.one_class import OneClassHead
from models.separator import SEPARATOR_EPOCHS, SeparatorFit
from models.spoof_metrics import equal_error_rate, min_dcf, threshold_for_bona_fide_flag_rate
from models.train_separator import separator_arch, train_separator, with_stems
from models.voice_adversary import VoiceAdversary, adversary_scale
from models.voice_nesting import allowed_for_group, nested_voice_rule
from trackguard.home import Home

log = logging.getLogger(__name__)
VERSION = "0.1.0"
WINDOW_CACHE_VERSION = "1"  # bump when decoding or window selection changes meaning
SPLIT_FILE = "split.json"
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
SPLITS = ("train", "dev", "test")
# Spec defaults stored in the artifact; the scorer reads them from there, never from here.
SPEC_DEFAULTS: dict[str, Any] = {
    "arch": "lcnn",
    "sample_rate": 16000,
    "win_s": 4.0,
    "hop_s": 2.0,
    "n_mels": 64,
    "pooling_k": 3,
    "max_windows": 8,
}
# Windows per augment_batch call: its staging copies of a whole epoch (13,646 windows with eight
# extra corpora) ran a 24 GB machine out of memory; in chunks they stay small.
AUGMENT_CHUNK = 1024
TRAIN_DEFAULTS: dict[str, Any] = {
    "batch_size": 32,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "family_loss_weight": 0.3,
    "pair_frac": 0.5,
    "gain_db": (-6.0, 6.0),
    "snr_db": (25.0, 60.0),
    "voice_adversary_weight": 0.0,  # > 0: train to confuse a classifier of the training voices (voice_adversary.py)
}


# ---------------------------------------------------------------- corpus and split


def read_corpus(corpus_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Manifest and labels; relative audio paths resolve against the corpus directory."""
    manifest = pd.read_parquet(corpus_dir / "manifest.parquet")
    labels = pd.read_parquet(corpus_dir / "labels.parquet")

    def resolve(uri: Any) -> Any:
        if isinstance(uri, str) and "://" not in uri and not os.path.isabs(uri):
            return str((corpus_dir / uri).resolve())
        return uri

    manifest["audio_uri"] = manifest["audio_uri"].map(resolve)
    return manifest, labels


def detector_tracks(manifest: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Vocal clean/clone uploads without an expected error: one row each, index upload_id."""
    lab = labels.assign(upload_id=labels["upload_id"].astype(str))
    keep = lab["kind"].isin(["clean", "clone"]) & lab["voice_artist_id"].notna()
    if "expected_error_code" in lab:
        keep &= lab["expected_error_code"].isna()
    lab = lab[keep].set_index("upload_id")
    uris = manifest.assign(upload_id=manifest["upload_id"].astype(str)).set_index("upload_id")["audio_uri"]
    lab = lab.loc[lab.index.intersection(uris.index)]
    return pd.DataFrame({
        "audio_uri": uris.reindex(lab.index).astype(str),
        "is_synthetic": lab["is_synthetic"].fillna(False).astype(bool),
        "family": lab["generator_family"].where(lab["is_synthetic"].fillna(False).astype(bool), None),
        "artist": lab["voice_artist_id"].astype(str),
        "content_id": lab["content_id"].fillna(pd.Series(lab.index, index=lab.index)).astype(str),
        "twin": lab.get("twin_upload_id"),
    }).sort_index()


def _components(tracks: pd.DataFrame) -> pd.Series:
    """Group key per upload: connected components over shared content_id and voice_artist_id."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for content, artist in zip(tracks["content_id"], tracks["artist"], strict=True):
        ra, rb = find(f"c:{content}"), find(f"a:{artist}")
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return pd.Series([find(f"a:{a}") for a in tracks["artist"]], index=tracks.index)


def corpus_prefix(corpus_dir: Path) -> str:
    """What an upload id of ``corpus_dir`` is prefixed with when several corpora's tracks meet (their ids
    repeat from seed to seed): the directory's name and a slash."""
    return f"{Path(corpus_dir).resolve().name}/"


def corpus_identity(corpus_dir: Path) -> str:
    """What names a corpus whatever its directory is called: the seed, size and version of its
    ``corpus.json`` and a digest of its labels table (what each upload is), else its resolved path.
    The digest tells apart two builds whose corpus.json agree but whose uploads do not (a generator
    changed without a version bump, a hand-edited corpus.json)."""
    path = Path(corpus_dir).resolve()
    if not (path / "corpus.json").exists():
        return str(path)
    meta = json.loads((path / "corpus.json").read_text())
    identity = f"seed={meta.get('seed')} size={meta.get('size')} version={meta.get('version')}"
    labels = path / "labels.parquet"
    return f"{identity} labels={labels_digest(labels)}" if labels.exists() else identity


def labels_digest(labels_parquet: Path) -> str:
    """12 hex digits of the labels table's content (not its file bytes, which vary with the Parquet writer)."""
    table = pd.read_parquet(labels_parquet)
    rows = pd.util.hash_pandas_object(table.sort_index(axis=1), index=False).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()[:12]


def same_corpus(recorded: str, identity: str) -> bool:
    """True when a card's recorded identity names the corpus of ``identity``; a record written before
    identities carried the labels digest is matched on the rest."""
    return recorded == identity or (" labels=" not in recorded and identity.split(" labels=")[0] == recorded)


def corpora_record(corpus_dir: Path, extra_corpora: Sequence[Path | str]) -> list[dict[str, str]]:
    """For the artifact's spec: each corpus trained or calibrated on, its identity (`corpus_identity`)
    and the prefix its upload ids carry in split.json (none for the primary corpus). Evaluation finds
    a corpus here by identity, so a renamed copy is still known for what the model saw of it."""
    primary = {"dir": str(corpus_dir), "identity": corpus_identity(corpus_dir), "prefix": ""}
    extras = [{"dir": str(d), "identity": corpus_identity(Path(d)), "prefix": corpus_prefix(Path(d))}
              for d in extra_corpora]
    return [primary, *extras]


def with_corpus_prefix(tracks: pd.DataFrame, corpus_dir: Path) -> pd.DataFrame:
    """``tracks`` (`detector_tracks`) with upload, twin and content ids prefixed by `corpus_prefix`."""
    prefix = corpus_prefix(corpus_dir)
    out = tracks.copy()
    out.index = prefix + out.index.astype(str)
    out["content_id"] = prefix + out["content_id"].astype(str)
    out["twin"] = out["twin"].map(lambda t: prefix + t if isinstance(t, str) else None)
    return out


def extra_corpus_tracks(corpus_dir: Path, voice_split: Mapping[str, str]) -> tuple[pd.DataFrame, pd.Series]:
    """Another corpus's detector tracks as extra train and dev material, and their split.

    Corpora of every seed draw their artists' voices from one catalogue in one order
    (``art-003`` is the same synthetic voice everywhere), so an upload may only join the
    split its voice has in the primary corpus (``voice_split``: voice -> split): train
    voices' uploads train, dev voices' uploads calibrate and set the threshold. Test
    voices' uploads, and any group (shared song or voice, `_components`) that would span
    two splits, are left out ("excluded"), so nothing leaks into test. Upload, twin and
    content ids are prefixed with the corpus directory name, so two corpora's ids cannot
    collide.
    """
    tracks = with_corpus_prefix(detector_tracks(*read_corpus(corpus_dir)), corpus_dir)
    wanted = tracks["artist"].map(lambda a: voice_split.get(str(a), "excluded"))
    wanted = wanted.where(wanted.isin(["train", "dev"]), "excluded")
    group = _components(tracks)
    whole = wanted.groupby(group).transform(lambda s: s.iloc[0] if s.nunique() == 1 else "excluded")
    return tracks, whole.rename(None)


def assign_splits(tracks: pd.DataFrame, seed: int = 0, fractions: Sequence[float] = SPLIT_FRACTIONS,
                  voice_rule: Mapping[str, tuple[str, ...]] | None = None) -> pd.Series:
    """'train' / 'dev' / 'test' per upload; whole groups (shared song or voice) per split (see module doc).

    ``voice_rule`` (voice -> the splits it may take, `models.voice_nesting`) limits a group to the splits
    all its voices allow; the group still goes to the one furthest below its share among those."""
    group = _components(tracks)
    voices = tracks["artist"].astype(str).groupby(group.to_numpy()).unique()
    synth = tracks["is_synthetic"].to_numpy(dtype=bool)
    stats = pd.DataFrame({"g": group.to_numpy(), "s": synth, "n": 1}).groupby("g")[["s", "n"]].sum()
    order = sorted(stats.index, key=lambda g: hashlib.sha256(f"{seed}|{g}".encode()).hexdigest())
    tot_s, tot_n = max(int(stats["s"].sum()), 1), max(int(stats["n"].sum()), 1)
    have = {name: [0, 0] for name in SPLITS}
    chosen: dict[str, str] = {}

    def deficit(name: str, frac: float) -> tuple[float, float]:
        return (frac - have[name][0] / tot_s, frac - have[name][1] / tot_n)

    for g in order:
        allowed = allowed_for_group(list(voices[g]), voice_rule or {}, SPLITS)
        best = max((sf for sf in zip(SPLITS, fractions, strict=True) if sf[0] in allowed),
                   key=lambda sf: deficit(*sf))[0]
        chosen[g] = best
        have[best][0] += int(stats.at[g, "s"])
        have[best][1] += int(stats.at[g, "n"])
    return group.map(chosen)


# ---------------------------------------------------------------- windows (decoded once, cached)


def _cache_file(cache_dir: Path, uri: str, spec: Mapping[str, Any], n_windows: int) -> Path:
    params = f"{spec['sample_rate']}|{spec['win_s']}|{spec['hop_s']}|{n_windows}"
    key = hashlib.sha1(f"{WINDOW_CACHE_VERSION}|{uri}|{file_identity(uri)}|{params}".encode()).hexdigest()
    return cache_dir / key[:2] / f"{key}.npz"


def _decode_windows(uri: str, sr: int, win_s: float, hop_s: float, n_windows: int) -> dict[str, np.ndarray]:
    from features.decode import decode_audio
    from features.windows import stack_windows, vocal_activity_windows
    from trackguard.contracts import TrackguardError

    try:
        audio = decode_audio(uri, target_sr=sr)
    except TrackguardError as exc:
        return {"error": np.array(exc.code.value)}
    wins = vocal_activity_windows(audio.samples, sr, win_s=win_s, hop_s=hop_s, max_windows=n_windows)
    return {
        "windows": stack_windows(audio.samples, sr, wins, win_s),
        "spans": np.array([(w.start_s, w.end_s, w.vocal_score) for w in wins], dtype=np.float64).reshape(-1, 3),
        "duration_s": np.array(audio.duration_s),
    }


def _cached_windows(job: tuple[str, str, int, float, float, int]) -> dict[str, np.ndarray]:
    uri, cache_file, sr, win_s, hop_s, n_windows = job
    path = Path(cache_file)
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    out = _decode_windows(uri, sr, win_s, hop_s, n_windows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **out)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    tmp.replace(path)
    return out


def extract_windows(
    uris: Sequence[str], cache_dir: Path, spec: Mapping[str, Any], n_windows: int, workers: int | None = None
) -> list[dict[str, np.ndarray]]:
    """Per upload: ``windows`` [n, win] float32 (best vocal windows first), ``spans``, ``duration_s``;
    or ``error`` (an ErrorCode value) when it does not decode. Cached as one .npz per upload."""
    sr, win_s, hop_s = int(spec["sample_rate"]), float(spec["win_s"]), float(spec["hop_s"])
    jobs = [(u, str(_cache_file(cache_dir, u, spec, n_windows)), sr, win_s, hop_s, n_windows) for u in uris]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and sum(not Path(j[1]).exists() for j in jobs) > 4:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_cached_windows, jobs, chunksize=2))
    return [_cached_windows(j) for j in jobs]


# ---------------------------------------------------------------- training


def augment(x: Tensor, gen: torch.Generator, gain_db: Sequence[float], snr_db: Sequence[float]) -> Tensor:
    """Random gain and white noise at a random SNR per window; the same distribution for both classes."""
    n = x.shape[0]

    def uniform(lo_hi: Sequence[float]) -> Tensor:
        lo, hi = float(lo_hi[0]), float(lo_hi[1])
        return (lo + (hi - lo) * torch.rand(n, 1, generator=gen)).to(x.device)

    x = x * 10 ** (uniform(gain_db) / 20)
    rms = x.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-5)
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    return x + noise * rms * 10 ** (-uniform(snr_db) / 20)


def augmented_epoch(x: Tensor, rng: np.random.Generator, config: Mapping[str, Any] | None, sr: int) -> Tensor:
    """A fresh augmented copy of every training window for one epoch (`features.augment`: codec round
    trips, coloured noise, reverberation, band limits, pitch/tempo), the same distribution for both
    classes; ``None`` leaves the windows as they are. One pass per epoch batches the ffmpeg calls."""
    if not config:
        return x
    from features.augment import AugmentConfig, augment_batch

    cfg, out = AugmentConfig.from_dict(dict(config)), torch.empty_like(x)
    for lo in range(0, x.shape[0], AUGMENT_CHUNK):  # plans are drawn in window order either way
        part = augment_batch(x[lo : lo + AUGMENT_CHUNK].numpy(), sr, rng, cfg, n_jobs=2)
        out[lo : lo + AUGMENT_CHUNK] = torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))
    return out


def balanced_batches(
    y: np.ndarray, batch_size: int, rng: np.random.Generator, pair: np.ndarray | None = None, pair_frac: float = 0.0
) -> list[np.ndarray]:
    """One epoch of index batches, each half synthetic and half bona fide.

    An epoch shows every window of the larger class once, and as many of the smaller
    class, cycled through fresh permutations. With ``pair``,
    a share ``pair_frac`` of the bona fide half is the matched twin window of the
    synthetic window in the same slot (where it has one).
    """
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("training needs both bona fide and synthetic windows")
    half = max(1, batch_size // 2)
    n_batches = max(1, -(-max(len(pos), len(neg)) // half))

    def draw(idx: np.ndarray, n: int) -> np.ndarray:
        reps = -(-n // len(idx))
        return np.concatenate([rng.permutation(idx) for _ in range(reps)])[:n]

    p, q = draw(pos, n_batches * half), draw(neg, n_batches * half)
    if pair is not None and pair_frac > 0:
        matched = pair[p]
        use = (rng.random(len(p)) < pair_frac) & (matched >= 0)
        q[use] = matched[use]
    return [np.concatenate([p[i * half : (i + 1) * half], q[i * half : (i + 1) * half]]) for i in range(n_batches)]


def fit_net(
    net: DetectorNet, data: TrainingSet, epochs: int, seed: int, device: torch.device, params: Mapping[str, Any]
) -> list[float]:
    """Train in place; returns the mean loss per epoch.

    With ``voice_adversary_weight`` > 0 a `VoiceAdversary` learns the training voices from
    the embedding while the encoder learns to leave it guessing (`VoiceAdversary.losses`);
    its voice accuracy is logged per epoch (chance is one over the number of voices).
    """
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    batch_size = int(params["batch_size"])
    steps = epochs * len(balanced_batches(data.y, batch_size, np.random.default_rng(0)))
    adversary = _voice_adversary(net, data, float(params.get("voice_adversary_weight", 0.0)), device)
    trained = list(net.parameters()) + (list(adversary.parameters()) if adversary is not None else [])
    opt = torch.optim.AdamW(trained, lr=float(params["lr"]), weight_decay=float(params["weight_decay"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(params["lr"]), total_steps=steps, pct_start=0.15)
    y_t, fam_t = torch.from_numpy(data.y.astype(np.float32)), torch.from_numpy(data.family)
    voice_t = torch.from_numpy(data.voice)
    history, step = [], 0
    for _ in range(epochs):
        x_epoch = augmented_epoch(data.x, rng, params.get("augment"), int(params.get("sample_rate", 16000)))
        net.train()
        losses, voice_hits = [], []
        for idx in balanced_batches(data.y, batch_size, rng, data.pair, float(params["pair_frac"])):
            ix = torch.from_numpy(idx)
            xb = augment(x_epoch[ix].to(device), gen, params["gain_db"], params["snr_db"])
            embedding = net.embed(xb)
            out = net.heads(embedding)
            loss = spoof_loss(net, out.spoof, y_t[ix].to(device))
            fam_b = fam_t[ix].to(device)
            if out.family is not None and bool((fam_b >= 0).any()):
                loss = loss + float(params["family_loss_weight"]) * torch.nn.functional.cross_entropy(
                    out.family, fam_b, ignore_index=-1)
            if adversary is not None:
                voice_b = voice_t[ix].to(device)
                adversary_loss, confusion, voice_logits = adversary.losses(embedding, voice_b)
                scale = adversary_scale(step / steps, float(params["voice_adversary_weight"]))
                loss = loss + adversary_loss + scale * confusion
                voice_hits.append(float((voice_logits.argmax(1) == voice_b).float().mean()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
        del x_epoch  # before the next epoch's copy is made: one augmented copy at a time, not two
        history.append(float(np.mean(losses)))
        log.info("epoch %d/%d loss %.4f%s", len(history), epochs, history[-1],
                 f" voice adversary accuracy {np.mean(voice_hits):.3f}" if voice_hits else "")
    net.eval()
    return history


def spoof_loss(net: DetectorNet, spoof_logit: Tensor, synthetic: Tensor) -> Tensor:
    """The loss the net's spoof head is trained with: OC-softmax for a one-class head, else cross-entropy."""
    head = getattr(net, "spoof_head", None)
    if isinstance(head, OneClassHead):
        return head.loss(spoof_logit, synthetic)
    return torch.nn.functional.binary_cross_entropy_with_logits(spoof_logit, synthetic)


def _voice_adversary(net: DetectorNet, data: TrainingSet, weight: float, device: torch.device) -> VoiceAdversary | None:
    if weight <= 0:
        return None
    return VoiceAdversary(net.embed_dim, int(data.voice.max()) + 1).to(device).train()


# ---------------------------------------------------------------- calibration and metrics


def threshold_for_false_flag_rate(bona_fide_scores: np.ndarray, target: float) -> float:
    """Lowest threshold that flags (score >= threshold) at most ``target`` of the bona fide scores.

    Finite even when no bona fide upload may be flagged (just above the highest), so it
    can be stored as JSON; 0.5 when there are no bona fide scores to set it on.
    """
    s = np.asarray(bona_fide_scores, dtype=np.float64)
    if s.size == 0:
        return 0.5
    t = threshold_for_bona_fide_flag_rate(s, target)
    return t if math.isfinite(t) else float(np.nextafter(s.max(), np.inf))


def dev_voice_dependence(bona_fide_scores: np.ndarray, voices: np.ndarray, threshold: float,
                         target: float) -> dict[str, dict[str, float]]:
    """Per dev voice: the share of its bona fide uploads the stored threshold flags, and the threshold
    that would have been stored without that voice. Dev holds few voices, and one that resembles a
    clone family can move the threshold on its own; the card says how far it rests on each."""
    s, v = np.asarray(bona_fide_scores, dtype=np.float64), np.asarray(voices).astype(str)
    return {voice: {"bona_fide_flag_rate": float((s[v == voice] >= threshold).mean()),
                    "threshold_without_it": threshold_for_false_flag_rate(s[v != voice], target)}
            for voice in sorted(set(v))}


def operating_point(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    y = np.asarray(y, dtype=bool)
    flagged = np.asarray(p) >= threshold
    return {
        "false_flag_rate": float(flagged[~y].mean()) if (~y).any() else math.nan,
        "detection_rate": float(flagged[y].mean()) if y.any() else math.nan,
    }


def split_metrics(y: np.ndarray, logits: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "eer": metric_or_nan(equal_error_rate, y, logits),
        "min_dcf": metric_or_nan(min_dcf, y, logits),
        "n_bona_fide": int((~y).sum()),
        "n_synthetic": int(y.sum()),
        **operating_point(y, p, threshold),
    }


def per_family_eer(tracks: pd.DataFrame, logits: np.ndarray) -> dict[str, float]:
    """EER of each family's clones against all bona fide tracks of the same set."""
    y = tracks["is_synthetic"].to_numpy(dtype=bool)
    fam = tracks["family"].fillna("").astype(str).to_numpy()
    out = {}
    for name in sorted(set(fam[y])):
        mask = ~y | (fam == name)
        out[name] = metric_or_nan(equal_error_rate, y[mask], logits[mask])
    return out


# ---------------------------------------------------------------- orchestration


def track_logits(net: DetectorNet, windows: Sequence[TrackWindows], k: int, max_windows: int) -> np.ndarray:
    """Pooled (top-k mean) logit per track, scored exactly as `models.detector.WindowDetector` does."""
    return pool_tracks(window_logits(net, windows, max_windows), k)


def window_logits(net: DetectorNet, windows: Sequence[TrackWindows], max_windows: int) -> list[Tensor]:
    """Each track's first ``max_windows`` window logits (best vocal windows first), scored in one stack."""
    crops = [w.windows[:max_windows] for w in windows]
    flat = score_windows(net, torch.from_numpy(np.concatenate(crops))) if crops else torch.zeros(0)
    return list(flat.split([len(c) for c in crops])) if crops else []


def pool_tracks(per_track: Sequence[Tensor], k: int, first: int | None = None) -> np.ndarray:
    """Top-``k`` mean of each track's window logits (of its ``first`` windows only, when given)."""
    return np.array([float(topk_mean(t[:first], k)) for t in per_track], dtype=np.float64)


@dataclasses.dataclass
class TrackWindows:
    windows: np.ndarray  # [n, win] float32, best vocal windows first
    starts: np.ndarray  # [n] window start times (s)


@dataclasses.dataclass
class TrainingSet:
    x: Tensor  # [N, win] waveform windows
    y: np.ndarray  # [N] bool, synthetic
    family: np.ndarray  # [N] family index, -1 for bona fide
    pair: np.ndarray  # [N] index of the bona fide twin's window at the same time span, or -1
    voice: np.ndarray  # [N] index of the singing voice (artist) among the training voices


def load_windows(
    tracks: pd.DataFrame, cache_dir: Path, spec: Mapping[str, Any], n_windows: int, workers: int | None
) -> tuple[pd.DataFrame, list[TrackWindows], dict[str, str]]:
    """Decode (or read from the cache) every track's windows; drop the ones that fail to decode."""
    results = extract_windows(tracks["audio_uri"].tolist(), cache_dir, spec, n_windows, workers)
    keep, windows, failed = [], [], {}
    for uid, res in zip(tracks.index, results, strict=True):
        if "error" in res or len(res["windows"]) == 0:
            failed[str(uid)] = str(res.get("error", "no windows"))
            continue
        keep.append(uid)
        windows.append(TrackWindows(res["windows"].astype(np.float32, copy=False), res["spans"][:, 0]))
    return tracks.loc[keep], windows, failed


def _twin_pairs(tracks: pd.DataFrame, starts: list[np.ndarray], offsets: np.ndarray, n_total: int) -> np.ndarray:
    """For each clone window, the index of its bona fide twin's window starting at the same time (or -1).

    A clone and its twin share the mix and the timing, so the pair differs only by the
    generator's artefacts: showing both in one batch teaches those, not voice or song.
    """
    pair = np.full(n_total, -1, dtype=np.int64)
    row = {uid: i for i, uid in enumerate(tracks.index)}
    for i, (synthetic, twin) in enumerate(zip(tracks["is_synthetic"], tracks["twin"], strict=True)):
        j = row.get(twin) if synthetic and isinstance(twin, str) else None
        if j is None:
            continue
        at = {round(float(t), 2): offsets[j] + k for k, t in enumerate(starts[j])}
        for k, t in enumerate(starts[i]):
            pair[offsets[i] + k] = at.get(round(float(t), 2), -1)
    return pair


def pack_crops(windows: list[TrackWindows], per_track: int) -> np.ndarray:
    """One [N, win] array of every track's first ``per_track`` windows, in track order.

    Each TrackWindows is rebound to its own rows (a view) as it is copied, so its former
    array can be freed at once: the training windows are then held once, not twice (the
    per-track arrays and the training tensor), which is what lets 17 corpora train in 23 GB.
    A track's windows past ``per_track`` are let go, so the train split is scored on the
    windows it was trained on.
    """
    if not windows:
        raise ValueError("no training windows: the train split is empty")
    sizes = [min(per_track, len(w.windows)) for w in windows]
    packed = np.empty((sum(sizes), windows[0].windows.shape[1]), np.float32)
    lo = 0
    for w, n in zip(windows, sizes, strict=True):
        packed[lo : lo + n] = w.windows[:n]
        w.windows, w.starts = packed[lo : lo + n], w.starts[:n]
        lo += n
    release_freed_heap()
    return packed


def release_freed_heap() -> None:
    """Hand freed heap pages back to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    Per-upload window arrays (2 MB each) come from the heap, interleaved across splits, so
    freeing the train uploads' arrays leaves holes that glibc does not return by itself:
    with 17 corpora the process kept 9 GB it no longer used and neared the 23 GB limit.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _training_set(
    tracks: pd.DataFrame, windows: list[TrackWindows], per_track: int, families: list[str]
) -> TrainingSet:
    x = pack_crops(windows, per_track)  # rebinds ``windows`` to views of x
    sizes = np.array([len(w.windows) for w in windows])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    y = np.repeat(tracks["is_synthetic"].to_numpy(dtype=bool), sizes)
    fam_idx = [families.index(f) if isinstance(f, str) and f in families else -1 for f in tracks["family"]]
    pair = _twin_pairs(tracks, [w.starts for w in windows], offsets, int(sizes.sum()))
    voices = sorted({str(a) for a in tracks["artist"]})
    voice_idx = np.array([voices.index(str(a)) for a in tracks["artist"]], np.int64)
    return TrainingSet(torch.from_numpy(x), y, np.repeat(np.array(fam_idx, np.int64), sizes),
                       pair, np.repeat(voice_idx, sizes))


def _training_data_text(corpus_dir: Path, tracks: pd.DataFrame, split: pd.Series,
                        extra_corpora: Sequence[str] = ()) -> str:
    built = (corpus_dir / "corpus.json").exists()
    name = f"synthetic corpus {corpus_identity(corpus_dir)}" if built else f"corpus at {corpus_dir}"
    counts = {s: int((split == s).sum()) for s in SPLITS}
    return (f"{name} ({corpus_dir}); {len(tracks)} vocal clean/clone uploads, "
            f"{int(tracks['is_synthetic'].sum())} synthetic; split train/dev/test = "
            f"{counts['train']}/{counts['dev']}/{counts['test']} uploads, disjoint by song and by voice"
            + (f"; train and dev include the train and dev voices' uploads of {', '.join(extra_corpora)} "
               "(test is this corpus's alone)" if extra_corpora else ""))


@dataclasses.dataclass
class PreparedData:
    tracks: pd.DataFrame  # detector_tracks rows of train/dev/test that decoded (excluded ones are not loaded)
    split: pd.Series  # train / dev / test / excluded per upload, excluded ones included (for split.json)
    windows: list[TrackWindows]  # per row of ``tracks``
    failed: dict[str, str]  # upload_id -> error code, for uploads that did not decode

    def part(self, name: str) -> tuple[pd.DataFrame, list[TrackWindows]]:
        mask = (self.split.loc[self.tracks.index] == name).to_numpy()
        return self.tracks[mask], [w for w, m in zip(self.windows, mask, strict=True) if m]


def prepare_data(
    corpus_dir: Path,
    seed: int,
    holdout_family: str | None,
    spec: Mapping[str, Any],
    n_windows: int,
    cache_dir: Path | None = None,
    workers: int | None = None,
    extra_corpora: Sequence[Path] = (),
    stems_only: bool = False,
    voice_rule: Mapping[str, tuple[str, ...]] | None = None,
) -> PreparedData:
    """Select, split and window the corpus; held-out-family clones go to test or nowhere.

    ``extra_corpora`` add train and dev material (see `extra_corpus_tracks`); test is
    the primary corpus's alone, so test figures stay comparable. ``stems_only`` trains and
    scores each upload's vocal stem instead of the upload (oracle separation); the split is
    the same, and uploads without a stem are excluded. ``voice_rule`` limits the splits each voice
    may take (`assign_splits`; `models.voice_nesting` makes one from an earlier artifact).
    """
    tracks = detector_tracks(*read_corpus(corpus_dir))
    split = assign_splits(tracks, seed, voice_rule=voice_rule)
    if extra_corpora:
        voice_split = {str(a): str(s) for a, s in zip(tracks["artist"], split, strict=True)}
        extras = [extra_corpus_tracks(Path(d), voice_split) for d in extra_corpora]
        tracks = pd.concat([tracks, *(t for t, _ in extras)])
        split = pd.concat([split, *(s for _, s in extras)])
    if stems_only:
        stemmed = with_stems(tracks, corpus_dir)
        split = split.where(tracks.index.isin(stemmed.index), "excluded")
        tracks = tracks.assign(audio_uri=stemmed["audio_uri"].reindex(tracks.index).fillna(tracks["audio_uri"]))
    if holdout_family:
        held_out = tracks["family"].eq(holdout_family).to_numpy()
        if not held_out.any():
            raise ValueError(f"holdout family {holdout_family!r} has no clones in {corpus_dir}")
        split = split.where(~(held_out & split.ne("test").to_numpy()), "excluded")
    cache = Path(cache_dir) if cache_dir else Home.from_env().cache / "detector-windows"
    # Excluded uploads (held-out family outside test, extra corpora's test voices) are never
    # scored: decoding them would only cost time and memory (about a tenth of the windows).
    used = split.ne("excluded").to_numpy()
    loaded, windows, failed = load_windows(tracks[used], cache, spec, n_windows, workers)
    return PreparedData(loaded, split.drop(list(failed)), windows, failed)


def _voice_interval(labels: np.ndarray, logits: np.ndarray, tracks: pd.DataFrame) -> list[float]:
    """95 % interval of the test EER with voices resampled (`models.bootstrap`): the test split holds few
    voices, and the card should say how far its EER can be trusted. NaN when test lacks a class."""
    ci = bootstrap_interval(labels, logits, equal_error_rate, tracks["artist"].astype(str).to_numpy())
    return [ci.low, ci.high]


def evaluate_splits(
    net: DetectorNet, data: PreparedData, spec: Mapping[str, Any], target_false_flag_rate: float
) -> tuple[dict[str, float], float, dict[str, Any]]:
    """Calibration (fitted on dev), threshold (bona fide dev false-flag target) and track-level metrics."""
    k, max_windows = int(spec["pooling_k"]), int(spec["max_windows"])
    parts = {s: data.part(s) for s in SPLITS}
    logits = {s: track_logits(net, parts[s][1], k, max_windows) for s in SPLITS}
    labels = {s: parts[s][0]["is_synthetic"].to_numpy(dtype=bool) for s in SPLITS}
    calibration = fit_platt(logits["dev"], labels["dev"])
    probs = {s: calibrate(torch.from_numpy(logits[s]), calibration).numpy() for s in SPLITS}
    threshold = threshold_for_false_flag_rate(probs["dev"][~labels["dev"]], target_false_flag_rate)
    per_split = {s: split_metrics(labels[s], logits[s], probs[s], threshold) for s in SPLITS}
    metrics = {
        "dev_eer": per_split["dev"]["eer"],
        "test_eer": per_split["test"]["eer"],
        "dev_min_dcf": per_split["dev"]["min_dcf"],
        "test_min_dcf": per_split["test"]["min_dcf"],
        "test_eer_ci95": _voice_interval(labels["test"], logits["test"], parts["test"][0]),
        "test_eer_by_family": per_family_eer(parts["test"][0], logits["test"]),
        "splits": per_split,
        **{f"n_{s}_tracks": len(parts[s][0]) for s in SPLITS},
        "n_excluded_tracks": int((data.split == "excluded").sum()),
        "target_false_flag_rate": target_false_flag_rate,
        "threshold_by_dev_voice": dev_voice_dependence(
            probs["dev"][~labels["dev"]], parts["dev"][0]["artist"].to_numpy()[~labels["dev"]], threshold,
            target_false_flag_rate),
        "measured_on": "synthetic data (labelled corpus), track level",
    }
    return calibration, threshold, metrics


def train_detector(
    corpus_dir: Path,
    out_dir: Path,
    epochs: int = 6,
    seed: int = 0,
    holdout_family: str | None = None,
    max_windows_per_track: int = 6,
    device: str = "cpu",
    target_false_flag_rate: float = 0.01,
    cache_dir: Path | None = None,
    workers: int | None = None,
    net_kwargs: Mapping[str, Any] | None = None,
    train_params: Mapping[str, Any] | None = None,
    threads: int | None = None,
    arch: str = "lcnn",
    init: str | None = None,
    augment: bool = True,
    extra_corpora: Sequence[Path] = (),
) -> ArtifactCard:
    """Train on ``corpus_dir``, save the artifact to ``out_dir``, return its card (see module doc).

    ``threads`` sets torch's CPU threads for the run and restores them after (None:
    torch's default). On a machine shared with other busy processes one thread is
    often faster than two: OpenMP's barriers stall whenever a thread is descheduled.
    ``arch`` names a `models.detector_nets` architecture (``lcnn``: CPU tier, ``aasist``:
    GPU tier); ``init="published"`` starts AASIST from clovaai's ASVspoof 2019 checkpoint
    (fine-tuning) instead of random weights. ``augment`` adds `features.augment`'s codec,
    noise, reverberation and pitch/tempo augmentation, re-drawn every epoch.
    ``extra_corpora`` add uploads sung by the train split's voices to train, and by the
    dev split's voices to dev (`extra_corpus_tracks`).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        params = {**TRAIN_DEFAULTS, "arch": arch, "init": init, **(train_params or {}),
                  "extra_corpora": [str(d) for d in extra_corpora]}
        if augment and "augment" not in params:
            from features.augment import AugmentConfig

            params["augment"] = AugmentConfig().to_dict()
        return _train(Path(corpus_dir), Path(out_dir), epochs, seed, holdout_family, max_windows_per_track,
                      torch.device(device), target_false_flag_rate, cache_dir, workers, net_kwargs or {}, params)
    finally:
        torch.set_num_threads(previous)


def _train(
    corpus_dir: Path,
    out_dir: Path,
    epochs: int,
    seed: int,
    holdout_family: str | None,
    per_track: int,
    device: torch.device,
    target_false_flag_rate: float,
    cache_dir: Path | None,
    workers: int | None,
    net_kwargs: Mapping[str, Any],
    params: dict[str, Any],
) -> ArtifactCard:
    t0 = time.monotonic()
    torch.manual_seed(seed)
    spec: dict[str, Any] = {**SPEC_DEFAULTS, "arch": params.pop("arch", "lcnn"),
                            "n_mels": net_kwargs.get("n_mels", SPEC_DEFAULTS["n_mels"]),
                            "corpora": corpora_record(corpus_dir, params.get("extra_corpora", []))}
    nest_in = Path(params["nest_in"]) if params.get("nest_in") else None
    data = prepare_data(corpus_dir, seed, holdout_family, spec, max(per_track, int(spec["max_windows"])),
                        cache_dir, workers, [Path(d) for d in params.get("extra_corpora", [])],
                        bool(params.get("on_stems")), nested_voice_rule(nest_in) if nest_in else None)
    t_windows = time.monotonic()
    log.info("windows ready in %.0f s; uploads per split: %s", t_windows - t0, data.split.value_counts().to_dict())
    train_tracks, train_windows = data.part("train")
    families = sorted({str(f) for f in train_tracks["family"].dropna()})
    kwargs = {**_arch_kwargs(spec), "n_families": len(families), **net_kwargs}
    net, separated = _build_with_separator(str(spec["arch"]), kwargs, data, per_track, params, seed)
    if params.get("init") == "published":
        _load_published(net)
    net = place(net, device)
    train_set = _training_set(train_tracks, train_windows, per_track, families)
    losses = fit_net(net, train_set, epochs, seed, device, params)
    t_trained = time.monotonic()
    calibration, threshold, metrics = evaluate_splits(net, data, spec, target_false_flag_rate)
    metrics.update({
        "n_train_windows": len(train_set.y),
        "n_train_twin_pairs": int((train_set.pair >= 0).sum()),
        "train_voices": sorted({str(a) for a in train_tracks["artist"]}),
        "undecodable": data.failed,
        "holdout_family": holdout_family,
        "train_loss_by_epoch": losses,
        "n_parameters": count_parameters(net),
        **({"separator": {**separated.metrics, "loss_by_epoch": separated.losses}} if separated else {}),
        "seconds": {"windows": round(t_windows - t0, 1), "train": round(t_trained - t_windows, 1),
                    "total": round(time.monotonic() - t0, 1)},
        "peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),  # KiB on Linux
    })
    if nest_in:  # the path may later hold another model: record which one this was nested in
        metrics["nested_in"] = {"artifact": str(nest_in), "model_id": load_card(nest_in, verify=False).model_id}
    if holdout_family:
        metrics["holdout_family_test_eer"] = metrics["test_eer_by_family"].get(holdout_family, math.nan)
    spec.update({
        "net_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "families": families,
        "max_windows_per_track_train": per_track,
        "split_rule": "connected components over shared content_id / voice_artist_id; whole components to "
                      f"train/dev/test {SPLIT_FRACTIONS} by hashed order (seed {seed}); see {SPLIT_FILE}",
        "train": {**params, "epochs": epochs, "seed": seed, "device": str(device)},
    })
    described = _training_data_text(corpus_dir, data.tracks, data.split, params.get("extra_corpora", []))
    if params.get("on_stems"):
        described += "; every upload replaced by its vocal stem (oracle separation): calibrated and tested on stems"
    card = ArtifactCard(
        slot="detector", name=str(spec["arch"]), class_path="models.detector.WindowDetector", spec=spec,
        version=VERSION, training_data=described,
        metrics=_json_safe(metrics), threshold=threshold, calibration=calibration,
        files={WEIGHTS_FILE: "", SPLIT_FILE: ""},
        command=_command(corpus_dir, out_dir, epochs, seed, holdout_family, params, str(spec["arch"]), net_kwargs),
    )
    _save(out_dir, net, data.split, card)
    return card


def _build_with_separator(arch: str, kwargs: dict[str, Any], data: PreparedData, per_track: int,
                          params: Mapping[str, Any], seed: int) -> tuple[DetectorNet, SeparatorFit | None]:
    """The untrained detector; with ``params["separator"]`` a vocal separator is trained first on the
    train split's stems (the dev split's scores it) and loaded, frozen, into its front end. Its
    arguments are added to ``kwargs``, the net_kwargs the card records, so the artifact rebuilds it."""
    options = params.get("separator")
    if not options:
        return build_net(arch, **kwargs), None
    if arch != "lcnn" or kwargs.get("frontend", "logmel") != "logmel":
        raise ValueError("--separator needs the lcnn architecture with its log-mel front end")
    if params.get("on_stems"):
        raise ValueError("--separator learns to take the accompaniment out; with --on-stems there is none")
    t0 = time.monotonic()
    fit = train_separator(data.part("train"), data.part("dev"), per_track, lcnn_stft(kwargs), options, seed)
    fit.metrics["seconds"] = round(time.monotonic() - t0, 1)
    log.info("separator trained in %.0f s: held-out loss %s of keeping the whole mix", fit.metrics["seconds"],
             fit.metrics.get("held_out_loss_ratio"))
    kwargs["separator"] = separator_arch(options)
    net = build_net(arch, **kwargs)
    assert isinstance(net, LCNN) and net.separator is not None
    net.separator.load_state_dict(fit.mask.state_dict())
    return net, fit


def _arch_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Spec values an architecture takes as constructor arguments (LCNN owns a mel front end)."""
    if spec["arch"] == "lcnn":
        return {"sample_rate": spec["sample_rate"], "n_mels": spec["n_mels"]}
    return {"sample_rate": spec["sample_rate"]}


def _load_published(net: DetectorNet) -> None:
    from models.aasist import AASIST, load_published_checkpoint, published_checkpoint_path

    if not isinstance(net, AASIST):
        raise ValueError("init='published' needs arch 'aasist' (the only published checkpoint)")
    load_published_checkpoint(net, published_checkpoint_path())


def _save(out_dir: Path, net: DetectorNet, split: pd.Series, card: ArtifactCard) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().cpu().contiguous() for name, t in net.state_dict().items()}
    torch.save(state, out_dir / WEIGHTS_FILE)
    parts = {s: sorted(str(u) for u in split.index[(split == s).to_numpy()]) for s in (*SPLITS, "excluded")}
    (out_dir / SPLIT_FILE).write_text(json.dumps(parts, indent=1))
    save_card(out_dir, card)


def _json_safe(value: Any) -> Any:
    """NaN → None recursively (JSON has no NaN; an EER on a one-class split is 'undefined')."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _command(corpus_dir: Path, out_dir: Path, epochs: int, seed: int, holdout_family: str | None,
             params: Mapping[str, Any], arch: str, net_kwargs: Mapping[str, Any] | None = None) -> str:
    """The `trackguard train detector` command line that replays this training (``net_kwargs``: the
    command-line choices among the architecture's arguments)."""
    cmd = f"trackguard train detector --corpus {corpus_dir} --out {out_dir} --epochs {epochs} --seed {seed}"
    cmd += f" --arch {arch}" + (f" --init {params['init']}" if params.get("init") else "")
    for option in ("frontend", "feature_norm", "spoof_head"):
        value = (net_kwargs or {}).get(option)
        cmd += f" --{option.replace('_', '-')} {value}" if value else ""
    channels = (net_kwargs or {}).get("channels")
    cmd += " --channels " + ",".join(str(c) for c in channels) if channels else ""
    weight = float(params.get("voice_adversary_weight", 0.0))
    cmd += f" --voice-adversary {weight:g}" if weight > 0 else ""
    pair_frac = params.get("pair_frac", TRAIN_DEFAULTS["pair_frac"])
    cmd += f" --pair-frac {pair_frac:g}" if pair_frac != TRAIN_DEFAULTS["pair_frac"] else ""
    separator = params.get("separator") or {}
    cmd += " --separator" if separator else ""
    epochs_sep = separator.get("epochs", SEPARATOR_EPOCHS)
    cmd += f" --separator-epochs {epochs_sep}" if epochs_sep != SEPARATOR_EPOCHS else ""
    cmd += " --on-stems" if params.get("on_stems") else ""
    cmd += "" if params.get("augment") else " --no-augment"
    cmd += "".join(f" --extra-corpus {d}" for d in params.get("extra_corpora", []))
    cmd += f" --nest-in {params['nest_in']}" if params.get("nest_in") else ""
    return cmd + (f" --holdout-family {holdout_family}" if holdout_family else "")


def split_prefix(corpus_dir: Path, spec: dict[str, Any]) -> str | None:
    """The prefix this corpus's upload ids carry in the artifact's split.json: "" for the corpus it was
    trained on, the directory name for an ``--extra-corpus``, None for a corpus it never used. The
    corpus is found by its identity (`corpus_identity`), so a renamed copy is still recognised;
    artifacts that record no corpora (trained before they were recorded) are matched by directory name."""
    recorded = spec.get("corpora")
    if not recorded:
        return corpus_prefix(corpus_dir)
    identity = corpus_identity(corpus_dir)
    return next((str(c["prefix"]) for c in recorded if same_corpus(str(c.get("identity")), identity)), None)


def require_split_corpus(corpus_dir: Path, artifact_dir: Path, remedy: str) -> None:
    """split.json's ids of the corpus the artifact was split on carry no prefix, and every corpus numbers
    its uploads alike: read against another corpus they would silently pick whichever of its uploads share
    those ids. Refused when the card records its corpora (older cards cannot tell, so they are trusted)."""
    spec = load_card(artifact_dir, verify=False).spec
    if spec.get("corpora") and split_prefix(corpus_dir, spec) != "":
        own = next((str(c.get("dir")) for c in spec["corpora"] if c.get("prefix") == ""), "another corpus")
        raise ValueError(f"{corpus_dir} is not the corpus {artifact_dir} was split on ({own}), so {remedy}")


def load_split(artifact_dir: Path) -> dict[str, list[str]]:
    """The upload ids of each split the artifact was trained/calibrated/evaluated on."""
    return dict(json.loads((Path(artifact_dir) / SPLIT_FILE).read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout-family", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--frontend", default=None, help="LCNN front end: logmel (default), linspec or lfcc")
    ap.add_argument("--arch", default="lcnn", help="lcnn (CPU tier) or aasist (GPU tier)")
    ap.add_argument("--init", default=None, choices=["published"], help="AASIST: start from clovaai's checkpoint")
    ap.add_argument("--no-augment", action="store_true", help="train without codec/noise/reverb augmentation")
    ap.add_argument("--extra-corpus", action="append", default=[], type=Path,
                    help="another corpus's uploads by train/dev-split voices join train/dev; repeatable")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    card = train_detector(a.corpus_dir, a.out_dir, a.epochs, a.seed, a.holdout_family, device=a.device,
                          threads=a.threads, net_kwargs={"frontend": a.frontend} if a.frontend else None,
                          arch=a.arch, init=a.init, augment=not a.no_augment, extra_corpora=a.extra_corpus)
    print(json.dumps({"model_id": card.model_id, "threshold": card.threshold, "metrics": card.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
