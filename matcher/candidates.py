"""Vectors × index → candidate pairs: top-k by sparse cosine, nearby resources, and the pair filters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sparse_dot_topn import sp_matmul_topn

from matcher.columns import Columns
from matcher.features import pair_rings
from matcher.proximity import AREA, DISTRICT, STREET, GridMap
from matcher.rows import gather_rows

SIDE_RULES = ("any", "cross", "same")
# Up to this many query rows, scipy's exact product plus a partial sort beats sparse_dot_topn, which
# copies the whole index's integer arrays on every call (about 3 ms at 200k resources).
FEW_QUERIES = 32
# Up to this many postings a one-need query is summed by sorting them (see _top_of_postings).
FEW_POSTINGS = 20_000


class Candidates(NamedTuple):
    """Candidate pairs (need_row[i], resource_row[i]); rows index the batch and the resource list."""

    need_row: np.ndarray
    resource_row: np.ndarray


class Scored(NamedTuple):
    """Candidate pairs with the similarity that found them (a merge of shards ranks by it)."""

    need_row: np.ndarray
    resource_row: np.ndarray
    score: np.ndarray


def _empty() -> Candidates:
    return Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64))


def _no_scored() -> Scored:
    return Scored(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


def top_cosine(queries: sp.csr_matrix, index_t: sp.csr_matrix, top_n: int, *, n_threads: int = 1) -> Scored:
    """The `top_n` resources with the highest positive cosine for each query row, with their cosines.

    `index_t` is the transposed resource matrix (terms × resources). The product and the
    selection run in sparse_dot_topn's kernel, row by row, so no dense block is formed.
    """
    n_resources = index_t.shape[1]
    top_n = min(int(top_n), n_resources)
    if queries.shape[0] == 0 or top_n <= 0 or queries.nnz == 0 or index_t.nnz == 0:
        return _no_scored()
    if queries.shape[0] == 1 and _postings(queries, index_t) <= FEW_POSTINGS:
        return _top_of_postings(queries, index_t, top_n)
    if queries.shape[0] <= FEW_QUERIES:
        return _top_of_product(queries @ index_t, top_n)
    # One more than asked: where the extra one ties the last, the kernel may have cut a tie anywhere;
    # those queries are asked again for twice as many until the last one found scores below the
    # top_n-th (texts repeat in real lists: a full product per tied query tripled a batch).
    found = _kernel_top(queries, index_t, top_n, min(top_n + 1, n_resources), n_threads)
    return found


def _kernel_top(queries: sp.csr_matrix, index_t: sp.csr_matrix, top_n: int, asked: int,
                n_threads: int) -> Scored:
    product = sp_matmul_topn(queries, index_t, top_n=asked, n_threads=n_threads if n_threads > 1 else None).tocoo()
    row, col, score = product.row.astype(np.int64), product.col.astype(np.int64), product.data.astype(np.float64)
    order = np.lexsort((col, -score, row))
    row, col, score = row[order], col[order], score[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
    # A row is settled when it found fewer than asked (every positive score) or its last found scores
    # below its top_n-th: then every resource tied with the top_n-th is among those found.
    counts = np.bincount(row, minlength=queries.shape[0])
    nth = np.full(queries.shape[0], np.inf)
    nth[row[rank == top_n - 1]] = score[rank == top_n - 1]
    last = np.full(queries.shape[0], -np.inf)
    last[row[rank == asked - 1]] = score[rank == asked - 1]
    open_rows = np.flatnonzero((counts >= asked) & (last >= nth) & (asked < index_t.shape[1]))
    keep = (rank < top_n) & (score > 0) & ~np.isin(row, open_rows)
    found = Scored(row[keep], col[keep], score[keep])
    if len(open_rows):
        again = _kernel_top(queries[open_rows], index_t, top_n, min(2 * asked, index_t.shape[1]), n_threads)
        found = Scored(np.concatenate([found.need_row, open_rows[again.need_row]]),
                       np.concatenate([found.resource_row, again.resource_row]),
                       np.concatenate([found.score, again.score]))
    return found


def _postings(query: sp.csr_matrix, index_t: sp.csr_matrix) -> int:
    """How many index entries the query's terms touch: the work of its exact product."""
    return int((index_t.indptr[query.indices + 1] - index_t.indptr[query.indices]).sum())


