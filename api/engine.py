"""The index the service matches with, as immutable snapshots kept in step with every write to the lists.

Requests and batches take the current Snapshot by reference, without a lock, and use it to the end:
a batch never blocks a request, and a promotion never half-applies to one. Writers (resource edits,
refits, model swaps) build the next snapshot under one writer lock and publish it by swapping the
reference; a snapshot, once published, is never changed (index edits copy the matcher first).
When enough was added since the last fit for the vocabulary to drift, a background refit rebuilds the
index from the database and publishes it, replaying the writes that came in meanwhile; a refit that a
newer rebuild overtook discards itself.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import metrics
from api.tables import EmbeddingRow, GridRow, NeedRow, ResourceRow, aware, now
from matcher import Matcher, Need, Resource
from matcher.encode import EmbeddingCache
from matcher.records import Grid
from matcher.scoring import Scorer, load_scorer, model_min_score
from matcher.suggestion import Assignment, Suggestion
from matcher.tokenize import Tokenizer

log = logging.getLogger("duijie.engine")
# Up to this many resources a refit takes well under a second, so it runs in the writing request.
SMALL_INDEX = 2000
# Embeddings are stamped when inserted and seen once committed: look back this far for slow commits.
EMBEDDINGS_MARGIN = dt.timedelta(seconds=30)


def need_record(row: NeedRow) -> Need:
    return Need(id=row.id, title=row.title, description=row.description, category=row.category, grid=row.grid,
                side=row.side, lat=row.lat, lon=row.lon, deadline=row.deadline, status=row.status, ring=row.ring)


def resource_record(row: ResourceRow) -> Resource:
    return Resource(id=row.id, title=row.title, description=row.description, category=row.category, grid=row.grid,
                    side=row.side, lat=row.lat, lon=row.lon, capacity=row.capacity, taken=row.taken,
                    status=row.status)


def grid_record(row: GridRow) -> Grid:
    return Grid(id=row.id, name=row.name, kind=row.kind, parent=row.parent, street=row.street)


class Snapshot(NamedTuple):
    """What one request or batch matches with, from start to end: never changed once published."""

    matcher: Matcher | None
    scorer: Scorer
    generation: int  # counts the snapshots this process published

    @property
    def model_version(self) -> str:
        return self.scorer.version

    def min_score(self, setting: float | None) -> float:
        """The service's setting, or else the minimum score this snapshot's model recommends."""
        return model_min_score(self.scorer) if setting is None else float(setting)

    def top_k(self, needs: Sequence[Need], k: int) -> list[list[Suggestion]]:
        if self.matcher is None:
            return [[] for _ in needs]
        return self.matcher.top_k(needs, k=k)

    def assign(self, needs: Sequence[Need], k: int, min_score: float,
               on_progress: Callable[[float], None] | None = None, backend: object = None) -> Assignment:
        """A global assignment; `min_score` as resolved by min_score() on this same snapshot."""
        if self.matcher is None:
            return Assignment([], {n.id: "no_candidate: no open resource is listed yet" for n in needs})
        return self.matcher.assign(needs, k=k, min_score=min_score, on_progress=on_progress, backend=backend)


class EngineState:
    def __init__(self, sessions: sessionmaker[Session], model_dir: Path, *, refit_drift: float = 0.2,
                 matcher: Matcher | None = None, readers: sessionmaker[Session] | None = None,
                 matcher_params: Mapping[str, Any] | None = None) -> None:
        self._sessions = sessions
        # The engine settings of every index this service builds (Settings.matcher_params()).
        self._matcher_params = dict(matcher_params or {})
        self._readers = readers or sessions
        self._lock = threading.RLock()  # the writer lock: readers never take it
        self._refit_drift = refit_drift
        self._replay: list[list[Resource]] | None = None  # writes made while a background refit runs
        self._refitting: threading.Thread | None = None
        self._fits = 0  # full fits published; a background refit started before a newer one is stale
        self._tokenizer = Tokenizer()
        # One embedding cache for every index this service builds, filled from the database at start.
        self._cache = matcher.embeddings_ if matcher is not None and matcher.embeddings_ is not None \
            else EmbeddingCache()
        self._load_embeddings()
        self._snapshot = Snapshot(None, load_scorer(model_dir), 0)
        self._added = 0
        self._unknown = [0, 0]  # unknown and total word tokens written since the last fit
        self._fitted_size = matcher.n_resources_ if matcher is not None else 0
        if matcher is not None:
            self._publish(matcher)

    def canary(self, scorers: Sequence[Scorer]) -> list[float]:
        """MRR of each scorer on the canary set (matcher.canary), with this service's tokenizer, encoder and
        embedding cache: the promotion guard's second history."""
        from matcher.canary import canary_mrr

        encoder = self._matcher_params.get("encoder", Matcher().encoder)
        return canary_mrr(scorers, encoder=encoder, tokenizer=self._tokenizer, embedding_cache=self._cache)

    # ------------------------------------------------------------- snapshots
    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot: read it once and use that one to the end of the request."""
        return self._snapshot

    @property
    def matcher(self) -> Matcher | None:
        return self._snapshot.matcher

    @property
    def scorer(self) -> Scorer:
        return self._snapshot.scorer

    def _publish(self, matcher: Matcher | None, scorer: Scorer | None = None) -> None:
        """Swap in the next snapshot. Call with the writer lock held and a matcher no reader has seen.

        The scorer is the current one unless given: a model swap made while an index was being built
        is not undone by publishing that index.
        """
        scorer = scorer or self._snapshot.scorer
        if matcher is not None:
            matcher.scorer_ = scorer
        self._snapshot = Snapshot(matcher, scorer, self._snapshot.generation + 1)
        metrics.INDEX_SIZE.set(matcher.n_resources_ if matcher is not None else 0)
        metrics.TOMBSTONES.set(matcher.tombstones_ if matcher is not None else 0)
        metrics.DRIFT.set(self._unknown[0] / self._unknown[1] if getattr(self, "_unknown", None) and self._unknown[1]
                          else 0.0)

    # ------------------------------------------------------------- building
    def _build(self) -> Matcher | None:
        with metrics.REFIT.time():
            return self._fit_from_database()

    def _fit_from_database(self) -> Matcher | None:
        self._load_embeddings()  # texts other workers encoded are not encoded again
        with self._readers() as session:
            resources = [resource_record(r) for r in session.scalars(
                select(ResourceRow).where(ResourceRow.status == "open").order_by(ResourceRow.id))]
            needs = [need_record(n) for n in session.scalars(select(NeedRow).order_by(NeedRow.id))]
            grids = [grid_record(g) for g in session.scalars(select(GridRow).order_by(GridRow.id))]
        if not resources:
            return None
        matcher = Matcher(tokenizer=self._tokenizer, embedding_cache=self._cache, progress=len(resources) > 5000,
                          **self._matcher_params).fit(resources, needs, grids=grids)
        self.store_embeddings()
        return matcher

    # ------------------------------------------------------------- embeddings
    def _load_embeddings(self) -> None:
        """Load the stored embeddings: all at start, then those other workers stored since the last look
        (so a worker never encodes a text another one already did)."""
        stmt = select(EmbeddingRow.key, EmbeddingRow.vector, EmbeddingRow.created_at).where(
            EmbeddingRow.model == self._cache.model)
        since = getattr(self, "_embeddings_seen_at", None)
        if since is not None:
            stmt = stmt.where(EmbeddingRow.created_at > since - EMBEDDINGS_MARGIN)
        with self._readers() as session:
            rows = [r for r in session.execute(stmt) if r.key not in self._cache]
            if since is None or rows:
                latest = session.scalar(select(func.max(EmbeddingRow.created_at)))
                latest = aware(latest) if latest is not None else None
                self._embeddings_seen_at = max(filter(None, (latest, since)), default=None) or now()
        if rows:
            vectors = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows])
            self._cache.load_arrays(np.array([r.key for r in rows], dtype="S32"), vectors)

    def load_new_embeddings(self) -> None:
        """Embeddings stored by other workers since the last call (the change-log follower calls it)."""
        self._load_embeddings()

    def store_embeddings(self) -> None:
        """Write the embeddings encoded since the last call, in a transaction of their own.

        Call it where no request transaction is open: on SQLite a second writer would wait for it.
        """
        keys, vectors = self._cache.take_fresh()
        for start in range(0, len(keys), 1000):
            part = keys[start:start + 1000]
            rows = [EmbeddingRow(key=key, model=self._cache.model, vector=vector.tobytes())
                    for key, vector in zip(part, vectors[start:start + 1000], strict=True)]
            try:
                with self._sessions() as session, session.begin():
                    known = set(session.scalars(select(EmbeddingRow.key).where(EmbeddingRow.key.in_(part))))
                    session.add_all(r for r in rows if r.key not in known)
            except IntegrityError:
                # Another worker stored some of the same texts meanwhile: the vectors are the same.
                log.info("embeddings already stored by another process; skipped %d", len(part))

    def rebuild(self) -> None:
        """Fit a fresh index from the database now (start-up, grid changes)."""
        with self._lock:
            fresh = self._build()
            self._fits += 1
            self._publish(fresh)
            self._fitted_size = fresh.n_resources_ if fresh else 0
            self._added, self._unknown = 0, [0, 0]

    def _refit_in_background(self) -> None:
        with self._lock:
            if self._refitting is not None and self._refitting.is_alive():
                return
            self._replay = []
            self._refitting = threading.Thread(target=self._refit, args=(self._fits,), name="duijie-refit",
                                               daemon=True)
            self._refitting.start()

    def _refit(self, started_after: int) -> None:
        try:
            fresh = self._build()
        except Exception:  # a failed refit keeps the current index serving
            log.exception("background refit failed; the current index stays in use")
            with self._lock:
                self._replay = None
            return
        with self._lock:
            if self._fits != started_after:
                # A rebuild published since this refit read the database: its index is the newer one.
                log.info("background refit discarded: a newer index was published while it ran")
                self._replay = None
                return
            for resources in self._replay or []:
                fresh = _apply(fresh, resources)
            self._fits += 1
            self._publish(fresh)
            self._replay = None
            self._fitted_size = fresh.n_resources_ if fresh else 0
            self._added, self._unknown = 0, [0, 0]
            log.info("vocabulary refitted on %d resources", self._fitted_size)

    def wait_for_refit(self, timeout: float = 60.0) -> None:
        thread = self._refitting
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------- keeping in step
    def resources_saved(self, resources: Sequence[Resource], *, store: bool = True) -> None:
        """Resources were created, edited or closed: one index edit for all of them (an upload's
        thousand rows cost one append, not a thousand copies of the index).

        `store=False` leaves their new embeddings for a later store_embeddings() (an upload's one).
        """
        if not resources:
            return
        with self._lock:
            if self._replay is not None:
                self._replay.append(list(resources))
            if self.matcher is None:
                if any(r.status == "open" for r in resources):
                    self.rebuild()
                return
            # A write the index already holds as it is (a replay, an echo) publishes nothing; a capacity
            # change keeps its row and its vectors, and its unchanged text is not tokenized again.
            held = {r.id: self.matcher.indexed(r.id) for r in resources}
            changed = [r for r in resources if held[r.id] != r and (held[r.id] is not None or r.status == "open")]
            if not changed:
                return
            new_text = [r for r in changed if held[r.id] is None or not self.matcher.same_text(held[r.id], r)]
            before = self.matcher.n_resources_
            self._publish(_apply(self.matcher, changed))
            self._added += max(self.matcher.n_resources_ - before, 0)
            self._drifted(new_text)
        if store:
            self.store_embeddings()

    def needs_saved(self, needs: Sequence[Need]) -> None:
        """Needs were written: encoded now, in one go, and their words count toward drift."""
        matcher = self._snapshot.matcher
        if matcher is not None and needs:
            matcher.embed(needs)  # into the shared cache, outside the writer lock: other writers need not wait
        with self._lock:
            if self.matcher is not None:
                self._drifted(needs)
        self.store_embeddings()

    def _drifted(self, records: Sequence[Need | Resource]) -> None:
        """Refit when many resources were added or retired, or when new posts use many words the
        vocabulary lacks. A small index refits at once (well under a second); a large one in the background.
        """
        unknown, total = self.matcher.out_of_vocabulary(records)
        self._unknown[0] += unknown
        self._unknown[1] += total
        size = max(self._fitted_size, 50)
        many = self._added > self._refit_drift * size or self.matcher.tombstones_ > self._refit_drift * size
        unseen = self._unknown[1] >= 10 and self._unknown[0] > self._refit_drift * self._unknown[1]
        if many or unseen:
            if self._fitted_size < SMALL_INDEX:
                self.rebuild()
            else:
                self._refit_in_background()

    def set_scorer(self, scorer: Scorer) -> None:
        """Switch the scoring model; requests after this line use it, none sees half of each."""
        with self._lock:
            matcher = copy.copy(self.matcher) if self.matcher is not None else None
            self._publish(matcher, scorer)

    # ------------------------------------------------------------- matching
    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer every index of this service uses (the review page highlights with it too)."""
        return self._tokenizer

    def min_score(self, setting: float | None) -> float:
        """The service's minimum score now: its setting, or else the one the active model recommends."""
        return self._snapshot.min_score(setting)

    @property
    def model_version(self) -> str:
        return self._snapshot.model_version

    def top_k(self, needs: Sequence[Need], k: int, min_score: float | None = None
              ) -> tuple[list[list[Suggestion]], str, float]:
        """Each need's top k, the model version of the snapshot that scored them and that snapshot's
        minimum score (`min_score` when set, else its model's): one snapshot answers all three."""
        snapshot = self._snapshot
        return snapshot.top_k(needs, k), snapshot.model_version, snapshot.min_score(min_score)

    def assign(self, needs: Sequence[Need], k: int, min_score: float | None,
               on_progress: Callable[[float], None] | None = None, backend: object = None
               ) -> tuple[Assignment, str, float]:
        """A global assignment on the snapshot current at its start, that snapshot's model version and the
        minimum score it used (`min_score` when set, else the snapshot model's)."""
        snapshot = self._snapshot
        threshold = snapshot.min_score(min_score)
        return snapshot.assign(needs, k, threshold, on_progress, backend), snapshot.model_version, threshold



def _apply(matcher: Matcher | None, resources: Sequence[Resource]) -> Matcher | None:
    """The next index after resource writes: a copy, so the published snapshot stays as it was."""
    if matcher is None:
        return None
    return copy.copy(matcher).update(resources)
