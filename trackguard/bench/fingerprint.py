"""`trackguard bench fingerprint`: index scale (synthetic fingerprints) and robustness (synthetic music).

Scale (``bench_fingerprint_scale``): real extraction of a dozen generated tracks
first measures what a fingerprint looks like to the index: postings kept per
track (the index budget for a ``TRACK_S`` track), lookups per query second (the
query cap × probes per hash) and the chance that a lookup hits a posting of an
unrelated track. Synthetic fingerprints then reproduce those three numbers:
hashes drawn uniformly from a space whose size is 1 / that chance, so the
posting load per lookup matches the measurement (the skew of real hash counts
is not modelled). Half the queries contain half of an indexed track's hashes at
a consistent alignment, half contain nothing indexed.

Robustness (``bench_fingerprint_robustness``): generated music-like references,
every transformation of the tests, ours against Chromaprint (``fpcalc`` with the
bit-error-rate matcher of ``features.chromaprint``), recall and precision per
transformation; precision counts matches of transformed *unrelated* tracks too.

Also home to the music-like signal generator and the transformations (sox, ffmpeg)
that the tests share, so that the benchmark measures what the tests assert.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from trackguard.bench.report import emit

TRACK_S = 210.0  # a typical track (3.5 min): the length of synthetic references and queries

SCALE_DEGREES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


# ---------------------------------------------------------------------------- synthetic music


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _tone(sr: int, seconds: float, hz: float, partials: np.ndarray, decay: float, attack_s: float) -> np.ndarray:
    """One note: harmonic partials (weights ``partials``), exponential decay, linear attack, short release."""
    t = np.arange(int(seconds * sr)) / sr
    k = np.arange(1, len(partials) + 1)
    ok = k * hz < 0.45 * sr
    x = (partials[ok, None] * np.sin(2 * np.pi * hz * k[ok, None] * t[None, :])).sum(axis=0)
    env = np.exp(-decay * t) * np.minimum(1.0, t / attack_s)
    env *= np.minimum(1.0, (t[-1] - t + 1e-3) / 0.03) if len(t) else 1.0
    return x * env


def _add(out: np.ndarray, x: np.ndarray, start_s: float, sr: int, gain: float) -> None:
    i = int(start_s * sr)
    j = min(len(out), i + len(x))
    if i < j:
        out[i:j] += gain * x[: j - i]


def _drums(out: np.ndarray, sr: int, rng: np.random.Generator, beat_s: float, seconds: float) -> None:
    """Kick (falling sine), snare (noise + tone) and hi-hat (differentiated noise) on a seeded pattern."""
    kick_pat = rng.random(8) < np.array([0.95, 0.1, 0.3, 0.2, 0.8, 0.2, 0.3, 0.1])
    snare_pat = rng.random(8) < np.array([0.0, 0.1, 0.9, 0.1, 0.0, 0.2, 0.9, 0.3])
    t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    n_steps = int(seconds / (beat_s / 2))
    for step in range(n_steps):
        at = step * beat_s / 2
        if kick_pat[step % 8]:
            _add(out, kick, at, sr, 0.5)
        if snare_pat[step % 8]:
            snare = rng.standard_normal(len(t)) * np.exp(-t * 25) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
            _add(out, snare, at, sr, 0.2)
        hat = np.diff(rng.standard_normal(len(t) // 4 + 1)) * np.exp(-t[: len(t) // 4] * 60)
        _add(out, hat, at, sr, 0.05 * rng.uniform(0.5, 1.0))


def _progression(rng: np.random.Generator, scale: tuple[int, ...], n_bars: int) -> list[list[int]]:
    """Triads (scale-degree stacks of thirds) on a seeded 4-bar progression, repeated."""
    roots = rng.choice([0, 3, 4, 5, 1, 2], size=4, replace=True)
    return [[scale[(d + 2 * i) % 7] + 12 * ((d + 2 * i) // 7) for i in range(3)] for d in
            (int(roots[b % 4]) for b in range(n_bars))]


def music_like(seed: int, seconds: float = 25.0, sr: int = 22050) -> np.ndarray:
    """A seeded, music-like mix: melody, chords, bass and drums, float32 mono, peak 0.9.

    Every seed gets its own key, mode, tempo, tuning (±40 cents), timbres, melody,
    progression and drum pattern. Synthetic: label anything measured on it as such.
    """
    rng = np.random.default_rng(seed)
    beat = 60.0 / rng.uniform(80, 140)
    tonic = rng.integers(45, 57) + rng.uniform(-0.4, 0.4)
    scale = SCALE_DEGREES[str(rng.choice(["major", "minor"]))]
    out = np.zeros(int(seconds * sr))
    lead = rng.uniform(0.2, 1.0, 10) / np.arange(1, 11) ** rng.uniform(0.6, 1.4)
    pad = rng.uniform(0.2, 1.0, 6) / np.arange(1, 7) ** 1.5
    bars = _progression(rng, scale, int(seconds / (4 * beat)) + 1)
    for b, triad in enumerate(bars):
        for deg in triad:
            _add(out, _tone(sr, 4 * beat, _midi_hz(tonic + deg), pad, 0.4, 0.08), 4 * b * beat, sr, 0.12)
        bass = _tone(sr, beat, _midi_hz(tonic - 12 + triad[0]), pad[:4], 3.0, 0.01)
        for q in range(4):
            _add(out, bass, (4 * b + q) * beat, sr, 0.25)
    at, degree = 0.0, int(rng.integers(0, 7))
    while at < seconds:
        dur = beat / 2 * int(rng.choice([1, 1, 2, 2, 3, 4]))
        degree = int(np.clip(degree + rng.integers(-3, 4), 0, 13))
        if rng.random() > 0.15:
            note = tonic + 12 + scale[degree % 7] + 12 * (degree // 7)
            _add(out, _tone(sr, dur, _midi_hz(note), lead, rng.uniform(1.0, 4.0), 0.01), at, sr, 0.3)
        at += dur
    _drums(out, sr, rng, beat, seconds)
    return (0.9 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


# ---------------------------------------------------------------------------- transformations

TRANSFORMS = ("pitch+2st", "pitch-2st", "tempo+10%", "tempo-10%", "mp3_128k", "noise_15db", "gain-6db",
              "trim_start_3s")
# What the matched query/reference time scale and pitch shift should be for each (others: 1.0 and 0).
EXPECTED_TIME_SCALE = {"tempo+10%": 1 / 1.1, "tempo-10%": 1 / 0.9}
EXPECTED_PITCH = {"pitch+2st": 2.0, "pitch-2st": -2.0}


def _sox(x: np.ndarray, sr: int, *effect: str) -> np.ndarray:
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(sr)]
    cmd = ["sox", "-V1", *raw, "-", *raw, "-", *effect]
    out = subprocess.run(cmd, input=np.ascontiguousarray(x, dtype="<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<f4").copy()


def _mp3(x: np.ndarray, sr: int, bitrate: str = "128k") -> np.ndarray:
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    enc = subprocess.run([*base, "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame",
                          "-b:a", bitrate, "-f", "mp3", "pipe:1"], input=np.ascontiguousarray(x, "<f4").tobytes(),
                         capture_output=True, check=True).stdout
    dec = subprocess.run([*base, "-f", "mp3", "-i", "pipe:0", "-f", "f32le", "-ac", "1", "-ar", str(sr), "pipe:1"],
                         input=enc, capture_output=True, check=True).stdout
    return np.frombuffer(dec, dtype="<f4").copy()


def transform(x: np.ndarray, sr: int, name: str, seed: int = 0) -> np.ndarray:
    """``x`` after transformation ``name`` (one of TRANSFORMS); sox and ffmpeg run through pipes."""
    if name.startswith("pitch"):
        return _sox(x, sr, "pitch", str(int(float(name[5:-2]) * 100)))
    if name.startswith("tempo"):
        return _sox(x, sr, "tempo", "-m", str(1 + float(name[5:-1]) / 100))
    if name == "mp3_128k":
        return _mp3(x, sr)
    if name == "noise_15db":
        noise = np.random.default_rng(seed).standard_normal(len(x))
        return (x + noise * np.sqrt(np.mean(x**2) / 10 ** 1.5)).astype(np.float32)
    if name == "gain-6db":
        return (x * 10 ** (-6 / 20)).astype(np.float32)
    if name == "trim_start_3s":
        return x[3 * sr:]
    raise ValueError(f"unknown transformation {name!r}; known: {', '.join(TRANSFORMS)}")


# ---------------------------------------------------------------------------- scale (synthetic fingerprints)


def _collisions(stored: list[np.ndarray], lookups: list[np.ndarray]) -> tuple[int, int]:
    """(hits, pairs) between each track's stored hashes and every *other* track's lookups."""
    hits = pairs = 0
    for i, s in enumerate(stored):
        us, cs = np.unique(s, return_counts=True)
        for j, q in enumerate(lookups):
            if i != j:
                uq, cq = np.unique(q, return_counts=True)
                _, ia, ib = np.intersect1d(us, uq, assume_unique=True, return_indices=True)
                hits += int((cs[ia] * cq[ib]).sum())
                pairs += len(s) * len(q)
    return hits, pairs


def measure_extractor(n_tracks: int = 12, seconds: float = 20.0, sr: int = 22050) -> dict[str, float]:
    """Peak and hash rates, query lookups, per-lookup collision chance and speed, on generated music."""
    from features.fingerprint import fingerprint
    from models.fingerprint_index import IndexConfig, strongest_per_second

    cfg = IndexConfig()
    audio = [music_like(50_000 + i, seconds, sr) for i in range(n_tracks)]
    t0 = time.perf_counter()
    fps = [fingerprint(x, sr) for x in audio]
    extract_s = time.perf_counter() - t0
    queries = [strongest_per_second(fp, cfg.query_hashes_per_s) for fp in fps]
    lookups = [np.concatenate([q.hashes, q.probe_hashes]) for q in queries]
    hits, pairs = _collisions([fp.hashes for fp in fps], lookups)
    total_s = n_tracks * seconds
    return {"peaks_per_s": sum(fp.n_peaks for fp in fps) / total_s,
            "hashes_per_s": sum(len(fp) for fp in fps) / total_s,
            "query_hashes_per_s": sum(len(q) for q in queries) / total_s,
            "lookups_per_query_hash": sum(map(len, lookups)) / max(1, sum(len(q) for q in queries)),
            "lookup_collision_p": max(hits, 1) / pairs,
            "extract_ms_per_audio_s": 1000 * extract_s / total_s}


def _synthetic_hashes(rng: np.random.Generator, n: int, space: int) -> np.ndarray:
    """Uniform over ``space`` values, spread over 32 bits (odd multiplier: a bijection mod 2^32)."""
    return (rng.integers(0, space, n, dtype=np.uint64) * np.uint64(2654435761) % np.uint64(1 << 32)).astype(np.uint32)


def _synthetic_fp(hashes: np.ndarray, times: np.ndarray, duration_s: float, probes: np.ndarray | None = None,
                  probe_rows: np.ndarray | None = None) -> Any:
    """A Fingerprint of given hashes and root times (pitch, strength: constants shared by all)."""
    from features.fingerprint import Fingerprint

    const = _constant(len(hashes))
    empty = np.zeros(0, np.uint32)
    return Fingerprint(hashes=hashes, times=times, pitches=const, strength=const,
                       probe_hashes=probes if probes is not None else empty,
                       probe_rows=probe_rows if probe_rows is not None else empty.view(np.int32),
                       duration_s=duration_s, n_peaks=0)


@functools.lru_cache(maxsize=4)
def _constant(n: int) -> np.ndarray:
    x = np.full(n, 24.0, np.float32)
    x.flags.writeable = False
    return x


@dataclasses.dataclass(frozen=True)
class _Model:
    per_track: int  # postings an index keeps for a TRACK_S reference
    query_hashes: int  # a TRACK_S query's hashes after the query cap
    lookups_per_hash: int
    space: int  # synthetic hash values: 1 / measured per-lookup collision chance


def _model(m: dict[str, float]) -> _Model:
    from models.fingerprint_index import IndexConfig

    cfg = IndexConfig()
    per_track = int(min(m["hashes_per_s"] * TRACK_S,
                        max(cfg.min_hashes_per_track, cfg.hashes_per_minute * TRACK_S / 60)))
    return _Model(per_track, int(m["query_hashes_per_s"] * TRACK_S), max(1, round(m["lookups_per_query_hash"])),
                  int(1 / m["lookup_collision_p"]))


def _build(index: Any, n: int, model: _Model, rng: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray]:
    """Add ``n`` synthetic references in ~10 flushed batches, then compact.

    Returns (seconds, the first tracks' hashes [64, per_track], their root times).
    Every synthetic track shares one sorted set of root times (they only matter
    to verification, where they are consistent by construction).
    """
    batch = max(1000, n // 10)
    times = np.sort(rng.uniform(0, TRACK_S, model.per_track)).astype(np.float32)
    first = np.zeros((0, model.per_track), np.uint32)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        hashes = _synthetic_hashes(rng, min(batch, n - start) * model.per_track, model.space)
        hashes = hashes.reshape(-1, model.per_track)
        for k, row in enumerate(hashes):
            index.add(f"t{start + k:08d}", _synthetic_fp(row, times, TRACK_S), duration_s=TRACK_S)
        if start == 0:
            first = hashes[:64].copy()
        index.flush()
    index.compact()
    return time.perf_counter() - t0, first, times


def _query_fp(rng: np.random.Generator, model: _Model, present: tuple[np.ndarray, np.ndarray] | None) -> Any:
    """A TRACK_S query with the measured lookups; ``present`` = (hashes, times): half of them are in it."""
    n = model.query_hashes
    hashes = _synthetic_hashes(rng, n, model.space)
    times = np.sort(rng.uniform(0, TRACK_S, n)).astype(np.float32)
    if present is not None:
        pick = np.sort(rng.permutation(len(present[0]))[: len(present[0]) // 2])
        hashes[: len(pick)], times[: len(pick)] = present[0][pick], present[1][pick]
    extra = model.lookups_per_hash - 1
    probes = _synthetic_hashes(rng, n * extra, model.space)
    rows = np.repeat(np.arange(n, dtype=np.int32), extra)
    return _synthetic_fp(hashes, times, TRACK_S, probes, rows)


def _time_queries(index: Any, model: _Model, first: np.ndarray, times: np.ndarray, n_queries: int,
                  rng: np.random.Generator) -> dict[str, float]:
    """Latency of ``n_queries`` (half present, half absent) and whether each got the right answer."""
    latencies, correct = [], 0
    for i in range(n_queries):
        k = i % len(first)
        present = (first[k], times) if i % 2 == 0 else None
        fp = _query_fp(rng, model, present)
        t0 = time.perf_counter()
        matches = index.query(fp)
        latencies.append(time.perf_counter() - t0)
        expect = f"t{k:08d}" if present is not None else None
        correct += (matches[0].reference_id if matches else None) == expect
    lat = np.array(latencies)
    return {"queries_per_s": len(lat) / lat.sum(), "query_p95_s": float(np.percentile(lat, 95)),
            "queries_correct": correct / len(lat)}


def bench_fingerprint_scale(catalogue_sizes: list[int], json_path: str | None = None) -> list[dict[str, Any]]:
    """Build, query and size an index of synthetic fingerprints for each catalogue size."""
    from models.fingerprint_index import FingerprintIndex

    measured = measure_extractor()
    model = _model(measured)
    rows = []
    for n in catalogue_sizes:
        rng = np.random.default_rng(n)
        with tempfile.TemporaryDirectory(prefix="tg-fp-bench-") as tmp:
            index = FingerprintIndex.open(Path(tmp) / "index")
            build_s, first, times = _build(index, n, model, rng)
            q = _time_queries(index, model, first, times, 20 if n < 500_000 else 10, rng)
            rows.append({"catalogue": n, "build_s": build_s, "insert_tracks_per_s": n / build_s, **q,
                         "index_memory_bytes": index.memory_bytes(), "index_disk_bytes": index.disk_bytes(),
                         "postings": n * model.per_track})
    extra = {"data": f"synthetic fingerprints of {TRACK_S:.0f}-s tracks, modelled on real extraction of "
                     "generated (synthetic) music", "postings_per_track": model.per_track,
             "query_hashes": model.query_hashes, "lookups_per_query_hash": model.lookups_per_hash,
             "synthetic_hash_space": model.space,
             **{f"measured_{k}": round(v, 9 if k == "lookup_collision_p" else 2) for k, v in measured.items()}}
    emit("fingerprint index scale (synthetic fingerprints)", rows, json_path, extra)
    return rows


# ---------------------------------------------------------------------------- robustness (synthetic music)


@dataclasses.dataclass
class _Timer:
    audio_s: float = 0.0
    wall_s: float = 0.0

    def rt_factor(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s else float("nan")

    def ms_per_audio_s(self) -> float:
        return 1000 * self.wall_s / self.audio_s if self.audio_s else float("nan")


def _timed(timer: _Timer, fn: Any, x: np.ndarray, sr: int) -> Any:
    t0 = time.perf_counter()
    out = fn(x, sr)
    timer.wall_s += time.perf_counter() - t0
    timer.audio_s += len(x) / sr
    return out


def _precision_recall(predicted: list[str | None], truth: list[str | None]) -> tuple[float, float]:
    """Recall over queries with a reference; precision over all predictions (NaN when none)."""
    made = [(p, t) for p, t in zip(predicted, truth, strict=True) if p is not None]
    positives = sum(t is not None for t in truth)
    correct = sum(p == t for p, t in made)
    return (correct / len(made) if made else float("nan")), (correct / positives if positives else float("nan"))


class _Systems:
    """Ours (an index in a temp directory) and Chromaprint (brute-force BER search), same references."""

    def __init__(self, refs: dict[str, np.ndarray], sr: int, directory: Path, chromaprint: bool) -> None:
        from features import chromaprint as cp
        from features.fingerprint import fingerprint
        from models.fingerprint_index import FingerprintIndex

        self.sr, self.ours_t, self.cp_t, self.use_cp = sr, _Timer(), _Timer(), chromaprint
        self.index = FingerprintIndex.open(directory)
        self.cp_refs: dict[str, cp.Chromaprint] = {}
        for rid, x in refs.items():
            self.index.add(rid, _timed(self.ours_t, fingerprint, x, sr), duration_s=len(x) / sr)
            if chromaprint:
                self.cp_refs[rid] = _timed(self.cp_t, cp.chromaprint, x, sr)
        self.index.flush()

    def ours(self, x: np.ndarray) -> str | None:
        from features.fingerprint import fingerprint

        matches = self.index.query(_timed(self.ours_t, fingerprint, x, self.sr))
        return matches[0].reference_id if matches else None

    def chromaprint(self, x: np.ndarray) -> str | None:
        from features import chromaprint as cp

        if not self.use_cp:
            return None
        best = cp.best_match(_timed(self.cp_t, cp.chromaprint, x, self.sr), self.cp_refs)
        return best[0] if best else None


def bench_fingerprint_robustness(n_references: int, json_path: str | None = None, seconds: float = 25.0,
                                 sr: int = 22050) -> list[dict[str, Any]]:
    """Recall and precision per transformation, ours vs Chromaprint, on generated (synthetic) music.

    Queries per transformation: every reference transformed (duplicates) and
    ``max(4, n_references // 2)`` unrelated generated tracks transformed alike
    (non-duplicates: any match they get is a false positive).
    """
    from features import chromaprint as cp

    refs = {f"ref-{i}": music_like(20_000 + i, seconds, sr) for i in range(n_references)}
    others = [music_like(30_000 + i, seconds, sr) for i in range(max(4, n_references // 2))]
    has_cp = cp.fpcalc_path() is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="tg-fp-robust-") as tmp:
        systems = _Systems(refs, sr, Path(tmp) / "index", has_cp)
        for name in TRANSFORMS:
            queries: list[tuple[str | None, np.ndarray]] = [
                (rid, transform(x, sr, name, seed=i)) for i, (rid, x) in enumerate(refs.items())]
            queries += [(None, transform(x, sr, name, seed=100 + i)) for i, x in enumerate(others)]
            truth = [rid for rid, _ in queries]
            ours_p, ours_r = _precision_recall([systems.ours(x) for _, x in queries], truth)
            cp_p, cp_r = _precision_recall([systems.chromaprint(x) for _, x in queries], truth)
            rows.append({"transformation": name, "ours_recall": ours_r, "ours_precision": ours_p,
                         "chromaprint_recall": cp_r if has_cp else float("nan"),
                         "chromaprint_precision": cp_p if has_cp else float("nan"),
                         "n_pairs": n_references, "n_non_duplicates": len(others)})
    extra = {"data": f"synthetic music-like tracks ({seconds:.0f} s, seeded melody/chords/bass/drums), "
                     "transformed with sox/ffmpeg",
             "ours_extract_rt_factor": round(systems.ours_t.rt_factor(), 1),
             "ours_extract_ms_per_audio_s": round(systems.ours_t.ms_per_audio_s(), 2),
             "chromaprint_extract_rt_factor": round(systems.cp_t.rt_factor(), 1) if has_cp else None,
             "chromaprint_extract_ms_per_audio_s": round(systems.cp_t.ms_per_audio_s(), 2) if has_cp else None,
             "chromaprint_note": (f"fpcalc via a pipe (process start included), BER threshold {cp.MAX_BER}"
                                  if has_cp else "fpcalc not installed: Chromaprint columns not measured")}
    emit(f"near-duplicate robustness, ours vs Chromaprint ({n_references} references, synthetic music)", rows,
         json_path, extra)
    return rows
