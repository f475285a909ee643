"""Admin and operations routes: API keys, the audit log, escalation, health and readiness."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select, text

from api import audit, lists, metrics, outbox
from api.deps import Admin, Analyst, Platform, Reader, SessionDep, WritesDep
from api.errors import ConflictError
from api.keys import LastAdminError, create_key, revoke_key
from api.routes.listing import Limit, Offset, RowId
from api.schemas import EscalationResult, KeyCreate, KeyCreated, KeyPublic, Page
from api.tables import ApiKeyRow, AuditRow, OutboxRow

keys = APIRouter(prefix="/v1/keys", tags=["keys"])
ops = APIRouter(tags=["operations"])


@keys.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED,
           summary="Create an API key; the key is shown in this answer only")
def create(body: KeyCreate, principal: Admin, session: SessionDep):
    with session.begin():
        try:
            row, plain = create_key(session, body.role, body.grids, body.note, body.streets)
        except ValueError as exc:
            raise lists.unprocessable(str(exc)) from None
        audit.record(session, principal.actor, "create", "key", row.id, {"role": row.role, "grids": row.grids})
    return {**KeyPublic.model_validate(row).model_dump(), "key": plain}


@keys.get("", response_model=list[KeyPublic], summary="List API keys (never the keys themselves)")
def list_keys(principal: Admin, session: SessionDep):
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)))


@keys.post("/{key_id}/revoke", response_model=KeyPublic, summary="Revoke an API key")
def revoke(key_id: RowId, principal: Admin, session: SessionDep):
    with session.begin():
        try:
            row = revoke_key(session, key_id)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except LastAdminError as exc:
            raise ConflictError(str(exc), zh=exc.zh) from None
        audit.record(session, principal.actor, "revoke", "key", key_id)
    return row


@ops.get("/v1/audit", tags=["audit"], summary="The audit log, newest first")
def audit_log(principal: Analyst, session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> Page[dict[str, Any]]:
    rows = lists.page(session, select(AuditRow).order_by(AuditRow.id.desc()), limit, offset)
    rows["items"] = [{"id": r.id, "key_id": r.key_id, "actor": r.actor, "action": r.action, "entity": r.entity,
                      "entity_id": r.entity_id, "detail": r.detail, "created_at": r.created_at} for r in rows["items"]]
    return rows


@ops.post("/v1/escalate", response_model=EscalationResult, tags=["needs"],
          summary="Flag needs past their deadline with no project and widen their ring")
def run_escalation(principal: Platform, session: SessionDep, writes: WritesDep):
    return {"escalated": writes.escalate(session, dt.date.today(), principal.actor)}


@ops.get("/v1/schedules", tags=["operations"],
         summary="The jobs the service runs by itself (nightly batch, escalation): schedule, next and last run")
def schedules(principal: Reader, request: Request, session: SessionDep) -> list[dict[str, Any]]:
    return request.app.state.schedules.status(session)


@ops.get("/v1/webhooks", tags=["webhooks"],
         summary="Webhook events by state, and the latest ones not delivered (pending or dead) with their errors")
def webhooks(principal: Analyst, request: Request, session: SessionDep, state: str = "dead", limit: Limit = 50,
             offset: Offset = 0) -> dict[str, Any]:
    if state not in ("pending", "delivered", "dead"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"state: expected pending, delivered or dead, got {state[:50]!r}")
    settings = request.app.state.settings
    rows = lists.page(session, select(OutboxRow).where(OutboxRow.status == state).order_by(OutboxRow.id.desc()),
                      limit, offset)
    rows["items"] = [{"id": r.id, "webhook_id": r.webhook_id, "type": r.type, "created_at": r.created_at,
                      "attempts": r.attempts, "next_attempt_at": r.next_attempt_at, "delivered_at": r.delivered_at,
                      "last_error": r.last_error} for r in rows["items"]]
    return {"receiver": settings.webhook_url or None, "counts": outbox.counts(session), "state": state, **rows}


@ops.post("/v1/webhooks/{event_id}/retry", tags=["webhooks"],
          summary="Put a dead webhook event back in line for another day of retries")
def retry_webhook(event_id: RowId, principal: Admin, session: SessionDep, writes: WritesDep) -> dict[str, Any]:
    with session.begin():
        row = outbox.retry(session, event_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead webhook event with id {event_id}")
        audit.record(session, principal.actor, "retry", "webhook", str(event_id))
    writes.after_commit([])
    return {"id": event_id, "status": "pending"}


@ops.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus text format: latency by route, matching, suggestions, batches, refits, index, drift."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@ops.get("/readyz", summary="Database, engine and model ready; 503 naming what is not",
         responses={503: {"description": "not ready: `checks` names the part and why"}})
def readyz(request: Request, session: SessionDep) -> Any:
    checks: dict[str, str] = {}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"not reachable: {type(exc).__name__}"
    engine = getattr(request.app.state, "engine", None)
    checks["engine"] = "ok" if engine is not None else "not built yet"
    checks["model"] = getattr(request.app.state, "model_problem", None) or "ok"
    body = {"status": "ready" if all(v == "ok" for v in checks.values()) else "not ready", "checks": checks,
            "model_version": engine.model_version if engine else None,
            "resources_indexed": engine.matcher.n_resources_ if engine and engine.matcher else 0}
    if body["status"] != "ready":
        return JSONResponse(body, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return body
