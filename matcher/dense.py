"""Embeddings × index → top-n by dense cosine, exact: numpy for small products, faiss for wide ones."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matcher.candidates import top_positions

# Above this many need × resource scores, faiss's flat search (blocked sgemm plus a heap per query)
# beats numpy's product and argpartition, whose selection alone took 6 ms per 200k-wide row here.
FAISS_FROM = 4_000_000
# Needs per numpy block: bounds the dense score block to BLOCK × resources floats.
BLOCK = 256


def top_dense(queries: np.ndarray, index: np.ndarray, top_n: int, *, n_threads: int = 1,
              flat: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(query row, index row) of each query's `top_n` highest inner products, best first per query.

    Rows are unit length, so inner product is cosine. Exact: no approximate index is used.
    `flat`, if given, returns a faiss IndexFlatIP already holding `index` (a caller's cached copy); it is
    called only when the product is wide enough for faiss.
    """
    n_queries, n_index = queries.shape[0], index.shape[0]
    top_n = min(int(top_n), n_index)
    if n_queries == 0 or top_n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n_queries * n_index >= FAISS_FROM and n_queries > 1:
        return _faiss_top(queries, index, top_n, n_threads, flat)
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
                     n_threads: int = 1, flat: Callable[[], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """top_dense among the rows `scope` of `index` (all rows when None); index rows are positions in `scope`.

    `flat` serves the whole index only, so it is used when `scope` is None.
    """
    if scope is None:
        return top_dense(queries, index, top_n, n_threads=n_threads, flat=flat)
    if len(queries) <= 2 and len(scope) * 4 > len(index):
        # A wide scope for a query or two: the product over every row costs less than copying the
        # scope's rows out first; the scope's own scores are then picked from it.
        scores = (index @ queries.T)[scope].T
        best = [top_positions(row, top_n) for row in scores]  # scope ascends: positions order ties by row
        return (np.repeat(np.arange(len(queries), dtype=np.int64), [len(b) for b in best]),
                np.concatenate(best).astype(np.int64))
    return top_dense(queries, index[scope], top_n, n_threads=n_threads)


def flat_index(index: np.ndarray, *, n_threads: int = 1) -> object:
    """A faiss IndexFlatIP holding `index` (exact inner-product search)."""
    import faiss

    faiss.omp_set_num_threads(n_threads)
    flat = faiss.IndexFlatIP(index.shape[1])
    flat.add(np.ascontiguousarray(index, dtype=np.float32))
    return flat


def _faiss_top(queries: np.ndarray, index: np.ndarray, top_n: int, n_threads: int,
               flat: Callable[[], object] | None) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    searcher = flat() if flat is not None else flat_index(index, n_threads=n_threads)
    # OpenMP keeps the thread count per calling thread: set it in this one, every time.
    faiss.omp_set_num_threads(n_threads)
    best = _faiss_ranked(searcher, np.ascontiguousarray(queries, dtype=np.float32), top_n,
                         min(top_n + 1, index.shape[0]), index.shape[0])
    rows = np.repeat(np.arange(len(queries), dtype=np.int64), top_n)
    cols = best.ravel()
    keep = cols >= 0
    return rows[keep], cols[keep]


def _faiss_ranked(searcher: object, queries: np.ndarray, top_n: int, asked: int, n_index: int) -> np.ndarray:
    """faiss's top_n per query, ties going to the smaller row.

    One more than needed is asked for: where the last found ties the top_n-th, faiss may have cut a tie
    anywhere, and those queries are asked again for twice as many until the last found scores below the
    top_n-th (texts repeat in real lists: ranking each such query over the whole index tripled a batch).
    """
    score, best = searcher.search(queries, asked)
    best = best.astype(np.int64)
    order = np.lexsort((best, -score), axis=1)
    best, score = np.take_along_axis(best, order, axis=1), np.take_along_axis(score, order, axis=1)
    if asked > top_n and asked < n_index:
        open_rows = np.flatnonzero(score[:, asked - 1] >= score[:, top_n - 1])
        if len(open_rows):
            best[open_rows, :top_n] = _faiss_ranked(searcher, queries[open_rows], top_n,
                                                    min(2 * asked, n_index), n_index)
    return best[:, :top_n]
