"""Staff decisions: accept a suggestion (a project is formed) or reject it; project status changes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import audit, changes, labels, metrics, outbox
from api.errors import ConflictError, InvalidError, NotFoundError
from api.principal import Principal, forbid_grid
from api.tables import AuditRow, NeedRow, ProjectNoteRow, ProjectRow, ResourceRow, ReviewRow, SuggestionRow, aware, now
from matcher.normalize import clean_text

PROJECT_MOVES = {"active": {"completed", "cancelled"}}
# How a project ended, and the words staff use for it.
RESOLUTIONS = {"resolved": "解决", "partial": "部分解决", "unresolved": "未解决"}
RESOLUTION_ALIASES = {**{k: k for k in RESOLUTIONS}, **{v: k for k, v in RESOLUTIONS.items()}}


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
    changes.record(session, "resource", [row.resource_id], "capacity")  # its capacity left changed
    outbox.emit(session, "project.created", project_event(project))
    return project


def project_event(project: ProjectRow, note: str = "") -> dict:
    """A project as the platform's webhooks carry it."""
    return {"project_id": project.id, "suggestion_id": project.suggestion_id, "need_id": project.need_id,
            "resource_id": project.resource_id, "status": project.status, "resolution": project.resolution or None,
            "satisfaction": project.satisfaction, "outcome": project.outcome or "",
            **({"note": note} if note else {})}


def reject(session: Session, suggestion_id: int, principal: Principal, reason: str, note: str) -> SuggestionRow:
    note = clean_text(note)
    row = get_suggestion(session, suggestion_id, principal)
    _claim(session, row, "rejected")
    session.add(ReviewRow(suggestion_id=row.id, decision="rejected", reason=reason, note=note,
                          key_id=principal.key_id))
    audit.record(session, principal.actor, "reject", "suggestion", row.id, {"reason": reason, "note": note})
    metrics.SUGGESTIONS.labels("rejected").inc()
    session.flush()
    session.refresh(row)
    return row


def get_project(session: Session, project_id: int, principal: Principal) -> ProjectRow:
    project = session.get(ProjectRow, project_id)
    if project is None:
        raise NotFoundError(f"project {project_id} not found", zh=f"项目 #{project_id} 不存在")
    forbid_grid(principal, session.get(NeedRow, project.need_id).grid)
    return project


def resolution_code(value: str | None) -> str | None:
    """resolved / partial / unresolved from either the code or its Chinese word; None stays None."""
    if value is None or value == "":
        return None
    code = RESOLUTION_ALIASES.get(value.strip())
    if code is None:
        raise InvalidError(f"field 'resolution': expected one of {', '.join(RESOLUTION_ALIASES)}, got {value!r}",
                           zh=f"结果应为 解决、部分解决 或 未解决，收到 {value!r}")
    return code


def update_project(session: Session, project_id: int, principal: Principal, *, status: str | None = None,
                   resolution: str | None = None, satisfaction: int | None = None, outcome: str | None = None,
                   note: str = "") -> ProjectRow:
    """Follow a project: a dated note, a move to completed (with how it ended) or cancelled (已终止), its
    outcome and an optional satisfaction score 1-5. Audited, announced as project.updated."""
    note = clean_text(note)
    outcome = None if outcome is None else clean_text(outcome)
    project = get_project(session, project_id, principal)
    session.execute(select(ProjectRow.id).where(ProjectRow.id == project_id).with_for_update())
    session.refresh(project)
    code = resolution_code(resolution)
    if satisfaction is not None and (isinstance(satisfaction, bool) or not 1 <= int(satisfaction) <= 5):
        raise InvalidError(f"field 'satisfaction': expected an integer from 1 to 5, got {satisfaction!r}",
                           zh=f"满意度应为 1 到 5 的整数，收到 {satisfaction!r}")
    detail: dict = {}
    if status is not None and status != project.status:
        if status not in PROJECT_MOVES.get(project.status, set()):
            raise ConflictError(f"project {project_id} is {project.status}: it cannot become {status}",
                                zh=f"项目 #{project_id} {labels.STATUSES.get(project.status, project.status)}，"
                                   f"不能改为{labels.STATUSES.get(status, status)}")
        if status == "completed" and not (code or project.resolution):
            raise InvalidError("field 'resolution': expected resolved, partial or unresolved when a project is "
                               "completed, got none", zh="完成项目时请选择结果：解决、部分解决 或 未解决")
        project.status, project.finished_at = status, now()
        detail["status"] = status
        if status == "cancelled":
            # A project ended early gives its place on the resource back.
            session.execute(update(ResourceRow).where(ResourceRow.id == project.resource_id, ResourceRow.taken > 0)
                            .values(taken=ResourceRow.taken - 1))
            changes.record(session, "resource", [project.resource_id], "capacity")
    if code is not None and code != project.resolution:
        project.resolution = detail["resolution"] = code
    if satisfaction is not None:
        project.satisfaction = detail["satisfaction"] = int(satisfaction)
    if outcome is not None and outcome != project.outcome:
        project.outcome = detail["outcome"] = outcome
    if note.strip():
        session.add(ProjectNoteRow(project_id=project.id, key_id=principal.key_id, actor=principal.actor[1],
                                   note=note.strip()))
        detail["note"] = note.strip()
    if not detail:
        raise InvalidError("project update: expected a status, resolution, satisfaction, outcome or note, got "
                           "nothing new", zh="没有要更新的内容：请填写跟进记录或选择状态、结果")
    project.updated_at = now()
    audit.record(session, principal.actor, "follow_up", "project", project_id, detail)
    session.flush()
    outbox.emit(session, "project.updated", project_event(project, detail.get("note", "")))
    return project


def move_project(session: Session, project_id: int, principal: Principal, new_status: str,
                 outcome: str) -> ProjectRow:
    """Complete or cancel a project with a closing note (the earlier API's call)."""
    return update_project(session, project_id, principal, status=new_status, outcome=outcome or None)


def project_notes(session: Session, project_ids: list[int]) -> dict[int, list[ProjectNoteRow]]:
    notes: dict[int, list[ProjectNoteRow]] = {}
    for row in session.scalars(select(ProjectNoteRow).where(ProjectNoteRow.project_id.in_(project_ids))
                               .order_by(ProjectNoteRow.id)):
        notes.setdefault(row.project_id, []).append(row)
    return notes


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
        has_notes = project is not None and session.scalar(
            select(ProjectNoteRow.id).where(ProjectNoteRow.project_id == project.id).limit(1)) is not None
        if project is None or project.status != "active" or project.outcome or project.resolution or has_notes:
            raise ConflictError(f"the project of suggestion {row.id} has moved on: cancel it instead",
                                zh="该项目已有进展，请改为取消项目")
        session.execute(update(ResourceRow).where(ResourceRow.id == row.resource_id, ResourceRow.taken > 0)
                        .values(taken=ResourceRow.taken - 1))
        outbox.emit(session, "project.updated", {**project_event(project), "status": "undone"})
        session.delete(project)
        accepted = session.scalar(select(AuditRow).where(AuditRow.entity == "suggestion", AuditRow.action == "accept",
                                                         AuditRow.entity_id == str(row.id))
                                  .order_by(AuditRow.id.desc()).limit(1))
        restore = (accepted.detail or {}).get("superseded", []) if accepted is not None else []
        if restore:
            session.execute(update(SuggestionRow).where(SuggestionRow.id.in_(restore),
                                                        SuggestionRow.status == "superseded").values(status="pending"))
        changes.record(session, "resource", [row.resource_id], "capacity")
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
