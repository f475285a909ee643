"""Embeddings × index → top-n by dense cosine, exact: numpy for small products, faiss for wide ones, over the
distinct vectors of the rows (DistinctIndex)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from matcher.candidates import top_positions

# Above this many need × resource scores, faiss's flat search (blocked sgemm plus a heap per query)
# beats numpy's product and argpartition, whose selection alone took 6 ms per 200k-wide row here.
FAISS_FROM = 4_000_000
# Needs per numpy block: bounds the dense score block to BLOCK × resources floats.
BLOCK = 256
# The single-need search uses an approximate graph (faiss HNSW) over the distinct vectors from this many
# on: at 50k the exact scan took 3.2 ms and the graph 0.7 ms, below it the scan is cheap enough
# (bench/RESULTS.md, "An approximate index"). M, efConstruction and efSearch as measured there: recall@10
# 0.991 at 50k, 0.994 at 200k, 1.0 at 1M distinct (efSearch 128 gave 0.990 at 50k).
APPROXIMATE_FROM = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 160
# Queries at most this many use the graph; a batch's chunks stay exact (its answer must equal a cluster's).
APPROXIMATE_QUERIES = 2


def top_dense(queries: np.ndarray, index: np.ndarray, top_n: int, *,
              n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(query row, index row) of each query's `top_n` highest inner products, best first per query.

    Rows are unit length, so inner product is cosine. Exact: no approximate index is used. The wide
    path is faiss's brute-force knn over `index` itself: no faiss index holds a second copy of it.
    """
    rows, cols, _ = top_dense_scored(queries, index, top_n, n_threads=n_threads)
    return rows, cols


def top_dense_scored(queries: np.ndarray, index: np.ndarray, top_n: int, *,
                     n_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top_dense with the inner product of each pair found, as the search computed it."""
    n_queries, n_index = queries.shape[0], index.shape[0]
    top_n = min(int(top_n), n_index)
    if n_queries == 0 or top_n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if n_queries * n_index >= FAISS_FROM and n_queries > 1:
        return _faiss_top(queries, index, top_n, n_threads)
    rows, cols, scores = [], [], []
    for start in range(0, n_queries, BLOCK):
        block = queries[start:start + BLOCK] @ index.T
        best = _block_top(block, top_n)
        rows.append(np.repeat(np.arange(start, start + len(block), dtype=np.int64), top_n))
        cols.append(best.ravel())
        scores.append(np.take_along_axis(block, best, axis=1).ravel())
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)


def _block_top(block: np.ndarray, top_n: int) -> np.ndarray:
    """Each row's top_n columns, best first, ties going to the smaller column (as
    candidates.top_positions orders them, so that merged shards keep what one search would)."""
    n_index = block.shape[1]
    if top_n < n_index:
        best = np.argpartition(block, n_index - top_n, axis=1)[:, n_index - top_n:]
    else:
        best = np.broadcast_to(np.arange(n_index), block.shape)
    score = np.take_along_axis(block, best, axis=1)
    best = np.take_along_axis(best, np.lexsort((best, -score), axis=1), axis=1).astype(np.int64)
    if top_n < n_index:
        # A row whose top_n-th value recurs outside the kept columns had its tie cut by the partition.
        last = np.take_along_axis(block, best[:, -1:], axis=1)
        tied = np.flatnonzero((block >= last).sum(axis=1) > top_n)
        for row in tied:
            best[row] = top_positions(block[row], top_n)
    return best


def _faiss_top(queries: np.ndarray, index: np.ndarray, top_n: int,
               n_threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    index = np.ascontiguousarray(index, dtype=np.float32)  # a view when it already is (no copy)

    def search(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # OpenMP keeps the thread count per calling thread: set it in this one, every time.
        faiss.omp_set_num_threads(n_threads)
        return faiss.knn(rows, index, k, metric=faiss.METRIC_INNER_PRODUCT)

    best, score = _faiss_ranked(search, np.ascontiguousarray(queries, dtype=np.float32), top_n,
                                min(top_n + 1, index.shape[0]), index.shape[0])
    rows = np.repeat(np.arange(len(queries), dtype=np.int64), top_n)
    cols = best.ravel()
    keep = cols >= 0
    return rows[keep], cols[keep], score.ravel()[keep]


def _faiss_ranked(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
                  top_n: int, asked: int, n_index: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's top_n per query and their scores, ties going to the smaller row.

    One more than needed is asked for: where the last found ties the top_n-th, faiss may have cut a tie
    anywhere, and those queries are asked again for twice as many until the last found scores below the
    top_n-th (texts repeat in real lists: ranking each such query over the whole index tripled a batch).
    """
    score, best = search(queries, asked)
    best = best.astype(np.int64)
    order = np.lexsort((best, -score), axis=1)
    best, score = np.take_along_axis(best, order, axis=1), np.take_along_axis(score, order, axis=1)
    if asked > top_n and asked < n_index:
        open_rows = np.flatnonzero(score[:, asked - 1] >= score[:, top_n - 1])
        if len(open_rows):
            best[open_rows, :top_n], score[open_rows, :top_n] = _faiss_ranked(
                search, queries[open_rows], top_n, min(2 * asked, n_index), n_index)
    return best[:, :top_n], score[:, :top_n]


