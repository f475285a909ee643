"""Match on arrival: needs queued after their commit are matched in a thread of their own.

The queue is bounded and debounced: ids that arrive within `debounce_s` of each other are matched
together, each once (a need edited three times in a second is matched once, on its last text). A full
queue drops the id, counts it (duijie_arrivals_total{event="dropped"}) and logs it; the nightly batch
matches every open need, so a dropped need waits at most until then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from api import metrics

log = logging.getLogger("duijie.arrivals")
# Needs matched in one engine call: top-k for many needs costs little more than for one.
CHUNK = 64


class Arrivals:
    def __init__(self, match: Callable[[Sequence[str], dict[str, float]], None], *, limit: int = 10_000,
                 debounce_s: float = 0.2) -> None:
        self._match = match
        self._limit = limit
        self._debounce_s = debounce_s
        self._queued: dict[str, float] = {}  # need id -> when it was first queued (monotonic)
        self._lock = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="duijie-arrivals", daemon=True)

    def start(self) -> Arrivals:
        self._thread.start()
        return self

    def submit(self, need_ids: Iterable[str]) -> int:
        """Queue needs for matching; returns how many were taken (the rest are dropped: queue full)."""
        taken = dropped = 0
        moment = time.monotonic()
        with self._lock:
            for need_id in need_ids:
                if need_id in self._queued:
                    taken += 1
                elif len(self._queued) >= self._limit:
                    dropped += 1
                else:
                    self._queued[need_id] = moment
                    taken += 1
            self._lock.notify()
        if taken:
            metrics.ARRIVALS.labels("queued").inc(taken)
        if dropped:
            metrics.ARRIVALS.labels("dropped").inc(dropped)
            log.warning("arrival queue full (%d): %d need(s) left to the nightly batch", self._limit, dropped)
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._queued)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued or being matched (for tests and an orderly stop)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queued or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queued and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
            time.sleep(self._debounce_s)  # let a burst of writes gather into one round
            with self._lock:
                batch, self._queued = dict(list(self._queued.items())[:CHUNK]), dict(list(self._queued.items())[CHUNK:])
                self._busy = True
            try:
                self._match(list(batch), batch)
                metrics.ARRIVALS.labels("matched").inc(len(batch))
            except Exception:  # the needs stay open; the nightly batch or the next edit matches them
                log.exception("matching %d arrived need(s) failed", len(batch))
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
