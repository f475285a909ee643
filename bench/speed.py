"""Speed and memory at scale on real text: enterprise business scopes as resources.

Resources: business scopes (经营范围) of ../shared/data/enterprises, repeated to reach the asked
count. Needs: LCQMC sentences and scope fragments.

`--part lexical`: the words-only engine (encoder "none"), each measurement beside the plain library
route in the same process: scikit-learn TF-IDF + sparse product + argpartition, and scipy's dense
assignment solver where it fits.
`--part hybrid`: the default engine (words + e5-small): one-need top-10 with the need's encoding
included, at `--small` and at the full count of resources, beside the words-only engine in the same
process; encoding throughput; the batch from cached embeddings (out/bench-cache/speed.npz, filled by
`--part encode`, which resumes where it stopped). Run the parts in separate processes: each peak memory
figure is then its own.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common import (
    LCQMC,
    business_scopes,
    embedding_cache,
    peak_rss_mb,
    print_table,
    require,
    save_embedding_cache,
    timed,
)
from matcher import Matcher
from matcher.assign import assign
from matcher.batch import LocalBackend, candidate_table
from matcher.encode import EmbeddingCache, embed, encoder_text, get_encoder, text_key
from matcher.normalize import normalize
from matcher.threads import limit_blas


def make_resources(count: int, unique: int | None = None) -> list[dict]:
    """`count` resources cycling over the first `unique` business scopes (all of them by default)."""
    scopes = list(business_scopes(unique))
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
    parser.add_argument("--part", choices=("lexical", "hybrid", "encode"), default="lexical")
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--needs", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=20_000, help="the smaller index of the hybrid latency figures")
    parser.add_argument("--unique-scopes", type=int, default=None,
                        help="cycle over the first N business scopes only (default: all 81k)")
    parser.add_argument("--queries", type=int, default=300, help="single-need queries for the latency figures")
    parser.add_argument("--cache", default="speed", help="name of the embedding cache in out/bench-cache")
    parser.add_argument("--plain-needs", type=int, default=None,
                        help="needs for the plain batch route (default: all; it is slow)")
    args = parser.parse_args()
    resources, needs = make_resources(args.resources, args.unique_scopes), make_needs(args.needs)
    if args.part == "encode":
        encode_all(resources, needs, args.cache)
    elif args.part == "hybrid":
        hybrid(args, resources, needs)
    else:
        lexical(args, resources, needs)


def _key(record: dict) -> str:
    """The embedding cache key of a benchmark record, as the Matcher computes it (no description)."""
    return text_key("e5-small", encoder_text(normalize(f"{record['title']} ")))


def encode_all(resources: list[dict], needs: list[dict], name: str) -> None:
    """Fill the benchmark's embedding cache: needs first, then resources, saved as it goes."""
    cache = embedding_cache(name)
    encoder = get_encoder("e5-small", n_threads=2)
    texts = list(dict.fromkeys(normalize(f"{r['title']} ") for r in needs + resources))
    todo = [t for t in texts if text_key(encoder.name, encoder_text(t)) not in cache]
    print(f"{len(texts)} distinct texts, {len(todo)} to encode", flush=True)
    for start in range(0, len(todo), 2000):
        embed(todo[start:start + 2000], encoder, cache)
        save_embedding_cache(name, cache)
        print(f"{min(start + 2000, len(todo))} / {len(todo)}", flush=True)


def _resource_cache(cache: EmbeddingCache, resources: list[dict]) -> EmbeddingCache:
    """The cached embeddings of these resources only: a need's text must be encoded when it is queried."""
    keys = [_key(r) for r in resources]
    arrays = cache.arrays(keys)
    own = EmbeddingCache()
    own.load_arrays(arrays["keys"], arrays["vectors"])
    return own


def _latency(matcher: Matcher, queries: list[dict]) -> list[float]:
    out = []
    for need in queries:
        start = time.perf_counter()
        matcher.top_k([need], k=10)
        out.append(time.perf_counter() - start)
    return out