def _row_hashes(dense: np.ndarray, block: int = 8192) -> np.ndarray:
    """A 64-bit hash of each row's bytes: its 64-bit words times fixed odd constants, summed (wrapping)."""
    words = dense.view(np.uint64) if dense.shape[1] % 2 == 0 else \
        np.ascontiguousarray(np.hstack([dense, np.zeros((len(dense), 1), np.float32)])).view(np.uint64)
    constants = np.random.default_rng(20261202).integers(1, 2**63, words.shape[1], dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(words), np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(words), block):
            part = words[start:start + block]
            mixed = (part ^ (part >> np.uint64(29))) * constants
            out[start:start + block] = mixed.sum(axis=1, dtype=np.uint64)
    return out


class DistinctIndex:
    """Rows' embeddings held once per distinct vector, searched exactly with the rows' own tie rule.

    Real lists repeat themselves (one business scope in hundreds of rows, one service posted by every
    grid). Over the rows, each copy is a tie, and ties at a query's top_n-th place had faiss asked again
    for twice as many, up to thousands: 20k of 30k queries of a 200k-row batch over 2.3k distinct
    scopes. Here the search runs over the distinct vectors, and copies are expanded afterwards, best
    score first and the smaller row first among equal scores: the rows' (score, row) order, so the pairs
    are those of a search over every row.
    """

    def __init__(self, vectors: np.ndarray, of_row: np.ndarray, ids: np.ndarray | None = None, *,
                 approximate_from: int | None = None) -> None:
        # (distinct, dim) in the order of each vector's first row; with `ids`, a scope of a larger index:
        # its distinct vectors are vectors[ids] (not copied, for a query or two over a wide scope).
        self.vectors = vectors
        self.ids = ids
        self.of_row = of_row  # (rows,) the distinct vector of each row
        n = len(vectors) if ids is None else len(ids)
        # Rows grouped by their distinct vector, ascending within each group: each group's rows sorted.
        self.order = np.argsort(of_row, kind="stable").astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(of_row, minlength=n))]).astype(np.int64)
        # The approximate graph for single-need searches, built in the background once asked for; until it
        # is ready the search is exact. None: never.
        self.approximate_from = approximate_from
        self._graph: object | None = None
        self._building: threading.Thread | None = None

    @classmethod
    def of(cls, dense: np.ndarray, *, approximate_from: int | None = None) -> DistinctIndex:
        """Group equal rows (bit for bit) of `dense`.

        Rows are grouped by a 64-bit hash of their bytes, computed in blocks, then checked against the
        group's first row: sorting the rows' bytes themselves (np.unique on a void view) held a sorted
        copy of the whole matrix, 307 MB at 200k rows.
        """
        dense = np.ascontiguousarray(dense, dtype=np.float32)
        if len(dense) == 0:
            return cls(dense, np.zeros(0, np.int64))
        hashes = _row_hashes(dense)
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        if len(first) < len(dense):
            # A hash shared by rows that differ (2^-64 odds a pair) would merge them: check every copy.
            same = np.concatenate([np.all(dense[i:i + 8192] == dense[first[inverse[i:i + 8192]]], axis=1)
                                   for i in range(0, len(dense), 8192)])
            if not same.all():
                keys = dense.view(np.dtype((np.void, dense.shape[1] * dense.itemsize))).ravel()
                _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
                inverse = inverse.ravel()
        # Number the distinct vectors by their first row, so the numbering does not depend on the bytes.
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        # No repeats: the rows themselves are the distinct vectors, held once (not copied).
        return cls(dense if len(first) == len(dense) else dense[np.sort(first)], rank[inverse],
                   approximate_from=approximate_from)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_rows(self) -> int:
        return len(self.of_row)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_graph=None, _building=None)  # faiss and threads cannot travel; the batch is exact anyway
        return state

    def graph(self) -> object | None:
        """The HNSW graph when it is built; asks for it (in the background) the first time."""
        if self.approximate_from is None or self.ids is not None or len(self) < self.approximate_from:
            return None
        if self._graph is None and self._building is None:
            self._building = threading.Thread(target=self._build_graph, name="duijie-hnsw", daemon=True)
            self._building.start()
        return self._graph

    def _build_graph(self) -> None:
        import faiss

        graph = faiss.IndexHNSWFlat(self.vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        faiss.omp_set_num_threads(1)  # beside the service's requests: one core, however long it takes
        graph.add(self.vectors)
        self._graph = graph

    def wait_for_graph(self, timeout: float | None = None) -> bool:
        """Ask for the graph and block until it is built (tests, benchmarks); True when it is there."""
        if self.graph() is None and self._building is not None:
            self._building.join(timeout)
        return self._graph is not None

    def subset(self, rows: np.ndarray, *, copy: bool = True) -> DistinctIndex:
        """The index of some rows (ascending), numbered 0..len(rows)-1: a ring scope's. `copy=False` keeps
        a reference to this index's vectors instead of copying the scope's."""
        ids, local = np.unique(self.of_row[rows], return_inverse=True)
        local = local.ravel().astype(np.int64)
        return DistinctIndex(self.vectors[ids], local) if copy else DistinctIndex(self.vectors, local, ids)

    def _scores(self, queries: np.ndarray, distinct: np.ndarray | None = None) -> np.ndarray:
        """(queries, distinct) inner products; `distinct` picks some of the distinct vectors."""
        scores = queries @ self.vectors.T
        if self.ids is not None:
            scores = scores[:, self.ids]
        return scores if distinct is None else scores[:, distinct]

    def top(self, queries: np.ndarray, top_n: int, *, n_threads: int = 1,
            approximate: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(query row, row) of each query's `top_n` rows by inner product, best first, ties to the smaller row.

        `approximate`: a query or two may use the HNSW graph (when this index has one); otherwise exact.
        """
        top_n = min(int(top_n), self.n_rows)
        if len(queries) == 0 or top_n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # One more distinct vector than rows wanted: top_n vectors always hold top_n rows, and the extra
        # one shows whether a tie of two different vectors runs past what was asked.
        asked = min(top_n + 1, len(self))
        graph = self.graph() if approximate and len(queries) <= APPROXIMATE_QUERIES else None
        if graph is not None:
            import faiss

            faiss.omp_set_num_threads(1)
            found_score, found = graph.search(np.ascontiguousarray(queries, dtype=np.float32), asked)
            order = np.lexsort((found, -found_score), axis=1)  # the rule's order: ties to the smaller vector
            found = np.take_along_axis(found, order, axis=1)
            found_score = np.take_along_axis(found_score, order, axis=1)
            q_rows = np.repeat(np.arange(len(queries), dtype=np.int64), asked)
            d_rows, score = found.ravel().astype(np.int64), found_score.ravel().astype(np.float64)
            keep = d_rows >= 0
            q_rows, d_rows, score = q_rows[keep], d_rows[keep], score[keep]
        elif self.ids is not None:
            block = self._scores(queries)
            d_rows = _block_top(block, asked).ravel()
            q_rows = np.repeat(np.arange(len(queries), dtype=np.int64), asked)
            score = block[q_rows, d_rows].astype(np.float64)
        else:
            # The search's own scores: gathering each pair's two vectors again cost more than the search.
            q_rows, d_rows, score = top_dense_scored(queries, self.vectors, asked, n_threads=n_threads)
            score = score.astype(np.float64)
        n_q = len(queries)
        # One row of `asked` places per query; a search that found fewer (faiss's -1) leaves places empty:
        # no rows and a score below every other, so they are never kept.
        place = np.arange(len(q_rows)) - np.searchsorted(q_rows, q_rows)
        score2 = np.full((n_q, asked), -np.inf)
        d2 = np.zeros((n_q, asked), np.int64)
        score2[q_rows, place], d2[q_rows, place] = score, d_rows
        filled = np.isfinite(score2)
        count2 = np.where(filled, self.indptr[d2 + 1] - self.indptr[d2], 0)
        cum = np.cumsum(count2, axis=1)
        # The vector at which each query's rows reach top_n: every vector scoring as much is a candidate.
        reach = cum >= top_n
        cut = np.where(reach.any(axis=1), reach.argmax(axis=1), asked - 1)
        level = score2[np.arange(n_q), cut]
        kept = (score2 >= level[:, None]) & filled
        # Two different vectors tie beyond those asked for: that query is ranked over every vector.
        redo = (asked < len(self)) & (score2[:, -1] >= level)
        # Two different kept vectors with one score: their rows interleave by row number.
        tied = ((score2[:, 1:] == score2[:, :-1]) & kept[:, 1:]).any(axis=1)
        plain = ~redo & ~tied
        # Distinct scores: the rows come vector by vector, each vector's smallest first, until top_n.
        take = np.clip(top_n - (cum - count2), 0, count2) * kept
        take[~plain] = 0
        flat_take = take.ravel()
        total = int(flat_take.sum())
        owner = np.repeat(np.arange(n_q * asked), flat_take)
        within = np.arange(total) - np.repeat(np.cumsum(flat_take) - flat_take, flat_take)
        rows = np.repeat(np.arange(n_q, dtype=np.int64), take.sum(axis=1))
        cols = self.order[self.indptr[d2.ravel()][owner] + within]
        parts_rows, parts_cols = [rows], [cols]
        some = tied & ~redo
        if some.any():
            mask = (kept & some[:, None]).ravel()
            owners = np.repeat(np.arange(n_q, dtype=np.int64), asked)
            found = self._expand(owners[mask], d2.ravel()[mask], score2.ravel()[mask], top_n)
            parts_rows.append(found[0])
            parts_cols.append(found[1])
        every = np.arange(len(self))
        for q in np.flatnonzero(redo):
            found = self._expand(np.full(len(self), q, np.int64), every,
                                 self._scores(queries[q:q + 1])[0].astype(np.float64), top_n)
            parts_rows.append(found[0])
            parts_cols.append(found[1])
        if len(parts_rows) == 1:
            return rows, cols
        rows, cols = np.concatenate(parts_rows), np.concatenate(parts_cols)
        order = np.argsort(rows, kind="stable")
        return rows[order], cols[order]

    def _expand(self, q_rows: np.ndarray, d_rows: np.ndarray, score: np.ndarray,
                top_n: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the chosen distinct vectors, at most top_n of each (its smallest), ranked per query by
        (score descending, row ascending), the first top_n kept."""
        if len(q_rows) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        take = np.minimum(self.indptr[d_rows + 1] - self.indptr[d_rows], top_n)
        total = int(take.sum())
        owner = np.repeat(np.arange(len(q_rows)), take)
        within = np.arange(total) - np.repeat(np.cumsum(take) - take, take)
        rows = self.order[self.indptr[d_rows][owner] + within]
        queries, scores = q_rows[owner], score[owner]
        ranked = np.lexsort((rows, -scores, queries))
        queries, rows = queries[ranked], rows[ranked]
        first = np.searchsorted(queries, queries, side="left")
        chosen = np.arange(total) - first < top_n
        return queries[chosen], rows[chosen]
