"""Embeddings × index → top-n by dense cosine, exact: numpy for small products, faiss for wide ones, over the
distinct vectors of the rows (DistinctIndex)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matcher.candidates import top_positions

# Above this many need × resource scores, faiss's flat search (blocked sgemm plus a heap per query)
# beats numpy's product and argpartition, whose selection alone took 6 ms per 200k-wide row here.
FAISS_FROM = 4_000_000
# Needs per numpy block: bounds the dense score block to BLOCK × resources floats.
BLOCK = 256


def top_dense(queries: np.ndarray, index: np.ndarray, top_n: int, *,
              n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(query row, index row) of each query's `top_n` highest inner products, best first per query.

    Rows are unit length, so inner product is cosine. Exact: no approximate index is used. The wide
    path is faiss's brute-force knn over `index` itself: no faiss index holds a second copy of it.
    """
    n_queries, n_index = queries.shape[0], index.shape[0]
    top_n = min(int(top_n), n_index)
    if n_queries == 0 or top_n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n_queries * n_index >= FAISS_FROM and n_queries > 1:
        return _faiss_top(queries, index, top_n, n_threads)
    rows, cols = [], []
    for start in range(0, n_queries, BLOCK):
        block = queries[start:start + BLOCK] @ index.T
        rows.append(np.repeat(np.arange(start, start + len(block), dtype=np.int64), top_n))
        cols.append(_block_top(block, top_n).ravel())
    return np.concatenate(rows), np.concatenate(cols)


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


