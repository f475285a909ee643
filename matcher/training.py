"""Learning the scoring model from decided pairs, and comparing it with the active one on held-out needs."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit

from matcher.encode import EmbeddingCache
from matcher.evaluation import evaluate
from matcher.features import FEATURES
from matcher.history import History
from matcher.pipeline import Matcher
from matcher.scoring import LinearScorer, Scorer
from matcher.trees import TreeScorer

KINDS = ("logistic", "gbdt")
SPLITS = ("group", "time")


class Dataset(NamedTuple):
    """One row per decided pair: features, label, sample weight, the need it belongs to, when decided."""

    values: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    groups: np.ndarray
    times: np.ndarray  # POSIX seconds, NaN when unknown

    def take(self, rows: np.ndarray) -> Dataset:
        return Dataset(*(column[rows] for column in self))


def build_dataset(history: History, *, shown_weight: float = 0.3, matcher: Matcher | None = None,
                  embedding_cache: EmbeddingCache | None = None) -> Dataset:
    """Compute the engine's pair features for every decision.

    `matcher` is the index the model will score in (the service's, or a saved one): its vocabulary,
    IDF, encoder and settings then give the features, so the model learns on what it will see.
    Without one, a default Matcher is fitted on the history's own lists (reusing `embedding_cache`).
    """
    if not 0 <= shown_weight <= 1:
        raise ValueError(f"shown_weight: expected a number from 0 to 1, got {shown_weight}")
    decisions = [d for d in history.decisions if d.kind != "shown" or shown_weight > 0]
    if matcher is None:
        matcher = Matcher(embedding_cache=embedding_cache).fit(list(history.resources.values()),
                                                               list(history.needs.values()), grids=history.grids)
    table = matcher.pair_table([history.needs[d.need_id] for d in decisions],
                               [history.resources[d.resource_id] for d in decisions])
    return Dataset(
        values=table.values,
        labels=np.array([d.label for d in decisions], dtype=float),
        weights=np.array([shown_weight if d.kind == "shown" else 1.0 for d in decisions]),
        groups=np.array([d.need_id for d in decisions], dtype=object),
        times=np.array([d.time.timestamp() if d.time else np.nan for d in decisions]),
    )


def split(data: Dataset, *, how: str = "group", test_size: float = 0.25,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and rows to hold out; a need's decisions never straddle the two."""
    if how not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {how!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: expected a share between 0 and 1, got {test_size}")
    rows = np.arange(len(data.labels))
    if how == "group":
        train, test = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                           .split(rows, groups=data.groups))
        return train, test
    if np.isnan(data.times).any():
        raise ValueError("split: the time split needs a time on every decision; some have none")
    # Needs are ordered by their latest decision: train on the past, test on the most recent.
    latest: dict[str, float] = {}
    for group, time in zip(data.groups, data.times, strict=True):
        latest[group] = max(latest.get(group, -np.inf), time)
    ordered = sorted(latest, key=latest.__getitem__)
    recent = set(ordered[round(len(ordered) * (1 - test_size)):])
    test_mask = np.array([g in recent for g in data.groups])
    return rows[~test_mask], rows[test_mask]


def fit_scorer(data: Dataset, *, kind: str = "logistic", c: float = 1.0, seed: int = 0) -> Scorer:
    """Fit a scorer on a dataset; logistic regression keeps weights a person can read."""
    if kind not in KINDS:
        raise ValueError(f"model: expected one of {', '.join(KINDS)}, got {kind!r}")
    binary = (data.labels > 0).astype(int)
    if kind == "gbdt":
        model = GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                                           random_state=seed)
        model.fit(data.values, binary, sample_weight=data.weights)
        importances = dict(zip(FEATURES, np.round(model.feature_importances_, 4).tolist(), strict=True))
        return TreeScorer.from_sklearn(model, card={"kind": "gbdt", "importances": importances})
    mean = data.values.mean(axis=0)
    std = data.values.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant feature (say, no grids in the history) gets weight ~0, not NaN
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((data.values - mean) / std, binary, sample_weight=data.weights)
    return LinearScorer(weights=dict(zip(FEATURES, model.coef_[0].tolist(), strict=True)),
                        bias=float(model.intercept_[0]), offset=dict(zip(FEATURES, mean.tolist(), strict=True)),
                        scale=dict(zip(FEATURES, std.tolist(), strict=True)), card={"kind": "logistic", "C": c})


class TrainResult(NamedTuple):
    scorer: Scorer
    metrics: dict[str, float]
    baseline: dict[str, float]
    holdout: Dataset
    counts: dict[str, int]
    seconds: float


def train(history: History, baseline: Scorer, *, kind: str = "logistic", how: str = "group",
          test_size: float = 0.25, shown_weight: float = 0.3, eval_history: History | None = None,
          min_score: float = 0.35, c: float = 1.0, seed: int = 0, matcher: Matcher | None = None,
          embedding_cache: EmbeddingCache | None = None) -> TrainResult:
    """Train on the history and evaluate beside the baseline on held-out needs (or on `eval_history`).

    `matcher`, the serving index, computes the features of both (see build_dataset).
    """
    started = dt.datetime.now()
    data = build_dataset(history, shown_weight=shown_weight, matcher=matcher, embedding_cache=embedding_cache)
    if eval_history is None:
        train_rows, test_rows = split(data, how=how, test_size=test_size, seed=seed)
        training, holdout = data.take(train_rows), data.take(test_rows)
    else:
        training, holdout = data, build_dataset(eval_history, shown_weight=shown_weight, matcher=matcher,
                                                embedding_cache=embedding_cache)
    scorer = fit_scorer(training, kind=kind, c=c, seed=seed)
    seconds = (dt.datetime.now() - started).total_seconds()
    kinds = [d.kind for d in history.decisions]
    counts = {"decisions": len(kinds), "accepted": kinds.count("accepted"), "rejected": kinds.count("rejected"),
              "shown": kinds.count("shown"), "outcomes": sum(k.startswith("outcome:") for k in kinds),
              "needs": len({d.need_id for d in history.decisions}),
              "train_rows": len(training.labels), "holdout_rows": len(holdout.labels)}
    return TrainResult(scorer, evaluate(scorer.score(holdout.values), holdout.labels, holdout.groups,
                                        min_score=min_score),
                       evaluate(baseline.score(holdout.values), holdout.labels, holdout.groups, min_score=min_score),
                       holdout, counts, seconds)
