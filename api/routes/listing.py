"""Routes shared by the needs, resources and grids lists, built once per list.

No `from __future__ import annotations` here: FastAPI reads the body types of the
per-list functions at runtime, and they are local to `build`.
"""


import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, UploadFile, status
from fastapi import Path as FastPath
from pydantic import BaseModel

from api import exports, lists, privacy
from api.deps import Platform, Reader, SessionDep, SettingsDep, WritesDep
from api.schemas import Page, UploadResult
from matcher.errors import InvalidRecordsError, LoadError
from matcher.messages import in_chinese
from matcher.readers import FORMATS

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
# Database integer keys are 32-bit on PostgreSQL; a larger number can name no row.
RowId = Annotated[int, FastPath(ge=1, le=2_147_483_647)]
EXPORT_TITLES = {"needs": "需求清单", "resources": "资源清单", "grids": "网格"}
EXPORT_COLUMNS = {"needs": exports.NEED_COLUMNS, "resources": exports.RESOURCE_COLUMNS, "grids": exports.GRID_COLUMNS}
# Far above a real list upload; refuses before reading a runaway body into memory twice.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def build(kind: str, create_model: type[BaseModel], update_model: type[BaseModel],
          public_model: type[BaseModel]) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{kind}", tags=[kind])
    entity = lists.ENTITY[kind]

    def defaults(settings) -> dict[str, Any]:
        return {"ring": settings.initial_ring} if kind == "needs" else {}

    @router.post("", response_model=public_model, status_code=status.HTTP_201_CREATED,
                 summary=f"Create one {entity} (a retry with the same id and content returns it with 200)")
    def create(body: create_model, response: Response, principal: Platform, session: SessionDep,  # type: ignore[valid-type]
               writes: WritesDep, settings: SettingsDep):
        row, created = writes.create(session, kind, body.model_dump(), principal, defaults(settings))
        if not created:
            response.status_code = status.HTTP_200_OK
        return row

    @router.post("/upload", response_model=UploadResult,
                 summary=f"Create {kind} in bulk from a JSONL, CSV or XLSX file, all or nothing")
    def upload(file: UploadFile, principal: Platform, session: SessionDep, writes: WritesDep,
               settings: SettingsDep, skip_invalid: bool = False):
        suffix = Path(file.filename or "").suffix.lower()
        if suffix not in FORMATS:
            raise lists.unprocessable(f"file: expected a name ending in {', '.join(FORMATS)}, got {file.filename!r}")
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise lists.unprocessable(f"file: expected at most {MAX_UPLOAD_BYTES // 2**20} MB, got more")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                loaded = lists.load_file(session, kind, path, skip_invalid=skip_invalid)
            except (LoadError, InvalidRecordsError) as exc:
                name = file.filename or "file"
                raise lists.unprocessable(str(exc).replace(str(path), name),
                                          in_chinese(exc).replace(str(path), name)) from None
            session.rollback()  # the grid list was only read; the write path opens its own transaction
        created = writes.create_many(session, kind, [lists.row_fields(r) for r in loaded.records], principal,
                                     defaults(settings))
        return UploadResult(created=len(created), unchanged=len(loaded.records) - len(created),
                            skipped=[str(e).replace(str(path), file.filename or "file") for e in loaded.skipped])

    @router.get("", response_model=Page[public_model], summary=f"List {kind} with filters and pagination "
                "(format=xlsx: all of them as an Excel sheet)", responses={200: {"content": {exports.XLSX: {}}}})
    def list_(principal: Reader, session: SessionDep, settings: SettingsDep, grid: str | None = None,
              street: str | None = None,
              category: str | None = None, side: str | None = None, status_: Annotated[
                  str | None, Query(alias="status")] = None, escalated: bool | None = None,
              limit: Limit = 50, offset: Offset = 0, format: Literal["json", "xlsx"] = "json"):
        stmt = lists.query(kind, principal, grid=grid, street=street, category=category, side=side,
                           status_=status_, escalated=escalated)
        shown = privacy.masker(principal, settings.mask_personal_data)
        if format == "xlsx":  # every matching row (limit and offset page the JSON only)
            grids = lists.grids_by_id(session)
            rows = (exports.plain(row, grids, shown) for row in session.scalars(stmt.limit(exports.MAX_ROWS)))
            sheet = exports.Sheet(EXPORT_TITLES[kind], EXPORT_COLUMNS[kind], rows)
            lines = exports.heading(EXPORT_TITLES[kind], principal, zone=settings.timezone)
            return exports.xlsx_response([sheet], f"{EXPORT_TITLES[kind]}.xlsx", heading=lines, zone=settings.timezone)
        page = lists.page(session, stmt, limit, offset)
        if kind != "grids":
            page["items"] = [privacy.shown_row(row, principal, settings.mask_personal_data) for row in page["items"]]
        return page

    @router.get("/{record_id}", response_model=public_model, summary=f"Read one {entity}")
    def read(record_id: str, principal: Reader, session: SessionDep, settings: SettingsDep):
        row = lists.get_or_404(session, kind, record_id)
        if kind != "grids":
            lists.forbid_grid(principal, row.grid)
            return privacy.shown_row(row, principal, settings.mask_personal_data)
        return row

    @router.patch("/{record_id}", response_model=public_model, summary=f"Change fields of one {entity}")
    def modify(record_id: str, body: update_model, principal: Platform, session: SessionDep,  # type: ignore[valid-type]
               writes: WritesDep):
        return writes.modify(session, kind, record_id, body.model_dump(exclude_unset=True), principal)

    if kind != "grids":
        @router.post("/{record_id}/close", response_model=public_model,
                     summary=f"Close one {entity}; its pending suggestions leave the review queue")
        def close(record_id: str, principal: Platform, session: SessionDep, writes: WritesDep):
            return writes.close(session, kind, record_id, principal)

    return router
