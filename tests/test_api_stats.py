"""GET /v1/stats and the Excel exports: every figure equals a count taken straight from the tables."""

from __future__ import annotations

import datetime as dt
import io
import statistics
from collections import Counter

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from api.tables import GridRow, NeedRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow
from tests.api_helpers import BACKENDS, database, service


@pytest.fixture(params=BACKENDS)
def svc(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url) as svc:
        svc.load_lists()
        for need in ("n-care", "n-food", "n-law", "n-park"):
            svc.match(need, k=3)
        pending = svc.call("GET", "/v1/suggestions", "staff", params={"status": "pending"}).json()["items"]
        by_need: dict[str, list] = {}
        for s in pending:
            by_need.setdefault(s["need_id"], []).append(s["id"])
        needs = sorted(by_need)
        assert svc.call("POST", f"/v1/suggestions/{by_need[needs[0]][0]}/accept", "staff").status_code == 201
        if len(needs) > 1:
            svc.call("POST", f"/v1/suggestions/{by_need[needs[1]][0]}/reject", "staff",
                     json={"reason": "距离太远", "note": ""})
        yield svc


def _direct(svc, grids: set[str] | None = None) -> dict:
    """The figures counted in Python from every row of the tables."""
    with svc.app.state.readers() as session:
        needs = [n for n in session.scalars(select(NeedRow)) if grids is None or n.grid in grids]
        need_ids = {n.id for n in needs}
        resources = [r for r in session.scalars(select(ResourceRow)) if grids is None or r.grid in grids]
        suggestions = [s for s in session.scalars(select(SuggestionRow)) if s.need_id in need_ids]
        reviews = {r.suggestion_id: r for r in session.scalars(select(ReviewRow))}
        projects = [p for p in session.scalars(select(ProjectRow)) if p.need_id in need_ids]
        all_grids = [g for g in session.scalars(select(GridRow)) if grids is None or g.id in grids]
        need_of = {n.id: n for n in needs}
        side_of = {r.id: r.side for r in session.scalars(select(ResourceRow))}
        live = {p.need_id for p in projects if p.status in ("active", "completed")}
        today = dt.date.today()
        days = [((p.created_at.replace(tzinfo=None) - need_of[p.need_id].created_at.replace(tzinfo=None))
                 .total_seconds() / 86400) for p in projects]
        return {
            "needs_posted": len(needs), "resources_posted": len(resources), "suggestions_made": len(suggestions),
            "suggestions_accepted": sum(s.status == "accepted" for s in suggestions),
            "suggestions_rejected": sum(s.status == "rejected" for s in suggestions),
            "rejected_by_reason": dict(Counter(reviews[s.id].reason for s in suggestions if s.status == "rejected")),
            "projects_formed": len(projects), "projects_completed": sum(p.status == "completed" for p in projects),
            "projects_cancelled": sum(p.status == "cancelled" for p in projects),
            "enterprise_to_community": sum(side_of[p.resource_id] == "enterprise"
                                           and need_of[p.need_id].side == "community" for p in projects),
            "community_to_enterprise": sum(side_of[p.resource_id] == "community"
                                           and need_of[p.need_id].side == "enterprise" for p in projects),
            "needs_overdue": sum(n.status == "open" and n.deadline is not None and n.deadline < today
                                 and n.id not in live for n in needs),
            "needs_escalated": sum(n.escalated for n in needs),
            "grids": len(all_grids),
            "grids_with_project": len({need_of[p.need_id].grid for p in projects
                                       if p.status in ("active", "completed")} & {g.id for g in all_grids}),
            "median_days_to_project": round(statistics.median(days), 1) if days else None,
        }


def test_stats_totals_equal_direct_counts(svc):
    total = svc.call("GET", "/v1/stats", "analyst").json()["total"]
    expected = _direct(svc)
    assert {k: total[k] for k in expected} == expected
    assert expected["projects_formed"] == 1 and expected["suggestions_made"] >= 3


def test_stats_for_staff_count_their_own_grids_only(svc):
    total = svc.call("GET", "/v1/stats", "staff").json()["total"]
    expected = _direct(svc, {"P1", "P2"})
    assert {k: total[k] for k in expected} == expected


def test_stats_groups_add_up_to_the_total(svc):
    for group in ("street", "grid", "category", "month"):
        result = svc.call("GET", "/v1/stats", "analyst", params={"group_by": group}).json()
        for figure in ("needs_posted", "resources_posted", "suggestions_made", "projects_formed"):
            assert sum(g[figure] for g in result["groups"]) == result["total"][figure], (group, figure)


