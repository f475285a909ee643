"""Scored pairs → reasons a person can read: shared terms that weighed most, ring, distance, category."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matcher.features import FEATURES, FeatureTable
from matcher.proximity import RING_LABELS
from matcher.rows import RowEntries, entry_rows

_WORD, _CATEGORY, _CAPACITY = FEATURES.index("word_cosine"), FEATURES.index("category_match"), FEATURES.index(
    "capacity_left")


def shared_terms(product: sp.csr_matrix | RowEntries, terms: Sequence[str], top: int = 3) -> list[list[str]]:
    """The terms with the largest share of each pair's cosine, from the pairs' word products."""
    row = entry_rows(product.indptr)
    # One sort for all pairs: by pair, then weight descending (stable, so ties keep term order).
    order = np.lexsort((-product.data, row))
    rank = np.arange(len(order)) - product.indptr[row[order]]
    best = order[rank < top]
    words = [terms[c] for c in product.indices[best].tolist()]
    ends = np.cumsum(np.minimum(np.diff(product.indptr), top)).tolist()
    return [words[start:end] for start, end in zip([0, *ends][:-1], ends, strict=True)]


def explain(table: FeatureTable, shared: Sequence[Sequence[str]], category: Sequence[str],
            capacity_left: Sequence[int]) -> list[list[str]]:
    """Reasons for each row of `table`, in the order a reviewer weighs them."""
    out = []
    for i in range(len(table.need_row)):
        values = table.values[i]
        reasons = []
        if shared[i]:
            reasons.append(f"共同关键词：{'、'.join(shared[i])}（文本相似度 {values[_WORD]:.2f}）")
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
