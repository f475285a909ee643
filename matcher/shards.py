"""The resource index in row shards: candidates searched per shard, merged per need, features per shard.

A city's index outgrows one worker (at a million resources the embeddings alone are 1.5 GB), so the
rows are cut into shards of `shard_size` consecutive rows. For a chunk of needs every shard finds its
own best `top` rows by word cosine and by embedding cosine within each need's ring, and the rows of the
need's grid and area; the merge keeps each need's best `top` of each kind over all shards, ordered by
score and then row, a total order, so a tie is broken the same way whichever shard it came from. Each
shard then filters and computes the features of its own surviving pairs; the driver only ever sees
pairs, scores and feature rows, never a shard's vectors.

In one process the shards are searched one after another; on a cluster each worker holds some of
them. The same functions run on the same shards either way, so the answer is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from matcher import candidates as cand
from matcher.columns import Columns
from matcher.dense import DistinctIndex
from matcher.features import FeatureTable, pair_features
from matcher.proximity import GridMap
from matcher.vectorize import Vectors

# What found a candidate; each kind keeps its own best per need in the merge.
WORDS, MEANING, NEARBY = 0, 1, 2


class Found(NamedTuple):
    """Candidate pairs one shard found, with the similarity that ranked them and the kind of search."""

    need_row: np.ndarray
    resource_row: np.ndarray  # rows of the whole index
    score: np.ndarray
    kind: np.ndarray


class SearchPlan(NamedTuple):
    """What a chunk of needs is searched and scored with: the same whether the shards are here or on a cluster."""

    shards: Sequence[ResourceShard]
    bounds: list[slice]  # row range of each shard
    n_resources: int  # rows of the whole index, tombstones included
    top: int  # candidates kept per need and kind of search (the pool, or k when larger)
    k: int  # scored pairs kept per need
    nearby_limit: int
    sides: str
    same_category: bool
    scorer: Any
    approximate: bool = False  # one need's search may use the HNSW graph (Matcher.top_k only)


class NeedChunk(NamedTuple):
    """A chunk of needs as the shards see it: their columns and vectors."""

    columns: Columns
    vectors: Vectors

    def rows(self, part: slice | np.ndarray) -> NeedChunk:
        if isinstance(part, slice):
            return NeedChunk(Columns(*(c[part] for c in self.columns)), self.vectors.rows(part))
        columns = Columns(*(c[part] if isinstance(c, np.ndarray) else [c[i] for i in part.tolist()]
                            for c in self.columns))
        return NeedChunk(columns, self.vectors.rows(part))


def bounds(n_rows: int, shard_size: int) -> list[slice]:
    """The row ranges of the shards of an index of `n_rows` rows (one shard when it fits)."""
    return [slice(start, min(start + shard_size, n_rows)) for start in range(0, max(n_rows, 1), shard_size)]


def take_columns(cols: Columns, part: slice, n_rows: int) -> Columns:
    if part.start == 0 and part.stop >= n_rows:
        return cols  # one shard: the index's own columns, not a copy
    return Columns(*(c[part] for c in cols))


class ResourceShard:
    """Rows [offset, offset + len) of the resource index, with the caches their searches build."""

    def __init__(self, offset: int, columns: Columns, vectors: Vectors, grid_map: GridMap, *,
                 n_threads: int = 1, approximate_from: int | None = None) -> None:
        self.offset = offset
        self.approximate_from = approximate_from  # distinct vectors from which one need's search is approximate
        self.columns = columns
        self.vectors = vectors
        self.grid_map = grid_map
        self.n_threads = n_threads
        self.nearby = cand.NearbyIndex(columns, grid_map)
        self._index_t: sp.csr_matrix | None = None
        self._scopes: dict[tuple, sp.csr_matrix] = {}  # transposed word index per ring scope, built on demand
        self._distinct: DistinctIndex | None = None  # the embeddings once per distinct vector, built on first use

    def __len__(self) -> int:
        return len(self.columns.ids)

    def __getstate__(self) -> dict:
        # What travels to a worker: the rows, not the caches (rebuilt there on demand; faiss cannot travel).
        state = dict(self.__dict__)
        state.update(_index_t=None, _scopes={}, _distinct=None)
        return state

    def __sizeof__(self) -> int:
        # Its arrays: what Dask weighs before moving the shard (see distributed.nbytes).
        total = sum(_nbytes(m) for m in (self.vectors.word, self.vectors.char))
        total += 0 if self.vectors.dense is None else self.vectors.dense.nbytes
        # Object columns (ids, grids, categories) hold short strings: about 64 bytes a value.
        return total + sum(c.nbytes if isinstance(c, np.ndarray) and c.dtype != object else 64 * len(c)
                           for c in self.columns)

    def with_columns(self, columns: Columns) -> ResourceShard:
        """The shard after an edit that left its vectors alone (capacity, status): caches kept."""
        shard = object.__new__(ResourceShard)  # not copy.copy: that goes through __getstate__ and drops the caches
        shard.__dict__.update(self.__dict__, columns=columns)
        return shard

    # ------------------------------------------------------------ search
    @property
    def index_t(self) -> sp.csr_matrix:
        if self._index_t is None:
            self._index_t = self.vectors.word.T.tocsr()
        return self._index_t

    def found(self, needs: NeedChunk, top: int, nearby_limit: int, *, scored: bool,
              approximate: bool = False) -> Found:
        """Each need's best `top` rows of this shard by word and by embedding cosine within the ring it is
        limited to, and its grid's and area's rows (the `nearby_limit` most similar).

        `scored`: give every pair its similarity (needed to merge several shards); one shard's pairs are
        all kept, so their scores are not computed. `approximate`: a need or two may use the shard's HNSW
        graph (Matcher.top_k); a batch never does, so its answer equals a cluster's.
        """
        parts: list[Found] = []
        for key, need_rows in cand.group_by_scope(needs.columns, self.nearby).items():
            scope = None if key is None else cand.scope_rows(self.nearby, key)
            if scope is None or len(scope):
                parts.extend(self._search(needs, need_rows, key, scope, top, scored, approximate))
        near = cand.nearby_candidates(needs.columns, self.nearby, limit=nearby_limit,
                                      similarity=lambda row, rows: self._similarity(needs.vectors, row, rows))
        parts.append(self._found(near, NEARBY, self._pair_similarity(needs.vectors, near) if scored else None))
        return Found(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def _found(self, pairs: cand.Candidates, kind: int, score: np.ndarray | None) -> Found:
        n = len(pairs.need_row)
        return Found(pairs.need_row, pairs.resource_row + self.offset,
                     np.zeros(n) if score is None else np.asarray(score, dtype=np.float64), np.full(n, kind, np.int8))

    def _search(self, needs: NeedChunk, need_rows: np.ndarray, key: tuple | None, scope: np.ndarray | None,
                top: int, scored: bool, approximate: bool = False) -> list[Found]:
        """Word and embedding top-`top` of the needs among the `scope` rows (None: the whole shard)."""
        words = cand.top_cosine(needs.vectors.word[need_rows], self._scope_index(key, scope), top,
                                n_threads=self.n_threads)
        out = [self._found(self._in_scope(need_rows, words, scope), WORDS, words.score)]
        if needs.vectors.dense is not None and self.vectors.dense is not None:
            queries = needs.vectors.dense[need_rows]
            index = self.distinct
            if scope is not None:
                # A query or two over a wide scope: scored over every distinct vector and picked, cheaper
                # than copying the scope's vectors out first.
                index = index.subset(scope, copy=not (len(queries) <= 2 and len(scope) * 4 > len(self)))
            rows, cols = index.top(queries, top, n_threads=self.n_threads, approximate=approximate)
            pairs = self._in_scope(need_rows, cand.Candidates(rows, cols), scope)
            out.append(self._found(pairs, MEANING, self._dense_similarity(needs.vectors, pairs) if scored else None))
        return out

    @staticmethod
    def _in_scope(need_rows: np.ndarray, pairs: cand.Candidates, scope: np.ndarray | None) -> cand.Candidates:
        """Pairs found among a scope's rows as (chunk row, shard row)."""
        rows = pairs.resource_row if scope is None else scope[pairs.resource_row]
        return cand.Candidates(need_rows[pairs.need_row], rows)

    def _scope_index(self, key: tuple | None, scope: np.ndarray | None) -> sp.csr_matrix:
        """The transposed word index of one scope, built once per shard (a street's serves every need
        limited to it, query after query)."""
        if scope is None:
            return self.index_t
        index_t = self._scopes.get(key)
        if index_t is None:
            index_t = self._scopes[key] = self.vectors.word[scope].T.tocsr()
        return index_t

    @property
    def distinct(self) -> DistinctIndex:
        """The shard's embeddings grouped by distinct vector, for the dense search (built once per shard)."""
        if self._distinct is None:
            self._distinct = DistinctIndex.of(self.vectors.dense, approximate_from=self.approximate_from)
        return self._distinct

    def _similarity(self, need_vectors: Vectors, need_row: int, rows: np.ndarray) -> np.ndarray:
        """How alike one need is to some rows: embedding cosine, or word cosine without an encoder."""
        if need_vectors.dense is not None and self.vectors.dense is not None:
            return self.vectors.dense[rows] @ need_vectors.dense[need_row]
        return (self.vectors.word[rows] @ need_vectors.word[need_row].T).toarray().ravel()

    def _dense_similarity(self, need_vectors: Vectors, pairs: cand.Candidates) -> np.ndarray:
        return np.einsum("ij,ij->i", need_vectors.dense[pairs.need_row], self.vectors.dense[pairs.resource_row])

    def _pair_similarity(self, need_vectors: Vectors, pairs: cand.Candidates) -> np.ndarray:
        """_similarity of each pair, for all pairs at once (the ranking the nearby search used)."""
        if need_vectors.dense is not None and self.vectors.dense is not None:
            return self._dense_similarity(need_vectors, pairs)
        product = need_vectors.word[pairs.need_row].multiply(self.vectors.word[pairs.resource_row])
        return np.asarray(product.sum(axis=1), dtype=np.float64).ravel()

    # ------------------------------------------------------------ features
    def table(self, needs: NeedChunk, pairs: cand.Candidates, *, sides: str, same_category: bool,
              projection: np.ndarray | None = None) -> FeatureTable:
        """Features of the pairs (rows of the whole index, all in this shard) that pass the filters, with the
        embedding terms a learned scorer's `projection` asks for."""
        local = cand.Candidates(pairs.need_row, pairs.resource_row - self.offset)
        keep = cand.allowed(needs.columns, self.columns, local, self.grid_map, sides=sides,
                            same_category=same_category)
        table = pair_features(needs.columns, self.columns, needs.vectors, self.vectors, local.need_row[keep],
                              local.resource_row[keep], self.grid_map, projection)
        return table._replace(resource_row=table.resource_row + self.offset)


