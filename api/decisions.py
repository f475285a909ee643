"""Staff decisions: accept a suggestion (a project is formed) or reject it; project status changes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import audit, changes, labels, metrics
from api.errors import ConflictError, NotFoundError
from api.principal import Principal, forbid_grid
from api.tables import AuditRow, NeedRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow, aware, now

PROJECT_MOVES = {"active": {"completed", "cancelled"}}


def get_suggestion(session: Session, suggestion_id: int, principal: Principal) -> SuggestionRow:
    row = session.get(SuggestionRow, suggestion_id)
    if row is None:
        raise NotFoundError(f"suggestion {suggestion_id} not found", zh=f"推荐配对 #{suggestion_id} 不存在")
    forbid_grid(principal, session.get(NeedRow, row.need_id).grid)
    return row


def _claim(session: Session, row: SuggestionRow, new_status: str) -> None:
    # A conditional update is the lock: of two reviewers deciding at once, exactly one changes the row.
    claimed = session.execute(update(SuggestionRow).where(SuggestionRow.id == row.id,
                                                          SuggestionRow.status == "pending")
                              .values(status=new_status)).rowcount
    if claimed == 0:
        session.refresh(row)
        raise ConflictError(f"suggestion {row.id} is already {row.status}",
                            zh=f"推荐配对 #{row.id} 已被处理（{labels.STATUSES.get(row.status, row.status)}）")


def accept(session: Session, suggestion_id: int, principal: Principal) -> ProjectRow:
    """Form a project from a pending suggestion; call inside a transaction (all of it or nothing)."""
    row = get_suggestion(session, suggestion_id, principal)
    # Decisions on one need queue on the need's row first. Without it two accepts of the need's
    # suggestions each lock their own row, then wait for the other's while superseding: a deadlock.
    session.execute(select(NeedRow.id).where(NeedRow.id == row.need_id).with_for_update())
    _claim(session, row, "accepted")
    took = session.execute(update(ResourceRow).where(ResourceRow.id == row.resource_id,
                                                     ResourceRow.status == "open",
                                                     ResourceRow.taken < ResourceRow.capacity)
                           .values(taken=ResourceRow.taken + 1)).rowcount
    if took == 0:
        resource = session.get(ResourceRow, row.resource_id)
        raise ConflictError(f"resource {row.resource_id!r} can take no more needs: {resource.status}, "
                            f"{resource.taken} of {resource.capacity} taken",
                            zh=f"资源已满：{resource.capacity} 个名额已用 {resource.taken} 个")
    project = ProjectRow(suggestion_id=row.id, need_id=row.need_id, resource_id=row.resource_id)
    session.add(project)
    # The need is served: its other suggestions leave the queue (an undo brings back exactly these).
    others = list(session.scalars(select(SuggestionRow.id).where(SuggestionRow.need_id == row.need_id,
                                                                SuggestionRow.status == "pending")))
    if others:
        session.execute(update(SuggestionRow).where(SuggestionRow.id.in_(others)).values(status="superseded"))
    session.add(ReviewRow(suggestion_id=row.id, decision="accepted", key_id=principal.key_id))
    session.flush()
    audit.record(session, principal.actor, "accept", "suggestion", row.id, {"project": project.id,
                                                                            "superseded": others})
    metrics.SUGGESTIONS.labels("accepted").inc()
    changes.record(session, "resource", [row.resource_id])  # its capacity left changed
    return project


def reject(session: Session, suggestion_id: int, principal: Principal, reason: str, note: str) -> SuggestionRow:
    row = get_suggestion(session, suggestion_id, principal)
    _claim(session, row, "rejected")
    session.add(ReviewRow(suggestion_id=row.id, decision="rejected", reason=reason, note=note,
                          key_id=principal.key_id))
    audit.record(session, principal.actor, "reject", "suggestion", row.id, {"reason": reason, "note": note})
    metrics.SUGGESTIONS.labels("rejected").inc()
    session.flush()
    session.refresh(row)
    return row


def move_project(session: Session, project_id: int, principal: Principal, new_status: str,
                 outcome: str) -> ProjectRow:
    project = session.get(ProjectRow, project_id)
    if project is None:
        raise NotFoundError(f"project {project_id} not found", zh=f"项目 #{project_id} 不存在")
    forbid_grid(principal, session.get(NeedRow, project.need_id).grid)
    if new_status not in PROJECT_MOVES.get(project.status, set()):
        raise ConflictError(f"project {project_id} is {project.status}: it cannot become {new_status}",
                            zh=f"项目 #{project_id} 已{labels.STATUSES.get(project.status, project.status)}，不能再改")
    moved = session.execute(update(ProjectRow).where(ProjectRow.id == project_id, ProjectRow.status == "active")
                            .values(status=new_status, outcome=outcome)).rowcount
    if moved == 0:
        raise ConflictError(f"project {project_id} was changed by someone else", zh=f"项目 #{project_id} 已被他人改动")
    if new_status == "cancelled":
        # A cancelled project gives its place on the resource back.
        session.execute(update(ResourceRow).where(ResourceRow.id == project.resource_id, ResourceRow.taken > 0)
                        .values(taken=ResourceRow.taken - 1))
        changes.record(session, "resource", [project.resource_id])
    audit.record(session, principal.actor, new_status, "project", project_id, {"outcome": outcome})
    session.flush()
    session.refresh(project)
    return project


# How long a staff member may take back their own accept or reject.
UNDO_WINDOW = dt.timedelta(minutes=10)


def undo(session: Session, review_id: int, principal: Principal, *, at: dt.datetime | None = None) -> SuggestionRow:
    """Take back one's own recent decision: the suggestion is pending again; an accept's project is removed,
    its place on the resource given back and the suggestions it superseded restored. Audit-logged."""
    review = session.get(ReviewRow, review_id)
    if review is None or review.key_id != principal.key_id:
        raise NotFoundError(f"decision {review_id} not found among this key's decisions",
                            zh=f"找不到您的决定 #{review_id}")
    if (at or now()) - aware(review.created_at) > UNDO_WINDOW:
        raise ConflictError(f"decision {review_id} is older than {UNDO_WINDOW.seconds // 60} minutes: it stays",
                            zh=f"该决定已超过 {UNDO_WINDOW.seconds // 60} 分钟，不能撤销")
    row = session.get(SuggestionRow, review.suggestion_id)
    session.execute(select(NeedRow.id).where(NeedRow.id == row.need_id).with_for_update())
    detail: dict = {"decision": review.decision}
    if review.decision == "accepted":
        project = session.scalar(select(ProjectRow).where(ProjectRow.suggestion_id == row.id))
        if project is None or project.status != "active" or project.outcome:
            raise ConflictError(f"the project of suggestion {row.id} has moved on: cancel it instead",
                                zh="该项目已有进展，请改为取消项目")
        session.execute(update(ResourceRow).where(ResourceRow.id == row.resource_id, ResourceRow.taken > 0)
                        .values(taken=ResourceRow.taken - 1))
        session.delete(project)
        accepted = session.scalar(select(AuditRow).where(AuditRow.entity == "suggestion", AuditRow.action == "accept",
                                                         AuditRow.entity_id == str(row.id))
                                  .order_by(AuditRow.id.desc()).limit(1))
        restore = (accepted.detail or {}).get("superseded", []) if accepted is not None else []
        if restore:
            session.execute(update(SuggestionRow).where(SuggestionRow.id.in_(restore),
                                                        SuggestionRow.status == "superseded").values(status="pending"))
        changes.record(session, "resource", [row.resource_id])
        detail |= {"project": project.id, "restored": restore}
    moved = session.execute(update(SuggestionRow).where(SuggestionRow.id == row.id,
                                                        SuggestionRow.status == review.decision)
                            .values(status="pending")).rowcount
    if moved == 0:
        raise ConflictError(f"suggestion {row.id} changed since the decision", zh="该配对已被他人改动，不能撤销")
    session.delete(review)
    audit.record(session, principal.actor, "undo", "suggestion", row.id, detail)
    session.flush()
    session.refresh(row)
    return row
