"""Does retraining pay? The residual model against the untrained engine and the logistic model, same run.

1. In-domain: LCQMC dev split in two by the first sentence of each pair (a sentence's pairs all go to one
   half), `duijie train` on one half with --eval on the other, both ways. The bar: 4 points of Spearman
   x100 above the untrained engine, both ways.
2. Across a shift: trained on LCQMC dev, evaluated on LCQMC test (the bar: 70.2), and the canary set
   (colloquial needs against formal resources, data/canary) scored by that model against the untrained
   engine: within 0.01 MRR, or the promotion guard must refuse it (its verdict is printed).
3. Cost: training time at 10k and 100k decisions (LCQMC pairs drawn with replacement) and scoring cost per
   1,000 pairs, the residual beside the linear model.

Every model is the path of `duijie train`: matcher.training.train with the default Matcher's features.
Run: python -m bench.learning   (embeddings are kept in out/bench-cache between runs)
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from bench.common import LCQMC, embedding_cache, print_table, require, save_embedding_cache
from matcher.canary import canary_mrr
from matcher.guard import CANARY_TOLERANCE, judge
from matcher.history import History, load_history
from matcher.scoring import LinearScorer
from matcher.threads import limit_blas
from matcher.training import Dataset, build_dataset, fit_scorer, train

KINDS = ("logistic", "residual")


def halves(history: History) -> tuple[History, History]:
    """The history's decisions in two, by the need (LCQMC's first sentence): no sentence in both."""
    parts: tuple[list, list] = ([], [])
    for decision in history.decisions:
        parts[int(hashlib.sha1(decision.need_id.encode()).hexdigest(), 16) % 2].append(decision)
    return tuple(history._replace(decisions=part) for part in parts)  # type: ignore[return-value]


def in_domain(dev: History, cache) -> list[list[object]]:
    rows = []
    first, second = halves(dev)
    for name, (train_on, eval_on) in (("dev half A -> half B", (first, second)),
                                      ("dev half B -> half A", (second, first))):
        for kind in KINDS:
            result = train(train_on, LinearScorer.load(), kind=kind, eval_history=eval_on, embedding_cache=cache)
            mine, base = result.metrics["spearman"], result.baseline["spearman"]
            rows.append([name, kind, len(train_on.decisions), len(eval_on.decisions), mine, base,
                         round(mine - base, 2), result.scorer.card.get("strength", ""),
                         result.scorer.card["min_score"], round(result.seconds, 1)])
    return rows


def shift(dev: History, test: History, cache) -> tuple[list[list[object]], list[list[object]]]:
    rows, canary_rows, models = [], [], {}
    for kind in KINDS:
        result = train(dev, LinearScorer.load(), kind=kind, eval_history=test, embedding_cache=cache)
        models[kind] = result.scorer
        mine, base = result.metrics["spearman"], result.baseline["spearman"]
        rows.append(["dev -> test", kind, len(dev.decisions), len(test.decisions), mine, base, round(mine - base, 2),
                     result.scorer.card.get("strength", ""), result.scorer.card["min_score"],
                     round(result.seconds, 1)])
    default = LinearScorer.load()
    scores = canary_mrr([default, *models.values()], embedding_cache=cache)
    for kind, mrr in zip(KINDS, scores[1:], strict=True):
        verdict = judge(None, (mrr, scores[0]))
        canary_rows.append([f"{kind} trained on LCQMC dev", mrr, scores[0], round(mrr - scores[0], 4),
                            "refuses" if verdict.refused else "passes", verdict.reason or "-"])
    return rows, canary_rows


def resample(data: Dataset, n: int, seed: int = 0) -> Dataset:
    rows = np.random.default_rng(seed).integers(0, len(data.labels), n)
    sample = data.take(rows)
    # Draws of one pair are new decisions of new needs, as in a larger history.
    return sample._replace(groups=np.array([f"{g}#{i % 997}" for i, g in enumerate(sample.groups)], dtype=object))


def cost(dev: History, test: History, cache) -> list[list[object]]:
    pool = build_dataset(dev, embedding_cache=cache)
    pool = Dataset(*(np.concatenate(pair) for pair in zip(pool, build_dataset(test, embedding_cache=cache),
                                                              strict=True)))
    rows = []
    default = LinearScorer.load()
    for n in (10_000, 100_000):
        data = resample(pool, n)
        for kind in KINDS:
            started = time.perf_counter()
            scorer = fit_scorer(data, kind=kind, base=default)
            fit_s = time.perf_counter() - started
            per_1000 = []
            block = data.take(np.arange(1000))
            for _ in range(21):
                started = time.perf_counter()
                block.score(scorer)  # the embedding terms included
                per_1000.append(time.perf_counter() - started)
            rows.append([f"{n:,}", kind, round(fit_s, 2), round(1000 * float(np.median(per_1000)), 3)])
    return rows


def main() -> None:
    limit_blas(2)
    require(LCQMC / "dev.txt")
    dev, test = load_history(LCQMC / "dev.txt"), load_history(LCQMC / "test.txt")
    cache = embedding_cache("lcqmc")
    header = ["train -> evaluate", "model", "train pairs", "eval pairs", "spearman x100", "untrained", "gain",
              "strength", "min_score", "train s"]
    rows = in_domain(dev, cache)
    save_embedding_cache("lcqmc", cache)
    print_table("In-domain: LCQMC dev halves (by first sentence), train on one, evaluate on the other", header, rows)
    shifted, canary = shift(dev, test, cache)
    save_embedding_cache("lcqmc", cache)
    print_table("Across a shift: trained on LCQMC dev, evaluated on LCQMC test (bar 70.2)", header, shifted)
    print_table(f"Canary (data/canary, 120 colloquial needs x 60 resources): MRR, tolerance {CANARY_TOLERANCE}",
                ["model", "MRR", "untrained", "change", "guard", "why"], canary)
    print_table("Cost: training time and scoring per 1,000 pairs (median of 21), 2 threads",
                ["decisions", "model", "fit s", "score ms / 1,000 pairs"], cost(dev, test, cache))


if __name__ == "__main__":
    main()
