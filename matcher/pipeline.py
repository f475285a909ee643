"""Matcher: fit / top_k / assign / score_pairs / update / save / load, a chain of the stages.

Each stage lives in its own module (text → tokens and embeddings → vectors → candidates → features →
scores → assignment); the index of resources is a ResourceIndex, the place the batch runs a backend.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matcher import batch, storage
from matcher import candidates as cand
from matcher import shards as sh
from matcher.assign import assign as assign_pairs
from matcher.columns import Columns, columns
from matcher.dense import APPROXIMATE_FROM
from matcher.encode import ENCODERS, EmbeddingCache, embed, get_encoder
from matcher.errors import NotFittedError, RecordError
from matcher.features import FeatureTable, pair_features
from matcher.index import ResourceIndex, same_place_and_text
from matcher.proximity import GridMap
from matcher.reasons import suggestions, why_unmatched
from matcher.records import Grid, Need, Resource, parse_all, parse_grid, parse_need, parse_resource
from matcher.scoring import default_model_dir, load_scorer, model_min_score
from matcher.suggestion import Assignment, Suggestion
from matcher.texts import embedding_text, record_text
from matcher.tokenize import Tokenizer
from matcher.vectorize import TextVectorizer, Vectors, char_text

NeedLike = Mapping[str, Any] | Need
ResourceLike = Mapping[str, Any] | Resource
# Settings that are objects or places rather than values: not part of a save.
NOT_SAVED = ("model_dir", "progress", "tokenizer", "embedding_cache")


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

    def get_params(self) -> dict[str, Any]:
        """The settings, read off the signature as scikit-learn does: a new setting is saved too."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {name: getattr(self, name) for name in names}

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

    def _embed(self, records: Sequence[Need | Resource], *, adopt: bool = False) -> np.ndarray | None:
        """Sentence embeddings of the records (cached by text), or None when matching by words alone;
        `adopt` for the index's own matrix: the cache then shares it (one copy in memory)."""
        if self.encoder_ is None:
            return None
        return embed([embedding_text(r) for r in records], self.encoder_, self.embeddings_, progress=self.progress,
                     adopt=adopt)

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

    def _backend(self, backend: batch.Backend | None) -> batch.Backend:
        return batch.LocalBackend(progress=self.progress) if backend is None else backend

    def _encode_on(self, backend: batch.Backend, records: Sequence[Need | Resource]) -> None:
        """Fill the embedding cache on the backend, so that _embed finds every text already encoded."""
        if self.encoder_ is not None:
            backend.encode_missing([embedding_text(r) for r in records], self.encoder_, self.embeddings_)

    def fit(self, resources: Iterable[ResourceLike], needs: Iterable[NeedLike] | None = None, *,
            grids: Iterable[Mapping[str, Any] | Grid] | None = None, backend: batch.Backend | None = None) -> Matcher:
        """Fit the vocabularies on resource (and need) texts and index the resources.

        `backend` (a matcher.distributed.DaskBackend) encodes the texts on a cluster; same vectors.
        """
        self._check_settings()
        resource_list = parse_all(resources, parse_resource, "resources")
        need_list = parse_all(needs, parse_need, "needs") if needs is not None else []
        if not resource_list:
            raise ValueError("resources: expected at least one resource to fit on, got none")
        self.grid_map_ = GridMap(parse_all(grids, parse_grid, "grids") if grids is not None else [])
        self.grid_map_.check(resource_list, "resources")
        self.grid_map_.check(need_list, "needs")
        self.tokenizer_ = self.tokenizer or Tokenizer(backend=self.tokenizer_backend, new_words=self.new_words)
        self.scorer_ = load_scorer(self.model_dir or default_model_dir(self.encoder))
        self._start_encoder()
        self.__dict__.pop("terms_", None)  # a refit brings a new vocabulary
        tokens, chars = self._texts(resource_list)
        need_tokens, need_chars = self._texts(need_list)
        self.vectorizer_ = TextVectorizer(char_ngrams=self.char_ngrams)
        vectors = self.vectorizer_.fit_transform(tokens + need_tokens, chars + need_chars)
        n = len(resource_list)
        self._encode_on(self._backend(backend), resource_list)
        self._index(resource_list, vectors.rows(slice(0, n)).with_dense(self._embed(resource_list, adopt=True)))
        return self

    def _index(self, resources: list[Resource], vectors: Vectors) -> None:
        self.index_ = ResourceIndex(resources, vectors, self.grid_map_, shard_size=self.shard_size,
                                    n_threads=self.n_threads, approximate_from=self.approximate_from)

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise NotFittedError("This Matcher is not fitted yet: call fit(resources) or Matcher.load(path) first")

    # ------------------------------------------------------------ the index, read
    def __contains__(self, resource_id: object) -> bool:
        """Whether a resource with this id is in the index."""
        return hasattr(self, "index_") and resource_id in self.index_

    @property
    def resources_(self) -> list[Resource]:
        """The index's rows (a retired row keeps its place until compact())."""
        self._check_fitted()
        return self.index_.resources

    @property
    def resource_vectors_(self) -> Vectors:
        self._check_fitted()
        return self.index_.vectors

    @property
    def shards_(self) -> list[sh.ResourceShard]:
        """The index cut into shards of `shard_size` rows (built on first use, after each edit)."""
        self._check_fitted()
        return self.index_.shards

    @property
    def tombstones_(self) -> int:
        """Rows that edits retired and that still take space until compact() or a refit."""
        self._check_fitted()
        return self.index_.tombstones

    @property
    def n_resources_(self) -> int:
        """Resources a need can be paired with now (tombstones not counted)."""
        self._check_fitted()
        return len(self.index_)

    def indexed(self, resource_id: str) -> Resource | None:
        """The resource as the index holds it now, or None when it is not indexed."""
        return self.index_.get(resource_id) if hasattr(self, "index_") else None

    def same_text(self, old: Resource, new: Resource) -> bool:
        """Whether a write leaves a resource's vectors and ring position as they were (no re-tokenizing)."""
        return same_place_and_text(old, new)

    @property
    def min_score_(self) -> float:
        """The minimum score in force: the setting, or else the one the scoring model's card recommends."""
        self._check_fitted()
        return model_min_score(self.scorer_) if self.min_score is None else float(self.min_score)

    @functools.cached_property
    def terms_(self) -> list[str]:
        """Word of each column of the word vectors; the vocabulary is fixed once fitted."""
        return self.vectorizer_.terms()

    def out_of_vocabulary(self, records: Iterable[NeedLike | ResourceLike]) -> tuple[int, int]:
        """(unknown, total) word tokens of these records against the fitted vocabulary.

        A growing unknown share means new posts use words the index cannot see: time to refit.
        """
        self._check_fitted()
        parsed = [r if isinstance(r, Need | Resource) else parse_need(r) for r in records]
        vocabulary = self.vectorizer_.word_.vocabulary_
        tokens = [t for toks in self._texts(parsed)[0] for t in toks]
        return sum(t not in vocabulary for t in tokens), len(tokens)

    # -------------------------------------------------------------- matching
    def _prepare(self, needs: Iterable[NeedLike], backend: batch.Backend, *, unique: bool = True
                 ) -> tuple[list[Need], Columns, Vectors]:
        need_list = parse_all(needs, parse_need, "needs", unique=unique)
        self.grid_map_.check(need_list, "needs")
        self._encode_on(backend, need_list)
        return need_list, columns(need_list, self.grid_map_), self._vectors(need_list)

    def _plan(self, k: int, approximate: bool = False) -> sh.SearchPlan:
        index = self.index_
        return sh.SearchPlan(index.shards, index.bounds, index.n_rows, max(self.pool, k), k, self.nearby_limit,
                             self.sides, self.same_category, self.scorer_, approximate)

    def _suggestions(self, needs: list[Need], table: FeatureTable, score: np.ndarray,
                     rows: np.ndarray | None) -> list[Suggestion]:
        return suggestions(needs, self.index_.resources, table, score, rows, self.terms_, self.tokenizer_.variants)

    def top_k(self, needs: Iterable[NeedLike], k: int | None = None) -> list[list[Suggestion]]:
        """For each need, its best `k` resources (best first) that pass the filters."""
        self._check_fitted()
        k = self.k if k is None else _positive(k, "k")
        backend = self._backend(None)
        need_list, need_cols, need_vectors = self._prepare(needs, backend)
        # The suggestions of a need or two (the service's match) may come from the approximate graph; an
        # assignment's never do (see shards.ResourceShard.found).
        table, score = batch.candidate_table(self._plan(k, approximate=True), need_cols, need_vectors,
                                             self.chunk_size, backend)
        out: list[list[Suggestion]] = [[] for _ in need_list]
        for row, suggestion in zip(table.need_row, self._suggestions(need_list, table, score, None), strict=True):
            out[row].append(suggestion)
        return out

    def assign(self, needs: Iterable[NeedLike], k: int = 10, min_score: float | None = None, *,
               on_progress: Callable[[float], None] | None = None,
               backend: batch.Backend | None = None) -> Assignment:
        """Global pairing of the needs with the resources, best total score within capacities.

        `on_progress`, if given, is called with the share of needs whose candidates are scored.
        `backend` (a matcher.distributed.DaskBackend) runs encoding, scoring and the assignment's
        components on a cluster, with the same result as in this process.
        """
        self._check_fitted()
        k = _positive(k, "k")
        min_score = self.min_score_ if min_score is None else float(min_score)
        backend = self._backend(backend)
        need_list, need_cols, need_vectors = self._prepare(needs, backend)
        table, score = batch.candidate_table(self._plan(k), need_cols, need_vectors, self.chunk_size, backend,
                                             on_progress)
        chosen = assign_pairs(table.need_row, table.resource_row, score, self.index_.columns.capacity_left,
                              n_needs=len(need_list), min_score=min_score, solve_many=backend.solve_many)
        pairs = self._suggestions(need_list, table, score, chosen)
        pairs.sort(key=lambda s: -s.score)
        return Assignment(pairs, why_unmatched(need_list, table, score, chosen, min_score, self.index_.resources))

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
        need_list, need_cols, need_vectors = self._prepare(needs, self._backend(None), unique=False)
        resource_list = parse_all(resources, parse_resource, "resources", unique=False)
        if len(resource_list) != len(need_list):
            raise ValueError(f"resources: expected {len(need_list)} records, one per need, got {len(resource_list)}")
        rows = np.arange(len(need_list))
        return pair_features(need_cols, columns(resource_list, self.grid_map_), need_vectors,
                             self._vectors(resource_list), rows, rows, self.grid_map_, projection)

    def pair_embeddings(self, needs: Sequence[Need], resources: Sequence[Resource]
                        ) -> tuple[np.ndarray, np.ndarray] | None:
        """The sentence embeddings of needs[i] and resources[i] (from the cache), or None by words alone."""
        if self.encoder_ is None:
            return None
        return self.embed(needs), self.embed(resources)

    # ------------------------------------------------------------ index edits
    # Edits never change an index in place (see matcher.index): a shallow copy of a matcher (copy.copy)
    # taken before an edit keeps answering exactly as it did.
    def add(self, resources: Iterable[ResourceLike]) -> Matcher:
        """Index more resources with the fitted vocabulary (no refit); ids must be new."""
        self._check_fitted()
        new = parse_all(resources, parse_resource, "resources")
        for number, record in enumerate(new, start=1):
            if record.id in self.index_:
                raise RecordError("id", "an id not already indexed", record.id, source="resources", record=number)
        return self.update(new)

    def remove(self, resource_ids: Iterable[str]) -> Matcher:
        """Drop resources from the index by id; unknown ids are an error and nothing is removed."""
        self._check_fitted()
        ids = [resource_ids] if isinstance(resource_ids, str) else list(resource_ids)
        unknown = [i for i in ids if i not in self.index_]
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
        saved = parse_all(resources, parse_resource, "resources")
        self.grid_map_.check(saved, "resources")
        self.index_ = self.index_.update(saved, remove, self._vectors)
        return self

    def compact(self) -> Matcher:
        """Drop the tombstones, renumbering the rows (a refit does this too)."""
        self._check_fitted()
        self.index_ = self.index_.compact()
        return self

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Save as JSON + .npz (no pickle); refuses to replace an existing save unless asked."""
        self._check_fitted()
        index = self.index_.compact()  # tombstones are not saved
        settings = {k: v for k, v in self.get_params().items() if k not in NOT_SAVED}
        embeddings = None
        if self.embeddings_ is not None:
            arrays = self.embeddings_.arrays()
            embeddings = (arrays["keys"], arrays["vectors"])
        state = storage.MatcherState(settings, self.tokenizer_, self.vectorizer_, self.scorer_, self.grid_map_,
                                     index.resources, index.vectors, embeddings)
        return storage.save(state, Path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Matcher:
        """A saved matcher, as it was fitted; its scoring model is the one saved with it."""
        state = storage.load(Path(path))
        matcher = cls(**state.settings, model_dir=path)
        matcher.tokenizer_, matcher.vectorizer_, matcher.scorer_ = state.tokenizer, state.vectorizer, state.scorer
        matcher.grid_map_ = state.grid_map
        matcher._start_encoder()
        if matcher.embeddings_ is not None and state.embeddings is not None:
            matcher.embeddings_.load_arrays(*state.embeddings)
        matcher._index(state.resources, state.vectors)
        return matcher


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)
