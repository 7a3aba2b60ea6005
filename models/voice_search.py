"""Best enrolled voiceprint per track: exact top-1 search, chunked over voiceprints, raw cosine or AS-norm.

The verifier and `trackguard bench voices` both match through `best_matches`, so the
bench times the sweep's own search. A batch of query rows (one per track, or several
window rows per track) is multiplied with ``chunk_rows`` voiceprints at a time, so
memory beyond the inputs is one [rows, chunk_rows] float32 block whatever the
registry's size.

AS-norm (`models.asnorm.as_norm`) costs more than the matrix product if it is applied
to every score: a few elementwise passes over [rows, n]. It is applied only where it
can change the answer. For a block of `BLOCK` voiceprints, the normalised score of row
i against voiceprint j, ``0.5·(s/sq_i + s·a_j − mq_i/sq_i − c_j)`` with ``a_j = 1/se_j``
and ``c_j = me_j/se_j``, is bounded above by the same expression with the block's
largest ``a`` (smallest for s < 0) and smallest ``c``; that bound rises with the raw
score s, so it gives the lowest raw score ``tau`` that could still beat the row's
track's best so far. A (row, block) piece whose raw maximum is below ``tau`` is
skipped; the others are normalised exactly. The result is the same top-1 as
normalising everything (the tests compare them); only the work differs. The bound is
tight when a block's statistics are close, which `search_order` arranges once when
the registry is loaded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from models.asnorm import CHUNK_ROWS, as_norm, cohort_stats

# CHUNK_ROWS: 1,000 query rows × 32,768 voiceprints × 4 B = 128 MiB of scores per chunk
BLOCK = 512  # voiceprints per AS-norm bound: few enough that their statistics are close (`search_order`)
# Raw-score slack for the skip test: the exact scores are float32, the bound float64.
TAU_MARGIN = 1e-4
# Above this share of pieces to normalise, a chunk is normalised whole (the first always is: no best yet).
DENSE_SHARE = 0.5

Stats = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Matches:
    """Per track: the best voiceprint's row (-1 with no voiceprints), its score on the operating scale, the raw
    cosine of the query row that scored it, and how much of the AS-norm work was done (the rest was skipped)."""

    index: np.ndarray  # [t] int64
    score: np.ndarray  # [t] float32
    raw: np.ndarray  # [t] float32
    normalised_blocks: int = 0  # (query row, block of BLOCK voiceprints) pieces AS-norm was computed on
    total_blocks: int = 0  # pieces there were (query rows x blocks); 0 for raw cosine


def track_owners(counts: list[int]) -> np.ndarray:
    """The owner track of each query row when track i contributes ``counts[i]`` consecutive rows."""
    return np.repeat(np.arange(len(counts)), counts)


def best_matches(queries: np.ndarray, matrix: np.ndarray, owners: np.ndarray | None = None,
                 query_stats: Stats | None = None, enrol: Stats | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> Matches:
    """Each track's best voiceprint among the rows of ``matrix`` [n, d] (L2-normalised).

    ``queries`` [r, d] are L2-normalised query rows; ``owners`` [r] says which track
    each row belongs to (default: one row per track). A track's score against a
    voiceprint is its best row's, so window rows give the verifier's best-window
    pooling and one mean row its mean pooling. Raw cosine, or AS-norm when both the
    rows' ``query_stats`` and the voiceprints' ``enrol`` statistics are given. Ties
    go to the lowest voiceprint row.
    """
    if (query_stats is None) != (enrol is None):
        raise ValueError("AS-norm needs both the query and the enrolment statistics")
    queries = np.asarray(queries, dtype=np.float32)
    owners = np.arange(len(queries)) if owners is None else np.asarray(owners, dtype=np.int64)
    if len(owners) != len(queries):
        raise ValueError(f"{len(owners)} owners for {len(queries)} query rows")
    state = _Search(queries, owners)
    for start in range(0, len(matrix), chunk_rows):
        block = np.asarray(matrix[start: start + chunk_rows], dtype=np.float32)
        scores = queries @ block.T
        if query_stats is None or enrol is None:
            state.fold_every_row(scores, scores, start)
        else:
            stop = start + len(block)
            state.update_normalised(scores, query_stats, (enrol[0][start:stop], enrol[1][start:stop]), start)
    return state.result()


class _Search:
    """Running best per query row and per track while chunks of voiceprints go by."""

    def __init__(self, queries: np.ndarray, owners: np.ndarray) -> None:
        r = len(queries)
        self.owners = owners
        self.n_tracks = int(owners.max()) + 1 if r else 0
        self.row_idx = np.full(r, -1, dtype=np.int64)
        self.row_score = np.full(r, -np.inf, dtype=np.float32)
        self.row_raw = np.full(r, np.nan, dtype=np.float32)
        self.track_best = np.full(self.n_tracks, -np.inf, dtype=np.float64)
        self.normalised_blocks = self.total_blocks = 0

    def fold(self, rows: np.ndarray, top: np.ndarray, idx: np.ndarray, raw: np.ndarray) -> None:
        """Take each row's candidate (score ``top`` at voiceprint ``idx``, raw cosine ``raw``) where it is better.

        Strictly better only: chunks come in matrix order, so an equal score later is a higher row."""
        better = top > self.row_score[rows]
        won = rows[better]
        self.row_idx[won], self.row_score[won], self.row_raw[won] = idx[better], top[better], raw[better]
        np.maximum.at(self.track_best, self.owners[won], top[better].astype(np.float64))

    def fold_every_row(self, scores: np.ndarray, raw: np.ndarray, start: int) -> None:
        """Fold each row's best of a whole chunk (``scores`` on the operating scale, ``raw`` the cosines)."""
        every = np.arange(len(scores))
        idx = np.argmax(scores, axis=1)
        self.fold(every, scores[every, idx], idx + start, raw[every, idx])

    def update_normalised(self, scores: np.ndarray, query_stats: Stats, enrol: Stats, start: int) -> None:
        """AS-norm only the (row, block) pieces whose raw maximum could beat the row's track best (module doc)."""
        (mq, sq), (me, se) = query_stats, enrol
        m, n_blocks = len(scores), -(-scores.shape[1] // BLOCK)
        self.total_blocks += m * n_blocks
        if not np.isfinite(self.track_best).any():  # the first chunk: nothing to beat yet
            self.normalise_whole(scores, query_stats, enrol, start)
            return
        padded, me_p, se_p = _pad_to_blocks(scores, me, se)
        blocks = padded.reshape(m, n_blocks, BLOCK)
        me_b, se_b = me_p.reshape(-1, BLOCK), se_p.reshape(-1, BLOCK)
        tau = _raw_floor(self.track_best[self.owners], mq.astype(np.float64), sq.astype(np.float64), me_b, se_b)
        rows, bs = np.nonzero(blocks.max(axis=2) >= tau)
        if not len(rows):
            return
        if len(rows) > DENSE_SHARE * tau.size:  # gathering pieces would cost more than normalising all
            self.normalise_whole(scores, query_stats, enrol, start)
            return
        self.normalised_blocks += len(rows)
        raw = blocks[rows, bs]  # [p, BLOCK]
        # `as_norm`'s formula, with each piece's own block of enrolment statistics
        normed = 0.5 * ((raw - mq[rows, None]) / sq[rows, None] + (raw - me_b[bs]) / se_b[bs])
        col = np.argmax(normed, axis=1)
        top, at_raw = normed[np.arange(len(rows)), col], raw[np.arange(len(rows)), col]
        # one candidate per row: its best piece (ties to the lowest column)
        order = np.lexsort((bs, -top.astype(np.float64), rows))
        _, first = np.unique(rows[order], return_index=True)
        pick = order[first]
        self.fold(rows[pick], top[pick], start + bs[pick] * BLOCK + col[pick], at_raw[pick])

    def normalise_whole(self, scores: np.ndarray, query_stats: Stats, enrol: Stats, start: int) -> None:
        self.normalised_blocks += scores.shape[0] * -(-scores.shape[1] // BLOCK)
        self.fold_every_row(as_norm(scores, query_stats, enrol), scores, start)

    def result(self) -> Matches:
        index = np.full(self.n_tracks, -1, dtype=np.int64)
        score = np.full(self.n_tracks, -np.inf, dtype=np.float32)
        raw = np.full(self.n_tracks, np.nan, dtype=np.float32)
        # per track: the highest-scoring row, ties to the lowest voiceprint index
        order = np.lexsort((self.row_idx, -self.row_score.astype(np.float64), self.owners))
        order = order[self.row_idx[order] >= 0]
        _, first = np.unique(self.owners[order], return_index=True)
        chosen = order[first]
        tracks = self.owners[chosen]
        index[tracks], score[tracks], raw[tracks] = self.row_idx[chosen], self.row_score[chosen], self.row_raw[chosen]
        return Matches(index, score, raw, self.normalised_blocks, self.total_blocks)


def _pad_to_blocks(scores: np.ndarray, me: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad a chunk to whole blocks with voiceprints that can never win (score -inf; statistics repeated from the
    last real voiceprint, so they do not loosen the last block's bound)."""
    me, se = np.asarray(me, np.float32), np.asarray(se, np.float32)
    pad = -scores.shape[1] % BLOCK
    if not pad:
        return scores, me, se
    return (np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf),
            np.pad(me, (0, pad), mode="edge"), np.pad(se, (0, pad), mode="edge"))


def _raw_floor(best: np.ndarray, mq: np.ndarray, sq: np.ndarray, me_b: np.ndarray, se_b: np.ndarray) -> np.ndarray:
    """[rows, blocks]: the lowest raw cosine whose AS-norm score against any voiceprint of the block could reach
    the row's track ``best`` (-inf while that track has no best yet)."""
    a = 1.0 / se_b.astype(np.float64)
    a_max, a_min, c_min = a.max(axis=1), a.min(axis=1), (me_b * a).min(axis=1)
    need = (2.0 * best + mq / sq)[:, None] + c_min[None, :]  # the bound's s·(1/sq + a) must reach this
    with np.errstate(invalid="ignore"):
        tau = np.where(need >= 0, need / (1.0 / sq[:, None] + a_max), need / (1.0 / sq[:, None] + a_min))
    return np.where(np.isfinite(best)[:, None], tau - TAU_MARGIN, -np.inf)


def prepare(matrix: np.ndarray, cohort: np.ndarray, top_k: int, chunk_rows: int = CHUNK_ROWS
            ) -> tuple[np.ndarray, np.ndarray, Stats]:
    """What a registry does once when it loads: every voiceprint's AS-norm statistics against the cohort, and the
    rows put in `search_order`. Returns (order, reordered matrix, reordered statistics); row i of the result is
    row ``order[i]`` of ``matrix``."""
    stats = cohort_stats(matrix, cohort, top_k, chunk_rows)
    order = search_order(stats, chunk_rows)
    return order, matrix[order], (stats[0][order], stats[1][order])


def search_order(enrol: Stats, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """A permutation of the voiceprints that makes the AS-norm bound tight: by ``1/se`` in chunks, then by ``me``
    within each chunk, so each block of `BLOCK` holds voiceprints with close statistics. Any order gives the
    same matches; this one lets `best_matches` skip more work."""
    me, se = (np.asarray(x, dtype=np.float64) for x in enrol)
    by_a = np.argsort(1.0 / se, kind="stable")
    chunk = np.arange(len(se)) // chunk_rows
    return by_a[np.lexsort((me[by_a], chunk))]
