"""Which scoring model is active, kept in the database so every process and restart agrees."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings
from api.tables import SettingRow

ACTIVE = "active_model"
HISTORY = "model_history"
DEFAULT_VERSION = "default"


def active_version(session: Session) -> str:
    row = session.get(SettingRow, ACTIVE)
    return row.value if row is not None else DEFAULT_VERSION


def history(session: Session) -> list[str]:
    row = session.get(SettingRow, HISTORY)
    return json.loads(row.value) if row is not None else []


def model_dir(settings: Settings, version: str) -> Path:
    return settings.default_model_dir if version == DEFAULT_VERSION else settings.models_dir / version


def active_model_dir(sessions: sessionmaker[Session], settings: Settings) -> Path:
    with sessions() as session:
        return model_dir(settings, active_version(session))


def set_active(session: Session, version: str, *, push: bool = True) -> str:
    """Make `version` active; the one it replaces goes on the history stack (for rollback). Returns it."""
    previous = active_version(session)
    stack = history(session) + ([previous] if push else [])
    session.merge(SettingRow(name=ACTIVE, value=version))
    session.merge(SettingRow(name=HISTORY, value=json.dumps(stack)))
    return previous


def pop_previous(session: Session) -> str | None:
    """Take the model that was active before the current one off the history stack."""
    stack = history(session)
    if not stack:
        return None
    previous = stack.pop()
    session.merge(SettingRow(name=HISTORY, value=json.dumps(stack)))
    return previous
