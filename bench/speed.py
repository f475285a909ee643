"""Speed and memory at scale on real text: enterprise business scopes as resources.

Resources: business scopes (经营范围) of ../shared/data/enterprises, repeated to reach the asked
count. Needs: LCQMC sentences and scope fragments. Each engine measurement sits beside the plain
library route in the same process: scikit-learn TF-IDF + sparse product + argpartition, and
scipy's dense assignment solver where it fits.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common import LCQMC, business_scopes, peak_rss_mb, print_table, require, timed
from matcher import Matcher
from matcher.assign import assign


def make_resources(count: int) -> list[dict]:
    scopes = list(business_scopes())
    return [{"id": f"r{i}", "title": scope[:500]} for i, scope in zip(range(count), itertools.cycle(scopes))]


def make_needs(count: int) -> list[dict]:
    texts = []
    for split in ("test", "dev"):
        path = LCQMC / f"{split}.txt"
        require(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(line.split("\t")[:2])
    # Scope fragments from the far end of the file, phrased as asks: "需要 ... 服务".
    for scope in itertools.islice(business_scopes(), 60_000, None):
        texts.append(f"需要{scope[:30]}")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))[:count]
    return [{"id": f"n{i}", "title": texts[j]} for i, j in enumerate(order)]


class PlainRoute:
    """The plain library route on the same tokens: scikit-learn word TF-IDF, a sparse product per
    chunk of needs made dense, and argpartition for the top k."""

    def __init__(self, matcher: Matcher, resources: list[dict]) -> None:
        self.tokenize = matcher.tokenizer_
        tokens = [self.tokenize(matcher_text(r)) for r in resources]
        self.vectorizer = TfidfVectorizer(analyzer=lambda x: x, dtype=np.float32).fit(tokens)
        self.index_t = self.vectorizer.transform(tokens).T.tocsr()

    def top_k(self, needs: list[dict], k: int, chunk: int = 500) -> list[np.ndarray]:
        out = []
        vectors = self.vectorizer.transform([self.tokenize(matcher_text(n)) for n in needs])
        for start in range(0, vectors.shape[0], chunk):
            dense = (vectors[start:start + chunk] @ self.index_t).toarray()
            # Copy the k columns out: a slice would keep the whole chunk's index array alive.
            top = np.argpartition(-dense, k, axis=1)[:, :k].copy()
            out.extend(top)
        return out


def matcher_text(record: dict) -> str:
    from matcher.normalize import normalize

    return normalize(f"{record['title']} {record['title']}")


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--needs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300, help="single-need queries for the latency figures")
    parser.add_argument("--plain-needs", type=int, default=None,
                        help="needs for the plain batch route (default: all; it is slow)")
    args = parser.parse_args()

    resources, needs = make_resources(args.resources), make_needs(args.needs)
    rows: list[list[object]] = []
    matcher, fit_s = timed(Matcher(n_threads=2).fit, resources, needs)
    rows.append(["fit (tokenize, vectorize, index)", fit_s, "", ""])

    # Single-need latency: one need at a time, as the platform calls it when a need is posted.
    plain, plain_fit_s = timed(PlainRoute, matcher, resources)
    rows[-1][2] = plain_fit_s
    engine_ms, plain_ms = [], []
    for need in needs[: args.queries]:
        start = time.perf_counter()
        matcher.top_k([need], k=10)
        engine_ms.append(time.perf_counter() - start)
        start = time.perf_counter()
        plain.top_k([need], 10)
        plain_ms.append(time.perf_counter() - start)
    rows.append(["single-need top-10 p50 (ms)", percentile_ms(engine_ms, 50), percentile_ms(plain_ms, 50),
                 f"{np.median(plain_ms) / np.median(engine_ms):.1f}x"])
    rows.append(["single-need top-10 p99 (ms)", percentile_ms(engine_ms, 99), percentile_ms(plain_ms, 99),
                 f"{np.percentile(plain_ms, 99) / np.percentile(engine_ms, 99):.1f}x"])

    # Batch: candidates and scores for every need, then the global assignment.
    (_, need_cols, need_vectors), prepare_s = timed(matcher._prepare, needs)
    (table, score), batch_s = timed(matcher._candidate_table, need_cols, need_vectors, 10)
    batch_s += prepare_s  # tokenizing the needs is part of the batch, as it is for the plain route
    capacity = matcher._resource_columns.capacity_left
    chosen, assign_s = timed(assign, table.need_row, table.resource_row, score, capacity, n_needs=len(needs),
                             min_score=matcher.min_score, method="sparse")
    engine_peak = peak_rss_mb()
    plain_needs = needs[: args.plain_needs] if args.plain_needs else needs
    _, plain_batch_s = timed(plain.top_k, plain_needs, 10)
    scale = len(needs) / len(plain_needs)
    note = "" if scale == 1 else f" (measured on {len(plain_needs)}, scaled x{scale:.1f})"
    rows.append([f"batch top-10, {len(needs)} needs x {len(resources)} resources (s)", batch_s,
                 plain_batch_s * scale, f"{plain_batch_s * scale / batch_s:.1f}x{note}"])
    rows.append([f"assignment of the batch, sparse exact ({len(chosen)} pairs) (s)", assign_s, "", ""])
    rows.append(["whole batch: candidates + assignment (s)", batch_s + assign_s, "", ""])

    # Dense solver beside the sparse one where a dense matrix still fits: the first 5,000 needs.
    subset = table.need_row < 5000
    sub = (table.need_row[subset], table.resource_row[subset], score[subset])
    sparse_pick, sparse_s = timed(assign, *sub, capacity, n_needs=5000, min_score=matcher.min_score, method="sparse")
    dense_pick, dense_s = timed(assign, *sub, capacity, n_needs=5000, min_score=matcher.min_score, method="dense")
    rows.append(["assignment, 5,000 needs: sparse vs scipy dense (s)", sparse_s, dense_s,
                 f"{dense_s / sparse_s:.1f}x; totals {sub[2][sparse_pick].sum():.2f} = {sub[2][dense_pick].sum():.2f}"])
    _ = linear_sum_assignment  # the dense route is scipy's, reached through assign(method="dense")
    rows.append(["peak memory after engine batch (MB)", engine_peak, "", ""])
    rows.append(["peak memory after plain route (MB)", peak_rss_mb(), "", ""])
    print_table(f"Speed: {len(resources)} resources, {len(needs)} needs, 2 threads for the engine's sparse product",
                ["measure", "duijie", "plain route", "plain / duijie"], rows)


if __name__ == "__main__":
    main()
