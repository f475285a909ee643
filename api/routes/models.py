"""Model routes for analysts: list, show, promote (guarded) and roll back scoring model versions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from api import audit
from api.deps import Analyst, EngineDep, SessionDep, SettingsDep
from api.models_state import (
    PromotionRefusedError,
    active_version,
    history,
    load_version,
    model_dir,
    promote,
    rollback,
)
from matcher import registry

router = APIRouter(prefix="/v1/models", tags=["models"])


class PromoteRequest(BaseModel):
    force: bool = False


def _switch(engine, settings, session) -> str:
    version = active_version(session)
    scorer = load_version(settings, version)
    engine.set_scorer(scorer)
    return version


@router.get("", summary="Model versions with their cards")
def list_models(principal: Analyst, session: SessionDep, settings: SettingsDep) -> list[dict]:
    active = active_version(session)
    return [{"version": v, "active": v == active, "card": load_version(settings, v).card}
            for v in registry.versions(settings.models_dir)]


@router.get("/active", summary="The active scoring model and the versions a rollback would return to")
def active(principal: Analyst, session: SessionDep, engine: EngineDep) -> dict:
    return {"version": active_version(session), "serving": engine.model_version, "history": history(session)}


@router.get("/{version}", summary="One model version: its weights or importances and its card")
def show(version: str, principal: Analyst, settings: SettingsDep) -> dict:
    try:
        scorer = load_version(settings, version)
    except (LookupError, ValueError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return {"version": version, "path": str(model_dir(settings, version)), **scorer.to_json()}


@router.post("/{version}/promote",
             summary="Make a version active (refused if worse on its held-out NDCG@10 or the canary's MRR, unless "
             "forced)")
def promote_version(version: str, body: PromoteRequest, principal: Analyst, session: SessionDep,
                    settings: SettingsDep, engine: EngineDep) -> dict:
    try:
        with session.begin():
            message = promote(session, settings, version, force=body.force, canary=engine.canary)
            audit.record(session, principal.actor, "promote", "model", version,
                         {"force": body.force, "account": message})
    except PromotionRefusedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (LookupError, ValueError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return {"message": message, "active": _switch(engine, settings, session)}


@router.post("/rollback", summary="Return to the previously active model")
def rollback_version(principal: Analyst, session: SessionDep, settings: SettingsDep, engine: EngineDep) -> dict:
    try:
        with session.begin():
            message = rollback(session)
            audit.record(session, principal.actor, "rollback", "model", active_version(session))
    except LookupError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return {"message": message, "active": _switch(engine, settings, session)}
