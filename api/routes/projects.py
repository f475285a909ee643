"""Project routes: the projects list (项目清单) and status changes with an outcome note."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api import decisions, exports, lists, privacy
from api.deps import Reader, Reviewer, SessionDep, SettingsDep, WritesDep
from api.routes.listing import Limit, Offset, RowId
from api.schemas import Page, ProjectDetail, ProjectNoteCreate, ProjectPublic, ProjectUpdate
from api.tables import NeedRow, ProjectRow

router = APIRouter(prefix="/v1/projects", tags=["projects"])


@router.get("", response_model=Page[ProjectPublic], summary="List projects (staff see their own grids only); "
            "format=xlsx: all of them, titles beside ids", responses={200: {"content": {exports.XLSX: {}}}})
def list_projects(principal: Reader, session: SessionDep, settings: SettingsDep, grid: str | None = None,
                  status_: Annotated[Literal["active", "completed", "cancelled"] | None, Query(alias="status")] = None,
                  limit: Limit = 50, offset: Offset = 0, format: Literal["json", "xlsx"] = "json"):
    stmt = select(ProjectRow).join(NeedRow, NeedRow.id == ProjectRow.need_id)
    stmt = lists.in_place(stmt, NeedRow.grid, principal, grid=grid)
    if status_ is not None:
        stmt = stmt.where(ProjectRow.status == status_)
    stmt = stmt.order_by(ProjectRow.id.desc())
    if format == "xlsx":
        return exports.xlsx_response([exports.Sheet("项目清单", exports.PROJECT_COLUMNS,
                                                    exports.with_titles(session, stmt, shown=privacy.masker(
                                                        principal, settings.mask_personal_data)))], "项目清单.xlsx",
                                     zone=settings.timezone,
                                     heading=exports.heading("项目清单", principal, zone=settings.timezone))
    return lists.page(session, stmt, limit, offset)


def _detail(session, project: ProjectRow) -> ProjectDetail:
    notes = decisions.project_notes(session, [project.id]).get(project.id, [])
    return ProjectDetail.model_validate(project).model_copy(update={"notes": notes})


@router.get("/{project_id}", response_model=ProjectDetail, summary="Read one project with its follow-up notes")
def read_project(project_id: RowId, principal: Reader, session: SessionDep):
    return _detail(session, decisions.get_project(session, project_id, principal))


@router.patch("/{project_id}", response_model=ProjectDetail,
              summary="Follow a project: complete (with a resolution) or end it (已终止), its outcome note, a "
              "satisfaction score 1-5 and a dated follow-up note; announced as project.updated")
def update_project(project_id: RowId, body: ProjectUpdate, principal: Reviewer, session: SessionDep,
                   writes: WritesDep):
    project = writes.update_project(session, project_id, principal, **body.model_dump(exclude_none=True))
    return _detail(session, project)


@router.post("/{project_id}/notes", response_model=ProjectDetail, status_code=status.HTTP_201_CREATED,
             summary="Add a dated follow-up note (who, when, what) to a project")
def add_note(project_id: RowId, body: ProjectNoteCreate, principal: Reviewer, session: SessionDep,
             writes: WritesDep):
    return _detail(session, writes.update_project(session, project_id, principal, note=body.note))
