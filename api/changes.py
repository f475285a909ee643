"""The change log: every write records what it changed (a need, a resource, the grid tree) in the same
transaction, and every worker follows the log.

The process that wrote an event applies it after its own commit (api/writes.py) and skips it in the
log; the others apply it when they read it. Events written outside any service process (the command
line) carry no origin: one worker claims each of those that asks for matching, so a need imported by
the CLI is matched once. PostgreSQL hands out ids before commit, so a slow transaction can commit an
id below one already read: the follower re-reads a window of recent ids and skips those it has seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.engine import resource_record
from api.tables import IndexEventRow, ResourceRow, now
from matcher import Resource

log = logging.getLogger("duijie.changes")
# Ids re-read below the highest one seen: room for transactions that commit out of id order.
WINDOW = 1000
# Events older than this are pruned: every live worker has read them long before.
KEEP = dt.timedelta(days=1)
# Kinds of event that ask for matching (a need to match, a new resource for needs still waiting).
MATCHING = ("created", "updated", "escalated")
# The keys session.info holds a transaction's events and the writing worker's token under.
PENDING = "duijie_events"
ORIGIN = "duijie_origin"


def serve_as_worker(sessions: sessionmaker[Session]) -> str:
    """Mark the sessions of a service worker: the events written through them name it. Returns its token.

    On the sessions, not the process, so that two apps in one process (tests) or the command line run
    beside a service are told apart."""
    token = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    sessions.configure(info={ORIGIN: token})
    return token


def record(session: Session, entity: str, entity_ids: Iterable[str], kind: str = "updated") -> None:
    """Log changed needs, resources or grids inside the caller's transaction (it commits with the write)."""
    origin = session.info.get(ORIGIN, "")
    rows = [IndexEventRow(entity=entity, entity_id=str(i), kind=kind, origin=origin, claimed_by=origin)
            for i in entity_ids]
    session.add_all(rows)
    session.info.setdefault(PENDING, []).extend(rows)


def take(session: Session) -> list[IndexEventRow]:
    """The events the session's transactions recorded since the last take (read after the commit)."""
    return session.info.pop(PENDING, [])


class Changes(NamedTuple):
    """What the log brought since the last look: resources as stored now, whether the grid tree changed
    (then the whole index is rebuilt), and the events this worker claimed for matching. Needs other
    workers wrote are theirs to match; their embeddings arrive through the embeddings table."""

    resources: list[Resource]
    grids: bool
    claimed: tuple[tuple[str, str, str], ...] = ()  # (entity, id, kind) written elsewhere, now this worker's


class ChangeFollower:
    """Reads the change log from where this worker's index was built, skipping its own events."""

    def __init__(self, readers: sessionmaker[Session], writers: sessionmaker[Session] | None = None,
                 origin: str = "") -> None:
        self._readers = readers
        self._writers = writers or readers
        self._origin = origin  # this worker's token: its own events were applied after its commits
        self._seen: set[int] = set()
        with readers() as session:
            self._last = session.scalar(select(func.max(IndexEventRow.id))) or 0

    def poll(self) -> Changes:
        """The writes other processes committed since the last poll (records as read now)."""
        with self._readers() as session:
            events = session.execute(select(IndexEventRow.id, IndexEventRow.entity, IndexEventRow.entity_id,
                                            IndexEventRow.kind, IndexEventRow.origin)
                                     .where(IndexEventRow.id > self._last - WINDOW)
                                     .order_by(IndexEventRow.id)).all()
            fresh = [e for e in events if e.id not in self._seen]
            if not fresh:
                return Changes([], False)
            self._seen.update(e.id for e in fresh)
            self._last = max(self._last, fresh[-1].id)
            self._seen = {i for i in self._seen if i > self._last - WINDOW}
            others = [e for e in fresh if not self._origin or e.origin != self._origin]
            ids = sorted({e.entity_id for e in others if e.entity == "resource"})
            resources = [resource_record(r) for r in session.scalars(
                select(ResourceRow).where(ResourceRow.id.in_(ids)))] if ids else []
        unowned = [e for e in others if not e.origin and e.kind in MATCHING and e.entity in ("need", "resource")]
        return Changes(resources, any(e.entity == "grid" for e in others), tuple(self._claim(unowned)))

    def _claim(self, events) -> list[tuple[str, str, str]]:
        """Take the unowned events no other worker took yet: a conditional update is the claim."""
        if not events or not self._origin:
            return []
        with self._writers() as session, session.begin():
            won = session.execute(update(IndexEventRow).where(IndexEventRow.id.in_([e.id for e in events]),
                                                              IndexEventRow.claimed_by == "")
                                  .values(claimed_by=self._origin).returning(IndexEventRow.id)).scalars().all()
        won = set(won)
        return [(e.entity, e.entity_id, e.kind) for e in events if e.id in won]


def prune(sessions: sessionmaker[Session]) -> int:
    """Delete events every worker has long since read."""
    with sessions() as session, session.begin():
        return session.execute(delete(IndexEventRow).where(IndexEventRow.created_at < now() - KEEP)).rowcount
