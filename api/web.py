"""The review page's plumbing: a signed session cookie, CSRF tokens, and safe highlighting of shared terms."""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request, Response, status
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import pass_context
from markupsafe import Markup, escape

from matcher.packaged import packaged

COOKIE = "duijie_session"
MAX_AGE_S = 12 * 3600  # one working day
templates = Jinja2Templates(directory=packaged("api", "templates"))


@pass_context
def _local(context: dict[str, Any], moment: dt.datetime | dt.date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored moment (UTC) as the wall time where the service runs (DUIJIE_TIMEZONE), as staff read it."""
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(context["request"].app.state.settings.timezone))
    return moment.strftime(fmt)


templates.env.filters["local"] = _local


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.session_secret, salt="duijie-review")


def read_session(request: Request) -> dict[str, Any]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(request).loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def write_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    # HttpOnly: no script can read it; SameSite=Strict: no other site's form can ride on it.
    response.set_cookie(COOKIE, _serializer(request).dumps(data), max_age=MAX_AGE_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/review")


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/review")


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, creating a session that holds only it when there is none yet."""
    session = read_session(request)
    if "csrf" not in session:
        session["csrf"] = new_csrf()
        request.state.new_session = session
    return session["csrf"]


def check_csrf(request: Request, token: str | None) -> None:
    expected = read_session(request).get("csrf")
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


def highlight(text: str, terms: set[str]) -> Markup:
    """Escape `text`, then wrap each occurrence of a shared term in <mark>; longest terms first."""
    # Single ASCII characters (a digit, a letter) would light up everywhere; a single Chinese one is a word.
    usable = sorted((t for t in terms if t and (len(t) > 1 or not t.isascii())), key=len, reverse=True)
    if not text or not usable:
        return escape(text or "")
    pattern = re.compile("|".join(re.escape(t) for t in usable), re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(Markup("<mark>") + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
