"""The import page (/review/import): a spreadsheet people already have, checked and previewed row by row,
then imported all or nothing, or without its bad rows, through the parsers and write path the API uses.

The upload waits between preview and import in a folder of its own under the system's temporary
folder, named by a random token that only the session which uploaded it may use, for an hour at most.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile, status
from fastapi.responses import HTMLResponse

from api import lists
from api.deps import SessionDep, SettingsDep, WritesDep
from api.errors import DomainError
from api.principal import Principal
from api.routes.listing import MAX_UPLOAD_BYTES
from api.routes.review import Staff, render, who
from api.web import check_csrf
from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.messages import in_chinese
from matcher.readers import FORMATS

router = APIRouter(prefix="/review/import", include_in_schema=False)
KINDS = {"needs": "需求", "resources": "资源", "grids": "网格"}
WAITING = Path(tempfile.gettempdir()) / "duijie-imports"
KEEP_S = 3600  # an upload not imported within the hour is dropped
PREVIEW_ROWS = 20
SHOWN_ERRORS = 200


def _page(request: Request, principal: Principal, session, code: int = 200, **context: Any) -> HTMLResponse:
    kinds = {k: v for k, v in KINDS.items() if k != "grids" or principal.role == "admin"}
    return render(request, "import.html", {"principal": principal, "who": who(session, principal), "kinds": kinds,
                                           "active": "import", **context}, status_code=code)


def _check(path: Path, kind: str, principal: Principal, session, source: str) -> tuple[list, list[str]]:
    """The records that would import, and each refused row's reason in Chinese (parsers, grid list, scope)."""
    loaded = lists.load_file(session, kind, path, skip_invalid=True)
    errors = [in_chinese(e).replace(str(path), source) for e in loaded.skipped]
    records = []
    for record in loaded.records:
        if kind != "grids" and not principal.sees(record.grid):
            errors.append(f"{source}：编号 {record.id}：您的账号无权处理网格 {record.grid or '（未填）'} 的事项")
            continue
        records.append(record)
    return records, errors


def _waiting(token: str, principal: Principal) -> tuple[Path, dict] | None:
    meta_path = WAITING / f"{token}.json"
    if not token.replace("-", "").replace("_", "").isalnum() or not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta["key_id"] != principal.key_id or time.time() - meta["at"] > KEEP_S:
        return None
    return WAITING / f"{token}{meta['suffix']}", meta


def _sweep() -> None:
    for old in WAITING.glob("*"):
        if time.time() - old.stat().st_mtime > KEEP_S:
            old.unlink(missing_ok=True)


@router.get("", response_class=HTMLResponse)
def page(request: Request, principal: Staff, session: SessionDep) -> HTMLResponse:
    return _page(request, principal, session)


@router.post("", response_class=HTMLResponse)
def preview(request: Request, principal: Staff, session: SessionDep, file: UploadFile,
            kind: Annotated[str, Form(max_length=10)] = "needs",
            csrf: Annotated[str, Form(max_length=100)] = "") -> HTMLResponse:
    check_csrf(request, csrf)
    name = Path(file.filename or "").name or "文件"
    suffix = Path(name).suffix.lower()
    if kind not in KINDS or (kind == "grids" and principal.role != "admin"):
        return _page(request, principal, session, error="请选择导入需求还是资源", code=422)
    if suffix not in FORMATS:
        return _page(request, principal, session, error=f"文件应为 {'、'.join(FORMATS)} 之一，收到 {name}", code=422)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _page(request, principal, session, error=f"文件不应超过 {MAX_UPLOAD_BYTES // 2**20} MB", code=413)
    WAITING.mkdir(parents=True, exist_ok=True)
    _sweep()
    token = secrets.token_urlsafe(16)
    path = WAITING / f"{token}{suffix}"
    path.write_bytes(data)
    try:
        records, errors = _check(path, kind, principal, session, name)
    except LoadError as exc:
        path.unlink(missing_ok=True)
        return _page(request, principal, session, error=in_chinese(exc).replace(str(path), name), code=422)
    (WAITING / f"{token}.json").write_text(json.dumps({"key_id": principal.key_id, "kind": kind, "suffix": suffix,
                                                       "name": name, "at": time.time()}), encoding="utf-8")
    return _page(request, principal, session, token=token, kind=kind, name=name, good=len(records),
                 rows=[r.to_dict() for r in records[:PREVIEW_ROWS]], errors=errors[:SHOWN_ERRORS],
                 n_errors=len(errors))


@router.post("/confirm", response_class=HTMLResponse)
def confirm(request: Request, principal: Staff, session: SessionDep, writes: WritesDep, settings: SettingsDep,
            token: Annotated[str, Form(max_length=64)] = "", mode: Annotated[str, Form(max_length=10)] = "all",
            csrf: Annotated[str, Form(max_length=100)] = "") -> HTMLResponse:
    """Import what the preview showed: every row or none ("all"), or the good rows only ("skip")."""
    check_csrf(request, csrf)
    found = _waiting(token, principal)
    if found is None:
        return _page(request, principal, session, error="这份文件已过期或不属于您，请重新上传", code=404)
    path, meta = found
    try:
        records, errors = _check(path, meta["kind"], principal, session, meta["name"])
        session.rollback()  # the checks only read; the write path opens its own transaction
        if errors and mode != "skip":
            return _page(request, principal, session, error=f"有 {len(errors)} 行有误，未导入任何一行；可改正后重传，"
                         "或选择“跳过有误的行”", errors=errors[:SHOWN_ERRORS], n_errors=len(errors), code=422)
        defaults = {"ring": settings.initial_ring} if meta["kind"] == "needs" else {}
        created = writes.create_many(session, meta["kind"], [lists.row_fields(r) for r in records], principal,
                                     defaults)
    except (DomainError, RecordError, InvalidRecordsError, LoadError) as exc:  # nothing was written
        return _page(request, principal, session, error=f"未导入：{in_chinese(exc)}", code=409)
    path.unlink(missing_ok=True)
    (WAITING / f"{token}.json").unlink(missing_ok=True)
    return _page(request, principal, session, code=status.HTTP_201_CREATED, done={
        "kind": KINDS[meta["kind"]], "created": len(created), "unchanged": len(records) - len(created),
        "skipped": len(errors)}, errors=errors[:SHOWN_ERRORS], n_errors=len(errors))