def _top_of_postings(query: sp.csr_matrix, index_t: sp.csr_matrix, top_n: int) -> Scored:
    """Top-n of one query by summing its terms' postings, sorted by resource.

    scipy's product sets up a workspace as wide as the whole index for every row; a query whose
    terms are rare touches a few hundred entries, which a sort adds up faster.
    """
    indptr, resource, weight = gather_rows(index_t, query.indices)
    weight = weight * np.repeat(query.data, np.diff(indptr))
    if len(resource) == 0:
        return _no_scored()
    order = np.argsort(resource, kind="stable")
    resource, weight = resource[order], weight[order]
    first = np.flatnonzero(np.r_[True, resource[1:] != resource[:-1]])
    score, resource = np.add.reduceat(weight, first), resource[first]
    best = top_positions(score, top_n)  # resources ascend here, so positions order ties by row
    positive = score[best] > 0
    keep = resource[best][positive].astype(np.int64)
    return Scored(np.zeros(len(keep), dtype=np.int64), keep, score[best][positive].astype(np.float64))


def top_positions(values: np.ndarray, top_n: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Positions of the `top_n` largest values, best first, ties going to the smaller row (`rows`,
    by default the positions themselves).

    A total order: which of several tied resources is kept does not depend on how the search was cut
    (chunks, shards, the kernel used), so a merge of shards keeps what one search over all would.
    """
    n = len(values)
    if rows is None:
        rows = np.arange(n)
    if n > top_n:
        # Everything at or above the top_n-th largest value; more than top_n only when it is tied.
        kth = np.partition(values, n - top_n)[n - top_n]
        pool = np.flatnonzero(values >= kth)
    else:
        pool = np.arange(n)
    return pool[np.lexsort((rows[pool], -values[pool]))[:top_n]]


def _top_of_product(product: sp.csr_matrix, top_n: int) -> Scored:
    """Top-n of each row of an exact sparse product, looking only at its non-zeros."""
    rows, cols, scores = [], [], []
    for row in range(product.shape[0]):
        start, end = product.indptr[row], product.indptr[row + 1]
        best = top_positions(product.data[start:end], top_n, product.indices[start:end])
        data, indices = product.data[start:end][best], product.indices[start:end][best]
        positive = data > 0
        keep = indices[positive]
        rows.append(np.full(len(keep), row, dtype=np.int64))
        cols.append(keep.astype(np.int64))
        scores.append(data[positive].astype(np.float64))
    return Scored(np.concatenate(rows), np.concatenate(cols), np.concatenate(scores))


class NearbyIndex:
    """Resource rows by grid, area, block and street, to find every resource inside a ring."""

    def __init__(self, resources: Columns, grid_map: GridMap) -> None:
        self._by: dict[str, dict] = {"grid": defaultdict(list), "area": defaultdict(list),
                                     "block": defaultdict(list), "street": defaultdict(list)}
        for row, (grid, code) in enumerate(zip(resources.grids, resources.grid_code, strict=True)):
            if grid:
                self._by["grid"][grid].append(row)
            if code >= 0:
                for level, table in (("area", grid_map.area), ("block", grid_map.block), ("street", grid_map.street)):
                    if table[code] >= 0:
                        self._by[level][int(table[code])].append(row)
        self.grid_map = grid_map

    def rows_in(self, level: str, key: str | int) -> list[int]:
        """Rows of the resources of one grid, area, block or street (by grid id or integer code)."""
        return self._by[level].get(key, [])

    def within(self, grid: str, code: int, ring: int) -> np.ndarray:
        """Rows of resources in the need's ring `ring` (GRID, AREA or STREET) around `grid`."""
        rows: list[int] = list(self._by["grid"].get(grid, [])) if grid else []
        if code >= 0 and ring >= AREA:
            for level, table in (("area", self.grid_map.area), ("block", self.grid_map.block)):
                if table[code] >= 0:
                    rows.extend(self._by[level].get(int(table[code]), []))
        if code >= 0 and ring >= STREET and self.grid_map.street[code] >= 0:
            rows.extend(self._by["street"].get(int(self.grid_map.street[code]), []))
        return np.unique(np.asarray(rows, dtype=np.int64))


def scope_key(nearby: NearbyIndex, grid: str, code: int, ring: int) -> tuple | None:
    """Key of the set of resources a need limited to `ring` may reach; None when it reaches the district.

    Needs with one key share one scope, so the batch searches each scope once for all of them.
    """
    if ring >= DISTRICT or not grid:
        return None  # a need posted without a grid has no ring to stay within
    if code < 0:
        return ("grid", grid)  # a grid outside the map reaches its own resources only
    street, area, block = (int(t[code]) for t in (nearby.grid_map.street, nearby.grid_map.area,
                                                    nearby.grid_map.block))
    if ring >= STREET and street >= 0:
        return ("street", street)
    if ring >= AREA and (area >= 0 or block >= 0):
        return ("area", area, block)
    return ("grid", grid)


def scope_rows(nearby: NearbyIndex, key: tuple) -> np.ndarray:
    """Resource rows inside a scope key.

    Not NearbyIndex.within of a member need: within() also adds the need's own area and block, which in a
    grid tree whose grids name their own streets can reach past the street. A scope stays one set per
    street (so one cached index serves every need of it); nearby_candidates adds each need's inner rings.
    """
    level = key[0]
    if level == "grid":
        rows = nearby.rows_in("grid", key[1])
    elif level == "street":
        rows = nearby.rows_in("street", key[1])
    else:
        rows = [*nearby.rows_in("area", key[1]), *nearby.rows_in("block", key[2])]
    return np.unique(np.asarray(rows, dtype=np.int64))


def group_by_scope(needs: Columns, nearby: NearbyIndex) -> dict[tuple | None, np.ndarray]:
    """Need rows by the scope their ring limits them to (None: the whole district)."""
    groups: dict[tuple | None, list[int]] = defaultdict(list)
    for row in range(len(needs.ids)):
        groups[scope_key(nearby, needs.grids[row], int(needs.grid_code[row]), int(needs.ring[row]))].append(row)
    return {key: np.asarray(rows, dtype=np.int64) for key, rows in groups.items()}


def scope_order(needs: Columns, nearby: NearbyIndex) -> np.ndarray:
    """Need rows with the needs of one scope together (stable within a scope).

    A batch's needs come in any order; chunked as they come, every chunk of a city's batch held a few
    needs of each of its hundreds of streets, and each street's search ran once per chunk per shard,
    so the batch grew with the city's size times its streets. Chunked in this order, a street's needs
    share a few chunks.
    """
    ids: dict[tuple | None, int] = {}
    codes = np.fromiter((ids.setdefault(scope_key(nearby, needs.grids[row], int(needs.grid_code[row]),
                                                  int(needs.ring[row])), len(ids)) for row in range(len(needs.ids))),
                        dtype=np.int64, count=len(needs.ids))
    return np.argsort(codes, kind="stable")


def nearby_candidates(needs: Columns, nearby: NearbyIndex, *, limit: int,
                      similarity: Callable[[int, np.ndarray], np.ndarray] | None = None) -> Candidates:
    """Pairs of each need with the resources of its own grid and area (or block).

    There the ring bonus can lift a weak text match above strong ones further away. Where an
    inner ring holds more than `limit` resources, the `limit` most similar are kept
    (`similarity(need row, resource rows)`), never the first rows in list order.
    """
    need_rows, resource_rows = [], []
    for row in range(len(needs.ids)):
        ring = min(int(needs.ring[row]), AREA)
        rows = nearby.within(needs.grids[row], int(needs.grid_code[row]), ring)
        if len(rows) > limit:
            kept = top_positions(similarity(row, rows), limit) if similarity is not None else slice(limit)
            rows = np.sort(rows[kept])
        if len(rows):
            need_rows.append(np.full(len(rows), row, dtype=np.int64))
            resource_rows.append(rows)
    if not need_rows:
        return _empty()
    return Candidates(np.concatenate(need_rows), np.concatenate(resource_rows))


def merge(*parts: Candidates, n_resources: int) -> Candidates:
    """Union of candidate sets, each pair once, ordered by need row."""
    need = np.concatenate([p.need_row for p in parts]) if parts else np.zeros(0, np.int64)
    resource = np.concatenate([p.resource_row for p in parts]) if parts else np.zeros(0, np.int64)
    key = np.unique(need * max(n_resources, 1) + resource)
    return Candidates(key // max(n_resources, 1), key % max(n_resources, 1))


def allowed(needs: Columns, resources: Columns, pairs: Candidates, grid_map: GridMap, *,
            sides: str = "any", same_category: bool = False) -> np.ndarray:
    """Mask of pairs that pass the filters: open lists, capacity left, side rule, category, ring limit."""
    if sides not in SIDE_RULES:
        raise ValueError(f"sides: expected one of {', '.join(SIDE_RULES)}, got {sides!r}")
    n, r = pairs.need_row, pairs.resource_row
    mask = needs.open[n] & resources.open[r] & (resources.capacity_left[r] > 0)
    if sides != "any":
        need_side, resource_side = needs.side[n], resources.side[r]
        known = (need_side > 0) & (resource_side > 0)
        differ = need_side != resource_side
        mask &= ~known | (differ if sides == "cross" else ~differ)
    if same_category:
        need_cat, resource_cat = needs.category[n], resources.category[r]
        mask &= (need_cat == "") | (need_cat == resource_cat)
    # A need without a grid has no ring to stay within, whatever its ring setting says.
    limited = (needs.ring[n] < DISTRICT) & (needs.grids[n] != "")
    if limited.any():
        ring = pair_rings(needs, resources, n, r, grid_map)
        mask &= ~limited | (ring <= needs.ring[n])
    return mask


