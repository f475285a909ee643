"""Batch matching as a background job: a global assignment over the open needs, written all at once."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api import audit, metrics
from api.engine import EngineState, need_record
from api.errors import ConflictError
from api.matching import served, store
from api.principal import Principal
from api.tables import BatchJobRow, GridRow, NeedRow, now

log = logging.getLogger("duijie.jobs")
# Who the audit log names for what a batch writes when it finishes: the job itself, started by a key.
SYSTEM_ACTOR = (None, "batch")


# The PostgreSQL advisory lock a running batch holds: one batch at a time across every worker.
BATCH_LOCK_KEY = 0x6475696A6965  # "duijie"
# How long a batch that failed keeps trying to record that, while the database is away.
FAIL_RETRY_S = (1, 2, 5, 10, 30, 60)


class BatchLock:
    """One batch at a time: a thread lock in this process and, on PostgreSQL, an advisory lock held on a
    connection of its own for the batch's whole run (released by the server if this process dies)."""

    def __init__(self, db: Engine | None) -> None:
        self._db = db if db is not None and db.dialect.name == "postgresql" else None
        self._local = threading.Lock()
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if not self._local.acquire(blocking=False):
            return False
        if self._db is None:
            return True
        try:
            connection = self._db.connect()
            got = connection.execute(select(func.pg_try_advisory_lock(BATCH_LOCK_KEY))).scalar()
            connection.commit()
        except BaseException:
            self._local.release()
            raise
        if not got:
            connection.close()
            self._local.release()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.execute(select(func.pg_advisory_unlock(BATCH_LOCK_KEY)))
                connection.commit()
            except Exception:  # the database went away: the server dropped the session and its lock
                log.warning("could not release the batch lock; the server releases it with the session")
            finally:
                connection.invalidate()  # never back to the pool with a session lock possibly held
        self._local.release()

    def nobody_holds_it(self) -> bool:
        """True when no batch runs in any process: then jobs marked running are leftovers."""
        if not self.acquire():
            return False
        self.release()
        return True


class BatchRunner:
    """Runs at most one batch at a time across all workers; a second request while one runs gets 409."""

    def __init__(self, sessions: sessionmaker[Session], engine: EngineState, *,
                 readers: sessionmaker[Session] | None = None, db: Engine | None = None,
                 dask_scheduler: str = "") -> None:
        self._dask = dask_scheduler
        self._sessions = sessions
        self._readers = readers or sessions
        self._engine = engine
        self._running = BatchLock(db)
        self.thread: threading.Thread | None = None

    def start(self, filters: dict[str, Any], k: int, min_score: float | None, principal: Principal) -> BatchJobRow:
        """Start a batch; `min_score` None uses the minimum of the model the batch scores with."""
        if not self._running.acquire():
            raise ConflictError("a batch match is already running; poll its status first",
                                zh="已有一次批量匹配在运行，请等它完成")
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

    def sweep(self) -> int:
        """Fail jobs left running by a process that died or a batch whose failure could not be written
        (the database was away): only when no batch runs anywhere, so none of them is alive."""
        if not self._running.nobody_holds_it():  # also false while this process runs one
            return 0
        return mark_interrupted(self._sessions)

    def _progress(self, job_id: str, share: float) -> None:
        with self._sessions() as session, session.begin():
            session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id).values(progress=round(share * 0.9, 3)))

    def _run(self, job_id: str, filters: dict[str, Any], k: int, min_score: float | None) -> None:
        started, outcome = time.perf_counter(), "failed"
        try:
            self._progress(job_id, 0.0)
            with self._sessions() as session, session.begin():
                session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id).values(status="running"))
            with self._readers() as session:
                needs = [need_record(n) for n in session.scalars(open_needs(filters))]
                done = served(session)
            needs = [n for n in needs if n.id not in done]
            # The batch runs on the snapshot current at its start; requests meanwhile use newer ones freely.
            with self._backend(job_id) as backend:
                result, version, used = self._engine.assign(
                    needs, k=k, min_score=min_score, on_progress=lambda share: self._progress(job_id, share),
                    backend=backend)
                workers = backend.n_workers if backend is not None else None
            summary = {
                "needs": len(needs), "pairs": len(result.pairs), "unmatched": len(result.unmatched),
                "total_score": round(result.total_score, 4), "model_version": version, "min_score": used,
                "cluster": self._dask or None, "workers": workers,
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
            outcome = "done"
            self._engine.store_embeddings()  # needs the batch encoded (posted before they were encoded on posting)
        except Exception as exc:
            log.exception("batch %s failed", job_id)
            self._fail(job_id, f"{type(exc).__name__}: {exc}")
        finally:
            metrics.BATCH.labels(outcome).observe(time.perf_counter() - started)
            self._running.release()

    @contextlib.contextmanager
    def _backend(self, job_id: str) -> Iterator[object | None]:
        """The Dask backend when a scheduler is set (its dashboard link is shown on the job), else None."""
        if not self._dask:
            yield None
            return
        from matcher.distributed import DaskBackend, cluster, dashboard

        with cluster(self._dask) as client:
            backend = DaskBackend(client)
            with self._sessions() as session, session.begin():
                session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id)
                                .values(result={"cluster": self._dask, "dashboard": dashboard(client),
                                                "workers": backend.n_workers}))
            yield backend

    def _fail(self, job_id: str, error: str) -> None:
        """Record the failure, retrying while the database is away (a failed batch must not stay
        "running"); if it never comes back in time, the next sweep or start-up marks the job."""
        for pause in (*FAIL_RETRY_S, None):
            try:
                with self._sessions() as session, session.begin():
                    session.execute(update(BatchJobRow).where(BatchJobRow.id == job_id)
                                    .values(status="failed", error=error[:2000], finished_at=now()))
                return
            except OperationalError:
                if pause is None:
                    log.error("batch %s: could not record its failure; a later sweep will", job_id)
                    return
                time.sleep(pause)

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


def mark_interrupted(sessions: sessionmaker[Session]) -> int:
    """Jobs left running by a process that died are failed; their writes never happened.

    Call only when no batch runs anywhere (start-up of the only process, or BatchRunner.sweep).
    """
    with sessions() as session, session.begin():
        return session.execute(update(BatchJobRow).where(BatchJobRow.status.in_(("queued", "running")))
                               .values(status="failed", error="the service stopped before the job finished",
                                       finished_at=now())).rowcount
