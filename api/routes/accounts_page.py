"""The admin's accounts page (/review/accounts): create an account, reset a password, stop an account.

A password made here is shown once, on the answer to the form that made it, and never stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api import accounts, audit, labels
from api.deps import SessionDep
from api.principal import Principal
from api.routes.review import render, signed_in, who
from api.tables import GridRow
from api.web import check_csrf
from matcher.messages import in_chinese

router = APIRouter(prefix="/review/accounts", include_in_schema=False)


def admin_principal(request: Request) -> Principal:
    return signed_in(request, ("admin",))


Admin = Annotated[Principal, Depends(admin_principal)]
Csrf = Annotated[str, Form(max_length=100)]


def _page(request: Request, principal: Principal, session, *, error: str = "", shown: tuple[str, str] | None = None,
          form: dict | None = None, code: int = 200) -> HTMLResponse:
    rows = [{"account": a, "key": k, "role": labels.ROLES.get(k.role, k.role),
             "scope": "，".join([*k.grids, *(k.streets or [])]) or "全区"} for a, k in accounts.listing(session)]
    streets = sorted({s for s in session.scalars(select(GridRow.street)) if s})
    return render(request, "accounts.html", {
        "principal": principal, "who": who(session, principal), "rows": rows, "error": error, "shown": shown,
        "form": form or {}, "roles": {r: labels.ROLES[r] for r in ("staff", "leader", "analyst", "admin")},
        "streets": streets, "active": "accounts"}, status_code=code)


@router.get("", response_class=HTMLResponse)
def page(request: Request, principal: Admin, session: SessionDep) -> HTMLResponse:
    return _page(request, principal, session)


@router.post("", response_class=HTMLResponse)
def create(request: Request, principal: Admin, session: SessionDep, csrf: Csrf = "",
           username: Annotated[str, Form(max_length=64)] = "", role: Annotated[str, Form(max_length=10)] = "staff",
           grids: Annotated[str, Form(max_length=2000)] = "",
           streets: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse:
    check_csrf(request, csrf)
    form = {"username": username, "role": role, "grids": grids, "streets": streets}
    split = [[p.strip() for p in text.replace("，", ",").split(",") if p.strip()] for text in (grids, streets)]
    try:
        with session.begin():
            row, password = accounts.create_account(session, username, role, *split)
            audit.record(session, principal.actor, "create", "account", row.id, {"role": role})
    except ValueError as exc:  # the account's refusal or its key's (unknown grid, staff without grids)
        return _page(request, principal, session, error=in_chinese(exc), form=form, code=422)
    return _page(request, principal, session, shown=(row.username, password), code=status.HTTP_201_CREATED)


@router.post("/{username}/reset", response_class=HTMLResponse)
def reset(request: Request, username: str, principal: Admin, session: SessionDep, csrf: Csrf = "") -> HTMLResponse:
    check_csrf(request, csrf)
    try:
        with session.begin():
            password = accounts.reset_password(session, username)
            audit.record(session, principal.actor, "reset", "account", username)
    except ValueError as exc:
        return _page(request, principal, session, error=in_chinese(exc), code=404)
    return _page(request, principal, session, shown=(username, password))


@router.post("/{username}/disable", response_class=HTMLResponse)
def disable(request: Request, username: str, principal: Admin, session: SessionDep, csrf: Csrf = "") -> HTMLResponse:
    check_csrf(request, csrf)
    try:
        with session.begin():
            accounts.disable_account(session, username)
            audit.record(session, principal.actor, "disable", "account", username)
    except ValueError as exc:  # unknown, or the last admin
        return _page(request, principal, session, error=in_chinese(exc), code=409)
    return _page(request, principal, session)

