"""Model routes for analysts: which scoring model is active."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Analyst, EngineDep, SessionDep
from api.models_state import active_version, history

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("/active", summary="The active scoring model and the versions a rollback would return to")
def active(principal: Analyst, session: SessionDep, engine: EngineDep) -> dict:
    return {"version": active_version(session), "serving": engine.model_version, "history": history(session)}
