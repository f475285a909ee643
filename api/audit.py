"""The audit log: every write says who did what to which record, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.tables import AuditRow


def record(session: Session, actor: tuple[int | None, str], action: str, entity: str, entity_id: object,
           detail: dict[str, Any] | None = None) -> None:
    """Add an audit row inside the caller's transaction, so it commits or rolls back with the write."""
    key_id, name = actor
    session.add(AuditRow(key_id=key_id, actor=name, action=action, entity=entity, entity_id=str(entity_id),
                         detail=detail or {}))
