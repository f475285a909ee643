"""The index's change log: writes record which resources (or the grid tree) changed; every worker
follows the log and applies what the others wrote to its own index.

A worker applies its own writes at once and sees them again in the log; applying a resource that
is already indexed as it is changes nothing. PostgreSQL hands out ids before commit, so a slow
transaction can commit an id below one already read: the follower re-reads a window of recent ids
and skips those it has seen, instead of trusting "above the last id" alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from api.engine import resource_record
from api.tables import IndexEventRow, ResourceRow, now
from matcher import Resource

log = logging.getLogger("duijie.changes")
# Ids re-read below the highest one seen: room for transactions that commit out of id order.
WINDOW = 1000
# Events older than this are pruned: every live worker has read them long before.
KEEP = dt.timedelta(days=1)


def record(session: Session, entity: str, entity_ids: Iterable[str]) -> None:
    """Log changed resources or grids inside the caller's transaction (it commits with the write)."""
    session.add_all(IndexEventRow(entity=entity, entity_id=str(i)) for i in entity_ids)


class Changes(NamedTuple):
    """What the log brought since the last look: the changed resources as stored now, and whether
    the grid tree changed (then the whole index is rebuilt)."""

    resources: list[Resource]
    grids: bool


class ChangeFollower:
    """Reads the change log from where this worker's index was built."""

    def __init__(self, readers: sessionmaker[Session]) -> None:
        self._readers = readers
        self._seen: set[int] = set()
        with readers() as session:
            self._last = session.scalar(select(func.max(IndexEventRow.id))) or 0

    def poll(self) -> Changes:
        """The resources and grid changes committed since the last poll (resources as read now)."""
        with self._readers() as session:
            events = session.execute(select(IndexEventRow.id, IndexEventRow.entity, IndexEventRow.entity_id)
                                     .where(IndexEventRow.id > self._last - WINDOW)
                                     .order_by(IndexEventRow.id)).all()
            fresh = [e for e in events if e.id not in self._seen]
            if not fresh:
                return Changes([], False)
            self._seen.update(e.id for e in fresh)
            self._last = max(self._last, fresh[-1].id)
            self._seen = {i for i in self._seen if i > self._last - WINDOW}
            ids = sorted({e.entity_id for e in fresh if e.entity == "resource"})
            rows = session.scalars(select(ResourceRow).where(ResourceRow.id.in_(ids))) if ids else []
            return Changes([resource_record(r) for r in rows], any(e.entity == "grid" for e in fresh))


def prune(sessions: sessionmaker[Session]) -> int:
    """Delete events every worker has long since read."""
    with sessions() as session, session.begin():
        return session.execute(delete(IndexEventRow).where(IndexEventRow.created_at < now() - KEEP)).rowcount
