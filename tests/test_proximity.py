import numpy as np
import pytest

from matcher.errors import RecordError
from matcher.proximity import AREA, DISTRICT, GRID, STREET, GridMap, haversine_km
from matcher.records import parse_grid
from tests.conftest import GRIDS


@pytest.fixture()
def grid_map() -> GridMap:
    return GridMap(parse_grid(g) for g in GRIDS)


def _ring(grid_map, a, b):
    return int(grid_map.rings(grid_map.codes([a]), grid_map.codes([b]))[0])


def test_rings_follow_grid_area_block_street_district(grid_map):
    assert _ring(grid_map, "P1", "P1") == GRID
    assert _ring(grid_map, "P1", "P2") == AREA  # same area A1
    assert _ring(grid_map, "P1", "P3") == AREA  # P3 sits in block B1, which holds A1
    assert _ring(grid_map, "P1", "P4") == STREET  # same street, no shared area or block
    assert _ring(grid_map, "P1", "P5") == DISTRICT


def test_rings_unknown_grid_is_district(grid_map):
    assert _ring(grid_map, "P1", "nowhere") == DISTRICT
    assert _ring(grid_map, "", "") == DISTRICT


def test_street_is_inherited_from_parent():
    grid_map = GridMap(parse_grid(g) for g in [
        {"id": "A", "kind": "area", "street": "石羊街道"}, {"id": "P", "kind": "point", "parent": "A"},
        {"id": "Q", "kind": "point", "street": "石羊街道"}])
    assert grid_map.street_names["P"] == "石羊街道"
    assert _ring(grid_map, "P", "Q") == STREET


def test_grid_map_rejects_unknown_parent():
    with pytest.raises(RecordError, match="record 1: field 'parent': expected the id of a grid in the same list"):
        GridMap([parse_grid({"id": "P", "parent": "X"})])


def test_grid_map_rejects_point_as_parent():
    grids = [parse_grid({"id": "P", "kind": "point"}), parse_grid({"id": "Q", "parent": "P"})]
    with pytest.raises(RecordError, match="expected an area or block grid above a point grid"):
        GridMap(grids)


def test_grid_map_rejects_duplicate_ids():
    with pytest.raises(RecordError, match="record 2: field 'id': expected a grid id not used before, got 'P'"):
        GridMap([parse_grid({"id": "P"}), parse_grid({"id": "P"})])


def test_grid_map_rejects_parent_cycle():
    grids = [parse_grid({"id": "A", "kind": "block", "parent": "B"}), parse_grid({"id": "B", "kind": "block",
                                                                                  "parent": "A"})]
    with pytest.raises(RecordError, match="a parent chain without a cycle"):
        GridMap(grids)


def test_haversine_km_known_distance_and_nan():
    # One degree of latitude is about 111.2 km everywhere.
    d = haversine_km(np.array([30.0, np.nan]), np.array([104.0, 104.0]), np.array([31.0, 30.0]),
                     np.array([104.0, 104.0]))
    assert d[0] == pytest.approx(111.2, abs=0.2)
    assert np.isnan(d[1])
