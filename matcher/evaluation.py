"""Ranking metrics on decided pairs, grouped by need: AUC, NDCG@k, recall@k, precision, acceptance, Spearman."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score


def _groups(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group; groups may be need ids (strings) or integer codes."""
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def ndcg_at(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int) -> float:
    """Mean NDCG@k over needs that have at least one positive; gain 2^label − 1, log2 discount."""
    values = []
    for members in _groups(groups):
        rel = labels[members]
        if rel.max(initial=0) <= 0:
            continue
        ranked = rel[np.argsort(-scores[members], kind="stable")][:k]
        ideal = np.sort(rel)[::-1][:k]
        discount = 1 / np.log2(np.arange(2, k + 2))
        dcg = ((2**ranked - 1) * discount[: len(ranked)]).sum()
        values.append(dcg / ((2**ideal - 1) * discount[: len(ideal)]).sum())
    return float(np.mean(values)) if values else float("nan")


def recall_at(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int) -> float:
    """Share of accepted pairs that rank within their need's top k."""
    hits = total = 0
    for members in _groups(groups):
        rel = labels[members] > 0
        top = np.argsort(-scores[members], kind="stable")[:k]
        hits += int(rel[top].sum())
        total += int(rel.sum())
    return hits / total if total else float("nan")


def acceptance_rate(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Share of needs whose best-scored pair staff accepted: what suggesting only the top pair would yield."""
    tops = [labels[members][np.argmax(scores[members])] > 0 for members in _groups(groups)]
    return float(np.mean(tops)) if tops else float("nan")


def evaluate(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, min_score: float,
             k: int = 5) -> dict[str, float]:
    """Every metric the analysts compare models by, on one held-out set; precision at `min_score` (the
    model's own threshold: scoring.model_min_score)."""
    scores, labels, groups = np.asarray(scores, float), np.asarray(labels, float), np.asarray(groups)
    binary = (labels > 0).astype(int)
    above = scores >= min_score
    out = {
        "auc": float(roc_auc_score(binary, scores)) if 0 < binary.sum() < len(binary) else float("nan"),
        "ndcg@5": ndcg_at(scores, labels, groups, 5),
        "ndcg@10": ndcg_at(scores, labels, groups, 10),
        f"recall@{k}": recall_at(scores, labels, groups, k),
        "precision@min_score": float(binary[above].mean()) if above.any() else float("nan"),
        "acceptance_rate": acceptance_rate(scores, labels, groups),
        "spearman": float(100 * spearmanr(scores, labels).statistic) if len(set(labels.tolist())) > 1 else float("nan"),
    }
    return {name: round(value, 4) for name, value in out.items()}
