"""A persistent, incremental index of near-duplicate fingerprints (``features.fingerprint``).

Layout of the index directory::

    manifest.json            config, the live segments in order, counters (replaced atomically)
    seg-000001/              an immutable segment, written once by flush() or compact()
        hash.npy  ref.npy  info.npy   postings sorted by hash: uint32 each, 12 bytes a posting
        refs.parquet                  references added by this segment: ref_int, reference_id,
                                      duration_s, n_hashes
        removed.npy                   ref_ints this segment retires (removed or replaced)

``info`` packs the root's frame (24 bits, 23.2 ms each: 108 h) and its pitch in
quarter semitones (8 bits), all a query needs to verify a match.

Why this shape: adds go to an in-memory delta and flush() appends one sorted
segment (no rewrite of what exists); a query binary-searches (np.searchsorted)
every segment, so cost grows with the number of segments, which compaction
bounds (``max_segments``): it merges all segments in hash-range chunks straight
into memory-mapped output files, dropping retired references, so its peak
memory is one chunk, not the index. Segments can be memory-mapped (``mmap=True``)
so that several processes share one page cache.

Budget: an index keeps at most ``hashes_per_minute`` hashes per minute of each
reference (at least ``min_hashes_per_track``), choosing per second the
strongest (heaviest peaks, far from quantisation edges), because those survive
transformations best, while a query looks up its ``query_hashes_per_s``
strongest per second with all their probes. Recall depends on the product of
the two densities; memory only on the first, query time on both (postings per
lookup grow with the catalogue). At 60/min a 3.5-minute track costs 210
postings, 2.5 kB: 10^6 tracks 2.5 GB. A denser index (e.g. 240/min) finds
shorter excerpts at 4× the memory; a query cap of 64 instead of 128 halves
query time at 10^6 but lost noisy (15 dB SNR) copies on the synthetic music.

Removal and replacement retire a ref_int: its postings stay in their segment,
masked out at query time, until the next compaction. Single writer; any number
of readers may open the directory (a reader sees the segments of the manifest
it read).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.fingerprint import FRAME_S, TEMPO_TOLERANCE, Fingerprint

FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_PITCH_STEPS = 4  # per semitone in ``info``
_MERGE_CHUNKS = 64
DEFAULT_MIN_SCORE = 10  # consistent hashes: unrelated synthetic music peaked at 8, 24-s transformed copies at 19+


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """Persisted with the index (the manifest's values win when reopening)."""

    hashes_per_minute: int = 60
    min_hashes_per_track: int = 100
    max_segments: int = 8
    query_hashes_per_s: int = 128  # a query's strongest hashes per second (each with all its probes)
    max_postings_per_lookup: int = 20000  # hashes this common carry no evidence: skipped


@dataclasses.dataclass(frozen=True)
class Match:
    """One reference that a query duplicates, with the fitted alignment.

    ``score``: query hashes consistent with one pitch shift and one linear time
    map. ``normalised_score``: ``score`` over the reference hashes indexed in the
    matched span (about the fraction that survived the transformation, 0..1).
    ``time_scale``: query seconds per reference second (sox ``tempo 1.1`` gives
    0.909). ``pitch_shift_semitones``: query pitch minus reference pitch.
    Spans are of the matched hashes' root peaks, in seconds from each start.
    """

    reference_id: str
    score: int
    normalised_score: float
    query_span_s: tuple[float, float]
    reference_span_s: tuple[float, float]
    time_scale: float
    pitch_shift_semitones: float


@dataclasses.dataclass
class _Postings:
    """Postings sorted by hash (a segment, or the delta once sorted), with a bucket directory.

    The directory maps the top ``bits`` bits of a hash to its postings' range
    (about 4 postings a bucket), so a lookup is one random read plus a short
    contiguous scan instead of two ~28-step binary searches: 5× faster at 10^8
    postings, for 4 bytes a bucket (64 MiB at the 2^24-bucket cap).
    """

    hashes: np.ndarray
    refs: np.ndarray
    info: np.ndarray
    _dir: np.ndarray | None = None
    _shift: int = 32

    @classmethod
    def sorted_from(cls, hashes: np.ndarray, refs: np.ndarray, info: np.ndarray) -> _Postings:
        """Sorted by hash. One uint64 sort of (hash << 32 | position) is ~3x faster than argsort."""
        order = _argsort_u32(hashes)
        return cls(hashes[order], refs[order], info[order])

    @property
    def nbytes(self) -> int:
        held = sum(a.nbytes for a in (self.hashes, self.refs, self.info) if not isinstance(a, np.memmap))
        return held + (self._dir.nbytes if self._dir is not None else 0)

    def _directory(self) -> tuple[np.ndarray, int]:
        if self._dir is None:
            bits = int(np.clip(np.ceil(np.log2(max(len(self.hashes), 1))) - 2, 8, 24))
            self._shift = 32 - bits
            counts = np.bincount(np.asarray(self.hashes) >> np.uint32(self._shift), minlength=1 << bits)
            self._dir = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint32 if len(self.hashes) < 1 << 32
                                                                          else np.int64)
        return self._dir, self._shift

    def lookup(self, needles: np.ndarray, max_postings: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(needle index, ref, info) of every posting whose hash equals a needle (none for needles with
        more than ``max_postings``: hashes that common carry no evidence)."""
        directory, shift = self._directory()
        bucket = (needles >> np.uint32(shift)).astype(np.intp)
        start = directory[bucket].astype(np.int64)
        count = directory[bucket + 1].astype(np.int64) - start
        which, pos = _expand(start, count)
        hit = np.asarray(self.hashes[pos]) == needles[which]
        which, pos = which[hit], pos[hit]
        if len(which) and (per := np.bincount(which)).max() > max_postings:
            keep = per[which] <= max_postings
            which, pos = which[keep], pos[keep]
        return which, np.asarray(self.refs[pos]), np.asarray(self.info[pos])


def _expand(start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranges [start, start + count) flattened: (range index, position) per element."""
    total = int(count.sum())
    which = np.repeat(np.arange(len(start)), count)
    pos = np.repeat(start - (np.cumsum(count) - count), count) + np.arange(total)
    return which, pos


def _argsort_u32(x: np.ndarray) -> np.ndarray:
    """argsort of uint32 values via one uint64 sort of (value << 32 | index): ~3× numpy's argsort."""
    keys = (x.astype(np.uint64) << np.uint64(32)) | np.arange(len(x), dtype=np.uint64)
    keys.sort()
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.intp)