def hybrid(args: argparse.Namespace, resources: list[dict], needs: list[dict]) -> None:
    limit_blas(1)  # as the service and the command line run
    cache = embedding_cache(args.cache)
    missing = sum(_key(r) not in cache for r in resources + needs)
    if missing:
        raise SystemExit(f"{missing} texts are not in out/bench-cache/{args.cache}.npz yet: run --part encode first")
    rows: list[list[object]] = []
    # Queries the caches have never seen: fresh LCQMC-style asks, so each one is encoded when it comes.
    queries = [{"id": f"q{i}", "title": f"{n['title']}，请问哪里可以办理"} for i, n in enumerate(needs[: args.queries])]
    for size in (args.small, len(resources)):
        part = resources[:size]
        words = Matcher(n_threads=2, encoder="none").fit(part)
        hybrid_matcher = Matcher(n_threads=2, embedding_cache=_resource_cache(cache, part)).fit(part)
        hybrid_ms, words_ms = [], []
        for query in queries:  # alternate, so a busy moment on the machine hits both
            hybrid_ms += _latency(hybrid_matcher, [query])
            words_ms += _latency(words, [query])
        for q in (50, 99):
            rows.append([f"single-need top-10 p{q}, {size} resources, encoding included (ms)",
                         percentile_ms(hybrid_ms, q), percentile_ms(words_ms, q),
                         f"{np.percentile(hybrid_ms, q) / np.percentile(words_ms, q):.1f}x"])
        del words, hybrid_matcher
    encoder = get_encoder("e5-small", n_threads=2)
    for label, texts in (("needs (short posts)", [q["title"] for q in queries]),
                         ("resources (business scopes, cut at 128 chars)",
                          [normalize(r["title"])[:128] for r in resources[-300:]])):
        _, seconds = timed(encoder.encode, texts)
        rows.append([f"encoding throughput, {label} (texts/s)", len(texts) / seconds, "", ""])
        if label.startswith("resources"):
            rows.append([f"one-time encoding of {len(resources)} resources at that rate (min)",
                         len(resources) / (len(texts) / seconds) / 60, "", ""])
    matcher, fit_s = timed(Matcher(n_threads=2, embedding_cache=cache).fit, resources, needs)
    rows.append([f"fit of {len(resources)} resources from cached embeddings (s)", fit_s, "", ""])
    (_, need_cols, need_vectors), prepare_s = timed(matcher._prepare, needs, LocalBackend())
    (table, score), batch_s = timed(candidate_table, matcher._plan(10), need_cols, need_vectors, matcher.chunk_size,
                                    LocalBackend())
    capacity = matcher.index_.columns.capacity_left
    chosen, assign_s = timed(assign, table.need_row, table.resource_row, score, capacity, n_needs=len(needs),
                             min_score=matcher.min_score_, method="sparse")
    rows.append([f"batch top-10 from cached embeddings, {len(needs)} needs x {len(resources)} (s)",
                 prepare_s + batch_s, "", ""])
    rows.append([f"assignment of the batch ({len(chosen)} pairs) (s)", assign_s, "", ""])
    rows.append(["whole batch: needs prepared + candidates + assignment (s)", prepare_s + batch_s + assign_s, "", ""])
    rows.append(["peak memory of this process (MB)", peak_rss_mb(), "", ""])
    print_table(f"Hybrid engine (words + e5-small): {len(resources)} resources, {len(needs)} needs; "
                "2 encoder and faiss threads, 1 BLAS thread",
                ["measure", "duijie default", "words only", "default / words only"], rows)


def lexical(args: argparse.Namespace, resources: list[dict], needs: list[dict]) -> None:
    rows: list[list[object]] = []
    matcher, fit_s = timed(Matcher(n_threads=2, encoder="none").fit, resources, needs)
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
    (_, need_cols, need_vectors), prepare_s = timed(matcher._prepare, needs, LocalBackend())
    (table, score), batch_s = timed(candidate_table, matcher._plan(10), need_cols, need_vectors, matcher.chunk_size,
                                    LocalBackend())
    batch_s += prepare_s  # tokenizing the needs is part of the batch, as it is for the plain route
    capacity = matcher.index_.columns.capacity_left
    chosen, assign_s = timed(assign, table.need_row, table.resource_row, score, capacity, n_needs=len(needs),
                             min_score=matcher.min_score_, method="sparse")
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
    sparse_pick, sparse_s = timed(assign, *sub, capacity, n_needs=5000, min_score=matcher.min_score_, method="sparse")
    dense_pick, dense_s = timed(assign, *sub, capacity, n_needs=5000, min_score=matcher.min_score_, method="dense")
    rows.append(["assignment, 5,000 needs: sparse vs scipy dense (s)", sparse_s, dense_s,
                 f"{dense_s / sparse_s:.1f}x; totals {sub[2][sparse_pick].sum():.2f} = {sub[2][dense_pick].sum():.2f}"])
    _ = linear_sum_assignment  # the dense route is scipy's, reached through assign(method="dense")
    rows.append(["peak memory after engine batch (MB)", engine_peak, "", ""])
    rows.append(["peak memory after plain route (MB)", peak_rss_mb(), "", ""])
    print_table(f"Words-only engine: {len(resources)} resources, {len(needs)} needs, 2 threads for the sparse product",
                ["measure", "duijie", "plain route", "plain / duijie"], rows)


if __name__ == "__main__":
    main()
