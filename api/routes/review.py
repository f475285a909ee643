"""The review page for grid staff (/review): sign in with a key, work the queue page by page, take back a
recent decision, keep the projects list, and see the overdue needs."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, func, or_, select

from api import accounts, decisions, labels, privacy, search, throttle, web_sessions
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, WritesDep
from api.errors import DomainError
from api.keys import find_key
from api.lists import grids_by_id, in_place
from api.matching import match_need, served_needs
from api.scope import principal_for
from api.tables import GridRow, NeedRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow, aware
from api.web import check_csrf, clear_session, csrf_token, highlight, new_csrf, read_session, templates, write_session
from matcher.history import REJECT_REASONS
from matcher.proximity import RING_LABELS
from matcher.records import RINGS

router = APIRouter(prefix="/review", tags=["review page"], include_in_schema=False)
REASONS = REJECT_REASONS
SIDES = labels.SIDES
STATUS_LABELS = labels.STATUSES
NOTICES = {"accepted": "已接受：项目已建立", "rejected": "已拒绝，原因已记录", "matched": "已重新匹配",
           "project": "项目已更新", "bulk": "批量处理完成，结果见下", "none_chosen": "请先勾选要处理的配对",
           "signed_out": "已退出", "undone": "已撤销，该配对回到待审核",
           "posted": "已发布", "expired": "登录已超时，请重新登录"}
PAGE_SIZE = 20
# Who may sign in to the pages, and what each sees: staff and admin work the queue; analysts and street
# leaders read figures and exports.
PAGE_ROLES = ("staff", "admin", "analyst", "leader")


class SignInRequiredError(Exception):
    """Raised by the page dependency; answered with a redirect to the sign-in form."""


def signed_in(request: Request, roles: tuple[str, ...]) -> Principal:
    """The signed-in user of a live server-side session; the key is looked up on every request, so a
    revoked key, an ended or idle session all sign the user out."""
    state = request.app.state
    key = web_sessions.alive_key(state.readers, state.sessions, read_session(request).get("sid"),
                                 state.settings.session_idle_s)
    if key is None or key.revoked_at is not None or key.role not in PAGE_ROLES:
        raise SignInRequiredError
    if key.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "此页面只供网格员使用；分析员和街道领导请查看统计页面")
    with state.readers() as session:
        return principal_for(session, key)


def staff_principal(request: Request) -> Principal:
    return signed_in(request, ("staff", "admin"))


def viewer_principal(request: Request) -> Principal:
    return signed_in(request, PAGE_ROLES)


Staff = Annotated[Principal, Depends(staff_principal)]
Viewer = Annotated[Principal, Depends(viewer_principal)]


ROLE_NAMES = labels.ROLES


def who(session, principal: Principal) -> str:
    """The header's line: the key's own grids and streets by name (a few of them), and how many grids that
    covers with the grids under them; not dozens of ids."""
    role = ROLE_NAMES.get(principal.role, principal.role)
    if not principal.limited:
        return f"{role} · 全区"
    names = [g.name or g.id for g in session.scalars(select(GridRow).where(GridRow.id.in_(sorted(principal.own)))
                                                      .order_by(GridRow.id))] + sorted(principal.streets)
    shown = "、".join(names[:3]) + (" 等" if len(names) > 3 else "")
    covered = len(principal.grids)
    return f"{role} · {shown}" + (f"（含下属共 {covered} 个网格）" if covered > len(principal.own) else "")


def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    # Every page writes posts' text through `private` (api/privacy.py): whole for the staff of the post's grid.
    context = {"csrf": csrf_token(request), "request": request, "labels": labels,
               "private": privacy.masker(context.get("principal"), request.app.state.settings.mask_personal_data),
               **context}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if getattr(request.state, "new_session", None):
        write_session(request, response, request.state.new_session)
    return response


def back(path: str, notice: str) -> RedirectResponse:
    """Back to a page of the review site, with its filters, search and page as they were, and a notice."""
    path = safe_next(path)
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=False) if k != "notice"]
    query.append(("notice", notice))
    return RedirectResponse(f"{parts.path}?{urlencode(query)}{'#' + parts.fragment if parts.fragment else ''}",
                            status_code=status.HTTP_303_SEE_OTHER)


def safe_next(path: str, default: str = "/review") -> str:
    """Only a path on this site's review pages: never another host (//evil, /\\evil, https://…)."""
    if not path.startswith("/review") or any(c in path for c in "\\\r\n") or urlsplit(path).netloc:
        return default
    return path