@dataclasses.dataclass
class _Segment:
    name: str
    postings: _Postings

    @classmethod
    def load(cls, path: Path, mmap: bool) -> _Segment:
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = [np.load(path / f"{k}.npy", mmap_mode=mode) for k in ("hash", "ref", "info")]
        return cls(path.name, _Postings(*arrays))


_EMPTY = Fingerprint(hashes=np.zeros(0, np.uint32), times=np.zeros(0, np.float32), pitches=np.zeros(0, np.float32),
                     strength=np.zeros(0, np.float32), probe_hashes=np.zeros(0, np.uint32),
                     probe_rows=np.zeros(0, np.int32), duration_s=0.0, n_peaks=0)


def _pack_info(times: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    frames = np.clip(np.rint(times / FRAME_S), 0, (1 << 24) - 1).astype(np.uint32)
    steps = np.clip(np.rint(pitches * _PITCH_STEPS), 0, 255).astype(np.uint32)
    return (frames << np.uint32(8)) | steps


def _unpack_info(info: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (info >> np.uint32(8)) * FRAME_S, (info & np.uint32(255)) / _PITCH_STEPS


def strongest_per_second(fp: Fingerprint, per_s: float) -> Fingerprint:
    """The ``ceil(per_s)`` strongest hashes of every 1-s block, trimmed to ``per_s × duration`` overall."""
    if per_s * max(fp.duration_s, 1.0) >= len(fp):
        return fp
    block = np.floor(fp.times).astype(np.int64)
    order = np.lexsort((-fp.strength, block))
    rank = np.arange(len(order)) - np.searchsorted(block[order], block[order], side="left")
    keep = order[rank < int(np.ceil(per_s))]
    budget = max(1, round(per_s * max(fp.duration_s, 1.0)))
    if len(keep) > budget:
        keep = keep[np.argsort(-fp.strength[keep], kind="stable")[:budget]]
    return fp.select(np.sort(keep))


class _RefTable:
    """ref_int → reference id, liveness, duration and indexed-hash count; id → live ref_int."""

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.by_id: dict[str, int] = {}
        self.alive = np.zeros(1024, dtype=bool)
        self.duration = np.zeros(1024, dtype=np.float32)
        self.n_hashes = np.zeros(1024, dtype=np.uint32)
        self.id_bytes = 0
        self.next_ref = 0

    def _grow(self, size: int) -> None:
        if size <= len(self.alive):
            return
        new = max(size, 2 * len(self.alive))
        for name in ("alive", "duration", "n_hashes"):
            old = getattr(self, name)
            grown = np.zeros(new, dtype=old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def register(self, ref: int, reference_id: str, duration_s: float, n_hashes: int) -> None:
        self._grow(ref + 1)
        self.ids.extend([None] * (ref + 1 - len(self.ids)))
        self.next_ref = max(self.next_ref, ref + 1)
        self.ids[ref] = reference_id
        self.alive[ref], self.duration[ref], self.n_hashes[ref] = True, duration_s, n_hashes
        if (old := self.by_id.get(reference_id)) is not None and old != ref:
            self.retire(old)
        self.by_id[reference_id] = ref
        self.id_bytes += sys.getsizeof(reference_id)

    def retire(self, ref: int) -> None:
        if ref < len(self.ids) and self.alive[ref]:
            self.alive[ref] = False
            rid = self.ids[ref]
            if rid is not None and self.by_id.get(rid) == ref:
                del self.by_id[rid]
            self.ids[ref] = None
            self.id_bytes -= sys.getsizeof(rid)

    def live(self) -> np.ndarray:
        return np.nonzero(self.alive[: len(self.ids)])[0]

    def table(self, refs: np.ndarray) -> pa.Table:
        return pa.table({"ref_int": pa.array(refs, pa.uint32()),
                         "reference_id": pa.array([self.ids[r] for r in refs], pa.string()),
                         "duration_s": pa.array(self.duration[refs], pa.float32()),
                         "n_hashes": pa.array(self.n_hashes[refs], pa.uint32())})

    @property
    def nbytes(self) -> int:
        ptr = 8 * len(self.ids) + 100 * len(self.by_id)  # list slots; dict entries (hash, key, value)
        return self.alive.nbytes + self.duration.nbytes + self.n_hashes.nbytes + self.id_bytes + ptr


# ---------------------------------------------------------------------------- verification

# Slopes (reference seconds per query second) tried by the Hough vote: the extractor's
# tempo tolerance and a little more, in 0.4 % steps.
_SLOPES = np.exp(np.linspace(np.log(1 - TEMPO_TOLERANCE - 0.03), np.log(1 + TEMPO_TOLERANCE + 0.03), 77))
_HOUGH_BIN_S = 0.25
_INLIER_TOL_S = 0.08  # ±3.5 frames: root times move by about a frame under WSOLA tempo/pitch changes
_PITCH_TOL_ST = 0.6


def _pitch_consistent(dp: np.ndarray) -> np.ndarray:
    """Postings whose pitch shift (query − reference) is within ±0.6 st of the most voted shift."""
    bins = np.rint(dp * 2).astype(np.int64)  # half semitones
    lo = int(bins.min())
    h = np.bincount(bins - lo)
    smooth = h + np.concatenate([[0], h[:-1]]) + np.concatenate([h[1:], [0]])
    centre = (int(np.argmax(smooth)) + lo) / 2
    near = np.abs(dp - centre) <= _PITCH_TOL_ST
    if near.any():
        centre = float(dp[near].mean())
    return np.abs(dp - centre) <= _PITCH_TOL_ST


def _hough(u: np.ndarray, tr: np.ndarray) -> tuple[float, float]:
    """The (slope, intercept) of t_ref = slope·u + intercept with most postings in a 2-bin offset window."""
    offsets = tr[None, :] - _SLOPES[:, None] * u[None, :]
    k = np.floor(offsets / _HOUGH_BIN_S).astype(np.int64)
    k -= k.min()
    width = int(k.max()) + 2
    counts = np.bincount((np.arange(len(_SLOPES))[:, None] * width + k).ravel(), minlength=len(_SLOPES) * width)
    counts = counts.reshape(len(_SLOPES), width)
    pairs = counts[:, :-1] + counts[:, 1:]  # two adjacent bins: a cluster on a bin edge is not split
    s, b = np.unravel_index(int(np.argmax(pairs)), pairs.shape)
    intercept = float(offsets[s][(k[s] == b) | (k[s] == b + 1)].mean())
    return float(_SLOPES[s]), intercept


def _fit_line(tq: np.ndarray, tr: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Robust fit of t_ref = a·(t_query − c) + b: Hough vote, then least squares on shrinking inliers.

    Returns (a, b, c, inlier mask). Centring on the median query time ``c`` keeps
    the intercept's error from a slightly wrong slope small over long queries.
    """
    c = float(np.median(tq))
    u = tq - c
    a, b = _hough(u, tr)
    inliers = np.zeros(len(tq), dtype=bool)
    for tol in (0.4, _INLIER_TOL_S, _INLIER_TOL_S):
        inliers = np.abs(tr - (a * u + b)) <= tol
        if inliers.sum() >= 3 and np.ptp(u[inliers]) > 1.0:
            a_fit, b_fit = np.polyfit(u[inliers], tr[inliers], 1)
            if _SLOPES[0] <= a_fit <= _SLOPES[-1]:
                a, b = float(a_fit), float(b_fit)
    return a, b, c, np.abs(tr - (a * u + b)) <= _INLIER_TOL_S


@dataclasses.dataclass(frozen=True)
class _Evidence:
    """One candidate's postings: query root time/pitch and query row; reference root time/pitch."""

    rows: np.ndarray
    tq: np.ndarray
    pq: np.ndarray
    tr: np.ndarray
    pr: np.ndarray


def _verify(ev: _Evidence, min_score: float) -> tuple[int, np.ndarray, float, float]:
    """(score, inlier mask, slope, pitch shift) of the best pitch-consistent linear alignment.

    A candidate with fewer than ``min_score`` pitch-consistent postings cannot
    reach ``min_score`` inliers, so it skips the line fit (most candidates at scale).
    """
    dp = ev.pq - ev.pr
    keep = _pitch_consistent(dp)
    if keep.sum() < max(3, min_score):
        return 0, np.zeros(len(dp), dtype=bool), 1.0, 0.0
    a, _, _, inl = _fit_line(ev.tq[keep], ev.tr[keep])
    mask = np.zeros(len(dp), dtype=bool)
    mask[np.nonzero(keep)[0][inl]] = True
    return len(np.unique(ev.rows[mask])), mask, a, float(np.median(dp[mask])) if mask.any() else 0.0


def _top_candidates(refs: np.ndarray, k: int, min_count: float) -> np.ndarray:
    """The ``k`` references with most postings (at least ``min_count``): only these are verified."""
    counts = np.bincount(refs)
    top = np.argpartition(-counts, min(k, len(counts) - 1))[:k] if len(counts) > k else np.arange(len(counts))
    return top[counts[top] >= min_count]


def _group_by_ref(top: np.ndarray, refs: np.ndarray, rows: np.ndarray, info: np.ndarray
                  ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(ref, query rows, info) of each candidate's postings (one pass over all postings, not one per ref)."""
    is_top = np.zeros(int(refs.max()) + 1, dtype=bool)
    is_top[top] = True
    sel = np.nonzero(is_top[refs])[0]
    sel = sel[np.argsort(refs[sel], kind="stable")]
    cut = np.flatnonzero(np.diff(refs[sel])) + 1
    return [(int(refs[g[0]]), rows[g], info[g]) for g in np.split(sel, cut) if len(g)]


# ---------------------------------------------------------------------------- the index


class FingerprintIndex:
    """Persistent near-duplicate index: add/remove references, query with a fingerprint.

    Changes live in memory (and are visible to queries at once) until flush()
    writes them as one new segment. See the module docstring for the layout.
    """

    def __init__(self, directory: Path, config: IndexConfig, mmap: bool) -> None:
        self.directory, self.config, self._mmap = directory, config, mmap
        self._segments: list[_Segment] = []
        self._refs = _RefTable()
        self._next_segment = 1
        self._pending: list[tuple[int, Fingerprint]] = []  # (ref, kept hashes) per add, packed at flush
        self._pending_removed: list[int] = []
        self._delta: _Postings | None = None

    # -- opening and persistence

    @classmethod
    def open(cls, directory: Path, *, config: IndexConfig | None = None, mmap: bool = False) -> FingerprintIndex:
        """Open the index in ``directory``, creating it (with ``config``) if missing.

        An existing index keeps the config it was created with (``config`` is then
        ignored): its postings were selected under that budget.
        """
        directory = Path(directory)
        manifest = directory / _MANIFEST
        if not manifest.exists():
            directory.mkdir(parents=True, exist_ok=True)
            index = cls(directory, config or IndexConfig(), mmap)
            index._write_manifest()
            return index
        state = json.loads(manifest.read_text())
        if state.get("version") != FORMAT_VERSION:
            raise ValueError(f"{manifest}: format version {state.get('version')}, expected {FORMAT_VERSION}")
        index = cls(directory, IndexConfig(**state["config"]), mmap)
        index._next_segment = int(state["next_segment"])
        index._refs.next_ref = int(state["next_ref"])  # ref ints are never reused, even after compaction
        for name in state["segments"]:
            index._load_segment(name)
        return index

    def _load_segment(self, name: str) -> None:
        path = self.directory / name
        self._segments.append(_Segment.load(path, self._mmap))
        table = pq.read_table(path / "refs.parquet").to_pydict()
        for ref, rid, dur, n in zip(table["ref_int"], table["reference_id"], table["duration_s"], table["n_hashes"],
                                    strict=True):
            self._refs.register(int(ref), str(rid), float(dur), int(n))
        for ref in np.load(path / "removed.npy"):
            self._refs.retire(int(ref))

    def _write_manifest(self) -> None:
        state = {"version": FORMAT_VERSION, "config": dataclasses.asdict(self.config),
                 "segments": [s.name for s in self._segments], "next_segment": self._next_segment,
                 "next_ref": self._refs.next_ref}
        tmp = self.directory / f".{_MANIFEST}.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.directory / _MANIFEST)

    def _new_segment_dir(self) -> tuple[str, Path]:
        name = f"seg-{self._next_segment:06d}"
        self._next_segment += 1
        tmp = self.directory / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        return name, tmp

    def _publish(self, name: str, tmp: Path, refs: np.ndarray, removed: np.ndarray) -> Path:
        pq.write_table(self._refs.table(refs), tmp / "refs.parquet")
        np.save(tmp / "removed.npy", removed.astype(np.uint32))
        final = self.directory / name
        os.replace(tmp, final)
        return final

    def flush(self) -> None:
        """Write pending adds and removals as one new segment; compact when segments exceed the limit."""
        self._write_delta()
        if len(self._segments) > self.config.max_segments:
            self.compact()

    def _write_delta(self) -> None:
        if not self._pending and not self._pending_removed:
            return
        delta = self._delta_postings()
        name, tmp = self._new_segment_dir()
        for key, arr in (("hash", delta.hashes), ("ref", delta.refs), ("info", delta.info)):
            np.save(tmp / f"{key}.npy", arr)
        new_refs = np.array(sorted({r for r, _ in self._pending if self._refs.alive[r]}), dtype=np.int64)
        path = self._publish(name, tmp, new_refs, np.array(self._pending_removed, dtype=np.int64))
        self._segments.append(_Segment.load(path, True) if self._mmap else _Segment(name, delta))
        self._pending, self._pending_removed, self._delta = [], [], None
        self._write_manifest()

    def compact(self) -> None:
        """Merge all segments into one without retired references (peak memory: one hash-range chunk)."""
        self._write_delta()
        if not self._segments:
            return
        name, tmp = self._new_segment_dir()
        size = sum(int(self._refs.alive[s.postings.refs].sum()) for s in self._segments)
        self._merge_into(tmp, size)
        path = self._publish(name, tmp, self._refs.live(), np.zeros(0, dtype=np.int64))
        old = [self.directory / s.name for s in self._segments]
        self._segments = []  # drop the old postings before loading the merged ones: one copy at a time
        self._segments = [_Segment.load(path, self._mmap)]
        self._write_manifest()
        for p in old:
            shutil.rmtree(p, ignore_errors=True)

    def _merge_into(self, tmp: Path, size: int) -> None:
        """Write the live postings of all segments, sorted, into ``tmp``, one hash range at a time."""
        if size == 0:  # a zero-length file cannot be memory-mapped
            for k in ("hash", "ref", "info"):
                np.save(tmp / f"{k}.npy", np.zeros(0, np.uint32))
            return
        out = [np.lib.format.open_memmap(tmp / f"{k}.npy", mode="w+", dtype=np.uint32, shape=(size,))
               for k in ("hash", "ref", "info")]
        at = 0
        bounds = [int(b) for b in np.linspace(0, 1 << 32, _MERGE_CHUNKS + 1)]
        for lo, hi in itertools.pairwise(bounds):
            at = self._merge_chunk(lo, hi, out, at)
        for arr in out:
            arr.flush()

    def _merge_chunk(self, lo: int, hi: int, out: Sequence[np.ndarray], at: int) -> int:
        parts: list[list[np.ndarray]] = [[], [], []]
        for seg in self._segments:
            p = seg.postings
            i = int(np.searchsorted(p.hashes, np.uint32(lo)))
            j = len(p.hashes) if hi > 0xFFFFFFFF else int(np.searchsorted(p.hashes, np.uint32(hi)))
            live = self._refs.alive[p.refs[i:j]]
            for part, arr in zip(parts, (p.hashes, p.refs, p.info), strict=True):
                part.append(np.asarray(arr[i:j])[live])
        merged = _Postings.sorted_from(*(np.concatenate(part) for part in parts))
        n = len(merged.hashes)
        for dst, src in zip(out, (merged.hashes, merged.refs, merged.info), strict=True):
            dst[at : at + n] = src
        return at + n

    # -- changes

    def add(self, reference_id: str, fp: Fingerprint, *, duration_s: float) -> None:
        """Index ``fp`` as ``reference_id``; re-adding an id replaces its previous fingerprint."""
        if (old := self._refs.by_id.get(reference_id)) is not None:
            self._retire(old)
        per_s = max(self.config.min_hashes_per_track / max(duration_s, 1.0), self.config.hashes_per_minute / 60)
        kept = strongest_per_second(fp, per_s)
        ref = self._refs.next_ref
        self._refs.register(ref, reference_id, duration_s, len(kept))
        self._pending.append((ref, kept))
        self._delta = None

    def remove(self, reference_id: str) -> None:
        """Stop matching ``reference_id`` (a no-op for an unknown id, so that retries are safe)."""
        if (ref := self._refs.by_id.get(reference_id)) is not None:
            self._retire(ref)

    def _retire(self, ref: int) -> None:
        self._refs.retire(ref)
        self._pending_removed.append(ref)
        self._delta = None

    def _delta_postings(self) -> _Postings:
        if self._delta is None:
            live = [(r, fp) for r, fp in self._pending if self._refs.alive[r]] or [(0, _EMPTY)]
            refs = np.repeat(np.array([r for r, _ in live], dtype=np.uint32), [len(fp) for _, fp in live])
            info = _pack_info(np.concatenate([fp.times for _, fp in live]),
                              np.concatenate([fp.pitches for _, fp in live]))
            hashes = np.concatenate([fp.hashes for _, fp in live]).astype(np.uint32)
            self._delta = _Postings.sorted_from(hashes, refs, info)
        return self._delta

    # -- size

    def __len__(self) -> int:
        return len(self._refs.by_id)

    def __contains__(self, reference_id: object) -> bool:
        return reference_id in self._refs.by_id

    def memory_bytes(self) -> int:
        """Bytes held in this process: postings (not memory-mapped ones), pending adds, the id table."""
        pending = sum(fp.hashes.nbytes + fp.times.nbytes + fp.pitches.nbytes for _, fp in self._pending)
        delta = self._delta.nbytes if self._delta is not None else 0
        return sum(s.postings.nbytes for s in self._segments) + pending + delta + self._refs.nbytes

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())

    @property
    def n_segments(self) -> int:
        return len(self._segments)

    # -- queries

    def query(self, fp: Fingerprint, *, exclude_id: str | None = None, min_score: float = DEFAULT_MIN_SCORE,
              max_results: int = 10, max_candidates: int = 24) -> list[Match]:
        """References that ``fp`` duplicates (score ≥ ``min_score``), best first.

        ``exclude_id``: never return this reference (the upload itself when it is
        already indexed). The query uses its ``query_hashes_per_s`` strongest hashes
        per second with all their probes; each reference with enough postings (the
        ``max_candidates`` most) is verified by ``_verify``: one pitch shift, one
        linear time map, inliers counted once per query hash.
        """
        q = strongest_per_second(fp, self.config.query_hashes_per_s)
        rows, refs, info = self._lookup(q)
        keep = self._refs.alive[refs]
        if exclude_id is not None and (ex := self._refs.by_id.get(exclude_id)) is not None:
            keep &= refs != ex
        rows, refs, info = rows[keep], refs[keep], info[keep]
        if len(refs) == 0:
            return []
        top = _top_candidates(refs, max_candidates, min_score)
        groups = _group_by_ref(top, refs, rows, info)
        matches = [self._match(int(r), q, rw, inf, min_score) for r, rw, inf in groups]
        matches = [m for m in matches if m.score >= min_score]
        return sorted(matches, key=lambda m: (-m.score, m.reference_id))[:max_results]

    def _lookup(self, q: Fingerprint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, ref, info) of every posting that a query hash or probe hits, in all segments."""
        needles = np.concatenate([q.hashes, q.probe_hashes])
        rows = np.concatenate([np.arange(len(q.hashes), dtype=np.int32), q.probe_rows])
        order = _argsort_u32(needles)  # sorted needles: the directory and postings are read in order
        needles, rows = needles[order], rows[order]
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        sources = [s.postings for s in self._segments] + ([self._delta_postings()] if self._pending else [])
        for postings in sources:
            which, refs, info = postings.lookup(needles, self.config.max_postings_per_lookup)
            out.append((rows[which], refs, info))
        if not out:
            return np.zeros(0, np.int32), np.zeros(0, np.uint32), np.zeros(0, np.uint32)
        return tuple(np.concatenate([o[k] for o in out]) for k in range(3))  # type: ignore[return-value]

    def _match(self, ref: int, q: Fingerprint, rows: np.ndarray, info: np.ndarray, min_score: float) -> Match:
        tr, pr = _unpack_info(info)
        ev = _Evidence(rows, q.times[rows].astype(np.float64), q.pitches[rows].astype(np.float64), tr, pr)
        score, mask, slope, shift = _verify(ev, min_score)
        if score == 0:
            return Match(self._refs.ids[ref] or "", 0, 0.0, (0.0, 0.0), (0.0, 0.0), 1.0, 0.0)
        q_span = (float(ev.tq[mask].min()), float(ev.tq[mask].max()))
        r_span = (float(ev.tr[mask].min()), float(ev.tr[mask].max()))
        density = float(self._refs.n_hashes[ref]) / max(float(self._refs.duration[ref]), 1.0)
        expected = density * max(r_span[1] - r_span[0], 1.0)
        return Match(reference_id=self._refs.ids[ref] or "", score=score,
                     normalised_score=min(1.0, score / max(expected, 1.0)), query_span_s=q_span,
                     reference_span_s=r_span, time_scale=1.0 / slope, pitch_shift_semitones=shift)
