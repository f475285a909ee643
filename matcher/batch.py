"""A batch of needs through the candidate stages, chunk by chunk, on a backend: this process or a cluster.

Both backends have one interface (`encode_missing`, `candidate_tables`, `solve_many`); the Matcher only
picks one. The chunks, their order and the functions run on each are the same on both, so the answer is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from matcher import candidates as cand
from matcher import shards as sh
from matcher.assign import Component, solve_component
from matcher.columns import Columns
from matcher.encode import EmbeddingCache, Encoder
from matcher.encode import encode_missing as encode_here
from matcher.features import FeatureTable, pair_features
from matcher.shards import NeedChunk, SearchPlan
from matcher.vectorize import Vectors

Progress = Callable[[float], None]


class Backend(Protocol):
    """Where the batch's heavy stages run (LocalBackend here, distributed.DaskBackend on a cluster)."""

    def encode_missing(self, texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache) -> int: ...

    def candidate_tables(self, plan: SearchPlan, slices: Sequence[slice], needs: NeedChunk,
                         on_progress: Progress | None = None) -> list[tuple[FeatureTable, np.ndarray]]: ...

    def solve_many(self, parts: list[Component]) -> list[np.ndarray]: ...


class LocalBackend:
    """The batch in this process: chunks one after another through every shard."""

    def __init__(self, *, progress: bool = False) -> None:
        self.progress = progress  # a progress bar on the terminal for long batches

    def encode_missing(self, texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache) -> int:
        """Encode the texts the cache lacks, here; returns how many were encoded."""
        before = len(cache)
        encode_here(texts, encoder, cache, progress=self.progress)  # no matrix: the Matcher gathers its own
        return len(cache) - before

    def candidate_tables(self, plan: SearchPlan, slices: Sequence[slice], needs: NeedChunk,
                         on_progress: Progress | None = None) -> list[tuple[FeatureTable, np.ndarray]]:
        parts = []
        for part in self._bar(slices):
            parts.append(sh.chunk_table(plan, needs if len(slices) == 1 else needs.rows(part)))
            if on_progress is not None:
                on_progress(part.stop / slices[-1].stop)
        return parts

    def _bar(self, slices: Sequence[slice]) -> Iterable[slice]:
        if self.progress and len(slices) > 1:
            from tqdm import tqdm

            return tqdm(slices, unit="chunk", desc="matching")
        return slices

    def solve_many(self, parts: list[Component]) -> list[np.ndarray]:
        return [solve_component(part) for part in parts]


def slices(n: int, chunk_size: int) -> list[slice]:
    """The chunks the needs are scored in: the same in one process and on a cluster."""
    return [slice(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def candidate_table(plan: SearchPlan, need_cols: Columns, need_vectors: Vectors, chunk_size: int,
                    backend: Backend, on_progress: Progress | None = None) -> tuple[FeatureTable, np.ndarray]:
    """Score the candidates of every need, chunk by chunk; keep each need's best k.

    Chunks hold the needs of one scope together (cand.scope_order); the table comes back ordered by
    need row, best score first within each need, as if the needs had been scored one by one.
    """
    needs = NeedChunk(need_cols, need_vectors)
    n = len(need_cols.ids)
    order = cand.scope_order(need_cols, plan.shards[0].nearby) if n > chunk_size else None
    if order is not None:
        needs = needs.rows(order)
    parts = slices(n, chunk_size)
    tables, scores = [], []
    for part, (table, score) in zip(parts, backend.candidate_tables(plan, parts, needs, on_progress), strict=True):
        tables.append(table._replace(need_row=table.need_row + part.start))  # rows counted from the batch's start
        scores.append(score)
    if not tables:
        shard = plan.shards[0]
        empty = pair_features(need_cols, shard.columns, need_vectors, shard.vectors, [], [], shard.grid_map,
                              plan.scorer.projection)
        return empty, np.zeros(0)
    table, score = FeatureTable.concat(tables), np.concatenate(scores)
    if order is not None and len(score):
        table = table._replace(need_row=order[table.need_row])
        back = np.argsort(table.need_row, kind="stable")
        table, score = table.take(back), score[back]
    return table, score
