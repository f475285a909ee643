"""Learning the scoring model from decided pairs, and comparing it with the active one on held-out needs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import NamedTuple

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

from matcher.encode import EmbeddingCache
from matcher.evaluation import evaluate
from matcher.features import FEATURES, interactions, pair_terms
from matcher.history import History
from matcher.pipeline import Matcher
from matcher.residual import ResidualScorer
from matcher.scoring import LinearScorer, Scorer, model_min_score
from matcher.trees import TreeScorer

KINDS = ("logistic", "gbdt", "residual")
SPLITS = ("group", "time")
# Inverse regularization by kind when none is given. The residual reads some 800 interaction features of
# a few thousand decisions: held strongly, it learns what many decisions agree on (C measured on LCQMC dev).
DEFAULT_C = {"logistic": 1.0, "gbdt": 1.0, "residual": 0.01}
# How far the residual may move the default model; chosen per model on needs its fit did not see.
STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
# A need that a project solved is the strongest sign a pairing fits; it weighs as two decisions.
KIND_WEIGHTS = {"outcome:resolved": 2.0}
# Share of the training needs set aside to choose the residual's strength and every model's min_score.
INNER_SHARE = 0.25


class Dataset(NamedTuple):
    """One row per decided pair: features, label, sample weight, the need it belongs to, when decided, and
    the pair's two sentence embeddings ((n, 0) when matching by words alone)."""

    values: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    groups: np.ndarray
    times: np.ndarray  # POSIX seconds, NaN when unknown
    need_dense: np.ndarray
    resource_dense: np.ndarray

    def terms(self, scorer: Scorer) -> np.ndarray | None:
        """The embedding terms `scorer` reads of these pairs (None for a scorer of the FEATURES alone)."""
        return pair_terms(scorer.projection, self.need_dense, self.resource_dense)

    def score(self, scorer: Scorer) -> np.ndarray:
        return scorer.score(self.values, terms=self.terms(scorer))

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
    needs = [history.needs[d.need_id] for d in decisions]
    resources = [history.resources[d.resource_id] for d in decisions]
    table = matcher.pair_table(needs, resources)
    dense = matcher.pair_embeddings(needs, resources) if decisions else None
    if dense is None:
        dense = (np.zeros((len(decisions), 0), np.float32),) * 2
    return Dataset(
        values=table.values,
        labels=np.array([d.label for d in decisions], dtype=float),
        weights=np.array([shown_weight if d.kind == "shown" else KIND_WEIGHTS.get(d.kind, 1.0) for d in decisions]),
        groups=np.array([d.need_id for d in decisions], dtype=object),
        times=np.array([d.time.timestamp() if d.time else np.nan for d in decisions]),
        need_dense=np.asarray(dense[0], np.float32),
        resource_dense=np.asarray(dense[1], np.float32),
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


def _standardize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant feature (say, no grids in the history) gets weight ~0, not NaN
    return mean, std


def fit_scorer(data: Dataset, *, kind: str = "logistic", c: float | None = None, seed: int = 0,
               base: LinearScorer | None = None) -> Scorer:
    """Fit a scorer on a dataset; logistic regression keeps weights a person can read.

    `residual` adds a learned part to `base` (the default model) over the features and the embeddings'
    interactions, with its strength chosen on needs set aside from `data` (see fit_residual).
    """
    if kind not in KINDS:
        raise ValueError(f"model: expected one of {', '.join(KINDS)}, got {kind!r}")
    c = DEFAULT_C[kind] if c is None else c
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"c: expected a positive number, got {c}")
    binary = (data.labels > 0).astype(int)
    if kind == "residual":
        return fit_residual(data, base=base, c=c, seed=seed)
    if kind == "gbdt":
        model = GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                                           random_state=seed)
        model.fit(data.values, binary, sample_weight=data.weights)
        importances = dict(zip(FEATURES, np.round(model.feature_importances_, 4).tolist(), strict=True))
        return TreeScorer.from_sklearn(model, card={"kind": "gbdt", "importances": importances})
    mean, std = _standardize(data.values)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((data.values - mean) / std, binary, sample_weight=data.weights)
    return LinearScorer(weights=dict(zip(FEATURES, model.coef_[0].tolist(), strict=True)),
                        bias=float(model.intercept_[0]), offset=dict(zip(FEATURES, mean.tolist(), strict=True)),
                        scale=dict(zip(FEATURES, std.tolist(), strict=True)), card={"kind": "logistic", "C": c})


def _fit_residual_part(data: Dataset, base: LinearScorer, c: float, strength: float) -> ResidualScorer:
    """Logistic regression on the standardized features and embedding interactions, folded into the
    residual's arrays so serving computes no standardization of the interactions."""
    mean, std = _standardize(data.values)
    pairs = interactions(data.need_dense, data.resource_dense)
    pair_mean, pair_std = _standardize(pairs)
    pairs -= pair_mean
    pairs /= pair_std
    model = LogisticRegression(C=c, max_iter=500, tol=1e-3)
    model.fit(np.hstack([(data.values - mean) / std, pairs]), (data.labels > 0).astype(int),
              sample_weight=data.weights)
    coef = model.coef_[0]
    on_pairs = coef[len(FEATURES):] / pair_std
    bias = float(model.intercept_[0]) - float(pair_mean @ on_pairs)
    return ResidualScorer(base=base, projection=on_pairs[:, None], weights=coef[:len(FEATURES)], offset=mean,
                          scale=std, bias=bias, strength=strength)