def here(request: Request) -> str:
    """This page's path and query, without its notice: where a decision made on it comes back to."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "notice"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


class Paged:
    """One page of a query: its rows, and where the pager goes."""

    def __init__(self, session, stmt: Select, page: int, size: int = PAGE_SIZE, *, scalars: bool = False) -> None:
        self.total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        self.pages = max(math.ceil(self.total / size), 1)
        self.page = min(max(page, 1), self.pages)
        window = stmt.limit(size).offset((self.page - 1) * size)
        self.rows = list(session.scalars(window) if scalars else session.execute(window))


# ------------------------------------------------------------------ signing in
# One answer for a wrong name, a wrong password and a stopped account: it does not tell which names exist.
SIGN_IN_FAILED = "登录失败：用户名或密码不对，或账号已停用。"

@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "", notice: str = "") -> HTMLResponse:
    return render(request, "login.html", {"error": SIGN_IN_FAILED if error == "1" else "",
                                          "notice": NOTICES.get(notice, "")})


@router.post("/login")
def login(request: Request, session: SessionDep, username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=200)] = "", key: Annotated[str, Form(max_length=200)] = "",
          csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Sign in with a username and password (or, for those who have one, a key). Failures are counted per
    name and per address (api/throttle.py); past the limit the answer is 429 with Retry-After."""
    check_csrf(request, csrf)
    address = request.client.host if request.client else "unknown"
    counted = throttle.subjects("" if key.strip() else username, address)
    with session.begin():
        wait = throttle.wait_seconds(session, counted)
    if wait:
        response = render(request, "login.html", {"error": f"登录失败次数过多，请 {math.ceil(wait / 60)} 分钟后再试。",
                                                  "username": username}, status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        response.headers["Retry-After"] = str(wait)
        return response
    with session.begin():
        if key.strip():
            row = find_key(session, key.strip())
        else:
            row = accounts.verify(session, username, password) if username.strip() and password else None
        allowed = row is not None and row.role in PAGE_ROLES
        token = web_sessions.start(session, row.id) if allowed else None
        role = row.role if allowed else ""
        if token is None:
            throttle.failed(session, counted)
        elif counted[0].startswith("account:"):
            throttle.succeeded(session, counted[0])  # the name's count starts again; the address's stays
    if token is None:
        return render(request, "login.html", {"error": SIGN_IN_FAILED, "username": username},
                      status_code=status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/review/stats" if role in ("analyst", "leader") else "/review",
                                status_code=status.HTTP_303_SEE_OTHER)
    # A fresh CSRF token at sign-in: a token planted before it cannot be reused after.
    write_session(request, response, {"sid": token, "csrf": new_csrf()})
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, csrf)
    token = read_session(request).get("sid")
    if isinstance(token, str):
        with session.begin():
            web_sessions.end(session, token)  # the cookie, copied or not, opens nothing from now on
    response = back("/review/login", "signed_out")
    clear_session(response)
    return response


# ------------------------------------------------------------------ the queue
def queue_query(principal: Principal, *, street: str = "", grid: str = "", category: str = "", side: str = "",
                q: str = "") -> Select:
    stmt = (select(SuggestionRow, NeedRow, ResourceRow)
            .join(NeedRow, NeedRow.id == SuggestionRow.need_id)
            .join(ResourceRow, ResourceRow.id == SuggestionRow.resource_id)
            .where(SuggestionRow.status == "pending"))
    stmt = in_place(stmt, NeedRow.grid, principal, grid=grid or None, street=street or None)
    if category:
        stmt = stmt.where(NeedRow.category == category)
    if side:
        stmt = stmt.where(NeedRow.side == side)
    if q.strip():  # through the normalizer and synonyms: 律師 finds 律师, 法务 finds 律师
        stmt = stmt.where(or_(search.matches(NeedRow.search_text, q), search.matches(ResourceRow.search_text, q)))
    return stmt.order_by(NeedRow.deadline.is_(None), NeedRow.deadline, SuggestionRow.score.desc(), SuggestionRow.id)


