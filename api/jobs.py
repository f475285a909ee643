"""Batch matching as a background job: a global assignment over the open needs, written all at once."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.engine import EngineState, need_record
from api.errors import ConflictError
from api.matching import served, store
from api.principal import Principal
from api.tables import BatchJobRow, GridRow, NeedRow, now

log = logging.getLogger("duijie.jobs")
# Who the audit log names for what a batch writes when it finishes: the job itself, started by a key.
SYSTEM_ACTOR = (None, "batch")


class BatchRunner:
    """Runs at most one batch at a time; a second request while one runs gets 409."""

    def __init__(self, sessions: sessionmaker[Session], engine: EngineState, *,
                 readers: sessionmaker[Session] | None = None) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self._engine = engine
        self._running = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self, filters: dict[str, Any], k: int, min_score: float, principal: Principal) -> BatchJobRow:
        if not self._running.acquire(blocking=False):
            raise ConflictError("a batch match is already running; poll its status first")
        try:
            with self._sessions() as session, session.begin():
                job = BatchJobRow(id=uuid.uuid4().hex, filters=filters, key_id=principal.key_id)
                session.add(job)
                audit.record(session, principal.actor, "start", "batch", job.id, filters)
            self.thread = threading.Thread(target=self._run, args=(job.id, filters, k, min_score),
                                           name=f"duijie-batch-{job.id[:8]}", daemon=True)
            self.thread.start()
        except BaseException:
            self._running.release()
            raise
        return job

    def _progress(self, job_id: str, share: float) -> None:
        with self._sessions() as session, session.begin():
            session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id).values(progress=round(share * 0.9, 3)))

    def _run(self, job_id: str, filters: dict[str, Any], k: int, min_score: float) -> None:
        try:
            self._progress(job_id, 0.0)
            with self._sessions() as session, session.begin():
                session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id).values(status="running"))
            with self._readers() as session:
                needs = [need_record(n) for n in session.scalars(open_needs(filters))]
                done = served(session)
            needs = [n for n in needs if n.id not in done]
            # The batch runs on the snapshot current at its start; requests meanwhile use newer ones freely.
            result, version = self._engine.assign(needs, k=k, min_score=min_score,
                                                  on_progress=lambda share: self._progress(job_id, share))
            summary = {
                "needs": len(needs), "pairs": len(result.pairs), "unmatched": len(result.unmatched),
                "total_score": round(result.total_score, 4), "model_version": version,
                "unmatched_by_reason": dict(Counter(r.split(":")[0] for r in result.unmatched.values())),
                "unmatched_needs": result.unmatched,
            }
            # Every suggestion of the batch lands in this one transaction, or none does.
            with self._sessions() as session, session.begin():
                store(session, result.pairs, [n.id for n in needs], version, f"batch:{job_id}")
                audit.record(session, SYSTEM_ACTOR, "finish", "batch", job_id,
                             {k: v for k, v in summary.items() if k != "unmatched_needs"})
                session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id)
                                .values(status="done", progress=1.0, result=summary, finished_at=now()))
            self._engine.store_embeddings()  # needs the batch encoded (posted before they were encoded on posting)
        except Exception as exc:
            log.exception("batch %s failed", job_id)
            with self._sessions() as session, session.begin():
                session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id)
                                .values(status="failed", error=f"{type(exc).__name__}: {exc}", finished_at=now()))
        finally:
            self._running.release()

    def wait(self, timeout: float = 120.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def open_needs(filters: dict[str, Any]):
    stmt = select(NeedRow).where(NeedRow.status == "open")
    for name in ("grid", "category", "side"):
        if filters.get(name) is not None:
            stmt = stmt.where(getattr(NeedRow, name) == filters[name])
    if filters.get("street") is not None:
        stmt = stmt.where(NeedRow.grid.in_(select(GridRow.id).where(GridRow.street == filters["street"])))
    return stmt.order_by(NeedRow.id)


def mark_interrupted(sessions: sessionmaker[Session]) -> None:
    """Jobs left running by a process that died are failed on start-up; their writes never happened."""
    with sessions() as session, session.begin():
        session.execute(update(BatchJobRow).where(BatchJobRow.status.in_(("queued", "running")))
                        .values(status="failed", error="the service stopped before the job finished",
                                finished_at=now()))
