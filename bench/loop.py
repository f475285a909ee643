"""The loop's delays and the suggestions list at scale.

1. Arrival → first stored suggestion, and webhook delivery: `duijie serve` (SQLite, one worker; and
   PostgreSQL, two workers) on the demo lists, with a Standard Webhooks receiver on loopback. Needs (demo
   texts under new ids) are posted at 1 and 20 per second; each need's suggestion.created event says
   when its suggestions were stored (the event's timestamp, written in that transaction) and arrives at
   the receiver later: stored − posted is the arrival delay, received − stored the delivery delay.
2. GET /v1/suggestions without a status filter at 200k rows: the earlier ordering (by the need's deadline
   over the joined table) against the one now used (newest first along the (status, id) index), the
   same page and count, in the same process, SQLite and PostgreSQL.

    python -m bench.loop [--seconds 15] [--rows 200000] [--postgres postgresql://...] [--skip-service]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import statistics
import threading
import time
import uuid

import httpx
import numpy as np
from sqlalchemy import func, insert, select

from bench.common import print_table
from bench.load import DEMO, PG_DEFAULT, Server, _key

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    def __init__(self) -> None:
        self.stored: dict[str, float] = {}
        self.received: dict[str, float] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if body["type"] == "suggestion.created" and body["data"]["origin"] == "arrival":
                    need = body["data"]["need_id"]
                    stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).timestamp()
                    outer.stored.setdefault(need, stamp)
                    outer.received.setdefault(need, time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _post_needs(base: str, headers: dict, rate: float, seconds: float) -> dict[str, float]:
    demo = [json.loads(line) for line in (DEMO / "needs.jsonl").read_text(encoding="utf-8").splitlines()]
    posted: dict[str, float] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            need = {**demo[i % len(demo)], "id": f"A{uuid.uuid4().hex[:10]}"}
            need.pop("deadline", None)
            moment = time.time()
            if client.post("/v1/needs", json=need).status_code == 201:
                posted[need["id"]] = moment
    return posted


def service_rows(label: str, url: str, workers: int, seconds: float) -> list[list[object]]:
    receiver = Receiver()
    os.environ.update({"DUIJIE_WEBHOOK_URL": receiver.url, "DUIJIE_WEBHOOK_SECRET": SECRET,
                       "DUIJIE_BATCH_AT": "", "DUIJIE_ESCALATION_INTERVAL_S": "0"})
    server = Server(url, workers)
    rows = []
    try:
        server.wait_ready()
        headers = {"Authorization": f"Bearer {_key(url)}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=600) as client:
            for kind in ("grids", "resources"):
                with open(DEMO / f"{kind}.jsonl", "rb") as handle:
                    client.post(f"/v1/{kind}/upload", files={"file": (f"{kind}.jsonl", handle)}).raise_for_status()
        time.sleep(2 * workers)  # the other worker's index follows the log
        for rate in (1.0, 20.0):
            posted = _post_needs(server.base, headers, rate, seconds)
            time.sleep(5)
            arrival = [(receiver.stored[n] - t) * 1000 for n, t in posted.items() if n in receiver.stored]
            delivery = [(receiver.received[n] - receiver.stored[n]) * 1000 for n in posted if n in receiver.stored]
            for name, values in (("arrival → stored", arrival), ("stored → webhook received", delivery)):
                rows.append([label, f"{rate:g}/s", name, len(posted), len(values),
                             round(float(np.percentile(values, 50)), 1) if values else "-",
                             round(float(np.percentile(values, 99)), 1) if values else "-"])
    finally:
        server.stop()
    return rows


def list_rows(label: str, url: str, rows: int) -> list[list[object]]:
    """Time the earlier and the current unfiltered listing on `rows` suggestions."""
    from api.db import make_engine, make_sessions, migrate
    from api.routes.suggestions import order
    from api.tables import GridRow, NeedRow, ResourceRow, SuggestionRow

    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessions(engine)
    with sessions() as session, session.begin():
        if not session.scalar(select(func.count()).select_from(SuggestionRow)):
            session.add(GridRow(id="G", name="网格", kind="point", street="街道"))
            session.add_all(NeedRow(id=f"N{i}", title=f"需求{i}", grid="G", deadline=dt.date(2027, 1, 1 + i % 28))
                            for i in range(2000))
            session.add_all(ResourceRow(id=f"R{i}", title=f"资源{i}", grid="G", capacity=5) for i in range(500))
            session.flush()
            batch = [{"need_id": f"N{i % 2000}", "resource_id": f"R{i % 500}", "score": (i % 997) / 997,
                      "features": {}, "reasons": [], "terms": [], "model_version": "bench",
                      "status": ("pending", "superseded", "rejected")[i % 3], "origin": "batch"}
                     for i in range(rows)]
            for start in range(0, rows, 20_000):
                session.execute(insert(SuggestionRow), batch[start:start + 20_000])
    base = select(SuggestionRow).join(NeedRow, NeedRow.id == SuggestionRow.need_id)
    earlier = base.order_by(NeedRow.deadline, SuggestionRow.score.desc(), SuggestionRow.id)
    now_ = base.order_by(*order(None))
    out = []
    with sessions() as session:
        timings = {}
        for name, stmt in (("earlier: by deadline", earlier), ("now: newest first", now_)):
            samples = []
            for _ in range(15):
                started = time.perf_counter()
                session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
                list(session.scalars(stmt.limit(50).offset(100)))
                samples.append((time.perf_counter() - started) * 1000)
            timings[name] = statistics.median(samples)
        first = timings["earlier: by deadline"]
        for name, value in timings.items():
            out.append([label, rows, name, round(value, 1), round(first / value, 2)])
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres", default=PG_DEFAULT)
    parser.add_argument("--skip-service", action="store_true")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        table = list_rows("SQLite", f"sqlite:///{folder}/list.db", args.rows)
        pg_list = args.postgres.rsplit("/", 1)[0] + "/duijie_bench_list"
        try:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS duijie_bench_list")
                conn.execute("CREATE DATABASE duijie_bench_list")
            table += list_rows("PostgreSQL", pg_list, args.rows)
        except Exception as exc:  # no server: the SQLite rows stand alone
            print(f"PostgreSQL skipped: {exc}")
        print_table("GET /v1/suggestions without a status filter: count + page of 50 (median of 15, ms)",
                    ["backend", "rows", "ordering", "median ms", "speed-up"], table)
        if args.skip_service:
            return
        rows = service_rows("SQLite, 1 worker", f"sqlite:///{folder}/loop.db", 1, args.seconds)
        try:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS duijie_bench_loop")
                conn.execute("CREATE DATABASE duijie_bench_loop")
            rows += service_rows("PostgreSQL, 2 workers", args.postgres.rsplit("/", 1)[0] + "/duijie_bench_loop", 2,
                                 args.seconds)
        except Exception as exc:
            print(f"PostgreSQL skipped: {exc}")
        print_table("Match on arrival and webhook delivery (ms)",
                    ["service", "posts", "delay", "needs posted", "with suggestions", "p50", "p99"], rows)


if __name__ == "__main__":
    main()
