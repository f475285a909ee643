"""Jobs the service runs by itself: the nightly batch over the open lists and escalation (at start, then
periodically), on APScheduler.

APScheduler gives cron times in a named zone (Asia/Shanghai by default), misfire handling and
next-run times to show operators, which a hand-written sleep loop would get wrong around restarts
and clock changes. With several workers each has a scheduler, and a slot (a night, an interval) runs
once across all of them: the first worker to insert the (job, slot) row into schedule_runs runs it,
the others find the row and skip. Those rows are also the operators' record of what ran.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import metrics
from api.errors import ConflictError
from api.principal import Principal
from api.tables import BatchJobRow, ScheduleRunRow, now

log = logging.getLogger("duijie.schedule")
SYSTEM = Principal(None, "admin", frozenset())
JOBS = {"nightly_batch": "每晚批量匹配", "escalation": "超期需求提级"}
# How long the nightly job waits for its batch to finish before it stops watching (the batch goes on).
BATCH_WAIT_S = 6 * 3600


def parse_time_of_day(text: str) -> tuple[int, int] | None:
    """'02:30' -> (2, 30); '' -> None (off). Raises ValueError naming what was expected."""
    if not text.strip():
        return None
    try:
        hour, minute = (int(p) for p in text.strip().split(":"))
    except ValueError:
        raise ValueError(f"DUIJIE_BATCH_AT: expected a local time HH:MM (e.g. 02:00) or empty, got {text!r}") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"DUIJIE_BATCH_AT: expected a local time HH:MM (e.g. 02:00) or empty, got {text!r}")
    return hour, minute


class Schedules:
    def __init__(self, sessions: sessionmaker[Session], batches: Any, writes: Any, *, worker: str,
                 batch_at: str = "02:00", zone: str = "Asia/Shanghai", escalation_interval_s: float = 3600.0,
                 k: int = 10, min_score: float | None = None) -> None:
        self._sessions, self._batches, self._writes, self._worker = sessions, batches, writes, worker
        self.zone = ZoneInfo(zone)
        self._at = parse_time_of_day(batch_at)
        self._interval = escalation_interval_s
        self._k, self._min_score = k, min_score
        self._scheduler = BackgroundScheduler(timezone=self.zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})

    def start(self, *, escalate_now: bool = True) -> Schedules:
        if self._at is not None:
            hour, minute = self._at
            self._scheduler.add_job(self.nightly_batch, CronTrigger(hour=hour, minute=minute, timezone=self.zone),
                                    id="nightly_batch", name=JOBS["nightly_batch"])
        if self._interval > 0:
            first = dt.datetime.now(self.zone) if escalate_now else None
            self._scheduler.add_job(self.escalation, IntervalTrigger(seconds=self._interval, timezone=self.zone),
                                    id="escalation", name=JOBS["escalation"], next_run_time=first)
        self._scheduler.start()
        return self

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    # ------------------------------------------------------------- one run per slot
    def _claim(self, job: str, slot: str) -> int | None:
        try:
            with self._sessions() as session, session.begin():
                row = ScheduleRunRow(job=job, slot=slot, worker=self._worker, status="running", detail={})
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            log.info("%s for %s already taken by another worker", job, slot)
            return None

    def _finish(self, run_id: int, job: str, status: str, detail: dict[str, Any]) -> None:
        with self._sessions() as session, session.begin():
            session.execute(update(ScheduleRunRow).where(ScheduleRunRow.id == run_id)
                            .values(status=status, detail=detail, finished_at=now()))
        metrics.SCHEDULED.labels(job, status).inc()

    def nightly_batch(self) -> str | None:
        """The batch over every open need, once per local night. Returns the run's status (None: not ours)."""
        slot = dt.datetime.now(self.zone).date().isoformat()
        run_id = self._claim("nightly_batch", slot)
        if run_id is None:
            return None
        try:
            job = self._batches.start({}, self._k, self._min_score, SYSTEM)
        except ConflictError as exc:  # a batch someone started by hand is running: tonight's is that one
            self._finish(run_id, "nightly_batch", "skipped", {"why": exc.message})
            return "skipped"
        self._batches.wait(timeout=BATCH_WAIT_S)
        with self._sessions() as session:
            done = session.get(BatchJobRow, job.id)
            status, result = done.status, {k: v for k, v in (done.result or {}).items() if k != "unmatched_needs"}
        outcome = "done" if status == "done" else "failed"
        self._finish(run_id, "nightly_batch", outcome, {"batch_job": job.id, "batch_status": status, **result})
        return outcome

    def escalation(self) -> str | None:
        """Flag overdue needs; their wider ring is matched on arrival. Once per interval slot."""
        moment = dt.datetime.now(self.zone)
        slot = f"{int(moment.timestamp() // self._interval)}" if self._interval > 0 else moment.isoformat()
        run_id = self._claim("escalation", slot)
        if run_id is None:
            return None
        started = time.perf_counter()
        try:
            with self._sessions() as session:
                flagged = self._writes.escalate(session, moment.date(), (None, "schedule"))
        except Exception as exc:
            log.exception("scheduled escalation failed")
            self._finish(run_id, "escalation", "failed", {"error": f"{type(exc).__name__}: {exc}"[:500]})
            return "failed"
        self._finish(run_id, "escalation", "done", {"escalated": len(flagged),
                                                    "seconds": round(time.perf_counter() - started, 3)})
        if flagged:
            log.info("escalated %d needs", len(flagged))
        return "done"

    # ------------------------------------------------------------- what operators see
    def status(self, session: Session) -> list[dict[str, Any]]:
        jobs = {job.id: job for job in self._scheduler.get_jobs()}
        shown = []
        for name, title in JOBS.items():
            last = session.scalar(select(ScheduleRunRow).where(ScheduleRunRow.job == name)
                                  .order_by(ScheduleRunRow.id.desc()).limit(1))
            job = jobs.get(name)
            shown.append({
                "job": name, "title": title, "enabled": job is not None,
                "schedule": str(job.trigger) if job is not None else "off",
                "next_run": job.next_run_time if job is not None else None,
                "last_run": None if last is None else {
                    "slot": last.slot, "status": last.status, "worker": last.worker, "started_at": last.started_at,
                    "finished_at": last.finished_at, "detail": last.detail}})
        return shown
