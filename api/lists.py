"""The needs, resources and grids lists: checked create (idempotent by id), update, close and query."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from api import audit
from api.changes import record as log_change
from api.engine import grid_record
from api.errors import ConflictError, InvalidError, NotFoundError
from api.principal import Principal, forbid_grid
from api.tables import GridRow, NeedRow, ResourceRow, SuggestionRow
from matcher.errors import RecordError
from matcher.messages import field_label
from matcher.proximity import GridMap
from matcher.readers import Loaded, load_list
from matcher.records import parse_grid, parse_need, parse_resource

ROWS = {"needs": NeedRow, "resources": ResourceRow, "grids": GridRow}
PARSERS = {"needs": parse_need, "resources": parse_resource, "grids": parse_grid}
ENTITY = {"needs": "need", "resources": "resource", "grids": "grid"}
# Fields the service owns; a caller cannot set them through create or update.
# Fields a PATCH may not clear with null; null on any other field clears it.
NOT_NULL = {"title", "capacity", "kind", "ring"}
SERVICE_FIELDS = {"status", "taken", "escalated", "escalated_at", "created_at", "updated_at"}


# Each kind of record in Chinese, for the messages staff read.
ENTITY_ZH = {"need": "需求", "resource": "资源", "grid": "网格"}


def unprocessable(message: str, zh: str | None = None, field: str | None = None) -> InvalidError:
    return InvalidError(message, zh=zh, field=field)


def refused(exc: RecordError) -> InvalidError:
    """A record the engine's checks refused, as the lists' error: its words, its Chinese, its field."""
    return unprocessable(str(exc), exc.zh, exc.field)


def check(kind: str, data: dict[str, Any]):
    """Run the engine's own record checks, so the API and the files accept exactly the same records."""
    try:
        return PARSERS[kind](data)
    except RecordError as exc:
        raise refused(exc) from None


def load_file(session: Session, kind: str, path: Path, *, skip_invalid: bool = False) -> Loaded:
    """A list file through the engine's parsers, each record's grid checked against the stored grid list:
    what the API's upload, the import page and `duijie import` all read a file with."""
    grid_ids = None if kind == "grids" else set(session.scalars(select(GridRow.id)))
    return load_list(path, kind, skip_invalid=skip_invalid, grid_ids=grid_ids)


def row_fields(record) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def check_grid(session: Session, grid: str) -> None:
    if grid and session.get(GridRow, grid) is None:
        raise refused(RecordError("grid", "the id of a grid in the grid list", grid))


def check_grid_tree(session: Session, changed: dict[str, Any]) -> None:
    """Refuse a grid whose parent is unknown, a point, or makes a cycle, checked on the whole tree."""
    records = [grid_record(g) for g in session.scalars(select(GridRow)) if g.id != changed["id"]]
    records.append(check("grids", changed))
    try:
        GridMap(records)
    except RecordError as exc:
        raise refused(RecordError(exc.field, exc.expected, exc.got, shown=exc.shown)) from None


def _same(row, fields: dict[str, Any]) -> bool:
    return all(getattr(row, name) == value for name, value in fields.items() if name not in SERVICE_FIELDS)


def create(session: Session, kind: str, payload: dict[str, Any], principal: Principal,
           defaults: dict[str, Any] | None = None) -> tuple[Any, bool]:
    """Insert a record, or return the stored one when a retry sends the same id and content."""
    table = ROWS[kind]
    payload = {k: v for k, v in payload.items() if v is not None}
    for name, value in (defaults or {}).items():
        payload.setdefault(name, value)
    record = check(kind, payload)
    fields = row_fields(record)
    existing = session.get(table, record.id)
    if existing is not None:
        if _same(existing, fields):
            return existing, False
        raise ConflictError(f"{ENTITY[kind]} {record.id!r} already exists with other content; use PATCH to change it",
                            zh=f"{ENTITY_ZH[ENTITY[kind]]} {record.id} 已存在且内容不同；要修改请用编辑（PATCH）")
    if kind == "grids":
        check_grid_tree(session, fields)
    else:
        check_grid(session, record.grid)
        forbid_grid(principal, record.grid)
    row = table(**fields)
    session.add(row)
    audit.record(session, principal.actor, "create", ENTITY[kind], record.id)
    _changed(session, kind, record.id, "created")
    return row, True