@router.get("", response_class=HTMLResponse)
def queue(request: Request, principal: Staff, session: SessionDep, engine: EngineDep, settings: SettingsDep,
          street: str = "",
          grid: str = "", category: str = "", side: str = "", q: str = "", page: int = 1,
          notice: str = "") -> HTMLResponse:
    grids = grids_by_id(session)
    filters = {"street": street, "grid": grid, "category": category, "side": side, "q": q}
    paged = Paged(session, queue_query(principal, **filters), page)
    visible = [g for g in grids.values() if principal.sees(g.id)]
    results = _take_flash(request)
    shown = privacy.masker(principal, settings.mask_personal_data)
    return render(request, "queue.html", {
        "cards": _cards(paged.rows, grids, shown), "paged": paged, "sides": SIDES, "reasons": REASONS,
        "notice": NOTICES.get(notice, ""), "filters": filters, "grids": visible,
        "streets": sorted({g.street for g in visible if g.street}), "principal": principal,
        "who": who(session, principal), "here": here(request), "results": results,
    })


def _take_flash(request: Request) -> list[list]:
    """Per-card results of a bulk decision, shown once."""
    data = read_session(request)
    results = data.pop("flash", None)
    if results is None:
        return []
    request.state.new_session = data
    return results if isinstance(results, list) else []


@router.get("/suggestions/{suggestion_id}", response_class=HTMLResponse)
def one_suggestion(request: Request, suggestion_id: int, principal: Staff, session: SessionDep,
                   settings: SettingsDep) -> HTMLResponse:
    """One suggestion on its own page (a link to share); another grid's is refused like any other act."""
    decisions.get_suggestion(session, suggestion_id, principal)
    stmt = (select(SuggestionRow, NeedRow, ResourceRow).join(NeedRow, NeedRow.id == SuggestionRow.need_id)
            .join(ResourceRow, ResourceRow.id == SuggestionRow.resource_id).where(SuggestionRow.id == suggestion_id))
    shown = privacy.masker(principal, settings.mask_personal_data)
    return render(request, "queue.html", {"cards": _cards(session.execute(stmt), grids_by_id(session), shown),
                                          "sides": SIDES, "reasons": REASONS, "notice": "", "single": True,
                                          "filters": {}, "grids": [], "streets": [], "principal": principal,
                                          "who": who(session, principal), "paged": None, "here": "/review",
                                          "results": []})


def _cards(rows, grids: dict[str, GridRow], shown: Callable[[str, str], str]) -> list[dict]:
    today = dt.date.today()
    cards = []
    for suggestion, need, resource in rows:
        # The terms were found in these very texts when the pair was scored, as each post spelled them
        # (traditional script included): nothing is re-tokenized here.
        terms = suggestion.terms or []
        in_need, in_resource = {t.get("need", "") for t in terms}, {t.get("resource", "") for t in terms}
        features = suggestion.features or {}
        cards.append({
            "suggestion": suggestion, "need": need, "resource": resource,
            "need_title": highlight(shown(need.title, need.grid), in_need),
            "need_description": highlight(shown(need.description, need.grid), in_need),
            "resource_title": highlight(shown(resource.title, resource.grid), in_resource),
            "resource_description": highlight(shown(resource.description, resource.grid), in_resource),
            "need_grid": grids.get(need.grid), "resource_grid": grids.get(resource.grid),
            "ring": RING_LABELS[int(features.get("ring", 3))], "distance": features.get("distance_km"),
            "capacity_left": resource.capacity - resource.taken,
            "overdue": bool(need.deadline and need.deadline < today),
            "status": STATUS_LABELS.get(suggestion.status, suggestion.status),
        })
    return cards


Next = Annotated[str, Form(alias="next", max_length=2000)]


