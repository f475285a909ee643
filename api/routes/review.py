"""The review page for grid staff (/review): sign in with a staff key, work the queue, keep the projects list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from api import decisions
from api.db import in_transaction
from api.deps import EngineDep, Principal, SessionDep, SettingsDep
from api.keys import find_key
from api.lists import in_place
from api.matching import LIVE_PROJECT, match_need
from api.tables import ApiKeyRow, GridRow, NeedRow, ProjectRow, ResourceRow, SuggestionRow
from api.web import check_csrf, clear_session, csrf_token, highlight, new_csrf, read_session, templates, write_session
from matcher.proximity import RING_LABELS
from matcher.records import RINGS

router = APIRouter(prefix="/review", tags=["review page"], include_in_schema=False)
REASONS = ("不相关", "距离太远", "资源已满", "需求已解决", "其他")
SIDES = {"enterprise": "企业", "community": "社区", "": "未注明"}
STATUS_LABELS = {"active": "进行中", "completed": "已完成", "cancelled": "已取消"}
NOTICES = {"accepted": "已接受：项目已建立", "rejected": "已拒绝，原因已记录", "matched": "已重新匹配",
           "project": "项目状态已更新", "signed_out": "已退出"}


class SignInRequiredError(Exception):
    """Raised by the page dependency; answered with a redirect to the sign-in form."""


def staff_principal(request: Request) -> Principal:
    """The signed-in staff member; the key is looked up on every request, so revoking it signs them out."""
    key_id = read_session(request).get("key")
    # Its own short session: the route's session must stay free for the route's own transaction.
    with request.app.state.readers() as session:
        row = session.get(ApiKeyRow, key_id) if isinstance(key_id, int) else None
        if row is None or row.revoked_at is not None or row.role not in ("staff", "admin"):
            raise SignInRequiredError
        return Principal(row.id, row.role, frozenset(row.grids or []))


Staff = Annotated[Principal, Depends(staff_principal)]


def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    context = {"csrf": csrf_token(request), "request": request, **context}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if getattr(request.state, "new_session", None):
        write_session(request, response, request.state.new_session)
    return response


def back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?notice={notice}", status_code=status.HTTP_303_SEE_OTHER)


# ------------------------------------------------------------------ signing in
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    return render(request, "login.html", {"error": error == "1"})


@router.post("/login")
def login(request: Request, session: SessionDep, key: Annotated[str, Form(max_length=200)] = "",
          csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    row = find_key(session, key.strip()) if key.strip() else None
    if row is None or row.role not in ("staff", "admin"):
        return render(request, "login.html", {"error": True}, status_code=status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/review", status_code=status.HTTP_303_SEE_OTHER)
    # A fresh CSRF token at sign-in: a token planted before it cannot be reused after.
    write_session(request, response, {"key": row.id, "csrf": new_csrf()})
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    response = RedirectResponse("/review/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session(response)
    return response


# ------------------------------------------------------------------ the queue
def _grid_names(session) -> dict[str, GridRow]:
    return {g.id: g for g in session.scalars(select(GridRow))}


@router.get("", response_class=HTMLResponse)
def queue(request: Request, principal: Staff, session: SessionDep, engine: EngineDep, street: str = "",
          grid: str = "", category: str = "", side: str = "", notice: str = "") -> HTMLResponse:
    grids = _grid_names(session)
    stmt = (select(SuggestionRow, NeedRow, ResourceRow)
            .join(NeedRow, NeedRow.id == SuggestionRow.need_id)
            .join(ResourceRow, ResourceRow.id == SuggestionRow.resource_id)
            .where(SuggestionRow.status == "pending"))
    stmt = in_place(stmt, NeedRow.grid, principal, grid=grid or None, street=street or None)
    if category:
        stmt = stmt.where(NeedRow.category == category)
    if side:
        stmt = stmt.where(NeedRow.side == side)
    stmt = stmt.order_by(NeedRow.deadline.is_(None), NeedRow.deadline, SuggestionRow.score.desc()).limit(50)
    visible = [g for g in grids.values() if principal.sees(g.id)]
    return render(request, "queue.html", {
        "cards": _cards(session, engine, stmt, grids), "sides": SIDES, "reasons": REASONS,
        "notice": NOTICES.get(notice, ""),
        "filters": {"street": street, "grid": grid, "category": category, "side": side},
        "grids": visible, "streets": sorted({g.street for g in visible if g.street}), "principal": principal,
    })


@router.get("/suggestions/{suggestion_id}", response_class=HTMLResponse)
def one_suggestion(request: Request, suggestion_id: int, principal: Staff, session: SessionDep,
                   engine: EngineDep) -> HTMLResponse:
    """One suggestion on its own page (a link to share); another grid's is refused like any other act."""
    decisions.get_suggestion(session, suggestion_id, principal)
    stmt = (select(SuggestionRow, NeedRow, ResourceRow).join(NeedRow, NeedRow.id == SuggestionRow.need_id)
            .join(ResourceRow, ResourceRow.id == SuggestionRow.resource_id).where(SuggestionRow.id == suggestion_id))
    return render(request, "queue.html", {"cards": _cards(session, engine, stmt, _grid_names(session)),
                                          "sides": SIDES, "reasons": REASONS, "notice": "", "single": True,
                                          "filters": {}, "grids": [], "streets": [], "principal": principal})


