"""The monthly report leaders are asked for: one workbook with the month's figures per street and grid,
the projects formed, the needs overdue, and a chart of projects per street."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import exports, lists, privacy, stats
from api.matching import overdue
from api.principal import Principal
from api.tables import GridRow, NeedRow, ProjectRow

DISTRICT = Principal(None, "analyst", frozenset())
OVERDUE_COLUMNS = [("id", "需求编号"), ("title", "需求标题"), ("grid_name", "网格名称"), ("street", "街道"),
                   ("deadline", "截止日期"), ("days_over", "超期天数"), ("escalated", "已上报"), ("ring", "匹配范围")]


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a YYYY-MM month."""
    if not re.fullmatch(r"\d{4}-\d{2}", month or ""):
        raise ValueError(f"month: expected YYYY-MM such as 2026-11, got {month!r}")
    year, number = map(int, month.split("-"))
    if not 1 <= number <= 12:
        raise ValueError(f"month: expected a month from 01 to 12, got {month!r}")
    first = dt.date(year, number, 1)
    following = dt.date(year + number // 12, number % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def write_month_report(session: Session, first: dt.date, last: dt.date, out: Path, *,
                       street: str | None = None, mask_personal_data: bool = True,
                       zone: str = exports.DEFAULT_ZONE) -> dict[str, Any]:
    """Write the workbook atomically; returns the month's total figures. Leaders read it: personal details
    in the titles are masked (api/privacy.py) unless the setting turns masking off."""
    shown = privacy.masker(None, mask_personal_data)
    chosen = stats.StatsFilter(street=street, date_from=first, date_to=last)
    by_street = stats.figures(session, DISTRICT, chosen, "street")
    by_grid = stats.figures(session, DISTRICT, chosen, "grid")
    grids = lists.grids_by_id(session)
    names = {g.id: f"{g.name or g.id}" for g in grids.values()}
    grid_rows = [{**row, "key": f"{names.get(row['key'], row['key'])}（{row['key']}）"} for row in by_grid["groups"]]
    projects = (select(ProjectRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
                .where(stats.day(ProjectRow.created_at) >= first, stats.day(ProjectRow.created_at) <= last)
                .order_by(ProjectRow.id))
    if street:
        projects = projects.where(NeedRow.grid.in_(select(GridRow.id).where(GridRow.street == street)))
    sheets = [
        exports.Sheet("合计", exports.STATS_COLUMNS, [{**by_street["total"], "key": f"{first:%Y年%m月}"}]),
        exports.Sheet("按街道", exports.STATS_COLUMNS, by_street["groups"], chart=("key", "projects_formed")),
        exports.Sheet("按网格", exports.STATS_COLUMNS, grid_rows),
        exports.Sheet("本月形成的项目", exports.PROJECT_COLUMNS,
                      list(exports.with_titles(session, projects, grids, shown))),
        exports.Sheet("超期需求", OVERDUE_COLUMNS, _overdue(session, grids, street, shown)),
    ]
    lines = exports.heading(f"对接月报 {first:%Y年%m月}", None, scope=street or "", period=f"{first} 至 {last}",
                            zone=zone, by="duijie report（命令行）")
    sheets = [sheet._replace(heading=[f"{lines[0]} · {sheet.title}", *lines[1:]]) for sheet in sheets]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part")
    partial.write_bytes(exports.workbook(sheets, zone))
    partial.replace(out)  # whole or not at all
    return by_street["total"]


def _overdue(session: Session, grids: dict[str, GridRow], street: str | None,
             shown: exports.Shown) -> list[dict[str, Any]]:
    """Needs past their deadline today with no live project: 限时清零's list."""
    today = dt.date.today()
    stmt = select(NeedRow).where(overdue(today)).order_by(NeedRow.deadline)
    rows = []
    for need in session.scalars(stmt):
        grid = grids.get(need.grid)
        if street and (grid is None or grid.street != street):
            continue
        row = exports.plain(need, grids, shown)
        row["days_over"] = (today - need.deadline).days
        rows.append(row)
    return rows