@router.post("/suggestions/bulk")
def bulk(request: Request, principal: Staff, session: SessionDep, writes: WritesDep,
         ids: Annotated[list[int], Form(max_length=200)] = [],  # noqa: B006 (FastAPI reads it, never mutates)
         action: Annotated[str, Form(max_length=10)] = "", reason: Annotated[str, Form(max_length=20)] = "",
         note: Annotated[str, Form(max_length=2000)] = "", csrf: Annotated[str, Form(max_length=100)] = "",
         next_: Next = "/review") -> Response:
    """Accept or reject the cards ticked on the queue: one transaction per card, each card's result shown."""
    check_csrf(request, csrf)
    if action not in ("accept", "reject"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请选择批量操作：接受或拒绝")
    if action == "reject":
        _check_reason(reason, note)
    if not ids:
        return back(next_, "none_chosen")
    results = []
    for suggestion_id in dict.fromkeys(ids):
        try:
            if action == "accept":
                project = writes.accept(session, suggestion_id, principal)
                results.append([suggestion_id, True, f"已接受，项目 #{project.id}"])
            else:
                writes.reject(session, suggestion_id, principal, reason, note.strip())
                results.append([suggestion_id, True, f"已拒绝（{reason}）"])
        except DomainError as exc:
            results.append([suggestion_id, False, (exc.zh or exc.message)[:120]])
    response = back(next_, "bulk")
    write_session(request, response, {**read_session(request), "flash": results})
    return response


def _check_reason(reason: str, note: str) -> None:
    if reason not in REASONS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"请选择拒绝原因（{'、'.join(REASONS)}）")
    if reason == "其他" and not note.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "选择“其他”时请填写说明")


@router.post("/suggestions/{suggestion_id}/accept")
def accept(request: Request, suggestion_id: int, principal: Staff, session: SessionDep, writes: WritesDep,
           csrf: Annotated[str, Form(max_length=100)] = "", next_: Next = "/review") -> Response:
    check_csrf(request, csrf)
    writes.accept(session, suggestion_id, principal)
    return back(next_, "accepted")


@router.post("/suggestions/{suggestion_id}/reject")
def reject(request: Request, suggestion_id: int, principal: Staff, session: SessionDep, writes: WritesDep,
           reason: Annotated[str, Form(max_length=20)] = "", note: Annotated[str, Form(max_length=2000)] = "",
           csrf: Annotated[str, Form(max_length=100)] = "", next_: Next = "/review") -> Response:
    check_csrf(request, csrf)
    _check_reason(reason, note)
    writes.reject(session, suggestion_id, principal, reason, note.strip())
    return back(next_, "rejected")


