"""Figures of the three lists per street, grid, category or month, as JSON or an Excel workbook."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api import exports, stats
from api.deps import Reader, SessionDep, SettingsDep
from api.schemas import GridKind, Side

router = APIRouter(prefix="/v1/stats", tags=["stats"])
Format = Literal["json", "xlsx"]


@router.get("", summary="Figures of the lists (staff: their own grids), grouped by street, grid, category or month",
            responses={200: {"content": {exports.XLSX: {}}, "description": "JSON, or XLSX with format=xlsx"}})
def read_stats(principal: Reader, session: SessionDep, settings: SettingsDep, street: str | None = None,
               grid: str | None = None,
               grid_kind: GridKind | None = None, category: str | None = None, side: Side | None = None,
               date_from: Annotated[dt.date | None, Query(alias="from")] = None,
               date_to: Annotated[dt.date | None, Query(alias="to")] = None,
               group_by: Literal["street", "grid", "category", "month"] | None = None, format: Format = "json"):
    from matcher.records import KIND_ALIASES, SIDE_ALIASES

    chosen = stats.StatsFilter(street=street, grid=grid, grid_kind=KIND_ALIASES.get(grid_kind, grid_kind),
                               category=category, side=SIDE_ALIASES.get(side, side) or None,
                               date_from=date_from, date_to=date_to)
    result = stats.figures(session, principal, chosen, group_by)
    if format == "xlsx":
        lines = exports.heading("对接统计", principal, period=exports.stats_period(chosen), zone=settings.timezone)
        return exports.xlsx_response(exports.stats_sheets(result), "对接统计.xlsx", heading=lines,
                                     zone=settings.timezone)
    return result
