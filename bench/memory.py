"""Peak memory and CPU of the hybrid batch at 200k resources, this checkout against an earlier one, same run.

Each side runs in a fresh process (peak RSS is per process): fit 200k resources whose embeddings are
given through the cache (distinct mixtures of real e5-small vectors, out/bench-cache, as in
bench/approximate.py), then `assign` 10k needs likewise given. No encoding runs, so the figures are the
index's and the batch's own.

Run: git worktree add /tmp/duijie-before <commit>; python -m bench.memory --before /tmp/duijie-before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _vectors(n: int, rng) -> object:
    """Mixtures of two real e5-small vectors from out/bench-cache, read here (the earlier checkout's bench
    package may lack the helpers)."""
    import numpy as np

    found = []
    for name in ("lcqmc", "distinct"):
        path = ROOT / "out" / "bench-cache" / f"{name}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as npz:
                found.append(npz["vectors"])
    real = np.unique(np.vstack(found), axis=0)
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 10_000):  # in blocks: no matrix-sized temporaries before the measured part
        m = min(10_000, n - start)
        a, b = real[rng.integers(0, len(real), m)], real[rng.integers(0, len(real), m)]
        share = rng.uniform(0.6, 1.0, (m, 1)).astype(np.float32)
        mixed = share * a + (1 - share) * b
        out[start:start + m] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return out


def child(resources: int, needs: int) -> None:
    import numpy as np

    from matcher import Matcher
    from matcher.encode import EmbeddingCache, encoder_text, text_key
    from matcher.normalize import normalize
    from matcher.threads import limit_blas

    limit_blas(1)
    rng = np.random.default_rng(2)

    def text() -> str:
        # Six characters drawn from 5,000: few words in common, so the word search stays as sparse as a
        # real list's (titles sharing one word put every resource in every need's word product).
        return "".join(chr(0x4E00 + int(c)) for c in rng.integers(0, 5000, 6))

    resource_list = [{"id": f"r{i}", "title": text()} for i in range(resources)]
    need_list = [{"id": f"n{i}", "title": text()} for i in range(needs)]
    cache = EmbeddingCache()
    for records in (resource_list, need_list):
        cache.put([text_key("e5-small", encoder_text(normalize(f"{r['title']} "))) for r in records],
                  _vectors(len(records), rng))
    started_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = time.process_time()
    matcher = Matcher(embedding_cache=cache, n_threads=2).fit(resource_list)
    result = matcher.assign(need_list)
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "before_fit_mb": started_rss, "cpu_s": time.process_time() - cpu,
                      "pairs": len(result.pairs), "matcher": __import__("matcher").__file__}))


def run(checkout: Path, resources: int, needs: int) -> dict:
    # The child imports `matcher` from `checkout`; this file is run by path, so it needs nothing else.
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="2")
    code = (f"import sys; sys.path.insert(0, {str(checkout)!r}); import runpy; "
            f"child = runpy.run_path({str(Path(__file__))!r})['child']; child({resources}, {needs})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=checkout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier commit")
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--needs", type=int, default=10_000)
    args = parser.parse_args()
    from bench.common import print_table

    rows = []
    for label, checkout in (("before", args.before), ("this checkout", ROOT)):
        found = run(checkout, args.resources, args.needs)
        if not found["matcher"].startswith(str(checkout)):
            raise SystemExit(f"{label}: imported {found['matcher']}, not the checkout's matcher")
        rows.append([label, round(found["peak_mb"]), round(found["peak_mb"] - found["before_fit_mb"]),
                     round(found["cpu_s"], 1), found["pairs"]])
    rows.append(["difference", rows[1][1] - rows[0][1], rows[1][2] - rows[0][2], round(rows[1][3] - rows[0][3], 1),
                 ""])
    print_table(f"Hybrid batch, {args.resources:,} distinct resources, {args.needs:,} needs (fresh process each)",
                ["checkout", "peak RSS MB", "fit + batch MB", "CPU s", "pairs"], rows)


if __name__ == "__main__":
    main()
