"""The three lists' figures, as leaders are asked for them: per street, grid, category or month.

Every figure is one grouped SQL query over the tables (no Python loop over rows, but the median's),
so the page and the monthly report answer in well under a second at a zone's size.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Date, Select, String, and_, case, func, literal, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from api.decisions import RESOLUTIONS
from api.lists import in_place
from api.matching import LIVE_PROJECT, overdue
from api.principal import Principal
from api.tables import GridRow, NeedRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow, aware

GROUPS = ("street", "grid", "category", "month")
ALL = "全部"


class StatsFilter(NamedTuple):
    street: str | None = None
    grid: str | None = None
    grid_kind: str | None = None
    category: str | None = None
    side: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def day(column):
    """The calendar day of a timestamp column, comparable with a date on both backends (SQLite's CAST to
    DATE would keep only the year)."""
    return _Day(column)


def month(column):
    """The YYYY-MM of a timestamp column, on either backend."""
    return _Month(column)


class _Day(FunctionElement):
    type = Date()
    inherit_cache = True
    name = "duijie_day"


class _Month(FunctionElement):
    type = String()
    inherit_cache = True
    name = "duijie_month"


@compiles(_Day)
def _day_default(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(_Day, "sqlite")
def _day_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_Month)
def _month_default(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@compiles(_Month, "sqlite")
def _month_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


def _key(group: str | None, listed, created_at):
    """The grouping expression for a list's rows: its grid's street, its grid, its category or month."""
    if group == "street":
        return _street_key()
    if group == "grid":
        return func.coalesce(func.nullif(listed.grid, ""), "（未注明网格）")
    if group == "category":
        return func.coalesce(func.nullif(listed.category, ""), "（未分类）")
    if group == "month":
        return month(created_at)
    return literal(ALL)


def _where(stmt: Select, listed, created_at, principal: Principal, f: StatsFilter) -> Select:
    """Filters on the listed record (a need, or a resource) that the figure counts, and on its date."""
    stmt = stmt.join_from(listed, GridRow, GridRow.id == listed.grid, isouter=True)
    stmt = in_place(stmt, listed.grid, principal, grid=f.grid)  # staff: their own grids
    if f.street:
        stmt = stmt.where(GridRow.street == f.street)
    if f.grid_kind:
        stmt = stmt.where(GridRow.kind == f.grid_kind)
    if f.category:
        stmt = stmt.where(listed.category == f.category)
    if f.side:
        stmt = stmt.where(listed.side == f.side)
    if f.date_from:
        stmt = stmt.where(day(created_at) >= f.date_from)
    if f.date_to:
        stmt = stmt.where(day(created_at) <= f.date_to)
    return stmt


def figures(session: Session, principal: Principal, f: StatsFilter, group: str | None = None,
            today: dt.date | None = None) -> dict[str, Any]:
    """Figures for the whole selection (`total`) and, when `group` is given, per group (`groups`)."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group_by: expected one of {', '.join(GROUPS)}, got {group!r}")
    today = today or dt.date.today()
    total = _empty()
    if not group:
        for _, values in _collect(session, principal, f, None, today):
            _merge(total, values)
        return {"total": _finish(total), "group_by": None}
    # Every row falls in exactly one group, so the total is the groups added up: one pass, not two. Only
    # grid coverage has no meaning per month or category, and is counted on its own for the total.
    groups: dict[str, dict[str, Any]] = defaultdict(_empty)
    for key, values in _collect(session, principal, f, group, today):
        _merge(groups[key], values)
    for values in groups.values():
        _merge(total, {k: v for k, v in values.items() if group in ("street", "grid") or k not in COVERAGE})
    if group not in ("street", "grid"):
        for _, values in _collect(session, principal, f, None, today, only_grids=True):
            _merge(total, values)
    return {"total": _finish(total), "group_by": group,
            "groups": [{"key": key, **_finish(values)} for key, values in sorted(groups.items())]}


COVERAGE = ("grids", "grids_with_project")


