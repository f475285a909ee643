"""The service's own decisions as a training history: accepted and rejected reviews, shown suggestions."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.engine import grid_record, need_record, resource_record
from api.tables import GridRow, NeedRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow
from matcher.history import Decision, History, check, relevance_decisions

# Outcome labels: resolved → 1, partial → 1 (the pairing served), unresolved → 0; a resolved one also
# weighs more in training (training.KIND_WEIGHTS): a need solved is the strongest sign a pairing fits.
OUTCOME_LABELS = {"resolved": 1.0, "partial": 1.0, "unresolved": 0.0}


def history_from_db(session: Session) -> History:
    needs = {n.id: need_record(n) for n in session.scalars(select(NeedRow))}
    resources = {r.id: resource_record(r) for r in session.scalars(select(ResourceRow))}
    grids = [grid_record(g) for g in session.scalars(select(GridRow))]
    decisions = []
    reviewed = session.execute(select(ReviewRow, SuggestionRow).join(SuggestionRow,
                                                                      SuggestionRow.id == ReviewRow.suggestion_id))
    decided_needs = set()
    for review, suggestion in reviewed:
        label = 1.0 if review.decision == "accepted" else 0.0
        decisions.append(Decision(suggestion.need_id, suggestion.resource_id, label, review.decision,
                                  review.created_at, str(review.key_id or ""), review.reason))
        if label:
            decided_needs.add(suggestion.need_id)
    # Suggestions put before staff beside the one they accepted, and never chosen: weak negatives.
    for suggestion in session.scalars(select(SuggestionRow).where(SuggestionRow.status == "superseded",
                                                                  SuggestionRow.need_id.in_(decided_needs))):
        decisions.append(Decision(suggestion.need_id, suggestion.resource_id, 0.0, "shown", suggestion.created_at,
                                  "", ""))
    decisions.extend(outcome_decisions(session))
    digest = hashlib.sha256("\n".join(f"{d.need_id}|{d.resource_id}|{d.kind}" for d in decisions).encode()).hexdigest()
    decisions, unlabelled = relevance_decisions(decisions)
    return History(needs, resources, grids, check(decisions, source="the service's decisions"), digest, unlabelled)


def outcome_decisions(session: Session) -> list[Decision]:
    """How projects ended teaches more than the accept did: a need solved is a positive that outranks the
    accept, a project that left it unsolved a negative (kinds outcome:<resolution>)."""
    found = []
    for project in session.scalars(select(ProjectRow).where(ProjectRow.status.in_(("completed", "cancelled")),
                                                            ProjectRow.resolution != "").order_by(ProjectRow.id)):
        label = OUTCOME_LABELS.get(project.resolution)
        if label is not None:
            found.append(Decision(project.need_id, project.resource_id, label, f"outcome:{project.resolution}",
                                  project.finished_at or project.updated_at, "", ""))
    return found
