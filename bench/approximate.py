"""The approximate graph (faiss HNSW over the distinct vectors) against the exact scan, same run.

Vectors: the e5-small embeddings in out/bench-cache (LCQMC sentences and business scopes, 44k distinct
when bench.learning and bench.distinct have run); sizes past that are filled with mixtures of two real
vectors (0.6-1.0 of one), so they lie where real texts do. Queries: 300 real vectors moved slightly,
searched one at a time, as the service searches a posted need.

1. For each size: graph build time, recall@10 against the exact answer, and p50/p99 of one search,
   graph (one thread) beside the exact scan over the same vectors (DistinctIndex.top, approximate off).
2. One need's top-10 through Matcher.top_k at 200k resources, encoding included (fresh texts), with the
   graph and without it: real texts (business scopes, LCQMC sentences as needs) and the synthetic worst
   case where every title shares words with every need.

Run: python -m bench.approximate [--sizes 50000 200000 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import business_scopes, embedding_cache, print_table, read_lcqmc
from matcher import Matcher
from matcher.dense import HNSW_EF_SEARCH, HNSW_M, DistinctIndex
from matcher.encode import EmbeddingCache, encoder_text, text_key
from matcher.normalize import normalize
from matcher.threads import limit_blas


def real_vectors() -> np.ndarray:
    found = [embedding_cache(name).arrays()["vectors"] for name in ("lcqmc", "distinct")]
    return np.unique(np.vstack([f for f in found if len(f)]), axis=0)


def vectors_of(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if n <= len(real):
        return real[rng.permutation(len(real))[:n]]
    a, b = real[rng.integers(0, len(real), n)], real[rng.integers(0, len(real), n)]
    share = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
    mixed = share * a + (1 - share) * b
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def queries_of(real: np.ndarray, rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """n real vectors moved slightly (unit length): needs near, not on, the resources' texts."""
    queries = real[rng.permutation(len(real))[:n]] + rng.normal(0, 0.02, (n, real.shape[1])).astype(np.float32)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def graph_rows(real: np.ndarray, sizes: list[int]) -> list[list[object]]:
    rng = np.random.default_rng(0)
    queries = queries_of(real, rng)
    rows = []
    for n in sizes:
        vectors = vectors_of(real, n, rng)
        approximate = DistinctIndex.of(vectors, approximate_from=1)
        exact = DistinctIndex.of(vectors)
        started = time.perf_counter()
        approximate.wait_for_graph()
        build_s = time.perf_counter() - started
        graph_s, exact_s, hits = [], [], 0
        for query in queries:
            one = query[None]
            started = time.perf_counter()
            found = approximate.top(one, 10, approximate=True)[1]
            graph_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            truth = exact.top(one, 10)[1]
            exact_s.append(time.perf_counter() - started)
            hits += len(set(found.tolist()) & set(truth.tolist()))
        rows.append([f"{n:,}", round(build_s, 1), f"{hits / (10 * len(queries)):.4f}", ms(graph_s, 50),
                     ms(graph_s, 99), ms(exact_s, 50), ms(exact_s, 99)])
        del vectors, approximate, exact
    return rows


def texts_of(kind: str, size: int) -> tuple[list[str], list[str]]:
    """(resource titles, need titles). "synthetic": every title shares 服务/资源 with every need, so each
    word search touches all rows (the worst case). "real": real business scopes (cut at 60 characters,
    numbered past the 81k the set has) and LCQMC test sentences as needs, as a city's lists would be."""
    if kind == "synthetic":
        return ([f"综合服务资源第{i}号" for i in range(size)], [f"想找能帮忙的服务，第{i}次询问" for i in range(200)])
    scopes = [normalize(s)[:60] for s in business_scopes()]
    titles = [scopes[i % len(scopes)] + (f"（{i // len(scopes)}）" if i >= len(scopes) else "") for i in range(size)]
    return titles, read_lcqmc("test")[0][:200]


def matcher_rows(real: np.ndarray, size: int, kind: str = "real") -> list[list[object]]:
    """Resources with texts of their own and (synthetic) embeddings given through the cache."""
    rng = np.random.default_rng(1)
    vectors = vectors_of(real, size, rng)
    titles, asked = texts_of(kind, size)
    resources = [{"id": f"r{i}", "title": title} for i, title in enumerate(titles)]
    cache = EmbeddingCache()
    cache.put([text_key("e5-small", encoder_text(normalize(f"{r['title']} "))) for r in resources], vectors)
    queries = [{"id": f"q{i}", "title": title} for i, title in enumerate(asked)]
    matchers = {}
    for label, setting in (("approximate graph", 1), ("exact scan", None)):
        matchers[label] = Matcher(embedding_cache=cache, n_threads=2, approximate_from=setting).fit(resources)
    assert matchers["approximate graph"].shards_[0].distinct.wait_for_graph()
    samples: dict[str, list[float]] = {label: [] for label in matchers}
    for query in queries:  # alternate, so a busy moment on the machine hits both
        for label, matcher in matchers.items():
            # Each its own text: both encode the need, as the service does for a posted one.
            need = dict(query, title=f"{query['title']}（{label[:2]}）")
            started = time.perf_counter()
            matcher.top_k([need], k=10)
            samples[label].append(time.perf_counter() - started)
    return [[f"one need's top-10 at {size:,} resources ({kind} texts), encoding included, {label}", ms(found, 50),
             ms(found, 99)] for label, found in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--matcher-size", type=int, default=200_000)
    parser.add_argument("--matcher-texts", nargs="+", default=["real", "synthetic"], choices=["real", "synthetic"])
    parser.add_argument("--skip-graphs", action="store_true", help="only the Matcher.top_k part")
    args = parser.parse_args()
    limit_blas(1)
    real = real_vectors()
    if not args.skip_graphs:
        print_table(f"HNSW (M={HNSW_M}, efSearch={HNSW_EF_SEARCH}) over distinct vectors ({len(real):,} real), one "
                    "query at a time; exact scan beside it",
                    ["distinct vectors", "build s", "recall@10", "graph p50 ms", "graph p99 ms", "exact p50 ms",
                     "exact p99 ms"], graph_rows(real, args.sizes))
    rows = [row for kind in args.matcher_texts for row in matcher_rows(real, args.matcher_size, kind)]
    print_table("Matcher.top_k of one need (the service's match), encoding included", ["measure", "p50 ms", "p99 ms"],
                rows)


if __name__ == "__main__":
    main()