def _empty() -> dict[str, Any]:
    return {"needs_posted": 0, "resources_posted": 0, "suggestions_made": 0, "suggestions_accepted": 0,
            "suggestions_rejected": 0, "rejected_by_reason": {}, "projects_formed": 0, "projects_completed": 0,
            "projects_cancelled": 0, "projects_by_resolution": {}, "_done_days": [],
            "enterprise_to_community": 0, "community_to_enterprise": 0,
            "other_direction": 0, "_days": [], "needs_overdue": 0, "needs_escalated": 0, "escalated_ring": {},
            "grids": 0, "grids_with_project": 0}


def _merge(bucket: dict[str, Any], values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, dict):
            for k, v in value.items():
                bucket[name][k] = bucket[name].get(k, 0) + v
        elif isinstance(value, list):
            bucket[name].extend(value)
        else:
            bucket[name] += value


def _finish(values: dict[str, Any]) -> dict[str, Any]:
    days = values.pop("_days")
    values["median_days_to_project"] = round(statistics.median(days), 1) if days else None
    done = values.pop("_done_days")
    values["median_days_to_completion"] = round(statistics.median(done), 1) if done else None
    values["grid_coverage"] = round(values["grids_with_project"] / values["grids"], 4) if values["grids"] else None
    return values


def _collect(session: Session, principal: Principal, f: StatsFilter, group: str | None,
             today: dt.date, *, only_grids: bool = False) -> Iterable[tuple[str, dict[str, Any]]]:
    if not only_grids:
        yield from _lists(session, principal, f, group, today)
    yield from _coverage(session, principal, f, group)


