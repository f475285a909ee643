"""Scores + capacities → a global assignment: the set of pairs with the largest total score.

Each resource serves at most its capacity, each need at most one resource, and no pair below
the minimum score is made. A resource of capacity c becomes c interchangeable "slots", which
turns the problem into a bipartite matching that scipy solves exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

METHODS = ("auto", "dense", "sparse")
# Above this many cells the dense solver's matrix and time grow past the sparse one's
# (measured: dense 2.9 s at 5,000 x 5,000 against about 0.5 s sparse).
DENSE_CELLS = 4_000_000


def _check(need_row: np.ndarray, resource_row: np.ndarray, score: np.ndarray, capacity: np.ndarray,
           n_needs: int) -> None:
    if not (len(need_row) == len(resource_row) == len(score)):
        raise ValueError(
            f"pairs: expected need_row, resource_row and score of one length, got "
            f"{len(need_row)}, {len(resource_row)} and {len(score)}")
    if len(score) and not np.all(np.isfinite(score)):
        raise ValueError("score: expected finite numbers, got NaN or infinity")
    if len(capacity) and (capacity.min() < 0):
        raise ValueError(f"capacity: expected integers >= 0, got {int(capacity.min())}")
    if len(need_row) and (need_row.min() < 0 or need_row.max() >= n_needs):
        raise ValueError(f"need_row: expected rows in [0, {n_needs}), got {int(need_row.min())}..{int(need_row.max())}")
    if len(resource_row) and (resource_row.min() < 0 or resource_row.max() >= len(capacity)):
        raise ValueError(f"resource_row: expected rows in [0, {len(capacity)}), got "
                         f"{int(resource_row.min())}..{int(resource_row.max())}")


def _best_per_pair(need_row: np.ndarray, resource_row: np.ndarray, score: np.ndarray,
                   n_resources: int) -> np.ndarray:
    """Indices of the edges to keep: the highest-scoring copy of each (need, resource) pair."""
    key = need_row * n_resources + resource_row
    order = np.lexsort((-score, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return order[first]


def assign(
    need_row: np.ndarray,
    resource_row: np.ndarray,
    score: np.ndarray,
    capacity: np.ndarray,
    *,
    n_needs: int,
    min_score: float = 0.0,
    method: str = "auto",
    solve_many: Callable[[list[Component]], list[np.ndarray]] | None = None,
) -> np.ndarray:
    """Choose pairs that maximize the total score.

    Parameters are plain arrays: edge i links need `need_row[i]` and resource `resource_row[i]`
    with `score[i]`; `capacity[r]` is how many needs resource r may still take.
    Returns the sorted indices of the chosen edges.

    The candidate graph falls apart into connected components (needs and resources that share no
    edge with the rest), each solved on its own: optimal per part is optimal overall, small parts
    solve faster, and `solve_many` may solve them elsewhere (a cluster) with the same answer.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    need_row = np.asarray(need_row, dtype=np.int64)
    resource_row = np.asarray(resource_row, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    _check(need_row, resource_row, score, capacity, n_needs)
    if not np.isfinite(min_score):
        raise ValueError(f"min_score: expected a finite number, got {min_score!r}")

    edge = np.flatnonzero((score >= min_score) & (capacity[resource_row] > 0)) if len(score) else np.zeros(0, np.int64)
    edge = edge[_best_per_pair(need_row[edge], resource_row[edge], score[edge], len(capacity))]
    if len(edge) == 0:
        return np.zeros(0, dtype=np.int64)
    parts = [Component(edge[part], need_row[edge[part]], resource_row[edge[part]], score[edge[part]],
                       capacity[np.unique(resource_row[edge[part]])], method) for part in components(
                           need_row[edge], resource_row[edge])]
    solved = (solve_many or _solve_all)(parts)
    return np.sort(np.concatenate(solved)) if solved else np.zeros(0, dtype=np.int64)


class Component(NamedTuple):
    """One connected part of the candidate graph: no edge links it to any other, so it is solved alone."""

    edge: np.ndarray  # the edges' indices in the caller's arrays
    need_row: np.ndarray
    resource_row: np.ndarray
    score: np.ndarray
    capacity: np.ndarray  # capacity left of the component's resources, in np.unique(resource_row) order
    method: str


def components(need_row: np.ndarray, resource_row: np.ndarray) -> list[np.ndarray]:
    """Positions of the edges of each connected component of the bipartite graph, in a fixed order
    (by the component's first edge), so every way of solving them lists them the same."""
    needs, n_local = np.unique(need_row, return_inverse=True)
    resources, r_local = np.unique(resource_row, return_inverse=True)
    n, r = len(needs), len(resources)
    graph = sp.csr_matrix((np.ones(len(need_row)), (n_local, n + r_local)), shape=(n + r, n + r))
    _, label = connected_components(graph, directed=False)
    edge_label = label[n_local]
    order = np.argsort(edge_label, kind="stable")
    bounds = np.flatnonzero(np.r_[True, edge_label[order][1:] != edge_label[order][:-1], True])
    groups = [order[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
    groups.sort(key=lambda g: int(g[0]))
    return groups


def solve_component(part: Component) -> np.ndarray:
    """The chosen edges (indices in the caller's arrays) of one component."""
    needs, n_local = np.unique(part.need_row, return_inverse=True)
    resources, r_local = np.unique(part.resource_row, return_inverse=True)
    degree = np.bincount(r_local, minlength=len(resources))
    slots = np.minimum(part.capacity, degree)  # more slots than askers would never fill
    first_slot = np.concatenate(([0], np.cumsum(slots)[:-1]))
    n_slots = int(slots.sum())

    # Every edge to resource r is repeated once per slot of r.
    repeat = slots[r_local]
    e_index = np.repeat(np.arange(len(part.edge)), repeat)
    offset = np.arange(len(e_index)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    e_need = n_local[e_index]
    e_slot = first_slot[r_local[e_index]] + offset
    e_score = part.score[e_index]

    if part.method == "dense" or (part.method == "auto" and len(needs) * n_slots <= DENSE_CELLS):
        chosen = _dense(e_need, e_slot, e_score, len(needs), n_slots)
    else:
        chosen = _sparse(e_need, e_slot, e_score, len(needs), n_slots)
    return part.edge[e_index[chosen]]


def _solve_all(parts: list[Component]) -> list[np.ndarray]:
    return [solve_component(part) for part in parts]


def _dense(e_need: np.ndarray, e_slot: np.ndarray, e_score: np.ndarray, n: int, s: int) -> np.ndarray:
    weight = np.zeros((n, s), dtype=np.float64)
    owner = np.full((n, s), -1, dtype=np.int64)
    weight[e_need, e_slot] = e_score
    owner[e_need, e_slot] = np.arange(len(e_need))
    # An absent edge weighs 0, the same as leaving the need unmatched, so it never wins over a real pair.
    rows, cols = linear_sum_assignment(weight, maximize=True)
    picked = owner[rows, cols]
    return picked[picked >= 0]


def _sparse(e_need: np.ndarray, e_slot: np.ndarray, e_score: np.ndarray, n: int, s: int) -> np.ndarray:
    """Exact matching on a square graph, so that a full matching always exists.

    Rows are the n needs and a mirror of each of the s slots; columns are the s slots and one
    "unmatched" node per need. A need may take a slot or its own unmatched node; a slot's
    mirror takes its own slot when nobody does, or else the unmatched node of a need that
    could have used it, which is free exactly when that need took a slot. All weights get
    one constant added, which every full matching pays equally, so that none is zero (an
    explicit zero is not an edge to the solver) and the optimum is unchanged.
    """
    shift = float(np.max(e_score)) + 1.0
    e = len(e_need)
    rows = np.concatenate([e_need, np.arange(n), n + np.arange(s), n + e_slot])
    cols = np.concatenate([e_slot, s + np.arange(n), np.arange(s), s + e_need])
    weight = np.concatenate([shift - e_score, np.full(n + s + e, shift)])
    graph = sp.csr_matrix((weight, (rows, cols)), shape=(n + s, s + n))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    taken = np.full(n, -1, dtype=np.int64)
    is_pair = (row_ind < n) & (col_ind < s)
    taken[row_ind[is_pair]] = col_ind[is_pair]
    # Map (need, slot) back to its edge: after de-duplication each (need, slot) has one edge.
    key = e_need * s + e_slot
    order = np.argsort(key, kind="stable")
    matched = np.flatnonzero(taken >= 0)
    return order[np.searchsorted(key[order], matched * s + taken[matched])]
