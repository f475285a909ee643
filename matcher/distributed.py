"""The batch on a Dask cluster: encoding, candidate scoring and the assignment spread over workers, with
the same answer as one process.

- Encoding: the texts missing from the embedding cache are encoded in chunks on the workers and come
  back into the cache (nothing is encoded twice). The encoder's output does not depend on its batch or
  thread count (checked: bitwise equal), so the vectors are the in-process ones.
- Candidates: the needs are scored in the engine's own chunks (`chunk_size`), one task per chunk, against
  the fitted index sent to each worker once. A chunk's candidates do not depend on the other needs, so
  the table is the in-process one, chunk for chunk.
- Assignment: the candidate graph's connected components are independent; they are solved in parallel,
  batched so that a task is worth its overhead. In-process the same components are solved one by one.

`cluster("local:N")` starts N local worker processes of one thread each; `cluster("tcp://HOST:8786")`
joins a running scheduler. A worker lost mid-batch has its tasks run again elsewhere by Dask; if that
fails too, the batch raises and writes nothing.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from matcher.assign import Component, solve_component
from matcher.columns import Columns
from matcher.encode import ENCODE_CHUNK, encoder_text, get_encoder, text_key
from matcher.vectorize import Vectors

# Assignment tasks per worker: enough to balance uneven components, few enough to be worth their overhead.
TASKS_PER_WORKER = 4


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
        # One thread per worker process, BLAS and OpenMP at one thread too: N workers on N cores, no more.
        env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with LocalCluster(n_workers=int(value), threads_per_worker=1, processes=True, dashboard_address=":0",
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

    # ------------------------------------------------------------ encoding
    def encode_missing(self, texts: Sequence[str], model: str, cache: Any, threads: int = 1) -> int:
        """Encode on the workers the texts the cache lacks; returns how many were encoded."""
        missing: dict[str, str] = {}
        for text in texts:
            text = encoder_text(text)
            key = text_key(model, text)
            if key not in cache and key not in missing:
                missing[key] = text
        todo = list(missing.items())
        chunks = [todo[i:i + ENCODE_CHUNK] for i in range(0, len(todo), ENCODE_CHUNK)]
        futures = self.client.map(_encode_chunk, [[t for _, t in c] for c in chunks], model=model,
                                  threads=threads, pure=False)
        for chunk, vectors in zip(chunks, self.client.gather(futures), strict=True):
            cache.put([k for k, _ in chunk], vectors)
        return len(todo)

    # ------------------------------------------------------------ candidates
    def candidate_tables(self, matcher: Any, slices: Sequence[slice], need_cols: Columns, need_vectors: Vectors,
                         k: int, on_progress: Callable[[float], None] | None = None) -> list[tuple[Any, np.ndarray]]:
        """(table, score) of each chunk of needs, in chunk order, scored on the workers."""
        from dask.distributed import as_completed

        # A task that returns the index, not scattered data: the scheduler keeps its recipe, so if the
        # worker holding it dies, it is made again elsewhere (scattered data would be lost for good and
        # every task needing it cancelled). Workers fetch it from one another once each.
        index = self.client.submit(_identity, worker_copy(matcher), pure=False)
        futures = [self.client.submit(_score_chunk, index, Columns(*(c[part] for c in need_cols)),
                                      need_vectors.rows(part), k, pure=False) for part in slices]
        for done, _ in enumerate(as_completed(futures), start=1):
            if on_progress is not None:
                on_progress(done / len(futures))
        return self.client.gather(futures)

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


def worker_copy(matcher: Any) -> Any:
    """The fitted index without what scoring candidates does not use and cannot travel: the encoder (a C
    model), the tokenizer's dictionary, the embedding cache and its lock, the faiss copy."""
    light = copy.copy(matcher)
    for name in [n for n in vars(light) if callable(getattr(type(light), n, None))]:
        delattr(light, name)  # a method patched on the instance (a profiler's wrapper) stays home
    for name in ("encoder_", "embeddings_", "embedding_cache", "tokenizer", "tokenizer_", "_flat"):
        if hasattr(light, name):
            setattr(light, name, None)
    light.progress = False
    return light


def _identity(value: Any) -> Any:
    return value


def _encode_chunk(texts: list[str], model: str, threads: int) -> np.ndarray:
    encoder = get_encoder(model, n_threads=threads)
    return encoder.encode(texts)


def _score_chunk(index: Any, need_cols: Columns, need_vectors: Vectors, k: int) -> tuple[Any, np.ndarray]:
    return index._candidate_table(need_cols, need_vectors, k)


def _solve_batch(parts: list[Component]) -> list[np.ndarray]:
    return [solve_component(part) for part in parts]
