"""What cutting the index into shards costs in one process: the same batch on the same fitted index with
one shard (the baseline) and with 2 and 4, rounds interleaved, medians and ratios.

    python -m bench.shards [--size 50000] [--rounds 3]

The city is bench/city.py's (words engine, street rings). A cluster needs at least as many shards as
workers to spread the index; one process pays for the per-shard searches and the merge.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

from bench import city
from bench.common import print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from matcher import Matcher

    count = city.districts_for(args.size)
    needs = list(city.needs(args.size, count, district_share=0.0))
    fitted = Matcher(encoder="none", shard_size=args.size).fit(list(city.resources(args.size, count)), needs,
                                                                grids=list(city.grids(count)))
    seconds: dict[int, list[float]] = {n: [] for n in args.shards}
    answers = {}
    for _ in range(args.rounds):
        for n in args.shards:
            matcher = copy.copy(fitted)  # the same fitted index, cut anew
            matcher.shard_size = -(-args.size // n)
            matcher._derived()
            started = time.perf_counter()
            answers[n] = matcher.assign(needs, k=10)
            seconds[n].append(time.perf_counter() - started)
    base = statistics.median(seconds[args.shards[0]])
    rows = [[n, round(statistics.median(s), 1), round(min(s), 1), round(max(s), 1),
             f"{statistics.median(s) / base:.2f}x", "same" if answers[n] == answers[args.shards[0]] else "DIFFERENT"]
            for n, s in seconds.items()]
    print_table(f"batch of {args.size:,} needs × {args.size:,} resources in one process, {args.rounds} rounds",
                ["shards", "median s", "min s", "max s", "vs one shard", "answer"], rows)


if __name__ == "__main__":
    main()