def _cards(session, engine, stmt, grids: dict[str, GridRow]) -> list[dict]:
    today = dt.date.today()
    cards = []
    for suggestion, need, resource in session.execute(stmt):
        # The terms were found in these very texts when the pair was scored, as each post spelled them
        # (traditional script included): nothing is re-tokenized here.
        terms = suggestion.terms or []
        in_need, in_resource = {t.get("need", "") for t in terms}, {t.get("resource", "") for t in terms}
        features = suggestion.features or {}
        cards.append({
            "suggestion": suggestion, "need": need, "resource": resource,
            "need_title": highlight(need.title, in_need), "need_description": highlight(need.description, in_need),
            "resource_title": highlight(resource.title, in_resource),
            "resource_description": highlight(resource.description, in_resource),
            "need_grid": grids.get(need.grid), "resource_grid": grids.get(resource.grid),
            "ring": RING_LABELS[int(features.get("ring", 3))], "distance": features.get("distance_km"),
            "capacity_left": resource.capacity - resource.taken,
            "overdue": bool(need.deadline and need.deadline < today),
        })
    return cards


@router.post("/suggestions/{suggestion_id}/accept")
def accept(request: Request, suggestion_id: int, principal: Staff, session: SessionDep, engine: EngineDep,
           csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    project = in_transaction(session, lambda s: decisions.accept(s, suggestion_id, principal))
    engine.capacity_moved(project.resource_id)
    return back("/review", "accepted")


@router.post("/suggestions/{suggestion_id}/reject")
def reject(request: Request, suggestion_id: int, principal: Staff, session: SessionDep,
           reason: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form(max_length=2000)] = "",
           csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    if reason not in REASONS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"请选择拒绝原因（{'、'.join(REASONS)}）")
    if reason == "其他" and not note.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "选择“其他”时请填写说明")
    with session.begin():
        decisions.reject(session, suggestion_id, principal, reason, note.strip())
    return back("/review", "rejected")


# ------------------------------------------------------------------ projects
@router.get("/projects", response_class=HTMLResponse)
def projects(request: Request, principal: Staff, session: SessionDep, notice: str = "") -> HTMLResponse:
    stmt = (select(ProjectRow, NeedRow, ResourceRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
            .join(ResourceRow, ResourceRow.id == ProjectRow.resource_id).order_by(ProjectRow.id.desc()))
    stmt = in_place(stmt, NeedRow.grid, principal)
    rows = [{"project": p, "need": n, "resource": r} for p, n, r in session.execute(stmt.limit(200))]
    return render(request, "projects.html", {"rows": rows, "labels": STATUS_LABELS, "sides": SIDES,
                                             "notice": NOTICES.get(notice, ""), "principal": principal})


@router.post("/projects/{project_id}")
def update_project(request: Request, project_id: int, principal: Staff, session: SessionDep, engine: EngineDep,
                   new_status: Annotated[str, Form(alias="status", max_length=20)] = "",
                   outcome: Annotated[str, Form(max_length=2000)] = "",
                   csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    if new_status not in ("completed", "cancelled"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请选择“已完成”或“已取消”")
    with session.begin():
        project = decisions.move_project(session, project_id, principal, new_status, outcome.strip())
    if new_status == "cancelled":
        engine.capacity_moved(project.resource_id)
    return back("/review/projects", "project")


# ------------------------------------------------------------------ escalated needs
@router.get("/escalated", response_class=HTMLResponse)
def escalated(request: Request, principal: Staff, session: SessionDep, notice: str = "") -> HTMLResponse:
    served = select(ProjectRow.need_id).where(ProjectRow.status.in_(LIVE_PROJECT))
    stmt = select(NeedRow).where(NeedRow.escalated.is_(True), NeedRow.status == "open", NeedRow.id.not_in(served))
    stmt = in_place(stmt, NeedRow.grid, principal)
    grids = _grid_names(session)
    needs = [{"need": n, "grid": grids.get(n.grid), "ring": RING_LABELS[RINGS.index(n.ring)]}
             for n in session.scalars(stmt.order_by(NeedRow.deadline))]
    return render(request, "escalated.html", {"needs": needs, "sides": SIDES, "notice": NOTICES.get(notice, ""),
                                              "principal": principal})


@router.post("/needs/{need_id}/match")
def rematch(request: Request, need_id: str, principal: Staff, session: SessionDep, engine: EngineDep,
            settings: SettingsDep, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    match_need(session, engine, need_id, 10, settings.min_score, principal)
    return back("/review", "matched")
