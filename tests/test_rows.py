import numpy as np
import pytest
import scipy.sparse as sp

from matcher.rows import RowEntries, aligned_dot, aligned_product, row_sums


def _matrix(rng, n, dim=40, density=0.2):
    return sp.random(n, dim, density=density, format="csr", random_state=rng, dtype=np.float32)


def _dense(entries: RowEntries, n_columns: int) -> np.ndarray:
    return sp.csr_matrix((entries.data, entries.indices, entries.indptr), shape=(len(entries), n_columns)).toarray()


@pytest.mark.parametrize("n_left", [1, 7])  # the one-need lookup and the keyed search
def test_aligned_product_equals_scipy_row_products(n_left):
    rng = np.random.default_rng(n_left)
    left, right = _matrix(rng, n_left), _matrix(rng, 30)
    left_row = rng.integers(0, n_left, 50)
    right_row = rng.integers(0, 30, 50)  # rows repeat and come in any order
    expected = left[left_row].multiply(right[right_row]).toarray()
    np.testing.assert_allclose(_dense(aligned_product(left, right, left_row, right_row), 40), expected, rtol=1e-6)
    np.testing.assert_allclose(aligned_dot(left, right, left_row, right_row), expected.sum(axis=1), rtol=1e-5)


def test_aligned_product_with_unsorted_left_indices():
    left = sp.csr_matrix((np.array([2.0, 3.0], np.float32), np.array([5, 1]), np.array([0, 2])), shape=(1, 8))
    left = sp.vstack([left, left]).tocsr()
    left.indices[:] = [5, 1, 5, 1]
    left.has_sorted_indices = False
    right = sp.csr_matrix(np.eye(8, dtype=np.float32))
    assert aligned_dot(left, right, np.array([1, 1, 0]), np.array([1, 5, 3])).tolist() == [3.0, 2.0, 0.0]


def test_aligned_product_of_empty_inputs():
    left = sp.csr_matrix((2, 10), dtype=np.float32)
    right = _matrix(np.random.default_rng(0), 4, dim=10)
    assert aligned_dot(left, right, np.array([0, 1]), np.array([2, 3])).tolist() == [0.0, 0.0]
    assert len(aligned_product(left, right, np.array([], int), np.array([], int))) == 0


def test_row_entries_take_and_concat_match_scipy():
    rng = np.random.default_rng(3)
    first, second = _matrix(rng, 5), _matrix(rng, 4)
    rows = np.array([4, 0, 0, 2])
    np.testing.assert_array_equal(_dense(RowEntries.of(first).take(rows), 40), first[rows].toarray())
    joined = RowEntries.concat([RowEntries.of(first), RowEntries.of(second)])
    np.testing.assert_array_equal(_dense(joined, 40), sp.vstack([first, second]).toarray())
    np.testing.assert_allclose(row_sums(joined), np.asarray(sp.vstack([first, second]).sum(axis=1)).ravel(), rtol=1e-6)
