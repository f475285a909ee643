"""Load on the running service: /v1/match by need id and GET /v1/suggestions at concurrency 1, 8 and 32,
on SQLite with one worker and PostgreSQL with one and two workers; then match latency while a batch runs.

Each configuration starts `duijie serve` in a process group of its own on a fresh database, loads the
demo lists plus extra needs (the demo texts under new ids, so their embeddings come from the cache and
the batch has real work), and drives it with an asyncio httpx client, bounded in time. The load client
shares the machine's two cores with the service: figures are for comparing configurations, run in the
same process, not absolute capacity.

    python -m bench.load [--seconds 10] [--extra-needs 1500] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from bench.common import print_table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
PG_DEFAULT = "postgresql://duijie:duijie@127.0.0.1:5432/duijie"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`duijie serve` in its own process group: stopped by that group, never by name."""

    def __init__(self, url: str, workers: int) -> None:
        self.url, self.port = url, _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DUIJIE_ESCALATION_INTERVAL_S": "0", "DUIJIE_JSON_LOGS": "false"}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server it collects from
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--database-url", url,
             "--workers", str(workers)], env=env, stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(self.log.read().decode()[-3000:])
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("service not ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _key(url: str) -> str:
    out = subprocess.run([sys.executable, "-m", "api.cli", "keys", "--database-url", url, "create", "--role", "admin"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def _load_lists(base: str, headers: dict, extra_needs: int) -> list[str]:
    needs = [json.loads(line) for line in (DEMO / "needs.jsonl").read_text(encoding="utf-8").splitlines()]
    more = [{**needs[i % len(needs)], "id": f"X{i:05d}"} for i in range(extra_needs)]
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client, tempfile.TemporaryDirectory() as tmp:
        for kind in ("grids", "resources", "needs"):
            with open(DEMO / f"{kind}.jsonl", "rb") as handle:
                response = client.post(f"/v1/{kind}/upload", files={"file": (f"{kind}.jsonl", handle)})
            response.raise_for_status()
        extra = Path(tmp) / "extra.jsonl"
        extra.write_text("\n".join(json.dumps(n, ensure_ascii=False) for n in more), encoding="utf-8")
        with open(extra, "rb") as handle:
            client.post("/v1/needs/upload", files={"file": ("extra.jsonl", handle)}).raise_for_status()
    return [n["id"] for n in needs]


async def _drive(base: str, headers: dict, need_ids: list[str], concurrency: int, seconds: float,
                 kinds: tuple[str, ...]) -> dict[str, list]:
    """`concurrency` clients, each sending its next request when the last one answered, for `seconds`."""
    results: dict[str, list] = {kind: [] for kind in kinds}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:
        async def one_client(seed: int) -> None:
            rng = random.Random(seed)
            turn = seed
            while time.perf_counter() < stop:
                kind = kinds[turn % len(kinds)]
                turn += 1
                started = time.perf_counter()
                try:
                    if kind == "match":
                        response = await client.post("/v1/match", json={"need_id": rng.choice(need_ids), "k": 10})
                    else:
                        response = await client.get("/v1/suggestions", params={"limit": 20,
                                                                               "offset": rng.randrange(0, 200)})
                    code = response.status_code
                except httpx.HTTPError:
                    code = 0  # no answer at all
                results[kind].append((time.perf_counter() - started, code))

        await asyncio.gather(*(one_client(i) for i in range(concurrency)))
    return results


def _row(label: str, kind: str, samples: list, seconds: float) -> list[object]:
    times = np.array([t for t, _ in samples]) * 1000
    codes = [c for _, c in samples]
    errors = sum(c >= 500 or c == 0 for c in codes)
    other = sum(400 <= c < 500 and c != 409 for c in codes)
    if not len(times):
        return [label, kind, 0, "-", "-", "-", errors, other]
    return [label, kind, round(len(times) / seconds, 1), round(float(np.percentile(times, 50)), 1),
            round(float(np.percentile(times, 95)), 1), round(float(np.percentile(times, 99)), 1), errors, other]


async def _during_batch(base: str, headers: dict, need_ids: list[str], seconds: float) -> tuple[list, int, list]:
    """Match latency while batches run back to back (each restarted as the last one finishes)."""
    stop = time.perf_counter() + seconds
    jobs: list[dict] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        async def keep_batches() -> None:
            while time.perf_counter() < stop:
                started = await client.post("/v1/match/batch", json={})
                if started.status_code != 202:
                    await asyncio.sleep(0.2)
                    continue
                job = started.json()
                while True:
                    await asyncio.sleep(0.2)
                    job = (await client.get(f"/v1/match/batch/{job['id']}")).json()
                    if job["status"] in ("done", "failed"):
                        jobs.append(job)
                        break

        batches = asyncio.create_task(keep_batches())
        await asyncio.sleep(0.5)  # the first batch is under way
        measured = await _drive(base, headers, need_ids, 8, max(stop - time.perf_counter(), 1.0), ("match",))
        await batches
    failed = [j for j in jobs if j["status"] != "done"]
    return measured["match"], len(jobs), failed


def run_configuration(label: str, url: str, workers: int, args: argparse.Namespace) -> list[list[object]]:
    server = Server(url, workers)
    try:
        server.wait_ready()
        headers = {"Authorization": f"Bearer {_key(url)}"}
        need_ids = _load_lists(server.base, headers, args.extra_needs)
        asyncio.run(_drive(server.base, headers, need_ids, 4, 3, ("match", "suggestions")))  # warm up
        rows = []
        for concurrency in (1, 8, 32):
            results = asyncio.run(_drive(server.base, headers, need_ids, concurrency, args.seconds,
                                         ("match", "suggestions")))
            for kind in ("match", "suggestions"):
                rows.append(_row(f"{label} c={concurrency}", kind, results[kind], args.seconds))
        idle = asyncio.run(_drive(server.base, headers, need_ids, 8, args.seconds, ("match",)))["match"]
        busy, batches, failed = asyncio.run(_during_batch(server.base, headers, need_ids, args.seconds))
        rows.append(_row(f"{label} c=8 idle", "match", idle, args.seconds))
        rows.append(_row(f"{label} c=8 batch×{batches}" + (f" ({len(failed)} failed)" if failed else ""),
                         "match", busy, args.seconds))
        return rows
    finally:
        server.stop()


def _postgres_database(admin_url: str):
    import psycopg

    name = f"duijie_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--extra-needs", type=int, default=1500, help="needs added to the demo's 320")
    parser.add_argument("--postgres", default=os.environ.get("DUIJIE_BENCH_POSTGRES_URL", PG_DEFAULT))
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="run one backend only")
    args = parser.parse_args()
    rows: list[list[object]] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            rows += run_configuration("SQLite 1w", f"sqlite:///{tmp}/load.db", 1, args)
    if args.only in (None, "postgres"):
        for workers in (1, 2):
            url, name = _postgres_database(args.postgres)
            try:
                rows += run_configuration(f"PG {workers}w", url, workers, args)
            finally:
                _drop(args.postgres, name)
    print_table(f"service under load ({args.seconds:.0f} s per row; 5xx counts no-answer too; 4xx excludes 409)",
                ["configuration", "route", "req/s", "p50 ms", "p95 ms", "p99 ms", "5xx", "4xx"], rows)


if __name__ == "__main__":
    main()
