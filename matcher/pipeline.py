"""Matcher: fit / top_k / assign / score_pairs / add / remove / save / load, composing the stages."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from matcher import candidates as cand
from matcher import shards as sh
from matcher import storage
from matcher.assign import assign as assign_pairs
from matcher.columns import Columns, columns
from matcher.dense import APPROXIMATE_FROM
from matcher.encode import ENCODERS, EmbeddingCache, embed, get_encoder
from matcher.errors import NotFittedError, RecordError
from matcher.features import FeatureTable, pair_features
from matcher.normalize import normalize
from matcher.proximity import GridMap
from matcher.reasons import TOP_TERMS, as_written, explain, shared_terms, why_unmatched
from matcher.records import Grid, Need, Resource, parse_grid, parse_need, parse_resource
from matcher.scoring import default_model_dir, load_scorer, model_min_score
from matcher.shards import NeedChunk
from matcher.suggestion import Assignment, Suggestion
from matcher.tokenize import Tokenizer
from matcher.vectorize import TextVectorizer, Vectors, char_text

NeedLike = Mapping[str, Any] | Need
ResourceLike = Mapping[str, Any] | Resource


def _parse_all(records: Iterable, parse, what: str, *, unique: bool = True) -> list:
    if isinstance(records, str | bytes | Mapping):
        raise TypeError(f"{what}: expected a sequence of records, got {type(records).__name__}")
    parsed, seen = [], set()
    for number, raw in enumerate(records, start=1):
        try:
            record = parse(raw)
        except RecordError as exc:
            raise exc.located(what, number) from None
        if unique and record.id in seen:
            raise RecordError("id", f"an id unique in {what}", record.id, source=what, record=number)
        seen.add(record.id)
        parsed.append(record)
    return parsed


def _original(record: Need | Resource) -> str:
    """The post as its author wrote it, where reasons find the words to quote."""
    return f"{record.title}\n{record.description}"


def record_text(record: Need | Resource) -> str:
    # The title counts twice: it is what the poster chose to say first, descriptions ramble.
    return normalize(f"{record.title} {record.title} {record.description}")


class Matcher:
    """Pairs needs with resources.

    All settings are keyword-only and stored as given; `fit` does the work and sets the
    attributes ending in `_`.
    """

    def __init__(
        self,
        *,
        k: int = 10,
        min_score: float | None = None,
        pool: int = 30,
        sides: str = "any",
        same_category: bool = False,
        model_dir: str | Path | None = None,
        encoder: str = "e5-small",
        encoder_threads: int = 2,
        char_ngrams: tuple[int, int] = (1, 2),
        tokenizer_backend: str = "auto",
        new_words: bool = False,
        chunk_size: int = 1000,
        shard_size: int = 250_000,
        nearby_limit: int = 300,
        n_threads: int = 1,
        approximate_from: int | None = APPROXIMATE_FROM,
        progress: bool = False,
        tokenizer: Tokenizer | None = None,
        embedding_cache: EmbeddingCache | None = None,
    ) -> None:
        self.k = k
        self.min_score = min_score
        self.pool = pool
        self.sides = sides
        self.same_category = same_category
        # None: the default model of the encoder (models/default with one, models/lexical without).
        self.model_dir = model_dir
        self.encoder = encoder
        self.encoder_threads = encoder_threads
        self.char_ngrams = char_ngrams
        self.tokenizer_backend = tokenizer_backend
        self.new_words = new_words
        self.chunk_size = chunk_size
        # Resource rows per shard of the index: what one worker holds on a cluster. Part of the index, not
        # of where it runs: one process searches the same shards one by one, so the answer is the same.
        self.shard_size = shard_size
        self.nearby_limit = nearby_limit
        self.n_threads = n_threads
        # One need's embedding search uses an approximate graph (HNSW) once a shard holds this many distinct
        # vectors (None: always exact); batches stay exact, so a cluster gives the same answer.
        self.approximate_from = approximate_from
        self.progress = progress
        # A tokenizer to reuse: loading a segmenter's dictionary costs far more than fitting a small index.
        self.tokenizer = tokenizer
        # Embeddings to reuse by text (the service keeps one across refits and restarts).
        self.embedding_cache = embedding_cache

    # ---------------------------------------------------------------- fitting
    def _check_settings(self) -> None:
        for name in ("k", "pool", "chunk_size", "shard_size", "nearby_limit", "n_threads", "encoder_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.min_score is not None and not (isinstance(self.min_score, int | float)
                                               and 0.0 <= self.min_score <= 1.0):
            raise ValueError(f"min_score: expected a number from 0 to 1 (or None: the model's), got {self.min_score!r}")
        if self.approximate_from is not None and (isinstance(self.approximate_from, bool)
                                                  or not isinstance(self.approximate_from, int)
                                                  or self.approximate_from < 1):
            raise ValueError(f"approximate_from: expected an integer >= 1 (or None: always exact), "
                             f"got {self.approximate_from!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.sides not in cand.SIDE_RULES:
            raise ValueError(f"sides: expected one of {', '.join(cand.SIDE_RULES)}, got {self.sides!r}")

    def _texts(self, records: Sequence[Need | Resource]) -> tuple[list[list[str]], list[str]]:
        texts = [record_text(r) for r in records]
        return [self.tokenizer_(t) for t in texts], [char_text(t) for t in texts]

    def _vectors(self, records: Sequence[Need | Resource]) -> Vectors:
        tokens, chars = self._texts(records)
        return self.vectorizer_.transform(tokens, chars).with_dense(self._embed(records))

    def _embed(self, records: Sequence[Need | Resource]) -> np.ndarray | None:
        """Sentence embeddings of the records (cached by text), or None when matching by words alone."""
        if self.encoder_ is None:
            return None
        texts = [normalize(f"{r.title} {r.description}") for r in records]
        return embed(texts, self.encoder_, self.embeddings_, progress=self.progress)

    def embed(self, records: Iterable[NeedLike | ResourceLike]) -> np.ndarray | None:
        """Encode records now (into the embedding cache), e.g. a need as it is posted; None without an encoder."""
        self._check_fitted()
        parsed = [r if isinstance(r, Need | Resource) else parse_need(r) for r in records]
        return self._embed(parsed)

    def _start_encoder(self) -> None:
        self.encoder_ = get_encoder(self.encoder, n_threads=self.encoder_threads)
        if self.encoder_ is None:
            self.embeddings_ = None
        elif self.embedding_cache is not None and self.embedding_cache.model == self.encoder_.name:
            self.embeddings_ = self.embedding_cache
        else:
            self.embeddings_ = EmbeddingCache(self.encoder_.name, self.encoder_.dim)

    def fit(self, resources: Iterable[ResourceLike], needs: Iterable[NeedLike] | None = None, *,
            grids: Iterable[Mapping[str, Any] | Grid] | None = None, backend: Any = None) -> Matcher:
        """Fit the vocabularies on resource (and need) texts and index the resources.

        `backend` (a matcher.distributed.DaskBackend) encodes the texts on a cluster; same vectors.
        """
        self._check_settings()
        resource_list = _parse_all(resources, parse_resource, "resources")
        need_list = _parse_all(needs, parse_need, "needs") if needs is not None else []
        if not resource_list:
            raise ValueError("resources: expected at least one resource to fit on, got none")
        self.grid_map_ = GridMap(_parse_all(grids, parse_grid, "grids") if grids is not None else [])
        self._check_grids(resource_list, "resources")
        self._check_grids(need_list, "needs")
        self.tokenizer_ = self.tokenizer or Tokenizer(backend=self.tokenizer_backend, new_words=self.new_words)
        self.scorer_ = load_scorer(self.model_dir or default_model_dir(self.encoder))
        self._start_encoder()
        self.__dict__.pop("terms_", None)  # a refit brings a new vocabulary
        tokens, chars = self._texts(resource_list)
        need_tokens, need_chars = self._texts(need_list)
        self.vectorizer_ = TextVectorizer(char_ngrams=self.char_ngrams)
        vectors = self.vectorizer_.fit_transform(tokens + need_tokens, chars + need_chars)
        n = len(resource_list)
        self._encode_on(backend, resource_list)
        self._index(resource_list, vectors.rows(slice(0, n)).with_dense(self._embed(resource_list)))
        return self

    def _encode_on(self, backend: Any, records: Sequence[Need | Resource]) -> None:
        """Fill the embedding cache from a cluster, so that _embed finds every text already encoded."""
        if backend is not None and self.encoder_ is not None:
            backend.encode_missing([normalize(f"{r.title} {r.description}") for r in records], self.encoder_.name,
                                   self.embeddings_)

    def _check_grids(self, records: Sequence[Need | Resource], what: str) -> None:
        if len(self.grid_map_) == 0:
            return  # without a grid list, grids are compared by id alone
        for number, record in enumerate(records, start=1):
            if record.grid and record.grid not in self.grid_map_:
                raise RecordError("grid", "the id of a grid in the grid list", record.grid, source=what,
                                  record=number)

    def _index(self, resources: list[Resource], vectors: Vectors) -> None:
        self.resources_ = resources
        self.resource_vectors_ = vectors
        self._resource_row = {r.id: i for i, r in enumerate(resources)}
        self._resource_columns = columns(resources, self.grid_map_)
        self._shards: list[sh.ResourceShard] | None = None  # cut on first use

    def __contains__(self, resource_id: object) -> bool:
        """Whether a resource with this id is in the index."""
        return hasattr(self, "_resource_row") and resource_id in self._resource_row

    def _check_fitted(self) -> None:
        if not hasattr(self, "resources_"):
            raise NotFittedError("This Matcher is not fitted yet: call fit(resources) or Matcher.load(path) first")

    @property
    def min_score_(self) -> float:
        """The minimum score in force: the setting, or else the one the scoring model's card recommends."""
        self._check_fitted()
        return model_min_score(self.scorer_) if self.min_score is None else float(self.min_score)

    @functools.cached_property
    def terms_(self) -> list[str]:
        """Word of each column of the word vectors; the vocabulary is fixed once fitted."""
        return self.vectorizer_.terms()

    # -------------------------------------------------------------- matching
    def _prepare(self, needs: Iterable[NeedLike], *, unique: bool = True, backend: Any = None
                 ) -> tuple[list[Need], Columns, Vectors]:
        need_list = _parse_all(needs, parse_need, "needs", unique=unique)
        self._check_grids(need_list, "needs")
        self._encode_on(backend, need_list)
        return need_list, columns(need_list, self.grid_map_), self._vectors(need_list)

    def _slices(self, n: int) -> list[slice]:
        """The chunks the needs are scored in: the same in one process and on a cluster."""
        return [slice(start, min(start + self.chunk_size, n)) for start in range(0, n, self.chunk_size)]

    def _chunks(self, n: int) -> Iterable[slice]:
        starts = range(0, n, self.chunk_size)
        if self.progress and n > self.chunk_size:
            from tqdm import tqdm

            starts = tqdm(starts, total=len(starts), unit="chunk", desc="matching")
        for start in starts:
            yield slice(start, min(start + self.chunk_size, n))

    def _candidate_table(self, need_cols: Columns, need_vectors: Vectors, k: int,
                         on_progress: Callable[[float], None] | None = None,
                         backend: Any = None, approximate: bool = False) -> tuple[FeatureTable, np.ndarray]:
        """Score the candidates of every need, chunk by chunk; keep each need's best k.

        Chunks hold the needs of one scope together (cand.scope_order); the table comes back ordered by
        need row, best score first within each need, as if the needs had been scored one by one.
        `backend` (a DaskBackend) scores the chunks on a cluster.
        """
        needs = NeedChunk(need_cols, need_vectors)
        n = len(need_cols.ids)
        order = cand.scope_order(need_cols, self.shards_[0].nearby) if n > self.chunk_size else None
        if order is not None:
            needs = needs.rows(order)
        slices = self._slices(n)
        if backend is not None:
            parts = backend.candidate_tables(self, slices, needs, k, on_progress)
        else:
            parts = []
            for part in self._chunks(n):
                parts.append(self._chunk_table(needs if len(slices) == 1 else needs.rows(part), k, approximate))
                if on_progress is not None:
                    on_progress(part.stop / n)
        table, score = self._gather_tables(parts, need_cols, need_vectors)
        if order is not None and len(score):
            table = table._replace(need_row=order[table.need_row])
            back = np.argsort(table.need_row, kind="stable")
            table, score = table.take(back), score[back]
        return table, score

    def _chunk_table(self, needs: NeedChunk, k: int, approximate: bool = False) -> tuple[FeatureTable, np.ndarray]:
        """One chunk through the shards: search each, merge per need, features per shard, score, best k."""
        shards = self.shards_
        top = max(self.pool, k)
        found = [shard.found(needs, top, self.nearby_limit, scored=len(shards) > 1, approximate=approximate)
                 for shard in shards]
        pairs = sh.best_per_need(found, top, self.nearby_limit, len(self.resources_))
        projection = self.scorer_.projection
        tables = [shard.table(needs, part, sides=self.sides, same_category=self.same_category, projection=projection)
                  for shard, part in zip(shards, sh.split(pairs, self.shard_bounds_), strict=True)]
        return sh.finish(tables, self.scorer_, k)

    def _gather_tables(self, parts: list[tuple[FeatureTable, np.ndarray]], need_cols: Columns,
                       need_vectors: Vectors) -> tuple[FeatureTable, np.ndarray]:
        """The chunks' tables as one, need rows counted from the batch's start."""
        tables, scores = [], []
        for part, (table, score) in zip(self._slices(len(need_cols.ids)), parts, strict=True):
            tables.append(table._replace(need_row=table.need_row + part.start))
            scores.append(score)
        if not tables:
            empty = pair_features(need_cols, self._resource_columns, need_vectors, self.resource_vectors_, [], [],
                                  self.grid_map_, self.scorer_.projection)
            return empty, np.zeros(0)
        return FeatureTable.concat(tables), np.concatenate(scores)

    @property
    def shard_bounds_(self) -> list[slice]:
        """Row ranges of the index's shards."""
        return sh.bounds(len(self.resources_), self.shard_size)

    @property
    def shards_(self) -> list[sh.ResourceShard]:
        """The index cut into shards of `shard_size` rows (built on first use, after each edit)."""
        if self._shards is None:
            n = len(self.resources_)
            self._shards = [
                sh.ResourceShard(part.start, sh.take_columns(self._resource_columns, part, n),
                                 self.resource_vectors_ if part.stop - part.start >= n else
                                 self.resource_vectors_.rows(part), self.grid_map_, n_threads=self.n_threads,
                                 approximate_from=self.approximate_from)
                for part in self.shard_bounds_]
        return self._shards

    def _suggestions(self, needs: list[Need], need_vectors: Vectors, table: FeatureTable,
                     score: np.ndarray, rows: np.ndarray | None) -> list[Suggestion]:
        """Suggestions of the table's `rows`, in that order; None means every row as it stands."""
        if rows is None:
            rows = np.arange(len(score))
            sub = table
        else:
            sub = table.take(rows)
        # A few spare terms: filler words among the heaviest are dropped before naming TOP_TERMS.
        shared = shared_terms(sub.word_product, self.terms_, top=2 * TOP_TERMS)
        resources = [self.resources_[r] for r in sub.resource_row]
        terms = as_written(shared, [_original(needs[n]) for n in sub.need_row], [_original(r) for r in resources],
                           self.tokenizer_.variants)
        reasons = explain(sub, terms, [r.category for r in resources], [r.capacity_left for r in resources])
        features = sub.as_dicts()
        return [
            Suggestion(needs[n].id, resources[i].id, round(float(score[rows[i]]), 6), features[i], reasons[i],
                       terms[i])
            for i, n in enumerate(sub.need_row)
        ]

    def top_k(self, needs: Iterable[NeedLike], k: int | None = None) -> list[list[Suggestion]]:
        """For each need, its best `k` resources (best first) that pass the filters."""
        self._check_fitted()
        k = self.k if k is None else _positive(k, "k")
        need_list, need_cols, need_vectors = self._prepare(needs)
        # The suggestions of a need or two (the service's match) may come from the approximate graph; an
        # assignment's never do (see shards.ResourceShard.found).
        table, score = self._candidate_table(need_cols, need_vectors, k, approximate=True)
        flat = self._suggestions(need_list, need_vectors, table, score, None)
        out: list[list[Suggestion]] = [[] for _ in need_list]
        for row, suggestion in zip(table.need_row, flat, strict=True):
            out[row].append(suggestion)
        return out

    def assign(self, needs: Iterable[NeedLike], k: int = 10, min_score: float | None = None, *,
               on_progress: Callable[[float], None] | None = None, backend: Any = None) -> Assignment:
        """Global pairing of the needs with the resources, best total score within capacities.

        `on_progress`, if given, is called with the share of needs whose candidates are scored.
        `backend` (a matcher.distributed.DaskBackend) runs encoding, scoring and the assignment's
        components on a cluster, with the same result as in this process.
        """
        self._check_fitted()
        k = _positive(k, "k")
        min_score = self.min_score_ if min_score is None else float(min_score)
        need_list, need_cols, need_vectors = self._prepare(needs, backend=backend)
        table, score = self._candidate_table(need_cols, need_vectors, k, on_progress, backend)
        capacity = self._resource_columns.capacity_left
        chosen = assign_pairs(table.need_row, table.resource_row, score, capacity, n_needs=len(need_list),
                              min_score=min_score, solve_many=None if backend is None else backend.solve_many)
        pairs = self._suggestions(need_list, need_vectors, table, score, chosen)
        pairs.sort(key=lambda s: -s.score)
        return Assignment(pairs, why_unmatched(need_list, table, score, chosen, min_score, self.resources_))

    def score_pairs(self, needs: Iterable[NeedLike], resources: Iterable[ResourceLike]) -> np.ndarray:
        """Score of needs[i] with resources[i], for pairs chosen by the caller."""
        table = self.pair_table(needs, resources, projection=self.scorer_.projection)
        return self.scorer_.score(table.values, terms=table.terms)

    def pair_table(self, needs: Iterable[NeedLike], resources: Iterable[ResourceLike], *,
                   projection: np.ndarray | None = None) -> FeatureTable:
        """The feature table of the pairs (needs[i], resources[i]): what training learns from; with the
        embedding terms of `projection` (a learned scorer's) when given."""
        self._check_fitted()
        # Pairs may repeat a need or a resource, so ids need not be unique here.
        need_list, need_cols, need_vectors = self._prepare(needs, unique=False)
        resource_list = _parse_all(resources, parse_resource, "resources", unique=False)
        if len(resource_list) != len(need_list):
            raise ValueError(f"resources: expected {len(need_list)} records, one per need, got {len(resource_list)}")
        resource_vectors = self._vectors(resource_list)
        rows = np.arange(len(need_list))
        return pair_features(need_cols, columns(resource_list, self.grid_map_), need_vectors, resource_vectors,
                             rows, rows, self.grid_map_, projection)

    def pair_embeddings(self, needs: Sequence[Need], resources: Sequence[Resource]
                        ) -> tuple[np.ndarray, np.ndarray] | None:
        """The sentence embeddings of needs[i] and resources[i] (from the cache), or None by words alone."""
        if self.encoder_ is None:
            return None
        return self.embed(needs), self.embed(resources)

    def indexed(self, resource_id: str) -> Resource | None:
        """The resource as the index holds it now, or None when it is not indexed."""
        row = self._resource_row.get(resource_id) if self.resources_ is not None else None
        return self.resources_[row] if row is not None else None

    def same_text(self, old: Resource, new: Resource) -> bool:
        """Whether a write leaves a resource's vectors and ring position as they were (no re-tokenizing)."""
        return _same_place_and_text(old, new)

    def out_of_vocabulary(self, records: Iterable[NeedLike | ResourceLike]) -> tuple[int, int]:
        """(unknown, total) word tokens of these records against the fitted vocabulary.

        A growing unknown share means new posts use words the index cannot see: time to refit.
        """
        self._check_fitted()
        parsed = [r if isinstance(r, Need | Resource) else parse_need(r) for r in records]
        vocabulary = self.vectorizer_.word_.vocabulary_
        tokens = [t for toks in self._texts(parsed)[0] for t in toks]
        return sum(t not in vocabulary for t in tokens), len(tokens)

    # ------------------------------------------------------------ index edits
    # Edits never change an array in place: each replaces the attributes it changes, so a shallow copy
    # of a matcher (copy.copy) taken before an edit keeps answering exactly as it did.
    def add(self, resources: Iterable[ResourceLike]) -> Matcher:
        """Index more resources with the fitted vocabulary (no refit); ids must be new."""
        self._check_fitted()
        new = _parse_all(resources, parse_resource, "resources")
        for number, record in enumerate(new, start=1):
            if record.id in self._resource_row:
                raise RecordError("id", "an id not already indexed", record.id, source="resources", record=number)
        return self.update(new)

    def remove(self, resource_ids: Iterable[str]) -> Matcher:
        """Drop resources from the index by id; unknown ids are an error and nothing is removed."""
        self._check_fitted()
        ids = [resource_ids] if isinstance(resource_ids, str) else list(resource_ids)
        unknown = [i for i in ids if i not in self._resource_row]
        if unknown:
            raise KeyError(f"resource_ids: expected ids of indexed resources, got unknown {unknown[:5]}")
        return self.update(remove=ids)

    def update(self, resources: Iterable[ResourceLike] = (), *, remove: Iterable[str] = ()) -> Matcher:
        """Apply many resource writes as one index edit: what an upload or a change feed brings.

        A resource whose text and place are unchanged is updated in its row (capacity, taken,
        status): nothing is re-vectorized. One whose text or place changed, or that closed, leaves a
        tombstone (its row can no longer be a candidate) and, when open, is appended as a new row. New
        open resources are appended. Ids in `remove` leave tombstones; unknown ones are ignored.
        Tombstones cost a little memory and search until `compact()` (or a refit) drops them.
        """
        self._check_fitted()
        saved = _parse_all(resources, parse_resource, "resources")
        self._check_grids(saved, "resources")
        records = list(self.resources_)
        row_of = dict(self._resource_row)
        in_place: dict[int, Resource] = {}
        dead: set[int] = {row_of.pop(i) for i in remove if i in row_of}
        appended: dict[str, Resource] = {}
        for record in saved:
            row = row_of.get(record.id)
            if row is not None and records[row] == record:
                continue  # indexed as it is: a change feed replaying this process's own write
            if row is not None and record.status == "open" and _same_place_and_text(records[row], record):
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
        self._edit_columns(in_place, dead)
        self.resources_ = records
        self._resource_row = row_of
        if dead:
            self._bury(np.fromiter(sorted(dead), dtype=np.int64))
        if appended:
            self._append(list(appended.values()))
        return self

    def _edit_columns(self, in_place: dict[int, Resource], dead: set[int]) -> None:
        cols = self._resource_columns
        if not in_place and not dead:
            return
        is_open, capacity, left = cols.open.copy(), cols.capacity.copy(), cols.capacity_left.copy()
        for row, record in in_place.items():
            is_open[row], capacity[row], left[row] = True, record.capacity, record.capacity_left
        for row in dead:
            is_open[row], left[row] = False, 0
        self._resource_columns = cols._replace(open=is_open, capacity=capacity, capacity_left=left)
        if self._shards is not None:  # the vectors stay: each shard keeps its search caches
            n = len(self.resources_)
            self._shards = [shard.with_columns(sh.take_columns(self._resource_columns, part, n))
                            for shard, part in zip(self._shards, self.shard_bounds_, strict=True)]

    def _bury(self, rows: np.ndarray) -> None:
        """Tombstones: the rows' vectors become zero, so no search returns them ahead of a live row."""
        keep = np.ones(len(self.resources_))
        keep[rows] = 0.0
        vectors = self.resource_vectors_
        scale = sp.diags(keep).tocsr()
        dense = None
        if vectors.dense is not None:
            dense = vectors.dense.copy()
            dense[rows] = 0.0
        self.resource_vectors_ = Vectors((scale @ vectors.word).tocsr(), (scale @ vectors.char).tocsr(), dense)
        self._derived()

    def _append(self, new: list[Resource]) -> None:
        vectors, old = self._vectors(new), self.resource_vectors_
        dense = None if old.dense is None else np.vstack([old.dense, vectors.dense])
        start = len(self.resources_)
        self.resources_ = self.resources_ + new
        self._resource_row = {**self._resource_row, **{r.id: start + i for i, r in enumerate(new)}}
        added = columns(new, self.grid_map_)
        self._resource_columns = Columns(*(a + b if isinstance(a, list) else np.concatenate([a, b])
                                           for a, b in zip(self._resource_columns, added, strict=True)))
        self.resource_vectors_ = Vectors(sp.vstack([old.word, vectors.word]).tocsr(),
                                         sp.vstack([old.char, vectors.char]).tocsr(), dense)
        self._derived()

    def _derived(self) -> None:
        """Drop the shards built from the old vectors; they are cut again on first use."""
        self._shards = None

    @property
    def tombstones_(self) -> int:
        """Rows that edits retired and that still take space until compact() or a refit."""
        self._check_fitted()
        return len(self.resources_) - len(self._resource_row)

    @property
    def n_resources_(self) -> int:
        """Resources a need can be paired with now (tombstones not counted)."""
        self._check_fitted()
        return len(self._resource_row)

    def compact(self) -> Matcher:
        """Drop the tombstones, renumbering the rows (a refit does this too)."""
        self._check_fitted()
        if self.tombstones_:
            keep = np.array(sorted(self._resource_row.values()), dtype=np.int64)
            self._index([self.resources_[i] for i in keep], self.resource_vectors_.rows(keep))
        return self

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save as JSON + .npz (no pickle); refuses to replace an existing save unless asked."""
        self._check_fitted()
        matcher = copy.copy(self).compact() if self.tombstones_ else self  # tombstones are not saved
        return storage.save_matcher(matcher, Path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Matcher:
        return storage.load_matcher(cls, Path(path))


def _same_place_and_text(old: Resource, new: Resource) -> bool:
    """Whether a write leaves a resource's vectors and ring position as they were."""
    return (record_text(old) == record_text(new) and old.grid == new.grid and old.side == new.side
            and old.category == new.category and old.lat == new.lat and old.lon == new.lon)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)
