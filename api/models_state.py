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
    from matcher.registry import version_dir

    return version_dir(settings.models_dir, version)


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


def promote(session: Session, settings: Settings, version: str, *, force: bool = False) -> str:
    """Make a trained version active, unless it ranks worse than the active one on its held-out decisions.

    Both models score the candidate's own held-out pairs, so the comparison is fair whichever model
    became active since the candidate was trained. Returns a one-line account.
    """
    from matcher import registry
    from matcher.evaluation import ndcg_at

    candidate = registry.load(settings.models_dir, version)
    current_version = active_version(session)
    if version == current_version:
        return f"{version} is already the active model"
    held = registry.holdout(settings.models_dir, version)
    account = ""
    if held is not None:
        values, labels, groups = held
        current = registry.load(settings.models_dir, current_version)
        mine, theirs = ndcg_at(candidate.score(values), labels, groups, 10), ndcg_at(current.score(values), labels,
                                                                                       groups, 10)
        account = f" (held-out NDCG@10 {mine:.4f} against {theirs:.4f} for {current_version})"
        if mine < theirs - 1e-9 and not force:
            raise PromotionRefusedError(
                f"refused: {version} ranks worse than the active model {current_version} on its held-out "
                f"decisions: NDCG@10 {mine:.4f} against {theirs:.4f}, {theirs - mine:.4f} lower; "
                "pass force to promote anyway")
    set_active(session, version)
    return f"{version} is now active, replacing {current_version}{account}"


def rollback(session: Session) -> str:
    """Return to the model that was active before the current one."""
    previous = pop_previous(session)
    if previous is None:
        raise LookupError("rollback: expected an earlier active model to return to, got none (history is empty)")
    current = active_version(session)
    set_active(session, previous, push=False)
    return f"{previous} is active again, replacing {current}"


class PromotionRefusedError(ValueError):
    """A promotion the guard refused; the message says by how much."""
