"""Excel (XLSX) exports of the lists and the figures: Chinese headers, titles beside ids, widths that
fit, a frozen header row, written with openpyxl. Cells come from matcher.writers.xlsx_cells, the one rule
for every spreadsheet the project writes: text is a string cell, never a formula."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Response
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from api import labels
from api.privacy import TEXT_FIELDS, mask
from matcher.writers import xlsx_cells

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# (text, the post's grid) -> the text as the reader may see it (api.privacy.masker).
Shown = Callable[[str, str], str]


def masked(text: str, grid: str = "") -> str:
    """The default for exports: personal details masked, unless a caller knows its reader handles the post."""
    return mask(text)

# Most a cell is widened to (characters); longer text wraps in Excel when the user asks.
MAX_WIDTH = 60
# Rows one export writes at most: a district's lists fit many times over; beyond, filter first.
MAX_ROWS = 200_000
SIDE_LABELS = {**labels.SIDES, "": ""}
STATUS_LABELS = labels.STATUSES


# Columns shown as percentages (the page shows 1.5 %, Excel showed 0.0152 in General format).
PERCENT_COLUMNS = {"grid_coverage"}
# Where the service runs; a sheet's times are written in it (Excel has no time zones).
DEFAULT_ZONE = "Asia/Shanghai"


class Sheet(NamedTuple):
    title: str
    columns: Sequence[tuple[str, str]]  # (key in each row, Chinese header)
    rows: Iterable[dict[str, Any]]
    chart: tuple[str, str] | None = None  # (category column key, value column key): a bar chart beside
    heading: Sequence[str] = ()  # lines above the header row: report, scope, period, made at, by whom


def heading(title: str, principal: Any = None, *, scope: str = "", period: str = "", by: str = "",
            zone: str = DEFAULT_ZONE) -> list[str]:
    """The title rows of an export: what it is, whose scope (the key's, unless given), which period, when and
    by whom it was made. The readers skip them, so a list export with them still reads back in."""
    if not scope and principal is not None and getattr(principal, "limited", False):
        scope = "，".join([*sorted(principal.own), *sorted(principal.streets)]) or "（无）"
    scope = scope or "全区"
    made = dt.datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    if not by and principal is not None:
        by = f"{labels.ROLES.get(principal.role, principal.role)}（编号 {principal.key_id}）"
    lines = [title, f"范围：{scope}"] + ([f"时段：{period}"] if period else [])
    return [*lines, f"导出时间：{made}（{zone}）", *([f"导出人：{by}"] if by else [])]


def _width(value: Any) -> int:
    text = "" if value is None else str(value)
    # A Chinese character takes about two Latin ones' width.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def workbook(sheets: Sequence[Sheet], zone: str = DEFAULT_ZONE) -> bytes:
    book = Workbook()
    book.remove(book.active)
    local = ZoneInfo(zone)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        keys = [key for key, _ in sheet.columns]
        for number, line in enumerate(sheet.heading):
            ws.append(xlsx_cells(ws, [line]))
            ws.cell(row=number + 1, column=1).font = Font(bold=number == 0, size=14 if number == 0 else 10)
        top = len(sheet.heading) + 1  # the header row
        ws.append(xlsx_cells(ws, [header for _, header in sheet.columns]))
        widths = [_width(header) for _, header in sheet.columns]
        formats = [_format(key) for key in keys]
        count = 0
        for row in sheet.rows:
            values = [_cell(row.get(key), local) for key in keys]
            cells = xlsx_cells(ws, values)
            for cell, value, number_format in zip(cells, values, formats, strict=True):
                if number_format and isinstance(value, int | float):
                    cell.number_format = number_format
                elif isinstance(value, dt.datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
            ws.append(cells)
            widths = [max(w, _width(v)) for w, v in zip(widths, values, strict=True)]
            count += 1
            if count >= MAX_ROWS:
                break
        for cell in ws[top]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
        for index, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 6), MAX_WIDTH)
        ws.freeze_panes = f"A{top + 1}"
        if sheet.chart and count:
            category, value = (keys.index(k) + 1 for k in sheet.chart)
            chart = BarChart()
            chart.title = dict(sheet.columns)[sheet.chart[1]]
            chart.add_data(Reference(ws, min_col=value, min_row=top, max_row=top + count), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=category, min_row=top + 1, max_row=top + count))
            chart.width, chart.height = 24, 10
            ws.add_chart(chart, f"{get_column_letter(len(keys) + 2)}{top + 1}")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _format(key: str) -> str | None:
    return "0.0%" if key in PERCENT_COLUMNS else None


def _cell(value: Any, local: ZoneInfo | None = None) -> Any:
    if isinstance(value, dict):
        return "；".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "；".join(str(v) for v in value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # Excel has no time zones: the wall time where the service runs, as the pages show it.
        return value.astimezone(local or ZoneInfo(DEFAULT_ZONE)).replace(tzinfo=None)
    return value


def xlsx_response(sheets: Sequence[Sheet], filename: str, *, heading: Sequence[str] = (),
                  zone: str = DEFAULT_ZONE) -> Response:
    """The workbook as a download; `heading` (see heading()) tops every sheet that has none of its own."""
    sheets = [s if s.heading or not heading else s._replace(heading=heading) for s in sheets]
    # RFC 5987: a Chinese file name travels percent-encoded, with an ASCII fallback.
    disposition = f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return Response(workbook(sheets, zone), media_type=XLSX, headers={"Content-Disposition": disposition})


# ---------------------------------------------------------------- the lists and the figures
GRID_COLUMNS = [("id", "网格编号"), ("name", "网格名称"), ("kind", "类型"), ("parent", "上级网格"), ("street", "街道")]
NEED_COLUMNS = [("id", "需求编号"), ("title", "需求标题"), ("description", "说明"), ("category", "类别"),
                ("grid", "网格编号"), ("grid_name", "网格名称"), ("street", "街道"), ("side", "发布方"),
                ("lat", "纬度"), ("lon", "经度"), ("deadline", "截止日期"), ("ring", "匹配范围"), ("status", "状态"),
                ("escalated", "已上报"),
                ("created_at", "发布时间")]
RESOURCE_COLUMNS = [("id", "资源编号"), ("title", "资源标题"), ("description", "说明"), ("category", "类别"),
                    ("grid", "网格编号"), ("grid_name", "网格名称"), ("street", "街道"), ("side", "提供方"),
                    ("lat", "纬度"), ("lon", "经度"), ("capacity", "容量"), ("taken", "已占用"), ("status", "状态"),
                    ("created_at", "发布时间")]
SUGGESTION_COLUMNS = [("id", "配对编号"), ("need_id", "需求编号"), ("need_title", "需求标题"),
                      ("grid_name", "需求网格"), ("street", "街道"), ("deadline", "截止日期"),
                      ("resource_id", "资源编号"), ("resource_title", "资源标题"), ("score", "评分"),
                      ("status", "状态"), ("reasons", "推荐理由"), ("model_version", "模型版本"),
                      ("created_at", "推荐时间")]
PROJECT_COLUMNS = [("id", "项目编号"), ("need_id", "需求编号"), ("need_title", "需求标题"),
                   ("resource_id", "资源编号"), ("resource_title", "资源标题"), ("grid_name", "需求网格"),
                   ("street", "街道"), ("status", "状态"), ("resolution", "结果"), ("satisfaction", "满意度"),
                   ("outcome", "结果说明"), ("created_at", "建立时间"), ("finished_at", "结束时间")]
STATS_COLUMNS = [("key", "分组"), ("needs_posted", "发布需求"), ("resources_posted", "发布资源"),
                 ("suggestions_made", "推荐配对"), ("suggestions_accepted", "接受"), ("suggestions_rejected", "拒绝"),
                 ("rejected_by_reason", "拒绝原因"), ("projects_formed", "形成项目"),
                 ("projects_completed", "完成项目"), ("projects_cancelled", "终止项目"),
                 ("projects_by_resolution", "项目结果"), ("median_days_to_completion", "立项到完成中位天数"),
                 ("enterprise_to_community", "企业资源→社区需求"), ("community_to_enterprise", "社区资源→企业需求"),
                 ("median_days_to_project", "发布到立项中位天数"), ("needs_overdue", "超期需求"),
                 ("needs_escalated", "已上报需求"), ("escalated_ring", "上报后匹配范围"), ("grids", "网格数"),
                 ("grids_with_project", "有项目的网格"), ("grid_coverage", "网格覆盖率")]
GROUP_LABELS = {"street": "街道", "grid": "网格", "category": "类别", "month": "月份", None: "全部"}
RING_LABELS = labels.RINGS


def plain(row: Any, grids: dict[str, Any] | None = None, shown: Shown = masked) -> dict[str, Any]:
    """A table row as a dict with Chinese labels for codes and, where it has a grid, the grid's name; its
    text as `shown` lets the reader see it (api/privacy.py: masked unless told)."""
    out = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    for name in TEXT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = shown(out[name], out.get("grid") or "")
    if "side" in out:
        out["side"] = SIDE_LABELS.get(out["side"], out["side"])
    if "status" in out:
        out["status"] = STATUS_LABELS.get(out["status"], out["status"])
    if "ring" in out:
        out["ring"] = RING_LABELS.get(out["ring"], out["ring"])
    if "escalated" in out:
        out["escalated"] = "是" if out["escalated"] else "否"
    if grids is not None and "grid" in out:
        grid = grids.get(out["grid"])
        out["grid_name"] = grid.name if grid is not None else ""
        out["street"] = grid.street if grid is not None else ""
    return out


def stats_period(chosen: Any) -> str:
    """The period a figures export covers, as its title rows say it."""
    start, stop = getattr(chosen, "date_from", None), getattr(chosen, "date_to", None)
    if not start and not stop:
        return "全部"
    return f"{start or '最早'} 至 {stop or '今天'}"


def stats_sheets(result: dict[str, Any]) -> list[Sheet]:
    group = result.get("group_by")
    sheets = [Sheet("合计", STATS_COLUMNS, [{"key": "全部", **result["total"]}])]
    if group:
        sheets.append(Sheet(f"按{GROUP_LABELS[group]}", STATS_COLUMNS, result["groups"],
                            chart=("key", "projects_formed")))
    return sheets


def titled(row: Any, need: Any, resource: Any, grids: dict[str, Any], shown: Shown = masked) -> dict[str, Any]:
    """A suggestion or project as an export row: the need's and resource's titles beside their ids, and
    the need's grid by name."""
    place = grids.get(need.grid)
    fields = plain(row)
    if fields.get("resolution"):
        fields["resolution"] = {"resolved": "解决", "partial": "部分解决", "unresolved": "未解决"}.get(
            fields["resolution"], fields["resolution"])
    return {**fields, "need_title": shown(need.title, need.grid), "deadline": need.deadline,
            "resource_title": shown(resource.title, resource.grid),
            "grid_name": place.name if place is not None else need.grid,
            "street": place.street if place is not None else ""}


def with_titles(session, stmt, grids: dict[str, Any] | None = None, shown: Shown = masked
                ) -> Iterable[dict[str, Any]]:
    """Rows of a suggestions or projects query (need joined) as titled export rows."""
    from api.lists import grids_by_id
    from api.tables import NeedRow, ResourceRow

    grids = grids_by_id(session) if grids is None else grids
    entity = stmt.column_descriptions[0]["entity"]
    joined = (stmt.add_columns(NeedRow, ResourceRow)
              .join(ResourceRow, ResourceRow.id == entity.resource_id).limit(MAX_ROWS))
    for row, need, resource in session.execute(joined):
        yield titled(row, need, resource, grids, shown)
