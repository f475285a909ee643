"""The one write path: every change to the lists, decisions and projects runs here.

A write is one transaction that holds the data, its audit row, its change events (api/changes.py)
and its webhook events (api/outbox.py), so all of them commit together or not at all. After the
commit, one hand-off applies the transaction's events to this process's engine (once: the change-log
follower skips this process's own events), queues the needs to match on arrival, sends new
resources' waiting needs back to matching and wakes the webhook sender. Routes and pages only
translate HTTP to these calls; the command line uses the same ones without an engine, and the
service's follower picks its events up from the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import changes, decisions, escalation, lists
from api.changes import Changes
from api.db import in_transaction
from api.engine import EngineState, need_record, resource_record
from api.matching import waiting_needs
from api.principal import Principal
from api.tables import IndexEventRow, NeedRow, ProjectRow, ResourceRow, SuggestionRow

T = TypeVar("T")


class Writes:
    """The service layer. `engine`, `arrivals` and `sender` are None where there is no service (the CLI)."""

    def __init__(self, sessions: sessionmaker[Session], readers: sessionmaker[Session] | None = None,
                 engine: EngineState | None = None) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self.engine = engine
        self.arrivals = None  # api.arrivals.Arrivals, set by the service
        self.sender = None  # api.outbox.Sender, set when webhooks are configured

    # ------------------------------------------------------------- the transaction and its hand-off
    def run(self, session: Session, work: Callable[[Session], T], *, queue: bool = True) -> T:
        """Run `work` in one transaction (again if the database broke a deadlock), then hand its events on.

        `queue=False` leaves its needs out of matching on arrival (the caller matches them itself)."""
        def attempt(s: Session) -> T:
            changes.take(s)  # a broken attempt's events never committed
            return work(s)

        try:
            result = in_transaction(session, attempt)
        except BaseException:
            changes.take(session)
            raise
        self.after_commit(changes.take(session), queue=queue)
        return result

    def after_commit(self, events: Sequence[IndexEventRow], *, queue: bool = True) -> None:
        """Apply committed events of this process to its engine, once, and start what they call for."""
        if self.sender is not None:
            self.sender.wake()  # outbox rows may have committed with them
        if self.engine is None or not events:
            return
        self._apply({e.entity_id for e in events if e.entity == "resource"},
                    {e.entity_id for e in events if e.entity == "need"},
                    any(e.entity == "grid" for e in events),
                    match={e.entity_id for e in events if e.entity == "need" and e.kind in changes.MATCHING}
                    if queue else set(),
                    new_resources={e.entity_id for e in events if e.entity == "resource" and e.kind == "created"},
                    encode=True)

    def follow(self, found: Changes) -> None:
        """Apply what the change log brought from other processes; match what this worker claimed."""
        if self.engine is None:
            return
        if found.grids:
            self.engine.rebuild()
        elif found.resources:
            self.engine.resources_saved(found.resources, store=False)
        claimed_needs = {i for entity, i, _ in found.claimed if entity == "need"}
        claimed_resources = {i for entity, i, kind in found.claimed if entity == "resource" and kind == "created"}
        if claimed_needs or claimed_resources:
            self._apply(set(), claimed_needs, False, match=claimed_needs, new_resources=claimed_resources,
                        encode=False)

    def _apply(self, resource_ids: set[str], need_ids: set[str], grids: bool, *, match: set[str],
               new_resources: set[str], encode: bool) -> None:
        engine = self.engine
        with self._readers() as session:
            resources = list(session.scalars(select(ResourceRow).where(ResourceRow.id.in_(sorted(resource_ids)))))
            needs = list(session.scalars(select(NeedRow).where(NeedRow.id.in_(sorted(need_ids)),
                                                               NeedRow.status == "open")))
        if grids:
            engine.rebuild()
        elif resources:
            engine.resources_saved([resource_record(r) for r in resources], store=False)
        if needs and encode:
            engine.needs_saved([need_record(n) for n in needs])  # encoded now, outside any transaction
        engine.store_embeddings()
        if self.arrivals is None:
            return
        to_match = [n.id for n in needs if n.id in match]
        with self._readers() as session:
            for resource in resources:
                if resource.id in new_resources:
                    to_match.extend(waiting_needs(session, engine, resource))
        if to_match:
            self.arrivals.submit(dict.fromkeys(to_match))

    # ------------------------------------------------------------- the lists
    def create(self, session: Session, kind: str, payload: dict[str, Any], principal: Principal,
               defaults: dict[str, Any] | None = None, *, queue: bool = True) -> tuple[Any, bool]:
        """Create a record (idempotent by id and content); (row, created)."""
        try:
            return self.run(session, lambda s: lists.create(s, kind, payload, principal, defaults), queue=queue)
        except IntegrityError:
            # A concurrent create of the same id committed first: answered as a retry is (the same row,
            # or a conflict naming the difference), not with the race's duplicate-key error.
            return self.run(session, lambda s: lists.create(s, kind, payload, principal, defaults), queue=queue)

    def create_many(self, session: Session, kind: str, records: Sequence[dict[str, Any]], principal: Principal,
                    defaults: dict[str, Any] | None = None) -> list[Any]:
        """An upload: every record in one transaction, all or nothing; returns the rows it created."""
        def work(s: Session) -> list[Any]:
            created = []
            for record in records:
                row, is_new = lists.create(s, kind, record, principal, defaults)
                if is_new:
                    created.append(row)
            return created

        return self.run(session, work)

    def modify(self, session: Session, kind: str, record_id: str, fields: dict[str, Any], principal: Principal):
        return self.run(session, lambda s: lists.modify(s, kind, record_id, fields, principal))

    def close(self, session: Session, kind: str, record_id: str, principal: Principal):
        return self.run(session, lambda s: lists.close(s, kind, record_id, principal))

    # ------------------------------------------------------------- decisions and projects
    def accept(self, session: Session, suggestion_id: int, principal: Principal) -> ProjectRow:
        return self.run(session, lambda s: decisions.accept(s, suggestion_id, principal))

    def reject(self, session: Session, suggestion_id: int, principal: Principal, reason: str,
               note: str) -> SuggestionRow:
        return self.run(session, lambda s: decisions.reject(s, suggestion_id, principal, reason, note))

    def undo(self, session: Session, review_id: int, principal: Principal) -> SuggestionRow:
        return self.run(session, lambda s: decisions.undo(s, review_id, principal))

    def update_project(self, session: Session, project_id: int, principal: Principal, **change: Any) -> ProjectRow:
        return self.run(session, lambda s: decisions.update_project(s, project_id, principal, **change))

    def escalate(self, session: Session, today: dt.date, actor: tuple[int | None, str]) -> list[str]:
        return self.run(session, lambda s: escalation.escalate(s, today, actor))
