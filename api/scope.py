"""A key's scope follows the grid tree: a block (片) covers its areas (面) and their points (点), an area
its points, a street every grid in it. Expanded once per change of the grid list, not per request."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.principal import Principal
from api.tables import ApiKeyRow, GridRow


class GridTree:
    """Children and streets of every grid, from (id, parent, street) rows."""

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.parent: dict[str, str] = {}
        own_street: dict[str, str] = {}
        self.children: dict[str, list[str]] = {}
        for gid, parent, street in rows:
            self.parent[gid] = parent or ""
            own_street[gid] = street or ""
            if parent:
                self.children.setdefault(parent, []).append(gid)
        self.street: dict[str, str] = {}
        for gid in self.parent:  # a grid's street is its own, else the nearest ancestor's (as GridMap reads it)
            node, seen = gid, set()
            while node and node not in seen and not own_street.get(node):
                seen.add(node)
                node = self.parent.get(node, "")
            self.street[gid] = own_street.get(node, "") if node else ""

    def under(self, grids: Iterable[str]) -> set[str]:
        """The grids and every grid below them."""
        found, stack = set(), [g for g in grids if g in self.parent]
        while stack:
            gid = stack.pop()
            if gid not in found:
                found.add(gid)
                stack.extend(self.children.get(gid, ()))
        return found

    def in_streets(self, streets: Iterable[str]) -> set[str]:
        wanted = set(streets)
        return {gid for gid, street in self.street.items() if street in wanted}

    def unknown(self, grids: Sequence[str] = (), streets: Sequence[str] = ()) -> tuple[list[str], list[str]]:
        known_streets = set(self.street.values())
        return [g for g in grids if g not in self.parent], [s for s in streets if s not in known_streets]


_lock = threading.Lock()
_cached: tuple[tuple, GridTree] | None = None


def grid_tree(session: Session) -> GridTree:
    """The grid tree, rebuilt only when the grid list changed (its size or latest update)."""
    global _cached
    stamp = tuple(session.execute(select(func.count(), func.max(GridRow.updated_at))).one())
    with _lock:
        if _cached is not None and _cached[0] == stamp:
            return _cached[1]
    tree = GridTree(session.execute(select(GridRow.id, GridRow.parent, GridRow.street)).all())
    with _lock:
        _cached = (stamp, tree)
    return tree


def principal_for(session: Session, key: ApiKeyRow) -> Principal:
    """The principal of a key, its grids and streets expanded through the grid tree."""
    grids, streets = list(key.grids or []), list(key.streets or [])
    if not grids and not streets:
        return Principal(key.id, key.role, frozenset())
    tree = grid_tree(session)
    scope = tree.under(grids) | tree.in_streets(streets)
    return Principal(key.id, key.role, frozenset(scope), frozenset(streets), frozenset(grids), scoped=True)
