"""Suggestion routes: the review queue by grid, status and need; accept or reject one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api import decisions, exports, lists, privacy
from api.deps import Reader, Reviewer, SessionDep, SettingsDep, WritesDep
from api.routes.listing import Limit, Offset, RowId
from api.schemas import Page, ProjectPublic, RejectRequest, SuggestionPublic
from api.tables import NeedRow, SuggestionRow

router = APIRouter(prefix="/v1/suggestions", tags=["suggestions"])
Status = Literal["pending", "accepted", "rejected", "superseded", "withdrawn"]


def order(status_: str | None) -> tuple:
    """The review queue (pending) by the need's deadline and score; every other listing newest first, which
    pages along the (status, id) index instead of sorting the whole joined table (every batch adds rows)."""
    if status_ == "pending":
        return NeedRow.deadline, SuggestionRow.score.desc(), SuggestionRow.id
    return (SuggestionRow.id.desc(),)


@router.get("", response_model=Page[SuggestionPublic],
            summary="List suggestions (limited keys see their scope only): pending ones by deadline and score, "
            "the rest newest first; format=xlsx: all of them, titles beside ids",
            responses={200: {"content": {exports.XLSX: {}}}})
def list_suggestions(principal: Reader, session: SessionDep, settings: SettingsDep, grid: str | None = None,
                     street: str | None = None,
                     status_: Annotated[Status | None, Query(alias="status")] = None, need_id: str | None = None,
                     limit: Limit = 50, offset: Offset = 0, format: Literal["json", "xlsx"] = "json"):
    stmt = select(SuggestionRow).join(NeedRow, NeedRow.id == SuggestionRow.need_id)
    stmt = lists.in_place(stmt, NeedRow.grid, principal, grid=grid, street=street)
    if status_ is not None:
        stmt = stmt.where(SuggestionRow.status == status_)
    if need_id is not None:
        stmt = stmt.where(SuggestionRow.need_id == need_id)
    stmt = stmt.order_by(*order(status_))
    if format == "xlsx":
        return exports.xlsx_response([exports.Sheet("推荐配对", exports.SUGGESTION_COLUMNS,
                                                    exports.with_titles(session, stmt, shown=privacy.masker(
                                                        principal, settings.mask_personal_data)))], "推荐配对.xlsx",
                                     zone=settings.timezone,
                                     heading=exports.heading("推荐配对", principal, zone=settings.timezone))
    return lists.page(session, stmt, limit, offset)


@router.get("/{suggestion_id}", response_model=SuggestionPublic, summary="Read one suggestion")
def read_suggestion(suggestion_id: RowId, principal: Reader, session: SessionDep):
    return decisions.get_suggestion(session, suggestion_id, principal)


@router.post("/{suggestion_id}/accept", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED,
             summary="Accept: a project is formed and the resource's capacity is taken (409 when full or decided)")
def accept(suggestion_id: RowId, principal: Reviewer, session: SessionDep, writes: WritesDep):
    return writes.accept(session, suggestion_id, principal)


@router.post("/{suggestion_id}/reject", response_model=SuggestionPublic,
             summary="Reject with a reason code (不相关, 距离太远, 资源已满, 需求已解决, 重复, 其他 + note)")
def reject(suggestion_id: RowId, body: RejectRequest, principal: Reviewer, session: SessionDep, writes: WritesDep):
    return writes.reject(session, suggestion_id, principal, body.reason, body.note)