def _changed(session: Session, kind: str, record_id: str, what: str) -> None:
    """Every write of a list goes to the change log: resources and grids are what the index holds, and a
    need written anywhere is matched on arrival."""
    log_change(session, ENTITY[kind], [record_id], what)


def get_or_404(session: Session, kind: str, record_id: str):
    row = session.get(ROWS[kind], record_id)
    if row is None:
        raise NotFoundError(f"{ENTITY[kind]} {record_id!r} not found",
                            zh=f"没有编号为 {record_id} 的{ENTITY_ZH[ENTITY[kind]]}")
    return row


def modify(session: Session, kind: str, record_id: str, changes: dict[str, Any], principal: Principal):
    """Apply a partial update after checking the whole changed record."""
    row = get_or_404(session, kind, record_id)
    if kind != "grids":
        forbid_grid(principal, row.grid)
    for name in NOT_NULL & {k for k, v in changes.items() if v is None}:
        raise unprocessable(f"field {name!r}: expected a value (it cannot be cleared), got null",
                            zh=f"{field_label(name)}不能清空", field=name)
    merged = {**{c.key: getattr(row, c.key) for c in row.__table__.columns}, **changes, "id": row.id}
    if kind == "resources" and merged["capacity"] < row.taken:
        raise ConflictError(f"field 'capacity': expected at least the {row.taken} needs it already serves, "
                            f"got {merged['capacity']}",
                            zh=f"容量不能小于已在服务的 {row.taken} 个需求，收到 {merged['capacity']}")
    record = check(kind, merged)
    fields = row_fields(record)
    if kind == "grids":
        check_grid_tree(session, fields)
    else:
        check_grid(session, record.grid)
        forbid_grid(principal, record.grid)
    for name, value in fields.items():
        if name not in SERVICE_FIELDS and name != "id":
            setattr(row, name, value)
    audit.record(session, principal.actor, "update", ENTITY[kind], record_id, {"fields": sorted(changes)})
    _changed(session, kind, record_id, "updated")
    return row


def close(session: Session, kind: str, record_id: str, principal: Principal):
    """Close a need or resource; its pending suggestions are withdrawn from the review queue."""
    row = get_or_404(session, kind, record_id)
    forbid_grid(principal, row.grid)
    if row.status != "closed":
        row.status = "closed"
        column = SuggestionRow.need_id if kind == "needs" else SuggestionRow.resource_id
        session.execute(update(SuggestionRow).where(column == record_id, SuggestionRow.status == "pending")
                        .values(status="withdrawn"))
        audit.record(session, principal.actor, "close", ENTITY[kind], record_id)
        _changed(session, kind, record_id, "closed")
    return row


def query(kind: str, principal: Principal, *, grid: str | None = None, street: str | None = None,
          category: str | None = None, side: str | None = None, status_: str | None = None,
          escalated: bool | None = None) -> Select:
    table = ROWS[kind]
    stmt = select(table)
    if kind == "grids":
        if street is not None:
            stmt = stmt.where(table.street == street)
        return stmt.order_by(table.id)
    stmt = in_place(stmt, table.grid, principal, grid=grid, street=street)
    if category is not None:
        stmt = stmt.where(table.category == category)
    if side is not None:
        stmt = stmt.where(table.side == side)
    if status_ is not None:
        stmt = stmt.where(table.status == status_)
    if escalated is not None and kind == "needs":
        stmt = stmt.where(table.escalated == escalated)
    return stmt.order_by(table.id)


def grids_by_id(session: Session) -> dict[str, GridRow]:
    """Every grid by id: pages and exports name grids, not ids."""
    return {g.id: g for g in session.scalars(select(GridRow))}


def in_place(stmt: Select, grid_column, principal: Principal, *, grid: str | None = None,
             street: str | None = None) -> Select:
    """Limit a query to the key's scope (its grids and all under them, its streets), and to one grid or
    street when asked."""
    if principal.limited:
        stmt = stmt.where(grid_column.in_(sorted(principal.grids)))
    if grid is not None:
        stmt = stmt.where(grid_column == grid)
    if street is not None:
        stmt = stmt.where(grid_column.in_(select(GridRow.id).where(GridRow.street == street)))
    return stmt


def page(session: Session, stmt: Select, limit: int, offset: int) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return {"items": list(session.scalars(stmt.limit(limit).offset(offset))), "total": total, "limit": limit,
            "offset": offset}
