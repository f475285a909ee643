"""CSR row arithmetic for the one-need path: row gathers and row-aligned products on raw arrays.

scipy's fancy row indexing and element-wise multiply validate and convert on every call; for the
tens of candidate pairs of one need that overhead costs more than the arithmetic. These do the
same work with a handful of numpy calls. The batch path keeps scipy, whose per-call cost is
amortized over thousands of pairs; tests hold the two to the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

# Below this many pairs the raw-array path beats scipy's; above it scipy's linear merges win.
FEW_PAIRS = 4096


class RowEntries(NamedTuple):
    """The three arrays of a CSR matrix without scipy's wrapper: cheap to build, gather and join."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def of(cls, matrix: sp.csr_matrix) -> RowEntries:
        return cls(matrix.indptr, matrix.indices, matrix.data)

    def __len__(self) -> int:  # rows, as for a matrix
        return len(self.indptr) - 1

    def take(self, rows: np.ndarray) -> RowEntries:
        return RowEntries(*gather_rows(self, rows))

    @staticmethod
    def concat(parts: list[RowEntries]) -> RowEntries:
        ends = np.cumsum([p.indptr[-1] for p in parts])
        indptr = np.concatenate([[0], *(p.indptr[1:] + end - p.indptr[-1] for p, end in zip(parts, ends, strict=True))])
        return RowEntries(indptr.astype(np.int64), np.concatenate([p.indices for p in parts]),
                          np.concatenate([p.data for p in parts]))


def aligned_product(left: sp.csr_matrix, right: sp.csr_matrix, left_row: np.ndarray,
                    right_row: np.ndarray) -> RowEntries:
    """Row i is left[left_row[i]] ∘ right[right_row[i]] (element-wise): the terms pair i shares."""
    pair, indices, data = _aligned_entries(left, right, left_row, right_row)
    indptr = np.zeros(len(left_row) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair, minlength=len(left_row)), out=indptr[1:])
    return RowEntries(indptr, indices, data)


def aligned_dot(left: sp.csr_matrix, right: sp.csr_matrix, left_row: np.ndarray,
                right_row: np.ndarray) -> np.ndarray:
    """Dot product of left[left_row[i]] with right[right_row[i]], as float64."""
    pair, _, data = _aligned_entries(left, right, left_row, right_row)
    return np.bincount(pair, weights=data, minlength=len(left_row))


def row_sums(matrix: sp.csr_matrix | RowEntries) -> np.ndarray:
    """Sum of each row as float64."""
    return np.bincount(entry_rows(matrix.indptr), weights=matrix.data, minlength=len(matrix.indptr) - 1)


def entry_rows(indptr: np.ndarray) -> np.ndarray:
    """Row of each stored entry of a CSR matrix with this indptr."""
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def gather_rows(matrix: sp.csr_matrix | RowEntries, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """indptr, indices and data of matrix[rows]; rows may repeat and come in any order."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = matrix.indptr[rows].astype(np.int64)
    lengths = matrix.indptr[rows + 1] - starts
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # Position of each gathered entry in the source: its row's start plus its offset in the row.
    source = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
    return indptr, matrix.indices[source], matrix.data[source]


def _aligned_entries(left: sp.csr_matrix, right: sp.csr_matrix, left_row: np.ndarray,
                     right_row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair, term and product of every term pair i shares: (pair, indices, data), pair ascending.

    Each entry of the gathered right rows looks its term up among the left matrix's entries,
    keyed by (row, term), which sorted indices keep in ascending order.
    """
    left_row = np.asarray(left_row, dtype=np.int64)
    indptr, indices, data = gather_rows(right, right_row)
    pair = entry_rows(indptr)
    if left.shape[0] == 1:
        # One need: a dense lookup of its weights beats any search.
        lookup = np.zeros(left.shape[1], dtype=left.dtype)
        lookup[left.indices] = left.data
        product = data * lookup[indices]
        hit = product != 0
        return pair[hit], indices[hit], product[hit]
    if not left.has_sorted_indices:
        left = left.sorted_indices()
    n_terms = np.int64(left.shape[1])
    left_keys = entry_rows(left.indptr) * n_terms + left.indices
    keys = left_row[pair] * n_terms + indices
    if len(left_keys) == 0:
        return pair[:0], indices[:0], data[:0]
    found = np.searchsorted(left_keys, keys)
    found[found == len(left_keys)] = 0
    hit = left_keys[found] == keys
    return pair[hit], indices[hit], data[hit] * left.data[found[hit]]
