"""Matching on stored lists: one need's top-k as pending suggestions, needs matched on arrival, the needs a new
resource may serve, and which needs are already served."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import audit, metrics, outbox
from api.engine import EngineState, need_record
from api.errors import ConflictError, NotFoundError
from api.principal import Principal, forbid_grid
from api.tables import GridRow, NeedRow, ProjectRow, ResourceRow, SuggestionRow, aware
from matcher.records import RINGS
from matcher.suggestion import Suggestion

LIVE_PROJECT = ("active", "completed")


def served_needs() -> Select:
    """Ids of needs with a live project, as a subquery."""
    return select(ProjectRow.need_id).where(ProjectRow.status.in_(LIVE_PROJECT))


def overdue(today: dt.date) -> ColumnElement[bool]:
    """An open need past its deadline on `today` with no live project (限时清零's list)."""
    return and_(NeedRow.status == "open", NeedRow.deadline < today, NeedRow.id.not_in(served_needs()))


def served(session: Session, need_ids: Sequence[str] | None = None) -> set[str]:
    """Needs that already have a live project: they are not matched again."""
    stmt = served_needs()
    if need_ids is not None:
        stmt = stmt.where(ProjectRow.need_id.in_(list(need_ids)))
    return set(session.scalars(stmt))


def store(session: Session, suggestions: Sequence[Suggestion], need_ids: Sequence[str], model_version: str,
          origin: str) -> list[SuggestionRow]:
    """Replace the needs' pending suggestions with new ones, inside the caller's transaction; each need
    that got suggestions is announced by one suggestion.created event, in the same transaction."""
    if need_ids:
        session.execute(update(SuggestionRow).where(SuggestionRow.need_id.in_(list(need_ids)),
                                                    SuggestionRow.status == "pending").values(status="superseded"))
    rows = [SuggestionRow(need_id=s.need_id, resource_id=s.resource_id, score=s.score, features=s.features,
                          reasons=s.reasons, terms=s.terms, model_version=model_version, origin=origin)
            for s in suggestions]
    session.add_all(rows)
    session.flush()
    metrics.SUGGESTIONS.labels("made").inc(len(rows))
    by_need: dict[str, list[SuggestionRow]] = {}
    for row in rows:
        by_need.setdefault(row.need_id, []).append(row)
    for need_id, mine in by_need.items():
        outbox.emit(session, "suggestion.created", {
            "need_id": need_id, "origin": origin, "model_version": model_version,
            "suggestions": [{"id": r.id, "resource_id": r.resource_id, "score": round(r.score, 4),
                             "reasons": r.reasons} for r in mine]})
    return rows


class Matched(NamedTuple):
    suggestions: list[SuggestionRow]
    min_score: float
    below_min_score: int  # candidates among the top k that scored under min_score: not stored, not shown


def _open_need(session: Session, need_id: str, principal: Principal) -> NeedRow:
    need = session.get(NeedRow, need_id)
    if need is None:
        raise NotFoundError(f"need {need_id!r} not found", zh=f"需求 {need_id} 不存在")
    forbid_grid(principal, need.grid)
    if need.status != "open":
        raise ConflictError(f"need {need.id!r} is closed: reopen it before matching", zh="该需求已关闭")
    if served(session, [need.id]):
        raise ConflictError(f"need {need.id!r} already has a project", zh="该需求已建立项目")
    return need


def match_need(session: Session, engine: EngineState, need_id: str, k: int, min_score: float | None,
               principal: Principal) -> Matched:
    """Top-k for one stored need; those at or above `min_score` are kept as pending suggestions.

    Three steps, and no transaction is open while the engine scores: on SQLite an open write
    transaction would keep every other writer waiting for the whole scoring. The need is checked
    again before the suggestions are stored, in case it was served or closed meanwhile. Earlier
    pending suggestions are superseded in the same transaction. A pairing below the minimum never
    reaches the staff queue.
    """
    with session.begin():
        need = need_record(_open_need(session, need_id, principal))
    # One snapshot scores the need and names its model, so each stored row names the model that scored it.
    with metrics.MATCH.time():  # min_score None: the minimum of the model that scored
        (suggestions,), version, min_score = engine.top_k([need], k=k, min_score=min_score)
    kept = [s for s in suggestions if s.score >= min_score]
    with session.begin():
        _open_need(session, need_id, principal)
        rows = store(session, kept, [need.id], version, "match")
        audit.record(session, principal.actor, "match", "need", need.id,
                     {"suggestions": [r.id for r in rows], "below_min_score": len(suggestions) - len(kept),
                      "min_score": min_score, "model_version": version})
    engine.store_embeddings()  # the need's embedding, if it was encoded just now
    return Matched(rows, min_score, len(suggestions) - len(kept))


# The system actor of matching on arrival, as the audit log names it.
ARRIVAL_ACTOR = (None, "arrival")
# How many waiting needs one new resource sends back to matching at most.
WAITING_LIMIT = 200


def match_arrived(sessions: sessionmaker[Session], readers: sessionmaker[Session], engine: EngineState,
                  need_ids: Sequence[str], k: int, min_score: float | None,
                  queued_at: Mapping[str, float] | None = None) -> int:
    """Match needs that were just written (or that a new resource may now serve): open ones without a
    project get the snapshot's top k at or above its minimum score as pending suggestions, replacing
    their earlier pending ones. No transaction is open while the engine scores. Returns needs stored."""
    with readers() as session:
        rows = list(session.scalars(select(NeedRow).where(NeedRow.id.in_(list(need_ids)),
                                                          NeedRow.status == "open").order_by(NeedRow.id)))
        done = served(session, [r.id for r in rows])
    needs = [need_record(r) for r in rows if r.id not in done]
    if not needs:
        return 0
    with metrics.MATCH.time():
        found, version, threshold = engine.top_k(needs, k=k, min_score=min_score)
    with sessions() as session, session.begin():
        # The needs' rows first, as decisions lock them: an accept or a match of the same need waits.
        current = dict(session.execute(select(NeedRow.id, NeedRow.updated_at).where(
            NeedRow.id.in_([n.id for n in needs]), NeedRow.status == "open").with_for_update()).all())
        still = set(current) - served(session, list(current))
        # A need someone matched after its last write (a /v1/match call, the page's 重新匹配) keeps that.
        still -= {need_id for need_id, made in session.execute(
            select(SuggestionRow.need_id, SuggestionRow.created_at).where(
                SuggestionRow.need_id.in_(list(still)), SuggestionRow.status == "pending",
                SuggestionRow.origin != "arrival"))
            if aware(made) >= aware(current[need_id])}
        stored = 0
        for need, suggestions in zip(needs, found, strict=True):
            if need.id not in still:
                continue  # closed or served while it was scored
            kept = [s for s in suggestions if s.score >= threshold]
            made = store(session, kept, [need.id], version, "arrival")
            audit.record(session, ARRIVAL_ACTOR, "match", "need", need.id,
                         {"suggestions": [r.id for r in made], "below_min_score": len(suggestions) - len(kept),
                          "min_score": threshold, "model_version": version})
            stored += 1
    moment = time.monotonic()
    for need in needs:
        if queued_at and need.id in queued_at and need.id in still:
            metrics.ARRIVAL_DELAY.observe(moment - queued_at[need.id])
    engine.store_embeddings()
    return stored


def waiting_needs(session: Session, engine: EngineState, resource: ResourceRow, limit: int = WAITING_LIMIT
                  ) -> list[str]:
    """Open needs without a project or a pending suggestion whose ring reaches this resource, soonest
    deadline first, at most `limit`: a new resource may be what they were waiting for."""
    matcher = engine.matcher
    if matcher is None or resource.status != "open":
        return []
    pending = exists().where(SuggestionRow.need_id == NeedRow.id, SuggestionRow.status == "pending")
    stmt = select(NeedRow.id, NeedRow.grid, NeedRow.ring).where(
        NeedRow.status == "open", NeedRow.id.not_in(served_needs()), ~pending)
    street = session.scalar(select(GridRow.street).where(GridRow.id == resource.grid)) if resource.grid else ""
    if street:  # only needs of its street can reach it, but for those searching the district or without a grid
        stmt = stmt.where(or_(NeedRow.ring == "district", NeedRow.grid == "",
                              NeedRow.grid.in_(select(GridRow.id).where(GridRow.street == street))))
    rows = session.execute(stmt.order_by(NeedRow.deadline.is_(None), NeedRow.deadline, NeedRow.id)
                           .limit(limit * 4)).all()
    if not rows:
        return []
    grid_map = matcher.grid_map_
    rings = grid_map.rings(grid_map.codes([r.grid for r in rows]), grid_map.codes([resource.grid] * len(rows)))
    reach = np.array([RINGS.index(r.ring) if r.grid else len(RINGS) - 1 for r in rows])
    return [r.id for r, ring, far in zip(rows, rings, reach, strict=True) if ring <= far][:limit]
