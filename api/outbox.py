"""Webhooks from a transactional outbox, by the Standard Webhooks 1.0 spec.

An event is a row written in the transaction that caused it, so it exists exactly when the change
does; a background sender delivers each at least once. Every delivery is signed with the
`standardwebhooks` package: headers webhook-id (the same on every retry, so a receiver can drop
repeats), webhook-timestamp (this attempt's, which verification checks against replay) and
webhook-signature. Failures are retried with exponential backoff for a day; then the event is dead,
listed by the API and counted in the metrics, until an operator retries it. A slow or dead receiver
only slows the sender's thread, never a request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from api import metrics
from api.tables import OutboxRow, aware, now

log = logging.getLogger("duijie.webhooks")
TYPES = ("suggestion.created", "project.created", "project.updated", "need.escalated")
# Retries wait 5 s, 10 s, 20 s … at most an hour, for a day after the event; then it is dead.
FIRST_RETRY_S, MAX_RETRY_S = 5.0, 3600.0
GIVE_UP = dt.timedelta(hours=24)
# While one sender holds a row it is not due for the others (several workers share the outbox).
LEASE = dt.timedelta(seconds=60)
TIMEOUT_S = 10.0
BATCH = 20
# Delivered and dead events are kept this long for the operators, then pruned.
KEEP = dt.timedelta(days=7)


def emit(session: Session, type_: str, data: dict[str, Any]) -> OutboxRow:
    """Write an event inside the caller's transaction: it is sent once that commits, never otherwise."""
    if type_ not in TYPES:
        raise ValueError(f"type: expected one of {', '.join(TYPES)}, got {type_!r}")
    moment = now()
    body = json.dumps({"type": type_, "timestamp": moment.isoformat().replace("+00:00", "Z"), "data": data},
                      ensure_ascii=False, separators=(",", ":"), default=str)
    row = OutboxRow(webhook_id=f"msg_{uuid.uuid4().hex}", type=type_, body=body, created_at=moment,
                    next_attempt_at=moment, status="pending", attempts=0, last_error="")
    session.add(row)
    return row


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the n-th failed attempt."""
    return dt.timedelta(seconds=min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S))


def signed_headers(secret: str, webhook_id: str, body: str, moment: dt.datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    moment = moment or dt.datetime.now(dt.UTC)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, moment, body),
            "content-type": "application/json"}


class Sender:
    """Delivers due outbox rows from a thread of its own; wake() after a commit that wrote some."""

    def __init__(self, sessions: sessionmaker[Session], url: str, secret: str, *, poll_s: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        Webhook(secret)  # a malformed secret fails at start, not at the first event
        self._sessions, self._url, self._secret, self._poll_s = sessions, url, secret, poll_s
        self._client = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="duijie-webhooks", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.send_due()
            except Exception:  # the database may be away: the rows wait, nothing is lost
                log.exception("webhook sender round failed")
                sent = 0
            if sent < BATCH:
                self._wake.wait(self._poll_s)
                self._wake.clear()

    def send_due(self) -> int:
        """One round: claim up to BATCH due rows, deliver each, record the outcome. Returns rows tried."""
        moment = now()
        with self._sessions() as session, session.begin():
            due = list(session.execute(select(OutboxRow.id, OutboxRow.next_attempt_at).where(
                OutboxRow.status == "pending", OutboxRow.next_attempt_at <= moment)
                .order_by(OutboxRow.id).limit(BATCH)))
        tried = 0
        for row_id, due_at in due:
            with self._sessions() as session, session.begin():
                claimed = session.execute(update(OutboxRow).where(
                    OutboxRow.id == row_id, OutboxRow.status == "pending", OutboxRow.next_attempt_at == due_at)
                    .values(next_attempt_at=now() + LEASE, attempts=OutboxRow.attempts + 1)).rowcount
                row = session.get(OutboxRow, row_id) if claimed else None
                if row is None:
                    continue  # another worker's sender has it
                webhook_id, body, attempts, created = row.webhook_id, row.body, row.attempts, aware(row.created_at)
            tried += 1
            error = self._deliver(webhook_id, body)
            self._record(row_id, attempts, created, error)
        if tried:
            self.refresh_gauges()
        return tried

    def _deliver(self, webhook_id: str, body: str) -> str:
        """'' when the receiver answered 2xx, else what went wrong."""
        try:
            answer = self._client.post(self._url, content=body.encode("utf-8"),
                                       headers=signed_headers(self._secret, webhook_id, body))
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return "" if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    def _record(self, row_id: int, attempts: int, created: dt.datetime, error: str) -> None:
        moment = now()
        if not error:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": moment, "last_error": ""}
            metrics.WEBHOOKS.labels("delivered").inc()
        else:
            retry_at = moment + backoff(attempts)
            dead = retry_at - created > GIVE_UP
            values = {"last_error": error, "next_attempt_at": retry_at, "status": "dead" if dead else "pending"}
            metrics.WEBHOOKS.labels("dead" if dead else "failed").inc()
            log.warning("webhook %s attempt %d failed: %s%s", row_id, attempts, error, "; now dead" if dead else "")
        with self._sessions() as session, session.begin():
            session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))

    def refresh_gauges(self) -> None:
        with self._sessions() as session:
            for state, count in counts(session).items():
                metrics.OUTBOX.labels(state).set(count)


def counts(session: Session) -> dict[str, int]:
    """Events by state, every state named."""
    found = dict(session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())
    return {state: found.get(state, 0) for state in ("pending", "delivered", "dead")}


def retry(session: Session, row_id: int) -> OutboxRow | None:
    """Put a dead event back in line (a day more of retries); None when there is no such dead event."""
    row = session.get(OutboxRow, row_id)
    if row is None or row.status != "dead":
        return None
    row.status, row.next_attempt_at, row.created_at = "pending", now(), now()
    return row


def prune(sessions: sessionmaker[Session]) -> int:
    """Delete delivered and dead events older than KEEP."""
    with sessions() as session, session.begin():
        return session.execute(delete(OutboxRow).where(OutboxRow.status.in_(("delivered", "dead")),
                                                       OutboxRow.created_at < now() - KEEP)).rowcount
