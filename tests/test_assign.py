import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.assign import assign


def _brute_force(need, resource, score, capacity, n_needs, min_score):
    """Best total over every way to give each need one of its edges or nothing."""
    options = [[None] + [i for i in range(len(need)) if need[i] == n and score[i] >= min_score]
               for n in range(n_needs)]
    best = 0.0
    for choice in itertools.product(*options):
        picked = [i for i in choice if i is not None]
        used = np.bincount([resource[i] for i in picked], minlength=len(capacity)) if picked else 0
        if np.all(used <= capacity):
            best = max(best, sum(score[i] for i in picked))
    return best


def _total(chosen, score):
    return float(np.sum(score[chosen])) if len(chosen) else 0.0


@st.composite
def problems(draw, max_needs=5, max_resources=4):
    n_needs = draw(st.integers(1, max_needs))
    n_resources = draw(st.integers(1, max_resources))
    cells = [(n, r) for n in range(n_needs) for r in range(n_resources)]
    edges = draw(st.lists(st.sampled_from(cells), unique=True, max_size=len(cells)))
    score = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=len(edges), max_size=len(edges)))
    capacity = draw(st.lists(st.integers(0, 3), min_size=n_resources, max_size=n_resources))
    min_score = draw(st.sampled_from([0.0, 0.3, 0.6]))
    need = np.array([e[0] for e in edges], dtype=np.int64)
    resource = np.array([e[1] for e in edges], dtype=np.int64)
    return need, resource, np.array(score), np.array(capacity), n_needs, min_score


@settings(max_examples=150, deadline=None)
@given(problems(), st.sampled_from(["dense", "sparse"]))
def test_assign_is_optimal_and_feasible_on_small_cases(problem, method):
    need, resource, score, capacity, n_needs, min_score = problem
    chosen = assign(need, resource, score, capacity, n_needs=n_needs, min_score=min_score, method=method)
    assert len(set(need[chosen].tolist())) == len(chosen)  # each need at most once
    assert np.all(np.bincount(resource[chosen], minlength=len(capacity)) <= capacity)  # capacity never exceeded
    assert np.all(score[chosen] >= min_score)  # nothing below the minimum score
    assert _total(chosen, score) == pytest.approx(_brute_force(need, resource, score, capacity, n_needs, min_score))


@pytest.mark.parametrize("seed", range(5))
def test_assign_sparse_equals_dense_on_random_medium_cases(seed):
    rng = np.random.default_rng(seed)
    n_needs, n_resources, k = 300, 200, 8
    need = np.repeat(np.arange(n_needs), k)
    resource = rng.integers(0, n_resources, size=len(need))
    score = rng.random(len(need)).round(3)
    capacity = rng.integers(1, 4, size=n_resources)
    dense = assign(need, resource, score, capacity, n_needs=n_needs, min_score=0.2, method="dense")
    sparse = assign(need, resource, score, capacity, n_needs=n_needs, min_score=0.2, method="sparse")
    assert _total(sparse, score) == pytest.approx(_total(dense, score))


def test_assign_prefers_the_better_total_over_the_greedy_pair():
    # Greedy would give r0 to n0 (0.9) and leave n1 with nothing; the optimum is 0.8 + 0.7.
    chosen = assign([0, 0, 1], [0, 1, 0], [0.9, 0.7, 0.8], [1, 1], n_needs=2)
    assert sorted(chosen.tolist()) == [1, 2]


def test_assign_respects_capacity_greater_than_one():
    chosen = assign([0, 1, 2], [0, 0, 0], [0.9, 0.8, 0.7], [2], n_needs=3)
    assert chosen.tolist() == [0, 1]


def test_assign_keeps_the_best_copy_of_a_repeated_pair():
    chosen = assign([0, 0], [0, 0], [0.2, 0.9], [1], n_needs=1)
    assert chosen.tolist() == [1]


def test_assign_empty_input_returns_nothing():
    assert len(assign([], [], [], [1, 2], n_needs=0)) == 0
    assert len(assign([0], [0], [0.1], [1], n_needs=1, min_score=0.5)) == 0


def test_assign_rejects_nan_score():
    with pytest.raises(ValueError, match="score: expected finite numbers, got NaN or infinity"):
        assign([0], [0], [np.nan], [1], n_needs=1)


def test_assign_rejects_minus_infinity_score():
    with pytest.raises(ValueError, match="score: expected finite numbers"):
        assign([0], [0], [-np.inf], [1], n_needs=1)


def test_assign_rejects_negative_capacity():
    with pytest.raises(ValueError, match="capacity: expected integers >= 0, got -1"):
        assign([0], [0], [0.5], [-1], n_needs=1)


def test_assign_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="expected need_row, resource_row and score of one length, got 2, 1 and 1"):
        assign([0, 1], [0], [0.5], [1], n_needs=2)


def test_assign_rejects_out_of_range_rows():
    with pytest.raises(ValueError, match=r"resource_row: expected rows in \[0, 1\), got 3..3"):
        assign([0], [3], [0.5], [1], n_needs=1)


def test_assign_rejects_unknown_method():
    with pytest.raises(ValueError, match="method: expected one of auto, dense, sparse, got 'greedy'"):
        assign([0], [0], [0.5], [1], n_needs=1, method="greedy")
