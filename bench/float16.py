"""Would float16 storage of the embeddings keep the answer? Recall of the exact top-10 against float32, same run.

The issue offers float16 storage only if recall stays 1.0. Each size's distinct vectors are stored
rounded to float16 (half the memory) and searched exactly (upcast to float32 for the product, as a
float16 index would have to on a CPU without half-precision BLAS); the answer is compared with the
float32 search of the same queries. Vectors as in bench.approximate: the real e5-small embeddings in
out/bench-cache, filled past their count with mixtures of two real vectors.

Run: python -m bench.float16 [--sizes 50000 200000]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.approximate import queries_of, real_vectors, vectors_of
from bench.common import print_table
from matcher.threads import limit_blas


def top10(queries: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vectors.T
    # The engine's rule: best score first, the lower row on a tie.
    order = np.lexsort((np.broadcast_to(np.arange(vectors.shape[0]), scores.shape), -scores), axis=1)[:, :10]
    return order, np.take_along_axis(scores, order, axis=1)


def rows_for(real: np.ndarray, sizes: list[int]) -> list[list[object]]:
    rng = np.random.default_rng(0)
    queries = queries_of(real, rng)
    out = []
    for n in sizes:
        vectors = vectors_of(real, n, rng)
        half = vectors.astype(np.float16)
        exact_rows, exact_scores = top10(queries, vectors)
        half_rows, half_scores = top10(queries, half.astype(np.float32))
        same_sets = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_rows.tolist(), half_rows.tolist(),
                                                                        strict=True)])
        same_order = float(np.mean(np.all(exact_rows == half_rows, axis=1)))
        error = float(np.max(np.abs((queries @ half.astype(np.float32).T) - (queries @ vectors.T))))
        out.append([f"{n:,}", f"{vectors.nbytes / 2**20:.0f}", f"{half.nbytes / 2**20:.0f}", f"{same_sets:.4f}",
                    f"{same_order:.3f}", f"{error:.2e}", f"{float(np.max(np.abs(half_scores - exact_scores))):.2e}"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    args = parser.parse_args()
    limit_blas(2)
    print_table("float16 storage of the distinct embeddings against float32, exact top-10 of 300 queries",
                ["distinct vectors", "float32 MB", "float16 MB", "recall@10", "same ranked list",
                 "max score error", "max top-10 score error"], rows_for(real_vectors(), args.sizes))


if __name__ == "__main__":
    main()
