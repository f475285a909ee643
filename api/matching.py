"""Matching on stored lists: one need's top-k as pending suggestions, and which needs are already served."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from fastapi import HTTPException, status
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import audit
from api.engine import EngineState, need_record
from api.tables import NeedRow, ProjectRow, SuggestionRow
from matcher.suggestion import Suggestion

LIVE_PROJECT = ("active", "completed")


def served(session: Session, need_ids: Sequence[str] | None = None) -> set[str]:
    """Needs that already have a live project: they are not matched again."""
    stmt = select(ProjectRow.need_id).where(ProjectRow.status.in_(LIVE_PROJECT))
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
    return rows


class Matched(NamedTuple):
    suggestions: list[SuggestionRow]
    min_score: float
    below_min_score: int  # candidates among the top k that scored under min_score: not stored, not shown


def match_need(session: Session, engine: EngineState, need: NeedRow, k: int, min_score: float,
               actor: tuple[int | None, str]) -> Matched:
    """Top-k for one stored need; those at or above `min_score` are kept as pending suggestions.

    Earlier pending ones are superseded. Commits the session: the new suggestions and the
    superseding land together. A pairing below the minimum never reaches the staff queue.
    """
    if need.status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, f"need {need.id!r} is closed: reopen it before matching")
    if served(session, [need.id]):
        raise HTTPException(status.HTTP_409_CONFLICT, f"need {need.id!r} already has a project")
    # One snapshot scores the need and names its model, so each stored row names the model that scored it.
    (suggestions,), version = engine.top_k([need_record(need)], k=k)
    kept = [s for s in suggestions if s.score >= min_score]
    rows = store(session, kept, [need.id], version, "match")
    audit.record(session, actor, "match", "need", need.id,
                 {"suggestions": [r.id for r in rows], "below_min_score": len(suggestions) - len(kept),
                  "min_score": min_score, "model_version": version})
    session.commit()
    engine.store_embeddings()  # the need's embedding, if it was encoded just now
    return Matched(rows, min_score, len(suggestions) - len(kept))
