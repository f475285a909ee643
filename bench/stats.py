"""The statistics query at a zone's size on PostgreSQL: 100k needs, 100k resources, 20k projects.

Fills a throwaway database with COPY (1,358 grids over 20 streets, as the report counts them), then times
stats.figures (what GET /v1/stats runs) per grouping, against the floor of one count(*) per table in the
same process. Bar: p50 at most 300 ms.

    python -m bench.stats [--postgres postgresql://...] [--needs 100000] [--resources 100000] [--projects 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import time
import uuid

import psycopg
from sqlalchemy import func, select

from api import stats
from api.db import make_engine, make_readers, migrate
from api.principal import Principal
from api.tables import NeedRow, ProjectRow, ResourceRow, SuggestionRow
from bench.common import print_table

PG_DEFAULT = "postgresql://duijie:duijie@127.0.0.1:5432/duijie"
CATEGORIES = ("托育", "养老", "就业", "法务", "融资", "文体", "助餐", "物业", "环保", "培训")


def _copy(conn, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.read())


def fill(url: str, needs: int, resources: int, projects: int) -> None:
    rng = random.Random(11)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    grids = [(f"G{i:04d}", f"网格{i:04d}", ("point", "area", "block")[i % 3], f"街道{i % 20:02d}")
             for i in range(1358)]
    stamp = lambda: (start + dt.timedelta(minutes=rng.randrange(0, 480 * 24 * 60))).isoformat()  # noqa: E731
    with psycopg.connect(url) as conn:
        _copy(conn, "grids", ["id", "name", "kind", "parent", "street", "created_at", "updated_at"],
              ((g, n, k, "", s, start.isoformat(), start.isoformat()) for g, n, k, s in grids))
        need_rows = []
        for i in range(needs):
            created = stamp()
            need_rows.append((f"N{i:06d}", f"需求标题{i}", "", rng.choice(CATEGORIES), rng.choice(grids)[0],
                              rng.choice(("enterprise", "community")), None, None,
                              (start + dt.timedelta(days=rng.randrange(0, 500))).date().isoformat(),
                              "open", rng.choice(("grid", "area", "street", "district")),
                              rng.random() < 0.05, None, created, created))
        _copy(conn, "needs", ["id", "title", "description", "category", "grid", "side", "lat", "lon", "deadline",
                              "status", "ring", "escalated", "escalated_at", "created_at", "updated_at"], need_rows)
        _copy(conn, "resources", ["id", "title", "description", "category", "grid", "side", "capacity", "taken",
                                  "status", "created_at", "updated_at"],
              ((f"R{i:06d}", f"资源标题{i}", "", rng.choice(CATEGORIES), rng.choice(grids)[0],
                rng.choice(("enterprise", "community")), 100, 0, "open", stamp(), stamp()) for i in range(resources)))
        chosen = rng.sample(range(needs), projects)
        _copy(conn, "suggestions", ["id", "need_id", "resource_id", "score", "features", "reasons", "terms",
                                    "model_version", "status", "origin", "created_at"],
              ((k + 1, f"N{n:06d}", f"R{rng.randrange(resources):06d}", 0.5, "{}", "[]", "[]", "default",
                "accepted", "bench", need_rows[n][13]) for k, n in enumerate(chosen)))
        _copy(conn, "projects", ["id", "suggestion_id", "need_id", "resource_id", "status", "outcome", "created_at",
                                 "updated_at"],
              ((k + 1, k + 1, f"N{n:06d}", "R000000", rng.choice(("active", "completed", "cancelled")), "",
                need_rows[n][13], need_rows[n][13]) for k, n in enumerate(chosen)))
        conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("DUIJIE_BENCH_POSTGRES_URL", PG_DEFAULT))
    parser.add_argument("--needs", type=int, default=100_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    name = f"duijie_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        migrate(engine)
        started = time.perf_counter()
        fill(url.replace("postgresql+psycopg://", "postgresql://"), args.needs, args.resources, args.projects)
        print(f"filled in {time.perf_counter() - started:.1f} s")
        readers = make_readers(engine)
        analyst = Principal(None, "analyst", frozenset())
        staff = Principal(None, "staff", frozenset(f"G{i:04d}" for i in range(0, 1358, 20)))
        tables = (NeedRow, ResourceRow, SuggestionRow, ProjectRow)
        cases = [("floor: count(*) of 4 tables",
                  lambda s: [s.scalar(select(func.count()).select_from(t)) for t in tables])]
        for group in (None, "street", "grid", "month", "category"):
            cases.append((f"figures, district, group {group or '-'}",
                          lambda s, g=group: stats.figures(s, analyst, stats.StatsFilter(), g)))
        cases.append(("figures, one street, group grid",
                      lambda s: stats.figures(s, analyst, stats.StatsFilter(street="街道03"), "grid")))
        cases.append(("figures, staff (68 grids), group grid",
                      lambda s: stats.figures(s, staff, stats.StatsFilter(), "grid")))
        rows = []
        for label, run in cases:
            times = []
            for _ in range(args.runs):
                with readers() as session:
                    t = time.perf_counter()
                    run(session)
                    times.append((time.perf_counter() - t) * 1000)
            rows.append([label, round(statistics.median(times), 1), round(min(times), 1), round(max(times), 1)])
        floor = rows[0][1]
        for row in rows:
            row.append(round(row[1] / floor, 1))
        print_table(f"statistics on PostgreSQL: {args.needs} needs, {args.resources} resources, {args.projects} "
                    f"projects, 1358 grids ({args.runs} runs each)",
                    ["query", "p50 ms", "min ms", "max ms", "× floor"], rows)
    finally:
        engine.dispose()
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
