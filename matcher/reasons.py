"""Scored pairs → reasons a person can read: shared terms as each post wrote them, meaning, ring, distance."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from matcher.features import FEATURES, FeatureTable
from matcher.proximity import RING_LABELS
from matcher.records import Need, Resource
from matcher.rows import RowEntries, entry_rows
from matcher.suggestion import Suggestion
from matcher.surface import find_surface
from matcher.texts import original_text
from matcher.tokenize import REASON_STOPWORDS, read_stopwords

_WORD, _CATEGORY, _SEMANTIC = (FEATURES.index(name) for name in ("word_cosine", "category_match", "semantic_cosine"))
# Embedding cosine from which two texts are said to mean the same (语义相近). e5's cosines sit high for
# any two Chinese sentences (0.85 is common for unrelated ones); among the candidates shown for the
# colloquial dev needs, pairs at or above this value are the right one four times in five
# (bench/fit_default.py; 0.77 on the test half).
SEMANTIC_REASON = 0.893
# Shared terms named in a reason, at most.
TOP_TERMS = 3


@functools.cache
def reason_stopwords() -> frozenset[str]:
    """Contact details and filler: they may weigh in the similarity, but never make a reason."""
    return read_stopwords(REASON_STOPWORDS)


def shared_terms(product: sp.csr_matrix | RowEntries, terms: Sequence[str], top: int = 3) -> list[list[str]]:
    """The terms with the largest share of each pair's cosine, from the pairs' word products."""
    row = entry_rows(product.indptr)
    # One sort for all pairs: by pair, then weight descending, ties by term (not by the entries' order,
    # which differs between the product paths).
    order = np.lexsort((product.indices, -product.data, row))
    rank = np.arange(len(order)) - product.indptr[row[order]]
    best = order[rank < top]
    words = [terms[c] for c in product.indices[best].tolist()]
    ends = np.cumsum(np.minimum(np.diff(product.indptr), top)).tolist()
    return [words[start:end] for start, end in zip([0, *ends][:-1], ends, strict=True)]


def as_written(shared: Sequence[Sequence[str]], need_texts: Sequence[str], resource_texts: Sequence[str],
               variants: Callable[[str], list[str]], *, top: int = TOP_TERMS) -> list[list[dict[str, str]]]:
    """Each pair's shared terms as {"term", "need", "resource"}: the head word and how each post wrote it.

    Filler words are left out; a term neither post spells out (a guess of the tokenizer) falls back
    to the head word.
    """
    stop = reason_stopwords()
    out = []
    for terms, need_text, resource_text in zip(shared, need_texts, resource_texts, strict=True):
        named = []
        for term in terms:
            if term in stop or len(named) >= top:
                continue
            forms = variants(term)
            named.append({"term": term, "need": find_surface(need_text, forms) or term,
                          "resource": find_surface(resource_text, forms) or term})
        out.append(named)
    return out


def _term_label(term: dict[str, str]) -> str:
    return term["need"] if term["need"] == term["resource"] else f"{term['need']} ↔ {term['resource']}"


def explain(table: FeatureTable, shared: Sequence[Sequence[dict[str, str]]], category: Sequence[str],
            capacity_left: Sequence[int]) -> list[list[str]]:
    """Reasons for each row of `table`, in the order a reviewer weighs them."""
    out = []
    for i in range(len(table.need_row)):
        values = table.values[i]
        similar = values[_SEMANTIC] >= SEMANTIC_REASON
        reasons = []
        if shared[i]:
            labels = "、".join(_term_label(t) for t in shared[i])
            reasons.append(f"共同关键词：{labels}（文本相似度 {values[_WORD]:.2f}）")
            if similar:
                reasons.append(f"语义相近 {values[_SEMANTIC]:.2f}")
        elif similar:
            reasons.append(f"无共同关键词，但语义相近 {values[_SEMANTIC]:.2f}")
        else:
            reasons.append(f"无共同关键词（文本相似度 {values[_WORD]:.2f}）")
        reasons.append(f"距离圈层：{RING_LABELS[int(table.ring[i])]}")
        if not np.isnan(table.distance_km[i]):
            reasons.append(f"相距约 {table.distance_km[i]:.1f} 公里")
        if values[_CATEGORY] > 0:
            reasons.append(f"类别一致：{category[i]}")
        elif values[_CATEGORY] < 0:
            reasons.append("类别不同")
        reasons.append(f"资源剩余容量：{int(capacity_left[i])}")
        out.append(reasons)
    return out


def why_unmatched(needs: list[Need], table: FeatureTable, score: np.ndarray, chosen: np.ndarray,
                  min_score: float, resources: list[Resource]) -> dict[str, str]:
    """Why each need the assignment left out stayed unmatched, as a code and a sentence."""
    matched = set(table.need_row[chosen].tolist())
    best = np.full(len(needs), -1.0)
    np.maximum.at(best, table.need_row, score)
    taken_by = {int(table.resource_row[i]): needs[int(table.need_row[i])].id for i in chosen}
    # Each need's table rows by a search, not a scan of the whole table per need: the scan made this
    # loop quadratic (a 1M batch spent about 290 s outside its timed stages, most of it here).
    order = np.argsort(table.need_row, kind="stable")
    sorted_need = table.need_row[order]
    out = {}
    for row, need in enumerate(needs):
        if row in matched:
            continue
        if best[row] < 0:
            out[need.id] = "no_candidate: no open resource with capacity left passes the filters and proximity limit"
        elif best[row] < min_score:
            out[need.id] = f"below_min_score: best candidate scores {best[row]:.3f}, below the minimum {min_score:.3f}"
        else:
            start, end = np.searchsorted(sorted_need, [row, row + 1])
            mine = order[start:end][score[order[start:end]] >= min_score]
            lost = [f"{resources[r].id}→{taken_by[int(r)]}" for r in table.resource_row[mine] if int(r) in taken_by]
            out[need.id] = "capacity_taken: its candidates' capacity went to better pairs (" + ", ".join(lost[:3]) + ")"
    return out


def suggestions(needs: Sequence[Need], resources: Sequence[Resource], table: FeatureTable, score: np.ndarray,
                rows: np.ndarray | None, terms: Sequence[str],
                variants: Callable[[str], list[str]]) -> list[Suggestion]:
    """Suggestions of the table's `rows`, in that order (None: every row as it stands), with their reasons.

    `resources` are the index's rows, `terms` the words of its columns, `variants` the tokenizer's forms of
    a word (to find it as written)."""
    if rows is None:
        rows = np.arange(len(score))
        sub = table
    else:
        sub = table.take(rows)
    # A few spare terms: filler words among the heaviest are dropped before naming TOP_TERMS.
    shared = shared_terms(sub.word_product, terms, top=2 * TOP_TERMS)
    paired = [resources[r] for r in sub.resource_row]
    quoted = as_written(shared, [original_text(needs[n]) for n in sub.need_row], [original_text(r) for r in paired],
                        variants)
    reasons = explain(sub, quoted, [r.category for r in paired], [r.capacity_left for r in paired])
    features = sub.as_dicts()
    return [
        Suggestion(needs[n].id, paired[i].id, round(float(score[rows[i]]), 6), features[i], reasons[i], quoted[i])
        for i, n in enumerate(sub.need_row)
    ]