def top_dense_within(queries: np.ndarray, index: np.ndarray, scope: np.ndarray | None, top_n: int, *,
                     n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """top_dense among the rows `scope` of `index` (all rows when None); index rows are positions in `scope`."""
    if scope is None:
        return top_dense(queries, index, top_n, n_threads=n_threads)
    if len(queries) <= 2 and len(scope) * 4 > len(index):
        # A wide scope for a query or two: the product over every row costs less than copying the
        # scope's rows out first; the scope's own scores are then picked from it.
        scores = (index @ queries.T)[scope].T
        best = [top_positions(row, top_n) for row in scores]  # scope ascends: positions order ties by row
        return (np.repeat(np.arange(len(queries), dtype=np.int64), [len(b) for b in best]),
                np.concatenate(best).astype(np.int64))
    return top_dense(queries, index[scope], top_n, n_threads=n_threads)


def _faiss_top(queries: np.ndarray, index: np.ndarray, top_n: int, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = np.ascontiguousarray(index, dtype=np.float32)  # a view when it already is (no copy)

    def search(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # OpenMP keeps the thread count per calling thread: set it in this one, every time.
        faiss.omp_set_num_threads(n_threads)
        return faiss.knn(rows, index, k, metric=faiss.METRIC_INNER_PRODUCT)

    best = _faiss_ranked(search, np.ascontiguousarray(queries, dtype=np.float32), top_n,
                         min(top_n + 1, index.shape[0]), index.shape[0])
    rows = np.repeat(np.arange(len(queries), dtype=np.int64), top_n)
    cols = best.ravel()
    keep = cols >= 0
    return rows[keep], cols[keep]


def _faiss_ranked(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
                  top_n: int, asked: int, n_index: int) -> np.ndarray:
    """faiss's top_n per query, ties going to the smaller row.

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
            best[open_rows, :top_n] = _faiss_ranked(search, queries[open_rows], top_n,
                                                    min(2 * asked, n_index), n_index)
    return best[:, :top_n]


class DistinctIndex:
    """Rows' embeddings held once per distinct vector, searched exactly with the rows' own tie rule.

    Real lists repeat themselves (one business scope in hundreds of rows, one service posted by every
    grid). Over the rows, each copy is a tie, and ties at a query's top_n-th place had faiss asked again
    for twice as many, up to thousands: 20k of 30k queries of a 200k-row batch over 2.3k distinct
    scopes. Here the search runs over the distinct vectors, and copies are expanded afterwards, best
    score first and the smaller row first among equal scores: the rows' (score, row) order, so the pairs
    are those of a search over every row.
    """

    def __init__(self, vectors: np.ndarray, of_row: np.ndarray, ids: np.ndarray | None = None) -> None:
        # (distinct, dim) in the order of each vector's first row; with `ids`, a scope of a larger index:
        # its distinct vectors are vectors[ids] (not copied, for a query or two over a wide scope).
        self.vectors = vectors
        self.ids = ids
        self.of_row = of_row  # (rows,) the distinct vector of each row
        n = len(vectors) if ids is None else len(ids)
        # Rows grouped by their distinct vector, ascending within each group: each group's rows sorted.
        self.order = np.argsort(of_row, kind="stable").astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(of_row, minlength=n))]).astype(np.int64)

    @classmethod
    def of(cls, dense: np.ndarray) -> DistinctIndex:
        """Group equal rows (bit for bit) of `dense`."""
        dense = np.ascontiguousarray(dense, dtype=np.float32)
        if len(dense) == 0:
            return cls(dense, np.zeros(0, np.int64))
        keys = dense.view(np.dtype((np.void, dense.shape[1] * dense.itemsize))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        # Number the distinct vectors by their first row, so the numbering does not depend on the bytes.
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        # No repeats: the rows themselves are the distinct vectors, held once (not copied).
        return cls(dense if len(first) == len(dense) else dense[np.sort(first)], rank[inverse.ravel()])

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_rows(self) -> int:
        return len(self.of_row)

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

    def top(self, queries: np.ndarray, top_n: int, *, n_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(query row, row) of each query's `top_n` rows by inner product, best first, ties to the smaller row."""
        top_n = min(int(top_n), self.n_rows)
        if len(queries) == 0 or top_n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # One more distinct vector than rows wanted: top_n vectors always hold top_n rows, and the extra
        # one shows whether a tie of two different vectors runs past what was asked.
        asked = min(top_n + 1, len(self))
        if self.ids is not None:
            block = self._scores(queries)
            d_rows = _block_top(block, asked).ravel()
            q_rows = np.repeat(np.arange(len(queries), dtype=np.int64), asked)
            score = block[q_rows, d_rows].astype(np.float64)
        else:
            q_rows, d_rows = top_dense(queries, self.vectors, asked, n_threads=n_threads)
            score = np.einsum("ij,ij->i", queries[q_rows], self.vectors[d_rows]).astype(np.float64)
        count = self.indptr[d_rows + 1] - self.indptr[d_rows]
        starts = np.searchsorted(q_rows, np.arange(len(queries)))
        ends = np.append(starts[1:], len(q_rows))
        keep = np.zeros(len(q_rows), dtype=bool)
        redo = []
        for q in range(len(queries)):  # a few distinct vectors per query: cheap next to the search
            lo, hi = starts[q], ends[q]
            # The vector at which the query's rows reach top_n: every vector scoring as much is a candidate.
            cut = min(lo + int(np.searchsorted(np.cumsum(count[lo:hi]), top_n)), hi - 1)
            if hi - lo == asked and asked < len(self) and score[hi - 1] >= score[cut]:
                redo.append(q)  # two different vectors tie beyond those asked for: rank this query fully
                continue
            keep[lo:hi] = score[lo:hi] >= score[cut]
        rows, cols = self._expand(q_rows[keep], d_rows[keep], score[keep], top_n)
        if redo:
            every = np.arange(len(self))
            extra = [self._expand(np.full(len(self), q, np.int64), every,
                                  self._scores(queries[q:q + 1])[0].astype(np.float64), top_n) for q in redo]
            rows = np.concatenate([rows, *(e[0] for e in extra)])
            cols = np.concatenate([cols, *(e[1] for e in extra)])
            order = np.argsort(rows, kind="stable")
            rows, cols = rows[order], cols[order]
        return rows, cols

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