# ------------------------------------------------------------------ decided, and undo
@router.get("/decided", response_class=HTMLResponse)
def decided(request: Request, principal: Staff, session: SessionDep, page: int = 1, notice: str = "") -> HTMLResponse:
    """This staff member's own decisions, newest first; those still inside the undo window can be taken back."""
    stmt = (select(ReviewRow, SuggestionRow, NeedRow, ResourceRow)
            .join(SuggestionRow, SuggestionRow.id == ReviewRow.suggestion_id)
            .join(NeedRow, NeedRow.id == SuggestionRow.need_id)
            .join(ResourceRow, ResourceRow.id == SuggestionRow.resource_id)
            .where(ReviewRow.key_id == principal.key_id).order_by(ReviewRow.id.desc()))
    paged = Paged(session, stmt, page)
    moment = dt.datetime.now(dt.UTC)
    rows = [{"review": review, "suggestion": suggestion, "need": need, "resource": resource,
             "undoable": moment - aware(review.created_at) <= decisions.UNDO_WINDOW}
            for review, suggestion, need, resource in paged.rows]
    return render(request, "decided.html", {"rows": rows, "paged": paged, "principal": principal,
                                            "notice": NOTICES.get(notice, ""), "who": who(session, principal),
                                            "window": decisions.UNDO_WINDOW.seconds // 60})


@router.post("/decisions/{review_id}/undo")
def undo(request: Request, review_id: int, principal: Staff, session: SessionDep, writes: WritesDep,
         csrf: Annotated[str, Form(max_length=100)] = "", next_: Next = "/review/decided") -> Response:
    check_csrf(request, csrf)
    writes.undo(session, review_id, principal)
    return back(safe_next(next_, "/review/decided"), "undone")



# ------------------------------------------------------------------ projects
def projects_query(principal: Principal, q: str = "") -> Select:
    stmt = (select(ProjectRow, NeedRow, ResourceRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
            .join(ResourceRow, ResourceRow.id == ProjectRow.resource_id).order_by(ProjectRow.id.desc()))
    if q.strip():
        stmt = stmt.where(or_(search.matches(NeedRow.search_text, q), search.matches(ResourceRow.search_text, q)))
    return in_place(stmt, NeedRow.grid, principal)


@router.get("/projects", response_class=HTMLResponse)
def projects(request: Request, principal: Staff, session: SessionDep, q: str = "", page: int = 1,
             notice: str = "") -> HTMLResponse:
    paged = Paged(session, projects_query(principal, q), page)
    grids = grids_by_id(session)
    notes = decisions.project_notes(session, [p.id for p, _, _ in paged.rows])
    rows = [{"project": p, "need": n, "resource": r, "need_grid": grids.get(n.grid),
             "resource_grid": grids.get(r.grid), "notes": notes.get(p.id, [])} for p, n, r in paged.rows]
    return render(request, "projects.html", {"rows": rows, "paged": paged, "q": q, "sides": SIDES,
                                             "notice": NOTICES.get(notice, ""), "principal": principal,
                                             "who": who(session, principal), "here": here(request),
                                             "resolutions": decisions.RESOLUTIONS})


@router.post("/projects/{project_id}")
def update_project(request: Request, project_id: int, principal: Staff, session: SessionDep, writes: WritesDep,
                   new_status: Annotated[str, Form(alias="status", max_length=20)] = "",
                   resolution: Annotated[str, Form(max_length=20)] = "",
                   satisfaction: Annotated[str, Form(max_length=2)] = "",
                   outcome: Annotated[str, Form(max_length=2000)] = "",
                   note: Annotated[str, Form(max_length=2000)] = "",
                   csrf: Annotated[str, Form(max_length=100)] = "", next_: Next = "/review/projects") -> Response:
    """Follow-up from the projects page: a note, a status move with how it ended, a satisfaction score."""
    check_csrf(request, csrf)
    if new_status not in ("", "active", "completed", "cancelled"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "状态应为 进行中、已完成 或 已终止")
    if satisfaction and satisfaction not in {"1", "2", "3", "4", "5"}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "满意度应为 1 到 5")
    writes.update_project(session, project_id, principal, status=new_status or None, resolution=resolution or None,
                          satisfaction=int(satisfaction) if satisfaction else None,
                          outcome=outcome.strip() or None, note=note)
    return back(safe_next(next_, "/review/projects"), "project")


# ------------------------------------------------------------------ escalated needs
def escalated_query(principal: Principal) -> Select:
    stmt = select(NeedRow).where(NeedRow.escalated.is_(True), NeedRow.status == "open",
                                 NeedRow.id.not_in(served_needs()))
    return in_place(stmt, NeedRow.grid, principal).order_by(NeedRow.deadline, NeedRow.id)


@router.get("/escalated", response_class=HTMLResponse)
def escalated(request: Request, principal: Staff, session: SessionDep, page: int = 1,
              notice: str = "") -> HTMLResponse:
    paged = Paged(session, escalated_query(principal), page, scalars=True)
    grids = grids_by_id(session)
    needs = [{"need": n, "grid": grids.get(n.grid), "ring": RING_LABELS[RINGS.index(n.ring)]} for n in paged.rows]
    return render(request, "escalated.html", {"needs": needs, "paged": paged, "sides": SIDES,
                                              "notice": NOTICES.get(notice, ""), "principal": principal,
                                              "who": who(session, principal)})


@router.post("/needs/{need_id}/match")
def rematch(request: Request, need_id: str, principal: Staff, session: SessionDep, engine: EngineDep,
            writes: WritesDep, settings: SettingsDep, csrf: Annotated[str, Form(max_length=100)] = "",
            next_: Next = "/review") -> Response:
    check_csrf(request, csrf)
    match_need(session, engine, need_id, 10, settings.min_score, principal)
    writes.after_commit([])
    return back(next_, "matched")
