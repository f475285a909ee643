"""Rings of nearness (grid → area/block → street → district) and distances between places."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from matcher.errors import RecordError
from matcher.records import RINGS, Grid

RING_LABELS = ("同一网格", "同一园区/街区", "同一街道", "全区范围")
GRID, AREA, STREET, DISTRICT = range(4)
EARTH_RADIUS_KM = 6371.0088


class GridMap:
    """The grid tree: for each grid, its area, its block and its street, as integer codes.

    Integer codes let the rings of many candidate pairs be computed in one numpy pass.
    """

    def __init__(self, grids: Iterable[Grid] = ()) -> None:
        self.grids: dict[str, Grid] = {}
        for number, grid in enumerate(grids, start=1):
            if grid.id in self.grids:
                raise RecordError("id", "a grid id not used before", grid.id, record=number)
            self.grids[grid.id] = grid
        self._check_parents()
        ids = list(self.grids)
        self.code = {gid: i for i, gid in enumerate(ids)}
        self.area = np.full(len(ids), -1, dtype=np.int64)
        self.block = np.full(len(ids), -1, dtype=np.int64)
        self.street = np.full(len(ids), -1, dtype=np.int64)
        streets: dict[str, int] = {}
        for gid, i in self.code.items():
            street = ""
            for ancestor in self._chain(gid):
                if ancestor.kind == "area" and self.area[i] < 0:
                    self.area[i] = self.code[ancestor.id]
                if ancestor.kind == "block" and self.block[i] < 0:
                    self.block[i] = self.code[ancestor.id]
                street = street or ancestor.street
            if street:
                self.street[i] = streets.setdefault(street, len(streets))
        self.street_names = {gid: self._street_name(gid) for gid in ids}

    def _chain(self, gid: str) -> list[Grid]:
        chain, seen = [], set()
        while gid and gid not in seen:
            seen.add(gid)
            chain.append(self.grids[gid])
            gid = self.grids[gid].parent
        return chain

    def _street_name(self, gid: str) -> str:
        return next((g.street for g in self._chain(gid) if g.street), "")

    def _check_parents(self) -> None:
        for number, grid in enumerate(self.grids.values(), start=1):
            if not grid.parent:
                continue
            parent = self.grids.get(grid.parent)
            if parent is None:
                raise RecordError("parent", "the id of a grid in the same list", grid.parent, record=number)
            if parent.kind == "point" or (grid.kind == "block" and parent.kind != "block"):
                raise RecordError("parent", f"an area or block grid above a {grid.kind} grid",
                                  f"{grid.parent} ({parent.kind})", record=number)
            seen = {grid.id}
            while parent is not None and parent.parent:
                if parent.id in seen:
                    raise RecordError("parent", "a parent chain without a cycle", grid.parent, record=number)
                seen.add(parent.id)
                parent = self.grids.get(parent.parent)

    def check(self, records: Sequence[Any], what: str) -> None:
        """Refuse a record whose grid is not in the list; without a grid list, grids are compared by id alone."""
        if not self.grids:
            return
        for number, record in enumerate(records, start=1):
            if record.grid and record.grid not in self.grids:
                raise RecordError("grid", "the id of a grid in the grid list", record.grid, source=what,
                                  record=number)

    def __contains__(self, gid: str) -> bool:
        return gid in self.grids

    def __len__(self) -> int:
        return len(self.grids)

    def codes(self, grid_ids: Sequence[str]) -> np.ndarray:
        """Integer code of each grid id; -1 for no grid or a grid this map does not know."""
        return np.fromiter((self.code.get(g, -1) for g in grid_ids), dtype=np.int64, count=len(grid_ids))

    def rings(self, need_codes: np.ndarray, resource_codes: np.ndarray) -> np.ndarray:
        """Ring (0 grid, 1 area/block, 2 street, 3 district) of each need/resource code pair."""
        ring = np.full(need_codes.shape, DISTRICT, dtype=np.int8)
        known = (need_codes >= 0) & (resource_codes >= 0)
        n, r = need_codes[known], resource_codes[known]
        sub = np.full(n.shape, DISTRICT, dtype=np.int8)
        if len(self):
            sub[(self.street[n] >= 0) & (self.street[n] == self.street[r])] = STREET
            same_zone = ((self.area[n] >= 0) & (self.area[n] == self.area[r])) | (
                (self.block[n] >= 0) & (self.block[n] == self.block[r])
            )
            sub[same_zone] = AREA
        sub[n == r] = GRID
        ring[known] = sub
        return ring


def ring_index(name: str) -> int:
    """Position of a ring name in RINGS: grid 0 … district 3."""
    return RINGS.index(name)


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km; NaN where any coordinate is NaN."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
