import numpy as np
import pytest
import scipy.sparse as sp

from matcher import candidates as cand
from matcher.columns import columns
from matcher.proximity import GridMap
from matcher.records import parse_grid, parse_need, parse_resource
from tests.conftest import GRIDS, NEEDS, RESOURCES


def _random_rows(rng, n, dim, density):
    matrix = sp.random(n, dim, density=density, format="csr", random_state=rng, dtype=np.float32)
    norms = np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1
    norms[norms == 0] = 1
    return sp.diags(1 / norms).astype(np.float32) @ matrix


# One query summed from its postings, the same forced through scipy's product, a few queries, and
# the sparse_dot_topn path.
@pytest.mark.parametrize(("n_queries", "few_postings"), [(1, cand.FEW_POSTINGS), (1, 0), (3, 0), (40, 0)])
def test_top_cosine_matches_dense_brute_force(n_queries, few_postings, monkeypatch):
    monkeypatch.setattr(cand, "FEW_POSTINGS", few_postings)
    rng = np.random.default_rng(7)
    queries, index = _random_rows(rng, n_queries, 300, 0.05), _random_rows(rng, 500, 300, 0.05)
    got = cand.top_cosine(queries.tocsr(), index.T.tocsr(), 5)
    dense = queries.toarray() @ index.toarray().T
    for row in range(n_queries):
        mine = got.resource_row[got.need_row == row]
        positive = np.flatnonzero(dense[row] > 0)
        expected = positive[np.argsort(-dense[row, positive], kind="stable")][:5]
        # Ties may be broken differently; the scores of the chosen sets must agree.
        np.testing.assert_allclose(np.sort(dense[row, mine]), np.sort(dense[row, expected]), rtol=1e-5)


def test_top_cosine_caps_top_n_to_index_size():
    rng = np.random.default_rng(1)
    queries, index = _random_rows(rng, 3, 20, 0.5), _random_rows(rng, 4, 20, 0.5)
    got = cand.top_cosine(queries.tocsr(), index.T.tocsr(), 100)
    assert np.bincount(got.need_row, minlength=3).max() <= 4


def test_top_cosine_empty_inputs_return_no_pairs():
    empty = sp.csr_matrix((0, 10), dtype=np.float32)
    index = sp.csr_matrix(np.eye(3, 10, dtype=np.float32)).T.tocsr()
    assert len(cand.top_cosine(empty, index, 5).need_row) == 0
    assert len(cand.top_cosine(sp.csr_matrix((2, 10), dtype=np.float32), index, 5).need_row) == 0


@pytest.fixture()
def lists():
    grid_map = GridMap(parse_grid(g) for g in GRIDS)
    needs = columns([parse_need(n) for n in NEEDS], grid_map)
    resources = columns([parse_resource(r) for r in RESOURCES], grid_map)
    return grid_map, needs, resources


def _all_pairs(n_needs, n_resources):
    need, resource = np.meshgrid(np.arange(n_needs), np.arange(n_resources), indexing="ij")
    return cand.Candidates(need.ravel(), resource.ravel())


def test_nearby_index_finds_resources_in_the_area(lists):
    grid_map, _, resources = lists
    nearby = cand.NearbyIndex(resources, grid_map)
    rows = nearby.within("P1", grid_map.code["P1"], 1)
    assert {resources.ids[r] for r in rows} == {"r-care", "r-food", "r-park"}


def test_allowed_cross_sides_keeps_only_opposite_sides(lists):
    grid_map, needs, resources = lists
    pairs = _all_pairs(len(needs.ids), len(resources.ids))
    mask = cand.allowed(needs, resources, pairs, grid_map, sides="cross")
    for n, r in zip(pairs.need_row[mask], pairs.resource_row[mask], strict=True):
        assert needs.side[n] == 0 or resources.side[r] == 0 or needs.side[n] != resources.side[r]
    assert not mask.all()


def test_allowed_same_category_drops_other_categories(lists):
    grid_map, needs, resources = lists
    pairs = _all_pairs(len(needs.ids), len(resources.ids))
    mask = cand.allowed(needs, resources, pairs, grid_map, same_category=True)
    kept = {(needs.ids[n], resources.ids[r]) for n, r in zip(pairs.need_row[mask], pairs.resource_row[mask],
                                                             strict=True)}
    assert ("n-care", "r-care") in kept and ("n-care", "r-food") not in kept
    assert ("n-law", "r-food") in kept  # a need without a category is not limited


def test_allowed_ring_limit_keeps_only_inner_rings():
    grid_map = GridMap(parse_grid(g) for g in GRIDS)
    needs = columns([parse_need({**NEEDS[0], "ring": "area"})], grid_map)
    resources = columns([parse_resource(r) for r in RESOURCES], grid_map)
    pairs = _all_pairs(1, len(RESOURCES))
    mask = cand.allowed(needs, resources, pairs, grid_map)
    assert {resources.ids[r] for r in pairs.resource_row[mask]} == {"r-care", "r-food", "r-park"}


def test_allowed_drops_closed_and_full_resources(lists):
    grid_map, needs, _ = lists
    resources = columns([parse_resource({**RESOURCES[0], "status": "closed"}),
                         parse_resource({**RESOURCES[1], "capacity": 2, "taken": 2})], grid_map)
    assert not cand.allowed(needs, resources, _all_pairs(len(needs.ids), 2), grid_map).any()


def test_allowed_rejects_unknown_side_rule(lists):
    grid_map, needs, resources = lists
    with pytest.raises(ValueError, match="sides: expected one of any, cross, same, got 'both'"):
        cand.allowed(needs, resources, _all_pairs(1, 1), grid_map, sides="both")


def test_merge_keeps_each_pair_once_in_need_order():
    a = cand.Candidates(np.array([1, 0]), np.array([2, 3]))
    b = cand.Candidates(np.array([0, 1]), np.array([3, 0]))
    merged = cand.merge(a, b, n_resources=4)
    assert list(zip(merged.need_row.tolist(), merged.resource_row.tolist(), strict=True)) == [(0, 3), (1, 0), (1, 2)]
