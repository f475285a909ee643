"""The canary: a small set of colloquial needs against formally worded resources, shipped with the package.

A model trained on one deployment's decisions can learn that deployment's kind of post and forget every
other kind: trained on LCQMC's question pairs, a residual fitted without restraint took this set's MRR
from 0.99 to 0.6. So promotion scores the candidate and the active model here as well as on the
candidate's held-out decisions (see matcher.guard). The set is the project's own writing: 60 resources as
a service list words them and two needs for each as people post them (data/canary/).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from matcher.encode import EmbeddingCache
from matcher.features import pair_terms
from matcher.packaged import packaged
from matcher.pipeline import Matcher
from matcher.records import Need, Resource, parse_need, parse_resource
from matcher.scoring import Scorer
from matcher.tokenize import Tokenizer


class Canary(NamedTuple):
    needs: list[Need]
    resources: list[Resource]
    gold: list[str]  # the right resource of each need


def _rows(name: str) -> list[dict[str, str]]:
    text = packaged("duijie_data", "canary", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def read_canary() -> Canary:
    resources = [parse_resource({"id": r["id"], "title": r["title"], "description": r["description"]})
                 for r in _rows("resources.tsv")]
    rows = _rows("needs.tsv")
    return Canary([parse_need({"id": r["id"], "title": r["text"]}) for r in rows], resources,
                  [r["resource"] for r in rows])


class CanaryPairs(NamedTuple):
    """Every need of the set against every resource: feature rows, the two embeddings, the right column."""

    values: np.ndarray  # (needs x resources, FEATURES)
    need_dense: np.ndarray | None
    resource_dense: np.ndarray | None
    gold: np.ndarray  # column of each need's right resource
    shape: tuple[int, int]


_PAIRS: dict[str, CanaryPairs] = {}
_LOCK = threading.Lock()


def canary_pairs(encoder: str = "e5-small", *, tokenizer: Tokenizer | None = None,
                 embedding_cache: EmbeddingCache | None = None) -> CanaryPairs:
    """The canary's pairs in an index of its resources built with `encoder`; computed once per process and
    encoder (some 5 s, mostly encoding), since no model changes them."""
    with _LOCK:
        if encoder not in _PAIRS:
            canary = read_canary()
            matcher = Matcher(encoder=encoder, tokenizer=tokenizer, embedding_cache=embedding_cache)
            matcher.fit(canary.resources, canary.needs)
            n, m = len(canary.needs), len(canary.resources)
            needs = [need for need in canary.needs for _ in range(m)]
            resources = canary.resources * n
            dense = matcher.pair_embeddings(needs, resources)
            position = {r.id: i for i, r in enumerate(canary.resources)}
            _PAIRS[encoder] = CanaryPairs(matcher.pair_table(needs, resources).values,
                                          None if dense is None else dense[0], None if dense is None else dense[1],
                                          np.array([position[g] for g in canary.gold]), (n, m))
        return _PAIRS[encoder]


def canary_mrr(scorers: Sequence[Scorer], *, encoder: str = "e5-small", tokenizer: Tokenizer | None = None,
               embedding_cache: EmbeddingCache | None = None) -> list[float]:
    """Mean reciprocal rank of each need's right resource among all the set's resources, per scorer.

    Every need is scored against every resource (7,200 pairs) in an index of the set's resources built
    with the service's encoder, so the scorers see the features they see in service.
    """
    pairs = canary_pairs(encoder, tokenizer=tokenizer, embedding_cache=embedding_cache)
    n, m = pairs.shape
    out = []
    for scorer in scorers:
        if scorer.projection is not None and pairs.need_dense is None:
            raise ValueError("canary: the model reads sentence embeddings, but the service matches by words "
                             "alone (encoder none)")
        terms = pair_terms(scorer.projection, pairs.need_dense, pairs.resource_dense)
        score = scorer.score(pairs.values, terms=terms).reshape(n, m)
        # Rank 1 + how many resources score above the right one, ties counted against the model.
        right = score[np.arange(n), pairs.gold][:, None]
        rank = (score > right).sum(axis=1) + (score == right).sum(axis=1)
        out.append(round(float(np.mean(1.0 / rank)), 4))
    return out
