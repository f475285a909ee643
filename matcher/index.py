"""The resource index: the indexed rows, their vectors and columns, tombstones, and the shards searched.

An index never changes in place: every edit returns a new index that shares what the edit left alone.
The service keeps answering from the index it holds while an edit or a refit builds the next one, and a
copy of a matcher taken before an edit answers exactly as it did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from matcher import shards as sh
from matcher.columns import Columns, columns
from matcher.proximity import GridMap
from matcher.records import Resource
from matcher.texts import record_text
from matcher.vectorize import Vectors

# Vectors of new resources, made with the fitted vocabulary and encoder (the Matcher's).
Vectorize = Callable[[Sequence[Resource]], Vectors]


class ResourceIndex:
    """Rows 0..n-1 of indexed resources; a retired row (tombstone) keeps its place until `compact`."""

    def __init__(self, resources: Sequence[Resource], vectors: Vectors, grid_map: GridMap, *, shard_size: int,
                 n_threads: int = 1, approximate_from: int | None = None) -> None:
        self.resources = list(resources)
        self.vectors = vectors
        self.grid_map = grid_map
        self.shard_size = shard_size
        self.n_threads = n_threads
        self.approximate_from = approximate_from
        self.row_of = {r.id: i for i, r in enumerate(self.resources)}
        self.columns = columns(self.resources, grid_map)
        self._shards: list[sh.ResourceShard] | None = None  # cut on first use

    def _replace(self, **changes: object) -> ResourceIndex:
        index = object.__new__(ResourceIndex)
        index.__dict__.update(self.__dict__, **changes)
        return index

    # ------------------------------------------------------------ reading
    def __contains__(self, resource_id: object) -> bool:
        return resource_id in self.row_of

    def __len__(self) -> int:
        """Live rows: resources a need can be paired with (tombstones not counted)."""
        return len(self.row_of)

    @property
    def n_rows(self) -> int:
        """All rows, tombstones included: the row numbers candidates refer to."""
        return len(self.resources)

    @property
    def tombstones(self) -> int:
        return len(self.resources) - len(self.row_of)

    def get(self, resource_id: str) -> Resource | None:
        row = self.row_of.get(resource_id)
        return None if row is None else self.resources[row]

    @property
    def bounds(self) -> list[slice]:
        """Row ranges of the shards."""
        return sh.bounds(len(self.resources), self.shard_size)

    @property
    def shards(self) -> list[sh.ResourceShard]:
        """The rows cut into shards of `shard_size` (built on first use, after each edit that moves vectors)."""
        if self._shards is None:
            n = len(self.resources)
            self._shards = [
                sh.ResourceShard(part.start, sh.take_columns(self.columns, part, n),
                                 self.vectors if part.stop - part.start >= n else self.vectors.rows(part),
                                 self.grid_map, n_threads=self.n_threads, approximate_from=self.approximate_from)
                for part in self.bounds]
        return self._shards

    # ------------------------------------------------------------ editing
    def update(self, saved: Iterable[Resource], remove: Iterable[str], vectorize: Vectorize) -> ResourceIndex:
        """The index after many resource writes (see Matcher.update); self when nothing changes."""
        records = list(self.resources)
        row_of = dict(self.row_of)
        in_place: dict[int, Resource] = {}
        dead: set[int] = {row_of.pop(i) for i in remove if i in row_of}
        appended: dict[str, Resource] = {}
        for record in saved:
            row = row_of.get(record.id)
            if row is not None and records[row] == record:
                continue  # indexed as it is: a change feed replaying this process's own write
            if row is not None and record.status == "open" and same_place_and_text(records[row], record):
                in_place[row] = record
                continue
            if row is not None:
                dead.add(row_of.pop(record.id))
                in_place.pop(row, None)
            if record.status == "open":
                appended[record.id] = record  # the last write of an id wins
            else:
                appended.pop(record.id, None)
        if not (in_place or dead or appended):
            return self
        for row, record in in_place.items():
            records[row] = record
        index = self._replace(resources=records, row_of=row_of)._edit_columns(in_place, dead)
        if dead:
            index = index._bury(np.fromiter(sorted(dead), dtype=np.int64))
        if appended:
            index = index._append(list(appended.values()), vectorize)
        return index

    def _edit_columns(self, in_place: dict[int, Resource], dead: set[int]) -> ResourceIndex:
        if not in_place and not dead:
            return self
        cols = self.columns
        is_open, capacity, left = cols.open.copy(), cols.capacity.copy(), cols.capacity_left.copy()
        for row, record in in_place.items():
            is_open[row], capacity[row], left[row] = True, record.capacity, record.capacity_left
        for row in dead:
            is_open[row], left[row] = False, 0
        edited = cols._replace(open=is_open, capacity=capacity, capacity_left=left)
        shards = self._shards
        if shards is not None:  # the vectors stay: each shard keeps its search caches
            shards = [shard.with_columns(sh.take_columns(edited, part, len(self.resources)))
                      for shard, part in zip(shards, self.bounds, strict=True)]
        return self._replace(columns=edited, _shards=shards)

    def _bury(self, rows: np.ndarray) -> ResourceIndex:
        """Tombstones: the rows' vectors become zero, so no search returns them ahead of a live row."""
        keep = np.ones(len(self.resources))
        keep[rows] = 0.0
        scale = sp.diags(keep).tocsr()
        dense = None
        if self.vectors.dense is not None:
            dense = self.vectors.dense.copy()
            dense[rows] = 0.0
        vectors = Vectors((scale @ self.vectors.word).tocsr(), (scale @ self.vectors.char).tocsr(), dense)
        return self._replace(vectors=vectors, _shards=None)

    def _append(self, new: list[Resource], vectorize: Vectorize) -> ResourceIndex:
        vectors, old = vectorize(new), self.vectors
        dense = None if old.dense is None else np.vstack([old.dense, vectors.dense])
        start = len(self.resources)
        added = columns(new, self.grid_map)
        return self._replace(
            resources=self.resources + new,
            row_of={**self.row_of, **{r.id: start + i for i, r in enumerate(new)}},
            columns=Columns(*(a + b if isinstance(a, list) else np.concatenate([a, b])
                              for a, b in zip(self.columns, added, strict=True))),
            vectors=Vectors(sp.vstack([old.word, vectors.word]).tocsr(), sp.vstack([old.char, vectors.char]).tocsr(),
                            dense),
            _shards=None)

    def compact(self) -> ResourceIndex:
        """The index without its tombstones, rows renumbered (a refit does this too)."""
        if not self.tombstones:
            return self
        keep = np.array(sorted(self.row_of.values()), dtype=np.int64)
        return ResourceIndex([self.resources[i] for i in keep], self.vectors.rows(keep), self.grid_map,
                             shard_size=self.shard_size, n_threads=self.n_threads,
                             approximate_from=self.approximate_from)


def same_place_and_text(old: Resource, new: Resource) -> bool:
    """Whether a write leaves a resource's vectors and ring position as they were (no re-vectorizing)."""
    return (record_text(old) == record_text(new) and old.grid == new.grid and old.side == new.side
            and old.category == new.category and old.lat == new.lat and old.lon == new.lon)