def _nbytes(matrix: sp.csr_matrix) -> int:
    return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


def best_per_need(found: Sequence[Found], top: int, nearby_limit: int, n_resources: int) -> cand.Candidates:
    """The union, per need, of its best `top` word and embedding rows and best `nearby_limit` nearby rows
    over all shards, ranked by score and then row."""
    need, row, score, kind = (np.concatenate(column) for column in zip(*found, strict=True))
    if len(found) > 1 and len(need):
        # Only the (need, kind) groups over their limit are ranked: the nearby ones, most of the pairs,
        # seldom are, and sorting every pair took a fifth of a four-shard batch.
        group = need.astype(np.int64) * 3 + kind
        limit = np.where(kind == NEARBY, nearby_limit, top)
        over = np.flatnonzero(np.bincount(group)[group] > limit)
        if len(over):
            ranked = over[np.lexsort((row[over], -score[over], group[over]))]
            first = np.searchsorted(group[ranked], group[ranked], side="left")
            keep = np.ones(len(need), dtype=bool)
            keep[over] = False
            keep[ranked[np.arange(len(ranked)) - first < limit[ranked]]] = True
            need, row = need[keep], row[keep]
    return cand.merge(cand.Candidates(need, row), n_resources=n_resources)


def split(pairs: cand.Candidates, shard_bounds: Sequence[slice]) -> list[cand.Candidates]:
    """The pairs of each shard, in their order (by need, then row)."""
    out = []
    for part in shard_bounds:
        mask = (pairs.resource_row >= part.start) & (pairs.resource_row < part.stop)
        out.append(cand.Candidates(pairs.need_row[mask], pairs.resource_row[mask]))
    return out


