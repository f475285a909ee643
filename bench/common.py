"""Shared helpers for the benchmarks: where the evaluation data lives, timing, table printing."""

from __future__ import annotations

import gzip
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
LCQMC = SHARED / "lcqmc"
ENTERPRISES = SHARED / "enterprises" / "registrations.tsv.gz"


def require(path: Path) -> None:
    if not path.exists():
        sys.exit(f"benchmark data not found: {path} (benchmarks read ../shared/data; tests never do)")


def read_lcqmc(split: str) -> tuple[list[str], list[str], list[int]]:
    """text_a, text_b, label lists of an LCQMC split (dev or test)."""
    path = LCQMC / f"{split}.txt"
    require(path)
    left, right, labels = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip() in ("0", "1"):
            left.append(parts[0])
            right.append(parts[1])
            labels.append(int(parts[2]))
    return left, right, labels


def business_scopes(limit: int | None = None) -> Iterator[str]:
    """Business scopes (经营范围) of the enterprise registrations, skipping boilerplate and blanks."""
    require(ENTERPRISES)
    seen = 0
    with gzip.open(ENTERPRISES, "rt", encoding="utf-8") as lines:
        header = next(lines).rstrip("\n").split("\t")
        column = header.index("scope")
        for line in lines:
            scope = line.rstrip("\n").split("\t")[column]
            if scope in ("", "N/A") or scope.startswith("企业依法自主选择经营项目"):
                continue
            yield scope
            seen += 1
            if limit is not None and seen >= limit:
                return


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"### {title}", "", "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells[1:]]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


CACHE_DIR = Path(__file__).resolve().parent.parent / "out" / "bench-cache"


def embedding_cache(name: str):
    """An EmbeddingCache kept in out/bench-cache/<name>.npz between runs (each text is encoded once)."""
    import numpy as np

    from matcher.encode import EmbeddingCache

    cache = EmbeddingCache()
    path = CACHE_DIR / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as npz:
            cache.load_arrays(npz["keys"], npz["vectors"])
    return cache


def save_embedding_cache(name: str, cache) -> None:
    import numpy as np

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_DIR / f".{name}.tmp.npz"
    np.savez(tmp, **cache.arrays())
    tmp.replace(CACHE_DIR / f"{name}.npz")
