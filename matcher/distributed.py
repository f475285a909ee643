"""The batch on a Dask cluster: encoding, candidate scoring and the assignment spread over workers, with
the same answer as one process.

- Encoding: the texts missing from the embedding cache are encoded in chunks on the workers and come
  back into the cache (nothing is encoded twice). The encoder's output does not depend on its batch or
  thread count (checked: bitwise equal), so the vectors are the in-process ones.
- Candidates: the index's shards (`shard_size` rows each, see matcher.shards) are spread over the
  workers; no worker holds the whole index. Each chunk of needs (the engine's own `chunk_size`) is
  searched on every shard where the shard lives, the per-shard finds merged per need (score, then row),
  and each shard makes the features of its surviving pairs. One process runs the same functions on the
  same shards and chunks, so the table is the in-process one, chunk for chunk.
- Assignment: the candidate graph's connected components are independent; they are solved in parallel,
  batched so that a task is worth its overhead. In-process the same components are solved one by one.

`cluster("local:N")` starts N local worker processes of one thread each; `cluster("tcp://HOST:8786")`
joins a running scheduler. A worker lost mid-batch has its tasks run again elsewhere by Dask; if that
fails too, the batch raises and writes nothing.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from matcher import shards as sh
from matcher.assign import Component, solve_component
from matcher.columns import Columns
from matcher.encode import ENCODE_CHUNK, EmbeddingCache, Encoder, encoder_text, get_encoder, text_key
from matcher.shards import NeedChunk, SearchPlan
from matcher.vectorize import Vectors

# Assignment tasks per worker: enough to balance uneven components, few enough to be worth their overhead.
TASKS_PER_WORKER = 4
# Chunks of needs in flight per worker: enough to keep it busy while results come back.
CHUNKS_PER_WORKER = 3


def parse_cluster(spec: str) -> tuple[str, int | str]:
    """("local", workers) or ("address", "tcp://host:port"), or a ValueError naming what was expected."""
    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise ValueError(f"cluster: expected local:N with N from 1 to 256, got {spec!r}")
        return "local", int(count)
    if spec.startswith(("tcp://", "tls://")) and ":" in spec.split("://", 1)[1]:
        return "address", spec
    raise ValueError(f"cluster: expected local:N or tcp://HOST:PORT, got {spec!r}")


@contextlib.contextmanager
def cluster(spec: str) -> Iterator[Any]:
    """A dask.distributed Client for the spec; a local cluster is started and stopped here."""
    import logging

    from dask.distributed import Client, LocalCluster

    # Dask cannot size the engine's objects and says so for every task; the guess it falls back on is fine.
    logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)
    kind, value = parse_cluster(spec)
    if kind == "local":
        import dask

        # One thread per worker process, BLAS and OpenMP at one thread too: N workers on N cores, no more.
        env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        # Work stealing off: an idle worker stealing a shard's search copies the shard, and on one machine
        # those copies cost the memory sharding saves. A shard's tasks wait for the worker holding it.
        with dask.config.set({"distributed.scheduler.work-stealing": False}), \
                LocalCluster(n_workers=int(value), threads_per_worker=1, processes=True, dashboard_address=":0",
                             env=env) as local, Client(local) as client:
            yield client
    else:
        with Client(value, timeout="30s") as client:
            yield client


def dashboard(client: Any) -> str | None:
    """The Dask dashboard's address, when one runs."""
    return getattr(client, "dashboard_link", None)


