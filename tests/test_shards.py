"""The index in shards: the answer does not depend on how the rows or the needs are cut, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from matcher import Matcher
from matcher import candidates as cand
from matcher.dense import FAISS_FROM, top_dense
from matcher.shards import bounds


@pytest.fixture(scope="module")
def lists(repeated_lists):
    grids, needs, resources = repeated_lists
    return grids, needs[:1200], resources


def test_bounds_cut_the_rows_into_consecutive_shards():
    assert bounds(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert bounds(3, 250_000) == [slice(0, 3)]


@pytest.mark.parametrize(("shard_size", "chunk_size"), [(400, 250), (97, 333)])
def test_shard_and_chunk_sizes_do_not_change_the_answer(lists, shard_size, chunk_size):
    grids, needs, resources = lists
    # One shard, one chunk in the needs' own order; against shards and chunks of needs ordered by scope.
    whole = Matcher(encoder="none", chunk_size=5000).fit(resources, needs, grids=grids)
    cut = Matcher(encoder="none", shard_size=shard_size, chunk_size=chunk_size).fit(resources, needs, grids=grids)
    assert len(whole.shards_) == 1 and len(cut.shards_) == -(-len(resources) // shard_size)
    assert cut.assign(needs) == whole.assign(needs)
    assert cut.top_k(needs[:200]) == whole.top_k(needs[:200])


def test_shards_follow_capacity_edits_and_appends(lists):
    grids, needs, resources = lists
    cut = Matcher(encoder="none", shard_size=300).fit(resources, needs, grids=grids)
    whole = Matcher(encoder="none").fit(resources, needs, grids=grids)
    full = resources[5] | {"capacity": 1, "taken": 1}  # no capacity left: in place, in its shard
    new = resources[7] | {"id": "R-new"}
    for matcher in (cut, whole):
        matcher.update([full, new])
    assert len(cut.shards_) == 5 and cut.shards_[-1].offset == 1200
    assert cut.top_k(needs[:300]) == whole.top_k(needs[:300])
    assert resources[5]["id"] not in {s.resource_id for row in cut.top_k(needs[:300]) for s in row}


def test_top_positions_break_ties_by_row():
    values = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    assert cand.top_positions(values, 3).tolist() == [1, 0, 2]
    assert cand.top_positions(values, 3, rows=np.array([9, 8, 7, 6, 5])).tolist() == [1, 3, 2]
    assert cand.top_positions(values, 9).tolist() == [1, 0, 2, 3, 4]


def _duplicated_index(rows: int, copies: int) -> sp.csr_matrix:
    """`rows` distinct random rows, each `copies` times over, shuffled: every score is tied `copies` ways."""
    rng = np.random.default_rng(3)
    base = sp.random(rows, 400, density=0.02, random_state=rng, format="csr", dtype=np.float32)
    index = sp.vstack([base] * copies).tocsr()
    return index[rng.permutation(index.shape[0])]


def _expected(product: np.ndarray, top_n: int) -> set[tuple[int, int]]:
    """Top-n per row by score, then by the smaller column: the rule, computed the slow way."""
    out = set()
    for row, values in enumerate(product):
        ranked = sorted((c for c in range(len(values)) if values[c] > 0), key=lambda c: (-values[c], c))
        out |= {(row, c) for c in ranked[:top_n]}
    return out


def test_top_cosine_keeps_the_smaller_rows_of_a_tie_on_every_path():
    index = _duplicated_index(300, 3)
    queries = sp.random(40, 400, density=0.05, random_state=np.random.default_rng(4), format="csr",
                        dtype=np.float32)
    expected = _expected((queries @ index.T).toarray(), 7)
    batch = cand.top_cosine(queries, index.T.tocsr(), 7)  # sparse_dot_topn, ties re-ranked exactly
    assert set(zip(batch.need_row.tolist(), batch.resource_row.tolist(), strict=True)) == expected
    few = cand.top_cosine(queries[:5], index.T.tocsr(), 7)  # scipy's product
    assert set(zip(few.need_row.tolist(), few.resource_row.tolist(), strict=True)) == {
        p for p in expected if p[0] < 5}
    one = cand.top_cosine(queries[[2]], index.T.tocsr(), 7)  # the postings of one query
    assert set(one.resource_row.tolist()) == {c for r, c in expected if r == 2}


def test_top_dense_keeps_the_smaller_rows_of_a_tie_with_numpy_and_faiss():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((7_000, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = np.vstack([base, base])[rng.permutation(14_000)]  # every row twice
    queries = base[:300]
    product = queries[:10] @ index.T
    rows, cols = top_dense(queries[:10], index, 5)  # numpy: the rule exactly
    for row in range(10):
        ranked = sorted(range(index.shape[0]), key=lambda c: (-product[row, c], c))[:5]
        assert cols[rows == row].tolist() == ranked
    assert len(queries) * len(index) >= FAISS_FROM
    rows, cols = top_dense(queries, index, 5)  # faiss
    twins = {tuple(np.flatnonzero((index == q).all(axis=1)).tolist()) for q in queries}
    assert {tuple(cols[rows == row][:2].tolist()) for row in range(300)} == twins  # both copies, row order
