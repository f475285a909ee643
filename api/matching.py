"""Matching on stored lists: one need's top-k as pending suggestions, and which needs are already served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, and_, select, update
from sqlalchemy.orm import Session

from api import audit, metrics
from api.engine import EngineState, need_record
from api.errors import ConflictError, NotFoundError
from api.principal import Principal, forbid_grid
from api.tables import NeedRow, ProjectRow, SuggestionRow
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
    """Replace the needs' pending suggestions with new ones, inside the caller's transaction."""
    if need_ids:
        session.execute(update(SuggestionRow).where(SuggestionRow.need_id.in_(list(need_ids)),
                                                    SuggestionRow.status == "pending").values(status="superseded"))
    rows = [SuggestionRow(need_id=s.need_id, resource_id=s.resource_id, score=s.score, features=s.features,
                          reasons=s.reasons, terms=s.terms, model_version=model_version, origin=origin)
            for s in suggestions]
    session.add_all(rows)
    session.flush()
    metrics.SUGGESTIONS.labels("made").inc(len(rows))
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
