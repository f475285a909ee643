"""Thread counts of the native pools, set explicitly: left to chance they fight each other on two cores."""

from __future__ import annotations

import functools


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def limit_blas(n_threads: int = 1) -> None:
    """Give BLAS (OpenBLAS, MKL) `n_threads` threads in this process, from now on.

    The engine's BLAS products on the query path are small (one need against a scope), and BLAS's idle
    threads spin after each one, taking the cores the sentence encoder needs next: one need's top-10 at
    20k resources took 34.9 ms with two BLAS threads and 20.4 ms with one (bench/RESULTS.md). Wide batch
    products go through faiss, whose thread count is the Matcher's `n_threads`.
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"blas_threads: expected an integer >= 1, got {n_threads!r}")
    _controller().limit(limits=n_threads, user_api="blas")
