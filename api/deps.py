"""Request dependencies: database session, the caller's key and role, the shared engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from api.engine import EngineState
from api.keys import find_key
from api.principal import Principal, forbid_grid
from api.scope import principal_for
from api.settings import Settings
from api.writes import Writes

# Methods that only read: their session never takes (nor waits for) SQLite's write lock.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    state = request.app.state
    with (state.readers if request.method in READ_METHODS else state.sessions)() as session:
        yield session


def get_engine(request: Request) -> EngineState:
    return request.app.state.engine


def get_writes(request: Request) -> Writes:
    return request.app.state.writes


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def get_principal(request: Request) -> Principal:
    key = _bearer(request)
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing API key: send the header 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.readers() as session:
        row = find_key(session, key)
        if row is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "API key not recognized or revoked",
                                headers={"WWW-Authenticate": "Bearer"})
        return principal_for(session, row)


def require(*roles: str):
    """Dependency that lets only the given roles through (admin always passes)."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role != "admin" and principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role '{principal.role}' may not do this: it needs one of {', '.join(roles)} or admin")
        return principal

    return check


SessionDep = Annotated[Session, Depends(get_session)]
EngineDep = Annotated[EngineState, Depends(get_engine)]
WritesDep = Annotated[Writes, Depends(get_writes)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Anyone = Annotated[Principal, Depends(get_principal)]
Platform = Annotated[Principal, Depends(require("platform"))]
Reader = Annotated[Principal, Depends(require("platform", "staff", "analyst", "leader"))]
Reviewer = Annotated[Principal, Depends(require("staff"))]
Matcher_ = Annotated[Principal, Depends(require("platform", "staff"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]
Admin = Annotated[Principal, Depends(require())]

__all__ = ["Principal", "forbid_grid"]  # re-exported for the routes
