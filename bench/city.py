"""A synthetic city, and the batch on it in one process and on a local Dask cluster, stage by stage.

The city: districts of 20 streets, each street 12 blocks (片) of 5 areas (面) of 10 points (点), i.e.
1,340 grids a district, close to the 1,358 of Chengdu's high-tech zone. Needs and resources are written
from this file's own templates (a subject, an ask or an offer, a qualifier; resources also in the style
of a business scope), placed on random point grids; needs search their street (the service's default
ring), one in ten the whole district. Everything is generated from a seed, streamed, never stored here.

    python -m bench.city [--sizes 100000 200000 400000] [--workers 2] [--shard-size 50000]
                         [--write DIR --size N]

Per size (needs = resources = N): fit (in process), then the batch (candidates + assignment) in process
and on local:WORKERS in the same run, with the peak resident memory of the driver and of each worker
(the index's shards are dealt round the workers: a worker holds its share); then the
encoder's throughput in process and on the cluster, measured on a sample of distinct texts, from which
the encoding stage at each size is worked out (encoding 1M texts here would take hours; it is linear).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import print_table

SEED = 20261130
STREETS_PER_DISTRICT = 20
BLOCKS, AREAS, POINTS = 12, 5, 10
SUBJECTS = ["社区老人", "双职工家庭", "园区员工", "小微企业", "新就业青年", "残障居民", "外来务工人员", "物业小区",
            "初创科技公司", "社区卫生站", "老旧小区居民", "退役军人", "留守儿童家庭", "个体商户", "社区志愿队"]
ASKS = ["需要{}", "希望有人提供{}", "急需{}", "想找{}", "缺少{}", "寻求{}合作", "求助：{}"]
SERVICES = ["法律咨询", "助餐服务", "暑期托管", "心理疏导", "技能培训", "融资对接", "场地借用", "就业推荐",
            "适老化改造", "家电维修", "健康义诊", "知识产权代理", "财税辅导", "停车位共享", "电梯加装",
            "文体活动场地", "上门护理", "政策申报辅导", "招聘会", "垃圾分类指导", "消防安全培训", "儿童课后辅导"]
QUALIFIERS = ["", "，每周一次", "，费用可协商", "，最好在附近", "，希望月底前落实", "，人数约30人", "，长期合作",
              "，周末也可以", "，可线上进行"]
OFFERS = ["免费提供{}", "面向社区开放{}", "可承接{}", "长期提供{}", "公益{}", "优惠提供{}"]
PROVIDERS = ["律师事务所", "社区食堂", "托育中心", "心理咨询中心", "职业培训学校", "银行支行", "产业园",
             "人力资源公司", "家政服务公司", "社区医院", "专利代理所", "会计师事务所", "物业公司", "电梯公司",
             "文化传媒公司", "养老服务中心", "消防技术公司", "教育科技公司"]
SCOPE_ITEMS = ["法律服务", "餐饮服务", "托育服务", "心理咨询服务", "职业技能培训", "融资咨询", "场地租赁",
               "人力资源服务", "家电维修", "医疗服务", "知识产权服务", "财税咨询", "停车场服务", "电梯安装维修",
               "文体活动策划", "养老服务", "消防技术服务", "教育咨询", "垃圾分类服务", "会议及展览服务"]


def grids(districts: int) -> Iterator[dict]:
    for d in range(districts):
        for s in range(STREETS_PER_DISTRICT):
            street = f"D{d:02d}街道{s:02d}"
            for b in range(BLOCKS):
                block = f"D{d:02d}S{s:02d}B{b:02d}"
                yield {"id": block, "name": f"{street}第{b + 1}片", "kind": "block", "street": street}
                for a in range(AREAS):
                    area = f"{block}A{a}"
                    yield {"id": area, "name": f"{street}第{b + 1}片第{a + 1}面", "kind": "area", "parent": block,
                           "street": street}
                    for p in range(POINTS):
                        yield {"id": f"{area}P{p}", "name": f"{street}{b + 1}-{a + 1}-{p + 1}点", "kind": "point",
                               "parent": area, "street": street}


def _point(rng: random.Random, districts: int) -> str:
    return (f"D{rng.randrange(districts):02d}S{rng.randrange(STREETS_PER_DISTRICT):02d}B{rng.randrange(BLOCKS):02d}"
            f"A{rng.randrange(AREAS)}P{rng.randrange(POINTS)}")


def needs(n: int, districts: int, seed: int = SEED, district_share: float = 0.1) -> Iterator[dict]:
    """Needs on random points; `district_share` of them search the whole district (escalated ones do)."""
    rng = random.Random(seed)
    for i in range(n):
        service = rng.choice(SERVICES)
        title = rng.choice(SUBJECTS) + rng.choice(ASKS).format(service) + rng.choice(QUALIFIERS)
        ring = "district" if rng.random() < district_share else "street"
        yield {"id": f"N{i:07d}", "title": title, "grid": _point(rng, districts),
               "side": rng.choice(("community", "enterprise")), "ring": ring}


def resources(n: int, districts: int, seed: int = SEED + 1) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(n):
        if rng.random() < 0.5:
            title = rng.choice(PROVIDERS) + rng.choice(OFFERS).format(rng.choice(SERVICES))
            description = rng.choice(QUALIFIERS).lstrip("，")
        else:  # in the style of a business scope: a list of activities
            title = rng.choice(PROVIDERS)
            description = "经营范围：" + "；".join(rng.sample(SCOPE_ITEMS, 4))
        yield {"id": f"R{i:07d}", "title": title, "description": description, "grid": _point(rng, districts),
               "side": rng.choice(("enterprise", "community")), "capacity": rng.choice((1, 1, 2, 3, 5))}


HEADER = ["size", "stage (seconds by stage)", "seconds", "memory MB", "pairs", "cluster = in process"]


def districts_for(n: int) -> int:
    """About 50,000 needs a district, as a zone of 45,000 enterprise users and its communities posts."""
    return max(1, round(n / 50_000))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class WorkerPeaks:
    """Each worker's largest resident memory, sampled every `every` seconds while the batch runs.

    Not the workers' own ru_maxrss: a worker process inherits its parent's high-water mark (here the
    driver's, a gigabyte), so that figure said nothing about the worker.
    """

    def __init__(self, client, every: float = 0.25) -> None:
        import threading

        self.client, self.every, self.peaks = client, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for worker, mb in self.client.run(_rss_mb).items():
                    self.peaks[worker] = max(self.peaks.get(worker, 0.0), mb)
            except Exception:  # a worker restarting mid-sample: the next sample counts
                pass
            self._stop.wait(self.every)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return sorted(self.peaks.values())


class Stages:
    """Seconds spent in each stage of Matcher.assign, by wrapping the stage functions of one matcher."""

    def __init__(self, matcher, backend=None) -> None:
        import matcher.batch as batch
        import matcher.pipeline as pipeline

        self.seconds: dict[str, float] = {}
        self._restore = []
        # "candidates" holds the whole stage; on a cluster "candidates (workers)" is its part out there.
        extra = [(backend, "candidate_tables", "candidates (workers)")] if backend is not None else []
        for owner, name, stage in (*extra, (matcher, "_prepare", "vectors (driver)"),
                                   (batch, "candidate_table", "candidates"),
                                   (pipeline, "assign_pairs", "assignment"),
                                   (matcher, "_suggestions", "reasons (driver)")):
            original = getattr(owner, name)
            self._restore.append((owner, name, original, owner is matcher or owner is backend))
            setattr(owner, name, self._timed(original, stage))

    def _timed(self, function, stage: str):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        return run

    def close(self) -> None:
        for owner, name, original, instance in self._restore:
            if instance:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def run_size(n: int, workers: int, district_share: float, shard_size: int,
             cluster_too: bool = True) -> list[list[object]]:
    from matcher import Matcher
    from matcher.distributed import DaskBackend, cluster

    count = districts_for(n)
    city_grids = list(grids(count))
    need_list = list(needs(n, count, district_share=district_share))
    resource_list = list(resources(n, count))
    matcher = Matcher(encoder="none", progress=False, shard_size=shard_size)
    t = time.perf_counter()
    matcher.fit(resource_list, need_list, grids=city_grids)
    fit_s = time.perf_counter() - t
    label = f"{n:,} × {n:,}, {district_share:.0%} district-wide, {len(matcher.shards_)} shards"
    rows = [[label, "fit (words, in process)", round(fit_s, 1), "", "", ""]]
    results = {}
    for mode in ("in process", f"local:{workers}")[:2 if cluster_too else 1]:
        if mode == "in process":
            stages = Stages(matcher)
            try:
                t = time.perf_counter()
                results[mode] = matcher.assign(need_list, k=10)
                total = time.perf_counter() - t
            finally:
                stages.close()
            memory = f"driver peak {_peak_mb():.0f}"
        else:
            with cluster(mode) as client:
                backend = DaskBackend(client)
                stages, sampler = Stages(matcher, backend), WorkerPeaks(client)
                try:
                    t = time.perf_counter()
                    results[mode] = matcher.assign(need_list, k=10, backend=backend)
                    total = time.perf_counter() - t
                finally:
                    stages.close()
                    peaks = sampler.stop()
                memory = "workers' peaks " + " / ".join(f"{p:.0f}" for p in peaks)
        split = ", ".join(f"{k} {v:.1f}" for k, v in stages.seconds.items())
        rows.append([label, f"batch {mode}: {split}", round(total, 1), memory, len(results[mode].pairs), ""])
    if cluster_too:
        rows[-1][-1] = "same" if results["in process"] == results[f"local:{workers}"] else "DIFFERENT"
    return rows


def encoding_rates(workers: int, sample: int) -> tuple[float, float]:
    """Texts per second encoded in process (2 threads) and on local:workers (1 thread each)."""
    from matcher.distributed import DaskBackend, cluster
    from matcher.encode import EmbeddingCache, embed, get_encoder
    from matcher.normalize import normalize

    texts = list(dict.fromkeys(normalize(f"{r['title']} {r['description']} {i}")
                               for i, r in enumerate(resources(sample, 1, seed=7))))
    encoder = get_encoder("e5-small", n_threads=2)
    t = time.perf_counter()
    embed(texts, encoder, EmbeddingCache(encoder.name, encoder.dim))
    alone = len(texts) / (time.perf_counter() - t)
    with cluster(f"local:{workers}") as client:
        backend = DaskBackend(client)
        backend.encode_missing(texts[:64], encoder, EmbeddingCache(encoder.name, encoder.dim))  # load models
        t = time.perf_counter()
        backend.encode_missing(texts, encoder, EmbeddingCache(encoder.name, encoder.dim))
        spread = len(texts) / (time.perf_counter() - t)
    return alone, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000, 400_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encode-sample", type=int, default=1500, help="distinct texts to time the encoder on "
                        "(0: skip)")
    parser.add_argument("--shard-size", type=int, default=250_000, help="resource rows per shard of the index")
    parser.add_argument("--in-process-only", action="store_true", help="skip the cluster run (a growth row)")
    parser.add_argument("--district-share", type=float, nargs="+", default=[0.0, 0.1],
                        help="shares of needs that search the whole district (the rest their street)")
    parser.add_argument("--write", type=Path, help="write a city's lists (grids, needs, resources JSONL) here")
    parser.add_argument("--size", type=int, default=1_000_000, help="needs and resources to write with --write")
    args = parser.parse_args()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        count = districts_for(args.size)
        for name, rows in (("grids", grids(count)), ("needs", needs(args.size, count)),
                           ("resources", resources(args.size, count))):
            with open(args.write / f"{name}.jsonl", "w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"written: {args.write} ({args.size:,} needs and resources, {count} districts)")
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for n in args.sizes:
        for share in args.district_share:
            rows += run_size(n, args.workers, share, args.shard_size, not args.in_process_only)
        print_table("so far", HEADER, rows, )
    if not args.encode_sample:
        print_table(f"a synthetic city on this machine (2 cores); local:{args.workers}", HEADER, rows)
        return
    alone, spread = encoding_rates(args.workers, args.encode_sample)
    for n in args.sizes:
        rows.append([f"{n:,} needs + {n:,} resources", "encoding (worked out from the measured rates)",
                     round(2 * n / alone), f"{round(2 * n / spread)} s on the cluster", "", ""])
    print_table(f"a synthetic city on this machine (2 cores); local:{args.workers}; encoding: {alone:.0f} texts/s "
                f"in process, {spread:.0f} texts/s on the cluster",
                HEADER, rows)


if __name__ == "__main__":
    main()
