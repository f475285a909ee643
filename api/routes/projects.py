"""Project routes: the projects list (项目清单) and status changes with an outcome note."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from api import decisions, exports, lists
from api.db import in_transaction
from api.deps import EngineDep, Reader, Reviewer, SessionDep, forbid_grid
from api.routes.listing import Limit, Offset, RowId
from api.schemas import Page, ProjectPublic, ProjectUpdate
from api.tables import NeedRow, ProjectRow

router = APIRouter(prefix="/v1/projects", tags=["projects"])


@router.get("", response_model=Page[ProjectPublic], summary="List projects (staff see their own grids only); "
            "format=xlsx: all of them, titles beside ids", responses={200: {"content": {exports.XLSX: {}}}})
def list_projects(principal: Reader, session: SessionDep, grid: str | None = None,
                  status_: Annotated[Literal["active", "completed", "cancelled"] | None, Query(alias="status")] = None,
                  limit: Limit = 50, offset: Offset = 0, format: Literal["json", "xlsx"] = "json"):
    stmt = select(ProjectRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
    stmt = lists.in_place(stmt, NeedRow.grid, principal, grid=grid)
    if status_ is not None:
        stmt = stmt.where(ProjectRow.status == status_)
    stmt = stmt.order_by(ProjectRow.id.desc())
    if format == "xlsx":
        return exports.xlsx_response([exports.Sheet("项目清单", exports.PROJECT_COLUMNS,
                                                    exports.with_titles(session, stmt))], "项目清单.xlsx")
    return lists.page(session, stmt, limit, offset)


@router.get("/{project_id}", response_model=ProjectPublic, summary="Read one project")
def read_project(project_id: RowId, principal: Reader, session: SessionDep):
    project = session.get(ProjectRow, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    forbid_grid(principal, session.get(NeedRow, project.need_id).grid)
    return project


@router.patch("/{project_id}", response_model=ProjectPublic,
              summary="Complete or cancel an active project, with an outcome note")
def update_project(project_id: RowId, body: ProjectUpdate, principal: Reviewer, session: SessionDep,
                   engine: EngineDep):
    project = in_transaction(session, lambda s: decisions.move_project(s, project_id, principal, body.status,
                                                                      body.outcome))
    if body.status == "cancelled":
        engine.capacity_moved(project.resource_id)
    return project
