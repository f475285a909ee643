import numpy as np
import pytest

from matcher.candidates import top_positions
from matcher.dense import FAISS_FROM, DistinctIndex, top_dense


def _unit(rows: int, seed: int, dim: int = 16) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def _pairs(found) -> set[tuple[int, int]]:
    need_row, resource_row = found
    return set(zip(need_row.tolist(), resource_row.tolist(), strict=True))


def _exact(queries: np.ndarray, rows: np.ndarray, top_n: int) -> tuple[list[int], list[int]]:
    """The rule over every row: best score first, the smaller row among equal scores, copies scoring
    exactly alike (each distinct vector scored once and given to its copies)."""
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    scores = (queries @ distinct.T)[:, inverse.ravel()]
    out_rows, out_cols = [], []
    for q, row in enumerate(scores):
        best = top_positions(row, top_n).tolist()
        out_rows += [q] * len(best)
        out_cols += best
    return out_rows, out_cols


def test_top_dense_faiss_path_equals_the_numpy_product():
    index, queries = _unit(20_000, 0), _unit(300, 1)
    assert len(queries) * len(index) >= FAISS_FROM  # wide enough for faiss
    wide = top_dense(queries, index, 5)
    narrow = set()
    for start in range(0, 300, 100):  # 100 x 20k stays under FAISS_FROM: numpy's product
        rows, cols = top_dense(queries[start:start + 100], index, 5)
        narrow |= _pairs((rows + start, cols))
    assert _pairs(wide) == narrow


@pytest.mark.parametrize(("distinct", "rows", "queries", "top_n"), [
    (40, 3_000, 30, 10),  # numpy's product
    (300, 20_000, 400, 30),  # wide enough for faiss
    (5, 200, 4, 40),  # fewer distinct vectors than rows wanted
    (900, 1_000, 50, 30),  # few repeats
])
def test_distinct_search_equals_the_exact_rule_over_every_row(distinct, rows, queries, top_n):
    base = _unit(distinct, 2)
    index = base[np.random.default_rng(3).integers(0, distinct, rows)]
    asked = _unit(queries, 4)
    asked[0] = index[7]  # a query equal to a row: its copies all score 1.0
    found = DistinctIndex.of(index)
    assert len(found) <= distinct
    rows_found, cols_found = found.top(asked, top_n)
    assert (rows_found.tolist(), cols_found.tolist()) == _exact(asked, index, min(top_n, rows))


def test_distinct_search_of_a_scope_copied_or_not_equals_the_exact_rule():
    base = _unit(60, 5)
    index = base[np.random.default_rng(6).integers(0, 60, 4_000)]
    scope = np.sort(np.random.default_rng(7).choice(4_000, 1_500, replace=False))
    queries = _unit(2, 8)
    expected = _exact(queries, index[scope], 12)
    for copy in (True, False):
        rows, cols = DistinctIndex.of(index).subset(scope, copy=copy).top(queries, 12)
        assert (rows.tolist(), cols.tolist()) == expected


def test_distinct_search_ranks_a_tie_of_different_vectors_by_row():
    # Six different vectors with the same inner product with the query; rows hold them in mixed order.
    vectors = np.zeros((6, 4), np.float32)
    vectors[:, 0] = 0.5
    vectors[:, 1:] = [[0.5, 0.5, 0.5], [-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [-0.5, -0.5, 0.5], [0.5, 0.7071, 0],
                      [-0.5, 0, 0.7071]]
    index = vectors[[3, 1, 2, 0, 5, 4, 1, 3, 0, 2]]
    query = np.array([[1, 0, 0, 0]], np.float32)
    for top_n in (1, 2, 5, 10):
        assert DistinctIndex.of(index).top(query, top_n)[1].tolist() == list(range(top_n))


def test_distinct_index_without_repeats_holds_no_second_copy():
    index = _unit(500, 9)
    found = DistinctIndex.of(index)
    assert found.vectors is index or np.shares_memory(found.vectors, index)
    repeated = np.vstack([index, index])
    assert len(DistinctIndex.of(repeated)) == 500


def test_one_needs_search_over_the_approximate_graph_keeps_recall_and_a_batch_stays_exact():
    # 6,000 distinct vectors around 60 topics, as real scopes cluster; the graph from 1,000 on.
    rng = np.random.default_rng(11)
    centres = _unit(60, 12, dim=32)
    index = centres[rng.integers(0, 60, 6_000)] + 0.35 * _unit(6_000, 13, dim=32)
    index = (index / np.linalg.norm(index, axis=1, keepdims=True)).astype(np.float32)
    queries = index[rng.choice(6_000, 200, replace=False)] + 0.05 * _unit(200, 14, dim=32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = DistinctIndex.of(index)
    approximate = DistinctIndex.of(index, approximate_from=1_000)
    assert approximate.wait_for_graph(timeout=60)
    hits = 0
    for query in queries:
        found = set(approximate.top(query[None], 10, approximate=True)[1].tolist())
        hits += len(found & set(exact.top(query[None], 10)[1].tolist()))
    assert hits / (10 * len(queries)) >= 0.98
    batch = approximate.top(queries, 10, approximate=True)  # more queries than the graph serves: exact
    assert all(np.array_equal(a, b) for a, b in zip(batch, exact.top(queries, 10), strict=True))
    one = queries[:1]  # one query of a batch (approximate=False) is exact too
    assert all(np.array_equal(a, b) for a, b in zip(approximate.top(one, 10), exact.top(one, 10), strict=True))
    assert DistinctIndex.of(index, approximate_from=None).graph() is None


def test_rows_that_share_a_hash_but_differ_are_not_merged(monkeypatch):
    import matcher.dense as dense

    index = np.vstack([_unit(50, 15), _unit(50, 15)])
    monkeypatch.setattr(dense, "_row_hashes", lambda rows: np.zeros(len(rows), np.uint64))  # every row collides
    found = DistinctIndex.of(index)
    assert len(found) == 50 and found.of_row.tolist() == list(range(50)) * 2