def test_stats_filters_narrow_the_figures(svc):
    by_grid = svc.call("GET", "/v1/stats", "analyst", params={"grid": "P1"}).json()["total"]
    assert by_grid == {**by_grid, **_direct(svc, {"P1"})}
    future = svc.call("GET", "/v1/stats", "analyst", params={"from": "2999-01-01"}).json()["total"]
    assert future["needs_posted"] == future["projects_formed"] == 0
    today = dt.date.today().isoformat()
    this_day = svc.call("GET", "/v1/stats", "analyst", params={"from": today, "to": today}).json()["total"]
    assert this_day == {**this_day, **_direct(svc)}  # everything here was posted today


def test_stats_bad_group_and_date_are_422_naming_the_field(svc):
    response = svc.call("GET", "/v1/stats", "analyst", params={"group_by": "planet"})
    assert response.status_code == 422 and "group_by" in response.text
    response = svc.call("GET", "/v1/stats", "analyst", params={"from": "2026-13-40"})
    assert response.status_code == 422 and "from" in response.text


def test_stats_and_lists_export_to_excel_with_chinese_headers_and_titles(svc):
    book = load_workbook(io.BytesIO(svc.call("GET", "/v1/stats", "analyst",
                                             params={"group_by": "street", "format": "xlsx"}).content))
    assert book.sheetnames == ["合计", "按街道"]
    total = book["合计"]
    # Title rows: what, whose scope, which period, made when and by whom; then the header row, frozen.
    lines = [total.cell(row=r, column=1).value for r in range(1, 6)]
    assert lines[0] == "对接统计" and lines[1] == "范围：全区" and lines[2] == "时段：全部"
    assert lines[3].startswith("导出时间：") and "Asia/Shanghai" in lines[3] and lines[4].startswith("导出人：分析员")
    assert total["A6"].value == "分组" and total.freeze_panes == "A7"
    coverage = next(c for c in total[6] if c.value == "网格覆盖率").column
    assert total.cell(row=7, column=coverage).number_format == "0.0%"  # as the page shows it
    assert book["按街道"]._charts  # a bar chart of projects per street
    response = svc.call("GET", "/v1/projects", "staff", params={"format": "xlsx"})
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content))["项目清单"]
    assert sheet["A2"].value == "范围：P1，P2"  # a staff key's own grids
    header = [c.value for c in sheet[5]]
    assert header[:5] == ["项目编号", "需求编号", "需求标题", "资源编号", "资源标题"]
    assert sheet["C6"].value and sheet["E6"].value  # titles beside the ids
    needs = load_workbook(io.BytesIO(svc.call("GET", "/v1/needs", params={"format": "xlsx"}).content))["需求清单"]
    assert needs.max_row == 4 + 1 + svc.call("GET", "/v1/needs").json()["total"]
    queue = load_workbook(io.BytesIO(svc.call("GET", "/v1/suggestions", "staff", params={"format": "xlsx"}).content))
    assert {"需求网格", "街道", "截止日期"} <= {c.value for c in queue.active[5]}  # where and by when


def test_cli_report_writes_the_months_workbook(tmp_path, capsys):
    from api.cli import main

    with database("sqlite", tmp_path) as url:
        with service(url) as svc:
            svc.load_lists()
            sid = svc.match("n-care", k=2)[0]["id"]
            assert svc.call("POST", f"/v1/suggestions/{sid}/accept", "staff").status_code == 201
        month = dt.date.today().strftime("%Y-%m")
        out = tmp_path / "report.xlsx"
        assert main(["report", "--month", month, "--out", str(out), "--database-url", url]) == 0
        assert "1 projects formed" in capsys.readouterr().out
        book = load_workbook(out)
        assert book.sheetnames == ["合计", "按街道", "按网格", "本月形成的项目", "超期需求"]
        assert book["本月形成的项目"]["A1"].value == f"对接月报 {dt.date.today():%Y年%m月} · 本月形成的项目"
        assert book["本月形成的项目"]["C7"].value == "双职工家庭需要暑期托管服务"  # the need's title
        assert book["按街道"]._charts
        assert main(["report", "--month", "2026-13", "--out", str(out), "--database-url", url]) == 2
        assert "month: expected a month from 01 to 12, got '2026-13'" in capsys.readouterr().err
