"""Candidate pairs → feature table: text similarity, category, ring, distance and capacity per pair."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from matcher.columns import Columns
from matcher.proximity import AREA, GRID, STREET, GridMap, haversine_km
from matcher.rows import FEW_PAIRS, RowEntries, aligned_dot, aligned_product, row_sums
from matcher.vectorize import Vectors, row_cosine

FEATURES = (
    "word_cosine",  # TF-IDF cosine of word tokens
    "char_cosine",  # TF-IDF cosine of character n-grams: catches words jieba cut differently
    "category_match",  # 1 same category, -1 different, 0 when either side has none
    "same_grid",
    "same_area",  # same area or block (面/片), the grid included
    "same_street",  # same street, the inner rings included
    "nearness",  # exp(-km / NEARNESS_KM) where both have coordinates, else 0
    "capacity_left",  # share of the resource's capacity still free
    # Cosine of the two texts' sentence embeddings: meaning shared without shared words. Last, so
    # models saved before it keep their feature positions; 0 when matching by words alone.
    "semantic_cosine",
    # Added for learned models, which need to know *when* shared words matter: a short need against a
    # long resource shares few words even when it fits. log((1 + resource terms) / (1 + need terms)),
    # terms counted as distinct words.
    "length_ratio",
    "need_coverage",  # share of the need's distinct words that the resource also has
)
# About the radius of the zone's "15-minute service circle" on foot and by bike.
NEARNESS_KM = 2.0


class FeatureTable(NamedTuple):
    """One row per candidate pair; `values` columns follow FEATURES."""

    need_row: np.ndarray
    resource_row: np.ndarray
    values: np.ndarray
    ring: np.ndarray
    distance_km: np.ndarray
    # Row i holds need ∘ resource word weights of pair i: its sum is the word cosine, its largest
    # entries are the shared terms the reasons name, so both come from one product.
    word_product: RowEntries
    # (n, r) projections of the pairs' embedding interactions that a learned scorer asked for (its
    # `projection`); None when the scorer reads the FEATURES alone.
    terms: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> FeatureTable:
        return FeatureTable(*(column[rows] for column in self[:5]), self.word_product.take(rows),
                            None if self.terms is None else self.terms[rows])

    @staticmethod
    def concat(tables: list[FeatureTable]) -> FeatureTable:
        if len(tables) == 1:
            return tables[0]
        columns = list(zip(*tables, strict=True))
        terms = None if any(t is None for t in columns[6]) else np.concatenate(columns[6])
        return FeatureTable(*(np.concatenate(c) for c in columns[:5]), RowEntries.concat(columns[5]), terms)

    def as_dicts(self) -> list[dict[str, float]]:
        out = []
        for i, row in enumerate(self.values.tolist()):
            item = dict(zip(FEATURES, row, strict=True))
            item["ring"] = float(self.ring[i])
            if not np.isnan(self.distance_km[i]):
                item["distance_km"] = round(float(self.distance_km[i]), 3)
            out.append(item)
        return out


def interactions(need_dense: np.ndarray, resource_dense: np.ndarray) -> np.ndarray:
    """|u − v| and u ⊙ v of each pair's two embeddings side by side, (n, 2·dim): what a learned scorer reads
    of the embeddings beyond their cosine (which dimensions agree, and how strongly)."""
    return np.hstack([np.abs(need_dense - resource_dense), need_dense * resource_dense]).astype(np.float32)


def interaction_terms(need_dense: np.ndarray, resource_dense: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """interactions(u, v) @ projection without building the (n, 2·dim) matrix: one product per half."""
    dim = need_dense.shape[1]
    if projection.shape[0] != 2 * dim:
        raise ValueError(f"projection: expected {2 * dim} rows for embeddings of {dim} dimensions, "
                         f"got {projection.shape[0]}")
    first = np.abs(need_dense - resource_dense) @ projection[:dim]
    return first + (need_dense * resource_dense) @ projection[dim:]


def pair_terms(projection: np.ndarray | None, need_dense: np.ndarray | None,
               resource_dense: np.ndarray | None) -> np.ndarray | None:
    """The embedding terms a scorer with `projection` reads of pairs whose two embeddings are given (stored
    pairs: training sets, held-out files, the canary); None for a scorer of the FEATURES alone."""
    if projection is None:
        return None
    if need_dense is None or resource_dense is None or need_dense.shape[1] * 2 != projection.shape[0]:
        got = "none" if need_dense is None else need_dense.shape[1]
        raise ValueError(f"model: expected pairs with embeddings of {projection.shape[0] // 2} dimensions, got "
                         f"{got} (another encoder, or words alone)")
    return interaction_terms(np.asarray(need_dense, np.float32), np.asarray(resource_dense, np.float32), projection)


def pair_rings(needs: Columns, resources: Columns, need_row: np.ndarray, resource_row: np.ndarray,
               grid_map: GridMap) -> np.ndarray:
    """Ring of each pair; equal grid ids count as the same grid even when the map lacks them."""
    ring = grid_map.rings(needs.grid_code[need_row], resources.grid_code[resource_row])
    need_grid, resource_grid = needs.grids[need_row], resources.grids[resource_row]
    ring[(need_grid == resource_grid) & (need_grid != "")] = GRID
    return ring


def pair_features(
    needs: Columns,
    resources: Columns,
    need_vectors: Vectors,
    resource_vectors: Vectors,
    need_row: np.ndarray,
    resource_row: np.ndarray,
    grid_map: GridMap,
    projection: np.ndarray | None = None,
) -> FeatureTable:
    """Compute the FEATURES of the pairs (need_row[i], resource_row[i]), and their embedding terms when a
    learned scorer's `projection` is given (see interaction_terms)."""
    need_row = np.asarray(need_row, dtype=np.int64)
    resource_row = np.asarray(resource_row, dtype=np.int64)
    values = np.zeros((len(need_row), len(FEATURES)), dtype=np.float64)
    if len(need_row) == 0:
        empty = RowEntries(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
        terms = None if projection is None else np.zeros((0, projection.shape[1]), np.float32)
        return FeatureTable(need_row, resource_row, values, np.zeros(0, np.int8), np.zeros(0), empty, terms)
    if len(need_row) <= FEW_PAIRS:
        product = aligned_product(need_vectors.word, resource_vectors.word, need_row, resource_row)
        values[:, 0] = row_sums(product).clip(0.0, 1.0)
        values[:, 1] = aligned_dot(need_vectors.char, resource_vectors.char, need_row, resource_row).clip(0.0, 1.0)
    else:
        product = RowEntries.of(need_vectors.word[need_row].multiply(resource_vectors.word[resource_row]).tocsr())
        # Summed in float64 like the few-pairs path, so a pair's features do not depend on how many pairs
        # were computed with it (a chunk's, a shard's): float32 sums differed in the last bits.
        values[:, 0] = row_sums(product).clip(0.0, 1.0)
        values[:, 1] = row_cosine(need_vectors.char[need_row], resource_vectors.char[resource_row])
    need_cat, resource_cat = needs.category[need_row], resources.category[resource_row]
    both = (need_cat != "") & (resource_cat != "")
    values[:, 2] = np.where(both, np.where(need_cat == resource_cat, 1.0, -1.0), 0.0)
    ring = pair_rings(needs, resources, need_row, resource_row, grid_map)
    values[:, 3] = ring <= GRID
    values[:, 4] = ring <= AREA
    values[:, 5] = ring <= STREET
    distance = haversine_km(needs.lat[need_row], needs.lon[need_row],
                            resources.lat[resource_row], resources.lon[resource_row])
    nearness = np.exp(-distance / NEARNESS_KM)
    nearness[np.isnan(nearness)] = 0.0  # no coordinates on one side: no nearness, not an error
    values[:, 6] = nearness
    capacity = resources.capacity[resource_row]
    values[:, 7] = resources.capacity_left[resource_row] / np.maximum(capacity, 1)
    need_terms = np.diff(need_vectors.word.indptr)[need_row]
    resource_terms = np.diff(resource_vectors.word.indptr)[resource_row]
    values[:, 9] = np.log1p(resource_terms) - np.log1p(need_terms)
    # The product's entries are the words both texts have (row_sums counted their weight).
    values[:, 10] = np.diff(product.indptr) / np.maximum(need_terms, 1)
    terms = None
    if need_vectors.dense is not None and resource_vectors.dense is not None:
        u, v = need_vectors.dense[need_row], resource_vectors.dense[resource_row]
        values[:, 8] = np.einsum("ij,ij->i", u, v)
        if projection is not None:
            terms = interaction_terms(u, v, projection)
    elif projection is not None:
        raise ValueError("projection: the scorer reads sentence embeddings, but this index matches by words alone")
    return FeatureTable(need_row, resource_row, values, ring, distance, product, terms)
