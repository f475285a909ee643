"""Loading the bundled demo lists into an empty database, as `duijie serve --demo` does."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import lists
from api.deps import Principal
from api.settings import Settings
from api.tables import NeedRow
from matcher.cli import DEMO_DIR
from matcher.readers import load_list

SYSTEM = Principal(None, "admin", frozenset())


def load_demo(sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Insert the demo grids, needs and resources when the database has no needs; True if it did."""
    with sessions() as session, session.begin():
        if session.scalar(select(func.count()).select_from(NeedRow)):
            return False
        for kind in ("grids", "needs", "resources"):
            defaults = {"ring": settings.initial_ring} if kind == "needs" else {}
            for record in load_list(DEMO_DIR / f"{kind}.jsonl", kind).records:
                lists.create(session, kind, lists.row_fields(record), SYSTEM, defaults)
            session.flush()
    return True
