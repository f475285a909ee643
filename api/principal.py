"""Who acts: the key's id, role and scope. Shared by the domain modules and the web layer."""

from __future__ import annotations

from typing import NamedTuple

from api.errors import ForbiddenError


class Principal(NamedTuple):
    """Who is calling: the key's id, its role and, when it is limited to a place, every grid it covers.

    `grids` is the whole scope: the key's grids with every grid under them (面 under 片, 点 under 面)
    and every grid of its streets. A staff key is always limited; another role is limited when its key
    names grids or streets (`scoped`).
    """

    key_id: int | None
    role: str
    grids: frozenset[str]
    streets: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()  # the grids the key itself names, before the tree is followed
    scoped: bool = False

    @property
    def actor(self) -> tuple[int | None, str]:
        return self.key_id, f"{self.role}:{self.key_id}"

    @property
    def limited(self) -> bool:
        return self.scoped or self.role == "staff"

    def sees(self, grid: str) -> bool:
        return not self.limited or grid in self.grids


def forbid_grid(principal: Principal, grid: str) -> None:
    """Refuse a limited key acting on a grid outside its scope."""
    if not principal.sees(grid):
        raise ForbiddenError(f"{principal.role} key may not act on grid '{grid}': its scope covers "
                             f"{len(principal.grids)} other grid(s)",
                             zh=f"您的账号无权处理网格 {grid} 的事项（只能处理本人负责的网格）")
