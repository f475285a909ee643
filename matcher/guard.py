"""The promotion guard's rule: a candidate model may not lose to the active one on either of two histories.

1. The candidate's own held-out decisions (the deployment's kind of post): NDCG@10 per need.
2. The canary shipped with the project (matcher.canary: colloquial needs, formal resources): MRR.

A model that learned its deployment's posts and forgot everything else wins the first and loses the
second; one that fits nobody loses the first. Losing by more than the tolerance on either refuses the
promotion, unless the analyst forces it (and the force is audited). Messages are in Chinese: analysts
read them in the CLI and on the API's 409.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from matcher.evaluation import ndcg_at
from matcher.features import pair_terms
from matcher.scoring import Scorer, model_min_score

# Lower than the active model by at most this much still promotes: noise of a few hundred held-out
# decisions, and the canary's 120 needs (one need's right resource dropping from rank 1 to 2 costs 0.004).
HELDOUT_TOLERANCE = 0.005
CANARY_TOLERANCE = 0.01


class Verdict(NamedTuple):
    refused: bool
    reason: str  # why it was refused, "" when it was not
    account: str  # the figures either way


def heldout_scores(scorer: Scorer, values: np.ndarray, need_dense: np.ndarray | None,
                   resource_dense: np.ndarray | None) -> np.ndarray | None:
    """The scorer's scores of stored held-out pairs; None when it reads embeddings the file does not hold."""
    try:
        terms = pair_terms(scorer.projection, need_dense, resource_dense)
    except ValueError:
        return None
    return scorer.score(values, terms=terms)


def heldout_ndcg(candidate: Scorer, current: Scorer, held: tuple) -> tuple[float, float] | None:
    """NDCG@10 of both models on the candidate's held-out decisions, or None if one cannot score them."""
    values, labels, groups, need_dense, resource_dense = held
    mine = heldout_scores(candidate, values, need_dense, resource_dense)
    theirs = heldout_scores(current, values, need_dense, resource_dense)
    if mine is None or theirs is None:
        return None
    return ndcg_at(mine, labels, groups, 10), ndcg_at(theirs, labels, groups, 10)


def judge(heldout: tuple[float, float] | None, canary: tuple[float, float] | None) -> Verdict:
    """The verdict on (candidate, active) figures of each history; None where a history was not scored."""
    reasons, account = [], []
    if heldout is not None:
        mine, theirs = heldout
        account.append(f"留出决定 NDCG@10 {mine:.4f}（现用模型 {theirs:.4f}）")
        if mine < theirs - HELDOUT_TOLERANCE:
            reasons.append(f"在留出的审核决定上 NDCG@10 低 {theirs - mine:.4f}，超过容差 {HELDOUT_TOLERANCE}")
    else:
        account.append("留出决定未比较（没有留出数据，或其中没有该模型所需的向量）")
    if canary is not None:
        mine, theirs = canary
        account.append(f"口语样本 MRR {mine:.4f}（现用模型 {theirs:.4f}）")
        if mine < theirs - CANARY_TOLERANCE:
            reasons.append(f"在随附的口语需求样本上 MRR 低 {theirs - mine:.4f}，超过容差 {CANARY_TOLERANCE}")
    return Verdict(bool(reasons), "；".join(reasons), "；".join(account))


def thresholds(candidate: Scorer, current: Scorer) -> str:
    """The minimum scores before and after, which a promotion moves with the model."""
    return f"最低分 min_score {model_min_score(current):.4g} → {model_min_score(candidate):.4g}"
