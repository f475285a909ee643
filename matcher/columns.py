"""Records → numpy columns, so the stages after vectors work on whole batches at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from matcher.proximity import GridMap, ring_index
from matcher.records import SIDES, Need, Resource


class Columns(NamedTuple):
    """Per-record columns of a batch of needs or resources (row i is record i)."""

    ids: list[str]
    grids: np.ndarray  # grid id strings (object), "" for none
    grid_code: np.ndarray  # int64, -1 where the grid map does not know the grid
    side: np.ndarray  # int8: 0 unknown, 1 enterprise, 2 community
    category: np.ndarray  # object: normalized category, "" for none
    lat: np.ndarray  # float64, NaN for none
    lon: np.ndarray
    open: np.ndarray  # bool
    capacity: np.ndarray  # int64 (needs: 1)
    capacity_left: np.ndarray  # int64 (needs: 1)
    ring: np.ndarray  # int8 widest ring searched (resources: district)


def columns(records: Sequence[Need | Resource], grid_map: GridMap) -> Columns:
    """Build the columns of already-checked records."""
    n = len(records)
    side_code = {side: i + 1 for i, side in enumerate(SIDES)}
    grids = np.array([r.grid for r in records], dtype=object)
    capacity = np.array([getattr(r, "capacity", 1) for r in records], dtype=np.int64)
    return Columns(
        ids=[r.id for r in records],
        grids=grids,
        grid_code=grid_map.codes(list(grids)),
        side=np.array([side_code.get(r.side, 0) for r in records], dtype=np.int8),
        category=np.array([r.category for r in records], dtype=object),
        lat=np.array([np.nan if r.lat is None else r.lat for r in records], dtype=np.float64),
        lon=np.array([np.nan if r.lon is None else r.lon for r in records], dtype=np.float64),
        open=np.array([r.status == "open" for r in records], dtype=bool),
        capacity=capacity,
        capacity_left=np.array([getattr(r, "capacity_left", 1) for r in records], dtype=np.int64),
        ring=np.array([ring_index(getattr(r, "ring", "district")) for r in records], dtype=np.int8)
        if n else np.zeros(0, dtype=np.int8),
    )
