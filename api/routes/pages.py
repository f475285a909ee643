"""Pages beside the review queue: the statistics view, Excel downloads for each page, posting a need or a
resource from the web, the landing page, and the API docs served from the app's own files."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, status
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from api import exports, lists, privacy, stats
from api.deps import SessionDep, SettingsDep, WritesDep
from api.errors import DomainError, InvalidError
from api.routes.review import (
    Staff,
    Viewer,
    escalated_query,
    projects_query,
    queue_query,
    render,
    who,
)
from api.tables import GridRow
from api.web import check_csrf, templates
from matcher.errors import RecordError

router = APIRouter(include_in_schema=False)
GROUPS = {"street": "街道", "grid": "网格", "category": "类别", "month": "月份"}
HEADLINE = [("needs_posted", "发布需求"), ("resources_posted", "发布资源"), ("suggestions_made", "推荐配对"),
            ("suggestions_accepted", "接受"), ("projects_formed", "形成项目"), ("projects_completed", "完成项目"),
            ("enterprise_to_community", "企业资源→社区需求"), ("community_to_enterprise", "社区资源→企业需求"),
            ("median_days_to_project", "发布到立项中位天数"), ("median_days_to_completion", "立项到完成中位天数"),
            ("projects_by_resolution", "项目结果"), ("needs_overdue", "超期需求"),
            ("needs_escalated", "已上报需求"), ("grid_coverage", "网格覆盖率")]


def _filters(street: str, grid_kind: str, side: str, category: str, date_from: str, date_to: str
             ) -> stats.StatsFilter:
    def day(text: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(text) if text else None
        except ValueError:
            raise InvalidError(f"date: expected YYYY-MM-DD, got {text!r}",
                               zh=f"日期格式应为 年-月-日，收到 {text!r}") from None
    return stats.StatsFilter(street=street or None, grid_kind=grid_kind or None, side=side or None,
                             category=category or None, date_from=day(date_from), date_to=day(date_to))


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "；".join(f"{k} {v}" for k, v in value.items()) or "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@router.get("/review/stats", response_class=HTMLResponse)
def stats_page(request: Request, principal: Viewer, session: SessionDep, street: str = "", grid_kind: str = "",
               side: str = "", category: str = "", group_by: str = "street") -> HTMLResponse:
    # "from" is a Python keyword: the two dates are read from the query string by name.
    date_from, date_to = request.query_params.get("from", ""), request.query_params.get("to", "")
    group = group_by if group_by in GROUPS else "street"
    chosen = _filters(street, grid_kind, side, category, date_from, date_to)
    result = stats.figures(session, principal, chosen, group)
    # The charts want months and streets; the grouping asked for already is one of them, not computed twice.
    by_month = result["groups"] if group == "month" else stats.figures(session, principal, chosen, "month")["groups"]
    by_street = result["groups"] if group == "street" else stats.figures(session, principal, chosen, "street")["groups"]
    grids = lists.grids_by_id(session)
    visible = [g for g in grids.values() if principal.sees(g.id)]
    rows = [{**r, "grid_coverage": None if r["grid_coverage"] is None else f"{r['grid_coverage']:.1%}"}
            for r in result["groups"]]
    if group == "grid":  # names beside ids
        rows = [{**r, "key": f"{(grids[r['key']].name if r['key'] in grids else '') or r['key']}"} for r in rows]
    filters = {"street": street, "grid_kind": grid_kind, "side": side, "category": category, "from": date_from,
               "to": date_to, "group_by": group}
    total = dict(result["total"])
    if total.get("grid_coverage") is not None:
        total["grid_coverage"] = f"{total['grid_coverage']:.1%}"
    return render(request, "stats.html", {
        "principal": principal, "who": who(session, principal), "filters": filters, "group": group,
        "groups": GROUPS, "total": total, "headline": HEADLINE, "rows": rows, "columns": exports.STATS_COLUMNS,
        "cell": _cell, "streets": sorted({g.street for g in visible if g.street}),
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "scope": "全区" if not principal.limited else "本人负责的范围",
        "chart_data": {"months": [g["key"] for g in by_month], "month_needs": [g["needs_posted"] for g in by_month],
                       "month_projects": [g["projects_formed"] for g in by_month],
                       "streets": [g["key"] for g in by_street], "street_needs": [g["needs_posted"] for g in by_street],
                       "street_projects": [g["projects_formed"] for g in by_street],
                       "street_overdue": [g["needs_overdue"] for g in by_street]},
    })


@router.get("/review/export/stats.xlsx")
def export_stats(request: Request, principal: Viewer, session: SessionDep, settings: SettingsDep, street: str = "",
                 grid_kind: str = "", side: str = "", category: str = "", group_by: str = "street") -> Response:
    chosen = _filters(street, grid_kind, side, category, request.query_params.get("from", ""),
                      request.query_params.get("to", ""))
    result = stats.figures(session, principal, chosen, group_by if group_by in GROUPS else "street")
    lines = exports.heading("对接统计", principal, period=exports.stats_period(chosen), by=who(session, principal),
                            zone=settings.timezone)
    return exports.xlsx_response(exports.stats_sheets(result), "对接统计.xlsx", heading=lines, zone=settings.timezone)


@router.get("/review/export/{what}.xlsx")
def export_page(what: str, request: Request, principal: Staff, session: SessionDep, settings: SettingsDep,
                street: str = "", grid: str = "", category: str = "", side: str = "", q: str = "") -> Response:
    """What each page shows, all of it (not one page of it), as Excel."""
    grids = lists.grids_by_id(session)
    shown = privacy.masker(principal, settings.mask_personal_data)
    if what in ("suggestions", "projects"):
        stmt = (queue_query(principal, street=street, grid=grid, category=category, side=side, q=q)
                if what == "suggestions" else projects_query(principal, q))
        rows = (exports.titled(row, need, resource, grids, shown)
                for row, need, resource in session.execute(stmt.limit(exports.MAX_ROWS)))
        sheet = (exports.Sheet("待审核配对", exports.SUGGESTION_COLUMNS, rows) if what == "suggestions"
                 else exports.Sheet("项目清单", exports.PROJECT_COLUMNS, rows))
    elif what == "escalated":
        rows = (exports.plain(n, grids, shown)
                for n in session.scalars(escalated_query(principal).limit(exports.MAX_ROWS)))
        sheet = exports.Sheet("超期需求", exports.NEED_COLUMNS, rows)
    else:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    lines = exports.heading(sheet.title, principal, by=who(session, principal), zone=settings.timezone)
    return exports.xlsx_response([sheet], f"{sheet.title}.xlsx", heading=lines, zone=settings.timezone)


# ------------------------------------------------------------------ posting from the web
@router.get("/review/post", response_class=HTMLResponse)
def post_form(request: Request, principal: Staff, session: SessionDep, posted: str = "") -> HTMLResponse:
    return _post_page(request, principal, session, {}, "", posted)


def _post_page(request: Request, principal, session, form: dict, error: str, posted: str = "",
               code: int = 200) -> HTMLResponse:
    grids = [g for g in session.scalars(select(GridRow).order_by(GridRow.id)) if principal.sees(g.id)]
    return render(request, "post.html", {"principal": principal, "who": who(session, principal), "grids": grids,
                                         "form": form, "error": error, "posted": posted}, status_code=code)


@router.post("/review/post", response_class=HTMLResponse)
def post(request: Request, principal: Staff, session: SessionDep, writes: WritesDep, settings: SettingsDep,
         kind: Annotated[str, Form(max_length=10)] = "needs", title: Annotated[str, Form(max_length=600)] = "",
         description: Annotated[str, Form(max_length=20_000)] = "",
         category: Annotated[str, Form(max_length=600)] = "", grid: Annotated[str, Form(max_length=300)] = "",
         side: Annotated[str, Form(max_length=20)] = "", deadline: Annotated[str, Form(max_length=20)] = "",
         capacity: Annotated[str, Form(max_length=10)] = "1", csrf: Annotated[str, Form(max_length=100)] = ""):
    """A need or resource from a staff member, checked by the same record parsers as the API and files."""
    check_csrf(request, csrf)
    form = {"kind": kind, "title": title, "description": description, "category": category, "grid": grid,
            "side": side, "deadline": deadline, "capacity": capacity}
    if kind not in ("needs", "resources"):
        return _post_page(request, principal, session, form, "请选择发布需求还是资源", code=422)
    record_id = f"W{dt.date.today():%Y%m%d}-{secrets.token_hex(3).upper()}"
    payload = {"id": record_id, "title": title, "description": description, "category": category, "grid": grid,
               "side": side}
    payload |= {"deadline": deadline or None} if kind == "needs" else {"capacity": capacity or 1}
    try:
        row, _ = writes.create(session, kind, payload, principal,
                               {"ring": settings.initial_ring} if kind == "needs" else {})
    except (DomainError, RecordError) as exc:
        message = getattr(exc, "zh", None) or str(exc)
        return _post_page(request, principal, session, form, f"未能发布：{message}", code=422)
    return _post_page(request, principal, session, {}, "", posted=f"{'需求' if kind == 'needs' else '资源'} {row.id}",
                      code=status.HTTP_201_CREATED)


# ------------------------------------------------------------------ landing and docs
@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    # No session here: the review cookie lives under /review, and a new one set from / would replace it.
    return templates.TemplateResponse(request, "landing.html", {"principal": None, "csrf": "", "notice": ""})


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    # Swagger UI's own files come with the fastapi-offline package and are served from /docs-static:
    # the page works on a network that reaches only this service.
    return get_swagger_ui_html(openapi_url=request.app.openapi_url, title="对接 Duijie · 接口文档",
                               swagger_js_url="/docs-static/swagger-ui-bundle.js",
                               swagger_css_url="/docs-static/swagger-ui.css",
                               swagger_favicon_url="/docs-static/favicon.png")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=request.app.openapi_url, title="对接 Duijie · 接口文档",
                          redoc_js_url="/docs-static/redoc.standalone.js", redoc_favicon_url="/docs-static/favicon.png",
                          with_google_fonts=False)

