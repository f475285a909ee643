"""Which scoring model is active, kept in the database so every process and restart agrees."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    """The folder of a version; `default` is the bundled model of the service's encoder (words alone: the
    lexical model, which gives the embedding cosine no weight)."""
    from matcher.registry import version_dir
    from matcher.scoring import default_model_dir

    return version_dir(settings.models_dir, version, default=default_model_dir(settings.encoder))


def load_version(settings: Settings, version: str) -> Any:
    """The scorer of a version (LookupError naming the versions there are, if it does not exist)."""
    from matcher import registry
    from matcher.scoring import default_model_dir

    return registry.load(settings.models_dir, version, default=default_model_dir(settings.encoder))


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


def promote(session: Session, settings: Settings, version: str, *, force: bool = False,
            canary: Callable[[Sequence[Any]], list[float]] | None = None) -> str:
    """Make a trained version active unless the guard refuses it (matcher.guard): it may not rank worse than
    the active model on its own held-out decisions, nor on the canary set shipped with the project.

    Both models score the candidate's held-out pairs, so the comparison is fair whichever model became
    active since the candidate was trained. `canary` scores models on the canary set (the service passes
    one with its encoder and caches; None builds one). `force` promotes a refused model, saying so.
    Returns a one-line account with both thresholds.
    """
    from matcher import registry
    from matcher.guard import heldout_ndcg, judge, thresholds

    candidate = load_version(settings, version)
    current_version = active_version(session)
    if version == current_version:
        return f"{version} 已是现用模型"
    current = load_version(settings, current_version)
    held = registry.holdout(settings.models_dir, version)
    heldout = heldout_ndcg(candidate, current, held) if held is not None else None
    if canary is None:
        from matcher.canary import canary_mrr

        def canary(scorers: Sequence[Any]) -> list[float]:
            return canary_mrr(scorers)
    mine, theirs = canary([candidate, current])
    verdict = judge(heldout, (mine, theirs))
    if verdict.refused and not force:
        raise PromotionRefusedError(f"拒绝启用 {version}：{verdict.reason}（对比现用模型 {current_version}；"
                                    f"{verdict.account}）。确需启用请加 force（将记入审计）")
    set_active(session, version)
    forced = f"；守卫未通过（{verdict.reason}），按 force 强制启用" if verdict.refused else ""
    return f"{version} 已启用，替换 {current_version}；{thresholds(candidate, current)}；{verdict.account}{forced}"


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
