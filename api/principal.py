"""Who acts: the key's id, role and grids. Shared by the domain modules and the web layer."""

from __future__ import annotations

from typing import NamedTuple

from api.errors import ForbiddenError


class Principal(NamedTuple):
    """Who is calling: the key's id, role and (for staff) the grids it may see."""

    key_id: int | None
    role: str
    grids: frozenset[str]

    @property
    def actor(self) -> tuple[int | None, str]:
        return self.key_id, f"{self.role}:{self.key_id}"

    def sees(self, grid: str) -> bool:
        return self.role != "staff" or grid in self.grids


def forbid_grid(principal: Principal, grid: str) -> None:
    """Refuse a staff key acting on a grid it is not bound to."""
    if not principal.sees(grid):
        raise ForbiddenError(f"staff key may not act on grid '{grid}': it is bound to {len(principal.grids)} "
                             f"other grid(s)", zh=f"您的账号无权处理网格 {grid} 的事项（只能处理本人负责的网格）")