def finish(tables: Sequence[FeatureTable], scorer: Any, k: int) -> tuple[FeatureTable, np.ndarray]:
    """The shards' tables as one (by need, then row), scored, each need's best k kept, best first."""
    table = FeatureTable.concat(list(tables))
    if len(tables) > 1:
        # Each shard's table is ordered by need then row and the shards' rows ascend: a stable sort by
        # need gives the order one shard would have.
        table = table.take(np.argsort(table.need_row, kind="stable"))
    score = scorer.score(table.values, terms=table.terms)
    best = top_per_need(table.need_row, score, k)
    return table.take(best), score[best]


def chunk_table(plan: SearchPlan, needs: NeedChunk) -> tuple[FeatureTable, np.ndarray]:
    """One chunk through the shards in this process: search each, merge per need, features per shard, score,
    best k (a cluster runs the same steps as separate tasks where the shards are)."""
    found = [shard.found(needs, plan.top, plan.nearby_limit, scored=len(plan.shards) > 1,
                         approximate=plan.approximate) for shard in plan.shards]
    pairs = best_per_need(found, plan.top, plan.nearby_limit, plan.n_resources)
    projection = plan.scorer.projection
    tables = [shard.table(needs, part, sides=plan.sides, same_category=plan.same_category, projection=projection)
              for shard, part in zip(plan.shards, split(pairs, plan.bounds), strict=True)]
    return finish(tables, plan.scorer, plan.k)


def top_per_need(need_row: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best-scoring rows of each need (ties: the earlier row)."""
    order = np.lexsort((-score, need_row))
    sorted_need = need_row[order]
    start = np.searchsorted(sorted_need, sorted_need, side="left")
    return order[np.arange(len(order)) - start < k]
