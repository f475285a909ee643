"""Lists full of repeats: the dense search over distinct vectors against the search over every row, same run.

Resources cycle over the first U business scopes of the enterprise registrations (a real list repeats one
scope in hundreds of rows); needs are LCQMC sentences and scope fragments phrased as asks (as in
bench/speed.py). Embeddings come from out/bench-cache/distinct.npz (encoded once, then reused).

Rows, CPU seconds (process time, 2 faiss threads) and wall seconds:
- plain faiss: `IndexFlatIP.search` of the needs over the distinct vectors, k = the engine's pool + 1;
- dense search, distinct: every need's top-`pool` rows through ResourceShard's DistinctIndex;
- dense search, every row (before): the same through a DistinctIndex that groups nothing, which is the
  search over every row with its tie re-asks (the code before this change);
- `Matcher.assign` with words and e5-small, distinct and every row, and the words-only `assign`.
The pairs of the two hybrid assigns are compared: they must be the same.

Run: python -m bench.distinct --resources 100000 --unique-scopes 1500 --needs 5000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bench.common import embedding_cache, peak_rss_mb, print_table, save_embedding_cache
from bench.speed import _key, make_needs, make_resources
from matcher import Matcher
from matcher import shards as sh
from matcher.batch import LocalBackend
from matcher.dense import DistinctIndex
from matcher.encode import embed, get_encoder
from matcher.normalize import normalize
from matcher.threads import limit_blas


def timed_cpu(fn: Callable, *args, **kwargs) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def encode_missing(records: list[dict], name: str):
    cache = embedding_cache(name)
    texts = list(dict.fromkeys(normalize(f"{r['title']} ") for r in records if _key(r) not in cache))
    if texts:
        print(f"encoding {len(texts)} texts once (kept in out/bench-cache/{name}.npz)", flush=True)
        encoder = get_encoder("e5-small", n_threads=2)
        for start in range(0, len(texts), 2000):
            embed(texts[start:start + 2000], encoder, cache)
            save_embedding_cache(name, cache)
    return cache


def every_row(self: sh.ResourceShard) -> DistinctIndex:
    """The search before this change: every row its own vector (ties between copies re-asked)."""
    if self._distinct is None:
        dense = self.vectors.dense
        self._distinct = DistinctIndex(dense, np.arange(len(dense), dtype=np.int64))
    return self._distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--unique-scopes", type=int, default=1_500)
    parser.add_argument("--needs", type=int, default=5_000)
    args = parser.parse_args()
    limit_blas(1)
    resources = make_resources(args.resources, args.unique_scopes)
    needs = make_needs(args.needs)
    cache = encode_missing(resources[:args.unique_scopes] + needs, "distinct")
    rows: list[list[object]] = []
    matcher = Matcher(n_threads=2, embedding_cache=cache).fit(resources)
    _, _, need_vectors = matcher._prepare(needs, LocalBackend())
    shard = matcher.shards_[0]
    distinct = shard.distinct
    queries = need_vectors.dense
    top = matcher.pool + 1

    import faiss

    faiss.omp_set_num_threads(2)
    flat = faiss.IndexFlatIP(distinct.vectors.shape[1])
    flat.add(distinct.vectors)
    _, plain_cpu, plain_wall = timed_cpu(flat.search, queries, top)
    rows.append([f"plain faiss IndexFlatIP.search over {len(distinct)} distinct vectors", round(plain_cpu, 2),
                 round(plain_wall, 2), "1.0x"])
    new, new_cpu, new_wall = timed_cpu(distinct.top, queries, matcher.pool, n_threads=2)
    rows.append([f"dense search, distinct vectors ({len(distinct)} for {distinct.n_rows} rows)", round(new_cpu, 2),
                 round(new_wall, 2), f"{new_cpu / plain_cpu:.2f}x"])
    before = DistinctIndex(shard.vectors.dense, np.arange(distinct.n_rows, dtype=np.int64))
    old, old_cpu, old_wall = timed_cpu(before.top, queries, matcher.pool, n_threads=2)
    rows.append(["dense search, every row (before)", round(old_cpu, 2), round(old_wall, 2),
                 f"{old_cpu / plain_cpu:.2f}x"])
    same_search = np.array_equal(new[0], old[0]) and np.array_equal(new[1], old[1])

    words = Matcher(n_threads=2, encoder="none").fit(resources)
    _, words_cpu, words_wall = timed_cpu(words.assign, needs)
    rows.append(["words-only assign", round(words_cpu, 2), round(words_wall, 2), "1.0x (of words)"])
    fresh = Matcher(n_threads=2, embedding_cache=cache).fit(resources)
    result, hybrid_cpu, hybrid_wall = timed_cpu(fresh.assign, needs)
    rows.append(["hybrid assign, distinct vectors", round(hybrid_cpu, 2), round(hybrid_wall, 2),
                 f"{hybrid_cpu / words_cpu:.2f}x (of words)"])
    original = sh.ResourceShard.distinct
    sh.ResourceShard.distinct = property(every_row)
    try:
        slow = Matcher(n_threads=2, embedding_cache=cache).fit(resources)
        result_before, before_cpu, before_wall = timed_cpu(slow.assign, needs)
    finally:
        sh.ResourceShard.distinct = original
    rows.append(["hybrid assign, every row (before)", round(before_cpu, 2), round(before_wall, 2),
                 f"{before_cpu / words_cpu:.2f}x (of words)"])
    rows.append([f"same dense candidates: {same_search}; same pairs: {result == result_before} "
                 f"({len(result.pairs)} pairs); peak memory {peak_rss_mb():.0f} MB", "", "", ""])
    print_table(f"Repeated lists: {args.resources} resources over {args.unique_scopes} business scopes, "
                f"{args.needs} needs (2 faiss threads, 1 BLAS thread)",
                ["measure", "CPU s", "wall s", "ratio"], rows)


if __name__ == "__main__":
    main()