def _inner_split(data: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and rows set aside, by need; all rows twice when there are too few needs to split."""
    rows = np.arange(len(data.labels))
    if len(set(data.groups.tolist())) < 8:
        return rows, rows
    fit_rows, aside = next(GroupShuffleSplit(n_splits=1, test_size=INNER_SHARE, random_state=seed)
                           .split(rows, groups=data.groups))
    binary = data.labels[aside] > 0
    if binary.all() or not binary.any():
        return rows, rows
    return fit_rows, aside


def fit_residual(data: Dataset, *, base: LinearScorer | None = None, c: float = DEFAULT_C["residual"],
                 seed: int = 0) -> ResidualScorer:
    """The residual model: fitted on most training needs, its strength chosen on the rest by AUC (the
    smallest strength of the best), then refitted on all of them at that strength."""
    if data.need_dense.shape[1] == 0:
        raise ValueError("model: expected pairs with sentence embeddings for the residual model; this index "
                         "matches by words alone (encoder none), so train logistic or gbdt")
    base = base or LinearScorer.load()  # the bundled default: the calibrated cosine
    fit_rows, aside = _inner_split(data, seed)
    inner = _fit_residual_part(data.take(fit_rows), base, c, 1.0)
    held = data.take(aside)
    binary = (held.labels > 0).astype(int)
    start = base.decision(held.values)
    part = inner.residual(held.values, held.terms(inner))
    aucs = [roc_auc_score(binary, start + strength * part, sample_weight=held.weights) for strength in STRENGTHS]
    best = int(np.argmax(np.round(aucs, 4)))
    model = _fit_residual_part(data, base, c, STRENGTHS[best])
    model.card = {"kind": "residual", "C": c, "strength": STRENGTHS[best],
                  "strength_auc": dict(zip(map(str, STRENGTHS), np.round(aucs, 4).tolist(), strict=True))}
    return model


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score above which pairs are kept for the best F1 of acceptance: the default model's rule too."""
    precision, recall, thresholds = precision_recall_curve((np.asarray(labels) > 0).astype(int), scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def choose_min_score(data: Dataset, *, kind: str, c: float | None, seed: int, base: LinearScorer | None) -> float:
    """min_score for a model of this kind: the best-F1 threshold of a model fitted on most training needs,
    on the rest. Never chosen on the evaluation set, which would flatter its precision@min_score."""
    fit_rows, aside = _inner_split(data, seed + 1)
    inner = fit_scorer(data.take(fit_rows), kind=kind, c=c, seed=seed, base=base)
    held = data.take(aside)
    return round(best_f1_threshold(held.score(inner), held.labels), 4)


class TrainResult(NamedTuple):
    scorer: Scorer
    metrics: dict[str, float]
    baseline: dict[str, float]
    holdout: Dataset
    counts: dict[str, int]
    seconds: float


def train(history: History, baseline: Scorer, *, kind: str = "logistic", how: str = "group",
          test_size: float = 0.25, shown_weight: float = 0.3, eval_history: History | None = None,
          min_score: float | None = None, c: float | None = None, seed: int = 0, matcher: Matcher | None = None,
          embedding_cache: EmbeddingCache | None = None) -> TrainResult:
    """Train on the history and evaluate beside the baseline on held-out needs (or on `eval_history`).

    `matcher`, the serving index, computes the features of both (see build_dataset). The model's card gets
    the min_score chosen on its training needs; each model is evaluated at its own min_score unless
    `min_score` is given.
    """
    started = dt.datetime.now()
    data = build_dataset(history, shown_weight=shown_weight, matcher=matcher, embedding_cache=embedding_cache)
    if eval_history is None:
        train_rows, test_rows = split(data, how=how, test_size=test_size, seed=seed)
        training, holdout = data.take(train_rows), data.take(test_rows)
    else:
        training, holdout = data, build_dataset(eval_history, shown_weight=shown_weight, matcher=matcher,
                                                embedding_cache=embedding_cache)
    base = LinearScorer.load() if kind == "residual" else None
    scorer = fit_scorer(training, kind=kind, c=c, seed=seed, base=base)
    scorer.card["min_score"] = choose_min_score(training, kind=kind, c=c, seed=seed, base=base)
    seconds = (dt.datetime.now() - started).total_seconds()
    kinds = Counter(d.kind for d in history.decisions)
    counts = {"decisions": len(history.decisions), "accepted": kinds["accepted"],
              "rejected": kinds["rejected"], "shown": kinds["shown"],
              "outcomes": sum(n for k, n in kinds.items() if k.startswith("outcome:")),
              **{f"outcome:{k}": kinds[f"outcome:{k}"] for k in ("resolved", "partial", "unresolved")},
              "rejections_without_label": len(history.unlabelled),
              **{f"without_label:{reason}": n for reason, n in sorted(Counter(history.unlabelled).items())},
              "needs": len({d.need_id for d in history.decisions}),
              "train_rows": len(training.labels), "holdout_rows": len(holdout.labels)}
    mine = model_min_score(scorer) if min_score is None else min_score
    theirs = model_min_score(baseline) if min_score is None else min_score
    return TrainResult(scorer, evaluate(holdout.score(scorer), holdout.labels, holdout.groups, min_score=mine),
                       evaluate(holdout.score(baseline), holdout.labels, holdout.groups, min_score=theirs),
                       holdout, counts, seconds)