def _lists(session: Session, principal: Principal, f: StatsFilter, group: str | None,
           today: dt.date) -> Iterable[tuple[str, dict[str, Any]]]:
    need_key = _key(group, NeedRow, NeedRow.created_at)
    late = overdue(today)
    stmt = _where(select(need_key, func.count(), func.sum(case((late, 1), else_=0)),
                         func.sum(case((NeedRow.escalated.is_(True), 1), else_=0))),
                  NeedRow, NeedRow.created_at, principal, f).group_by(need_key)
    for key, posted, late, escalated in session.execute(stmt):
        yield key, {"needs_posted": posted, "needs_overdue": late or 0, "needs_escalated": escalated or 0}
    stmt = _where(select(need_key, NeedRow.ring, func.count()).where(NeedRow.escalated.is_(True)),
                  NeedRow, NeedRow.created_at, principal, f).group_by(need_key, NeedRow.ring)
    for key, ring, count in session.execute(stmt):
        yield key, {"escalated_ring": {ring: count}}

    resource_key = _key(group, ResourceRow, ResourceRow.created_at)
    stmt = _where(select(resource_key, func.count()), ResourceRow, ResourceRow.created_at, principal, f
                  ).group_by(resource_key)
    for key, posted in session.execute(stmt):
        yield key, {"resources_posted": posted}

    key = _key(group, NeedRow, SuggestionRow.created_at)
    stmt = _where(select(key, func.count(), func.sum(case((SuggestionRow.status == "accepted", 1), else_=0)),
                         func.sum(case((SuggestionRow.status == "rejected", 1), else_=0)))
                  .select_from(SuggestionRow).join(NeedRow, NeedRow.id == SuggestionRow.need_id),
                  NeedRow, SuggestionRow.created_at, principal, f).group_by(key)
    for k, made, accepted, rejected in session.execute(stmt):
        yield k, {"suggestions_made": made, "suggestions_accepted": accepted or 0,
                  "suggestions_rejected": rejected or 0}
    stmt = _where(select(key, ReviewRow.reason, func.count()).select_from(ReviewRow)
                  .join(SuggestionRow, SuggestionRow.id == ReviewRow.suggestion_id)
                  .join(NeedRow, NeedRow.id == SuggestionRow.need_id)
                  .where(ReviewRow.decision == "rejected", SuggestionRow.status == "rejected"),
                  NeedRow, SuggestionRow.created_at, principal, f).group_by(key, ReviewRow.reason)
    for k, reason, count in session.execute(stmt):
        yield k, {"rejected_by_reason": {reason or "（未注明）": count}}

    key = _key(group, NeedRow, ProjectRow.created_at)
    direction = case((and_(ResourceRow.side == "enterprise", NeedRow.side == "community"), "e2c"),
                     (and_(ResourceRow.side == "community", NeedRow.side == "enterprise"), "c2e"), else_="other")
    base = (select(ProjectRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
            .join(ResourceRow, ResourceRow.id == ProjectRow.resource_id))
    stmt = _where(base.with_only_columns(key, direction, func.count(),
                                         func.sum(case((ProjectRow.status == "completed", 1), else_=0)),
                                         func.sum(case((ProjectRow.status == "cancelled", 1), else_=0))),
                  NeedRow, ProjectRow.created_at, principal, f).group_by(key, direction)
    names = {"e2c": "enterprise_to_community", "c2e": "community_to_enterprise", "other": "other_direction"}
    for k, way, formed, completed, cancelled in session.execute(stmt):
        yield k, {"projects_formed": formed, "projects_completed": completed or 0,
                  "projects_cancelled": cancelled or 0, names[way]: formed}
    stmt = _where(base.with_only_columns(key, NeedRow.created_at, ProjectRow.created_at),
                  NeedRow, ProjectRow.created_at, principal, f)
    for k, posted, formed in session.execute(stmt):
        yield k, {"_days": [(aware(formed) - aware(posted)).total_seconds() / 86400]}
    # How the projects ended, and how long a completed one took from its forming.
    stmt = _where(base.with_only_columns(key, ProjectRow.resolution, func.count()).where(ProjectRow.resolution != ""),
                  NeedRow, ProjectRow.created_at, principal, f).group_by(key, ProjectRow.resolution)
    for k, resolution, count in session.execute(stmt):
        yield k, {"projects_by_resolution": {RESOLUTIONS.get(resolution, resolution): count}}
    stmt = _where(base.with_only_columns(key, ProjectRow.created_at, ProjectRow.finished_at)
                  .where(ProjectRow.status == "completed", ProjectRow.finished_at.is_not(None)),
                  NeedRow, ProjectRow.created_at, principal, f)
    for k, formed, finished in session.execute(stmt):
        yield k, {"_done_days": [(aware(finished) - aware(formed)).total_seconds() / 86400]}



def _coverage(session: Session, principal: Principal, f: StatsFilter,
              group: str | None) -> Iterable[tuple[str, dict[str, Any]]]:
    """Coverage as the report counts it: grids with at least one live project, among all grids."""
    grid_key = _grid_key(group)
    if grid_key is not None:
        grids = in_place(select(grid_key, func.count()).select_from(GridRow), GridRow.id, principal, grid=f.grid)
        for name, column in (("street", GridRow.street), ("grid_kind", GridRow.kind)):
            value = getattr(f, name)
            if value:
                grids = grids.where(column == value)
        with_project = grids.where(GridRow.id.in_(
            select(NeedRow.grid).join(ProjectRow, ProjectRow.need_id == NeedRow.id)
            .where(ProjectRow.status.in_(LIVE_PROJECT), *_project_dates(f))))
        for k, count in session.execute(grids.group_by(grid_key)):
            yield k, {"grids": count}
        for k, count in session.execute(with_project.group_by(grid_key)):
            yield k, {"grids_with_project": count}


def _street_key():
    return func.coalesce(func.nullif(GridRow.street, ""), "（未注明街道）")


def _grid_key(group: str | None):
    if group == "street":
        return _street_key()
    if group == "grid":
        return GridRow.id
    if group is None:
        return literal(ALL)
    return None  # coverage by category or month has no meaning: grids have neither


def _project_dates(f: StatsFilter) -> list:
    conditions = []
    if f.date_from:
        conditions.append(day(ProjectRow.created_at) >= f.date_from)
    if f.date_to:
        conditions.append(day(ProjectRow.created_at) <= f.date_to)
    return conditions or [true()]