class DaskBackend:
    """Runs the batch's heavy stages on a dask.distributed cluster."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.shards: list[Any] = []

    @property
    def n_workers(self) -> int:
        """Workers the scheduler knows now."""
        return len(self.client.scheduler_info().get("workers", {}))

    # ------------------------------------------------------------ encoding
    def encode_missing(self, texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache) -> int:
        """Encode on the workers the texts the cache lacks; returns how many were encoded.

        Each worker loads its own copy of the encoder, at one thread: a worker is one core.
        """
        missing: dict[str, str] = {}
        for text in texts:
            text = encoder_text(text)
            key = text_key(encoder.name, text)
            if key not in cache and key not in missing:
                missing[key] = text
        todo = list(missing.items())
        chunks = [todo[i:i + ENCODE_CHUNK] for i in range(0, len(todo), ENCODE_CHUNK)]
        futures = self.client.map(_encode_chunk, [[t for _, t in c] for c in chunks], model=encoder.name,
                                  threads=1, pure=False)
        for chunk, vectors in zip(chunks, self.client.gather(futures), strict=True):
            cache.put([k for k, _ in chunk], vectors)
        return len(todo)

    # ------------------------------------------------------------ candidates
    def candidate_tables(self, plan: SearchPlan, slices: Sequence[slice], needs: NeedChunk,
                         on_progress: Callable[[float], None] | None = None) -> list[tuple[Any, np.ndarray]]:
        """(table, score) of each chunk of needs, in chunk order: the index's shards spread over the workers,
        each chunk searched on every shard, merged per need, its features made where its shards are."""
        from dask.distributed import as_completed

        if plan.approximate:
            # The graph is built in the background of one process; a cluster's answer must be the exact one.
            raise ValueError("approximate: a cluster searches exactly; expected approximate=False, got True")
        # Each shard is a task's result, not scattered data: the scheduler keeps its recipe, so if the
        # worker holding it dies, it is made again elsewhere (scattered data would be lost for good and
        # every task needing it cancelled). Tasks on a shard run where it is.
        workers = sorted(self.client.scheduler_info().get("workers", {}))
        place = placement(workers, len(plan.shards))
        shards = [self.client.submit(_identity, shard, pure=False, **where)
                  for shard, where in zip(plan.shards, place, strict=True)]
        self.shards = shards  # kept for inspection (which worker holds which shard) until the next batch
        scorer = self.client.submit(_identity, plan.scorer, pure=False)
        projection = plan.scorer.projection

        def submit(part: slice) -> Any:
            chunk = self.client.submit(_identity, needs.rows(part), pure=False)
            found = [self.client.submit(_found, shard, chunk, plan.top, plan.nearby_limit, len(shards) > 1,
                                        pure=False, **where) for shard, where in zip(shards, place, strict=True)]
            pairs = self.client.submit(_best_per_shard, found, plan.top, plan.nearby_limit, plan.n_resources,
                                       plan.bounds, pure=False)
            tables = [self.client.submit(_table, shard, chunk, pairs, i, plan.sides, plan.same_category,
                                         projection, pure=False, **place[i]) for i, shard in enumerate(shards)]
            return self.client.submit(sh.finish, tables, scorer, plan.k, pure=False)

        # A window of chunks in flight, the next sent as one comes back: the needs travel to the cluster
        # and their tables back as the batch goes, never a city's worth at once.
        window = CHUNKS_PER_WORKER * max(len(workers), 1)
        order: dict[str, int] = {}
        running = as_completed()
        waiting = iter(enumerate(slices))
        for number, part in itertools.islice(waiting, window):
            future = submit(part)
            order[future.key] = number
            running.add(future)
        out: list[Any] = [None] * len(slices)
        for done, future in enumerate(running, start=1):
            out[order.pop(future.key)] = future.result()
            for number, part in itertools.islice(waiting, 1):
                nxt = submit(part)
                order[nxt.key] = number
                running.add(nxt)
            if on_progress is not None:
                on_progress(done / len(slices))
        return out

    # ------------------------------------------------------------ assignment
    def solve_many(self, parts: list[Component]) -> list[np.ndarray]:
        """Solve the components on the workers, largest first, spread so each task weighs about the same
        (by edges): a count-based split put a city's 40 street components in one task."""
        workers = max(len(self.client.scheduler_info().get("workers", {})), 1)
        bins: list[list[int]] = [[] for _ in range(min(len(parts), TASKS_PER_WORKER * workers))]
        load = [0] * len(bins)
        for index in sorted(range(len(parts)), key=lambda i: -len(parts[i].edge)):
            lightest = load.index(min(load))
            bins[lightest].append(index)
            load[lightest] += len(parts[index].edge)
        futures = self.client.map(_solve_batch, [[parts[i] for i in b] for b in bins if b], pure=False)
        solved: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(parts)
        for chosen_lists, b in zip(self.client.gather(futures), [b for b in bins if b], strict=True):
            for index, chosen in zip(b, chosen_lists, strict=True):
                solved[index] = chosen
        return solved


def placement(workers: list[str], n_shards: int) -> list[dict[str, Any]]:
    """The workers each shard's tasks ask for.

    Shards are dealt round the workers, so each holds about its share of the index and no more; with
    more workers than shards, each shard goes to its own group of workers (copied once to each), or the
    spare workers would idle. Every task on a shard asks for its workers: else a busy worker's shard is
    copied to an idle one, and soon each holds most of the index. Loosely: when they are all gone,
    anyone takes the task, the shard made again first.
    """
    if not workers:
        return [{} for _ in range(n_shards)]
    groups = [[w for j, w in enumerate(workers) if j % n_shards == i] if len(workers) > n_shards
              else [workers[i % len(workers)]] for i in range(n_shards)]
    return [{"workers": group, "allow_other_workers": True} for group in groups]


def nbytes(value: Any) -> int:
    """Bytes held by the engine's batch objects (tuples of arrays, sparse matrices, lists), for Dask's
    placement: it moves tasks to data by size, and its own guess failed on them (warning every task) or
    took a shard of the index for smaller than a chunk of needs, so shards were copied to the needs."""
    if isinstance(value, np.ndarray):
        return value.nbytes if value.dtype != object else 64 * value.size
    if isinstance(value, sp.spmatrix | sp.sparray):
        return sum(getattr(value, name).nbytes for name in ("data", "indices", "indptr") if hasattr(value, name))
    if isinstance(value, sh.ResourceShard):
        return value.__sizeof__()
    if isinstance(value, tuple | list):
        return 64 + sum(nbytes(item) for item in value)
    return 64


def _register_sizes() -> None:
    from dask.sizeof import sizeof

    from matcher.candidates import Candidates, Scored
    from matcher.features import FeatureTable
    from matcher.rows import RowEntries

    for kind in (sh.ResourceShard, sh.Found, sh.NeedChunk, Columns, Vectors, FeatureTable, RowEntries, Candidates,
                 Scored):
        sizeof.register(kind)(nbytes)


_register_sizes()  # workers import this module to run its task functions, so they register too


def _identity(value: Any) -> Any:
    return value


def _encode_chunk(texts: list[str], model: str, threads: int) -> np.ndarray:
    encoder = get_encoder(model, n_threads=threads)
    return encoder.encode(texts)


def _found(shard: sh.ResourceShard, needs: NeedChunk, top: int, limit: int, scored: bool) -> sh.Found:
    return shard.found(needs, top, limit, scored=scored)


def _best_per_shard(found: list[sh.Found], top: int, limit: int, n_resources: int,
                    bounds: list[slice]) -> list[Any]:
    return sh.split(sh.best_per_need(found, top, limit, n_resources), bounds)


def _table(shard: sh.ResourceShard, needs: NeedChunk, pairs: list[Any], index: int, sides: str,
           same_category: bool, projection: np.ndarray | None) -> Any:
    return shard.table(needs, pairs[index], sides=sides, same_category=same_category, projection=projection)


def _solve_batch(parts: list[Component]) -> list[np.ndarray]:
    return [solve_component(part) for part in parts]
