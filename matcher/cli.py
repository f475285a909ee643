"""`duijie` command line: match needs with resources from list files, or run the bundled demo."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.messages import ChineseArgumentParser, report_error
from matcher.packaged import packaged
from matcher.pipeline import Matcher
from matcher.readers import load_list
from matcher.suggestion import Assignment, Suggestion
from matcher.writers import write_rows

DEMO_DIR = packaged("duijie_data", "demo")
COLUMNS = ("need_id", "need_title", "rank", "resource_id", "resource_title", "score", "status", "reasons", "features")
# Column names of CSV and XLSX outputs, which staff open in Excel beside the Chinese reasons.
HEADERS = {"need_id": "需求编号", "need_title": "需求标题", "rank": "名次", "resource_id": "资源编号",
           "resource_title": "资源标题", "score": "评分", "status": "结果", "reasons": "理由", "features": "特征"}
STATUS_WORDS = {"paired": "已配对", "suggested": "推荐", "unmatched": "未配对", "no_candidate": "无候选"}


DESCRIPTION = ("Duijie (对接): pair needs (需求) with resources (资源). Lists are JSONL, CSV or XLSX files "
               "(format by extension; UTF-8 or GBK). Each record needs an id and a title; "
               "see README.md for all fields.")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the engine's commands (match, demo) to a `duijie` parser."""
    match = commands.add_parser(
        "match", help="suggest resources for needs, or pair them globally with --assign",
        description="Suggest the best resources for every need (top-k), or with --assign make a global "
        "one-to-one pairing that maximizes the total score within each resource's capacity.")
    match.add_argument("--needs", required=True, type=Path, help="needs list file (.jsonl, .csv, .xlsx)")
    match.add_argument("--resources", required=True, type=Path, help="resources list file (.jsonl, .csv, .xlsx)")
    _common(match)
    demo = commands.add_parser("demo", help="run the match on the bundled demo lists (data/demo/)",
                               description="Pair the bundled demo needs and resources globally and write the pairs.")
    demo.add_argument("--out", type=Path, default=Path("out/demo_pairs.csv"),
                      help="output file (.jsonl, .csv, .xlsx; default: out/demo_pairs.csv)")
    demo.add_argument("--min-score", type=float, default=None,
                      help="lowest score a pair may have (default: the model's own, from its card)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    for command in (match, demo):
        command.add_argument("--cluster", metavar="SPEC", default=os.environ.get("DUIJIE_DASK_SCHEDULER") or None,
                             help="run encoding, scoring and the assignment on Dask: local:N starts N local "
                             "workers, tcp://HOST:8786 joins a running scheduler (default: DUIJIE_DASK_SCHEDULER, "
                             "else this process alone); the result is the same")


def _parser() -> argparse.ArgumentParser:
    parser = ChineseArgumentParser(prog="duijie", description=DESCRIPTION)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--grids", type=Path, help="grids list file; enables the area/block and street rings")
    command.add_argument("--top-k", type=int, default=10, metavar="N", help="suggestions per need (default 10)")
    command.add_argument("--assign", action="store_true", help="global capacity-aware pairing instead of top-k lists")
    command.add_argument("--min-score", type=float, default=None, metavar="X",
                         help="lowest score a pair may have, 0..1 (default: the model's own min_score, from its card)")
    command.add_argument("--sides", choices=("any", "cross", "same"), default="any",
                         help="any: both directions (default); cross: enterprise↔community only; same: same side only")
    command.add_argument("--same-category", action="store_true", help="only pair a need with resources of its category")
    command.add_argument("--skip-invalid", action="store_true",
                         help="skip and report bad records instead of rejecting the whole file")
    command.add_argument("--out", type=Path, help="write results here (.jsonl, .csv, .xlsx); whole or not at all")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def _rows(result: Assignment | list[list[Suggestion]], need_ids: Sequence[str]) -> list[dict]:
    rows = []
    if isinstance(result, Assignment):
        for pair in result.pairs:
            rows.append({**pair.to_dict(), "rank": 1, "status": "paired"})
        for need_id in need_ids:
            if need_id in result.unmatched:
                rows.append({"need_id": need_id, "status": "unmatched", "reasons": [result.unmatched[need_id]]})
        return rows
    for need_id, suggestions in zip(need_ids, result, strict=True):
        for rank, suggestion in enumerate(suggestions, start=1):
            rows.append({**suggestion.to_dict(), "rank": rank, "status": "suggested"})
        if not suggestions:
            rows.append({"need_id": need_id, "status": "no_candidate"})
    return rows


def _summary(needs: int, resources: int, result: Assignment | list[list[Suggestion]], seconds: float,
             skipped: int) -> list[tuple[str, str]]:
    # Chinese for the people who read it, the English word beside it for a log search.
    lines = [("需求 needs", str(needs)), ("资源 resources", str(resources))]
    if skipped:
        lines.append(("跳过的记录 records skipped", str(skipped)))
    if isinstance(result, Assignment):
        lines.append(("配对 pairs made", str(len(result.pairs))))
        lines.append(("未配上 unmatched", str(len(result.unmatched))))
        for reason, count in sorted(Counter(r.split(":")[0] for r in result.unmatched.values()).items()):
            lines.append((f"  {reason}", str(count)))
        lines.append(("总分 total score", f"{result.total_score:.3f}"))
    else:
        lines.append(("推荐 suggestions", str(sum(len(s) for s in result))))
        lines.append(("无推荐的需求 needs without any", str(sum(1 for s in result if not s))))
    lines.append(("用时 time taken", f"{seconds:.2f} s"))
    return lines


def _cells(text: str) -> int:
    """Terminal columns a text takes: a Chinese character takes two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _print_table(lines: list[tuple[str, str]]) -> None:
    width = max(_cells(k) for k, _ in lines)
    print("+" + "-" * (width + 2) + "+" + "-" * 14 + "+")
    for key, value in lines:
        print(f"| {key}{' ' * (width - _cells(key))} | {value:>12} |")
    print("+" + "-" * (width + 2) + "+" + "-" * 14 + "+")


def run_match(args: argparse.Namespace, needs_path: Path, resources_path: Path, grids_path: Path | None) -> int:
    started = time.perf_counter()
    skipped: list[RecordError] = []
    grids = []
    if grids_path:
        loaded = load_list(grids_path, "grids", skip_invalid=args.skip_invalid)
        grids, skipped = loaded.records, skipped + loaded.skipped
    grid_ids = {g.id for g in grids} if grids_path else None
    needs = load_list(needs_path, "needs", skip_invalid=args.skip_invalid, grid_ids=grid_ids)
    resources = load_list(resources_path, "resources", skip_invalid=args.skip_invalid, grid_ids=grid_ids)
    skipped += needs.skipped + resources.skipped
    for error in skipped:
        print(f"skipped: {error}", file=sys.stderr)
    matcher_kw = {"progress": not args.quiet}
    if args.min_score is not None:
        matcher_kw["min_score"] = args.min_score
    matcher = Matcher(sides=getattr(args, "sides", "any"), same_category=getattr(args, "same_category", False),
                      **matcher_kw)
    top_k = getattr(args, "top_k", 10)
    with _backend(getattr(args, "cluster", None)) as backend:
        matcher.fit(resources.records, needs.records, grids=grids, backend=backend)
        result = (matcher.assign(needs.records, k=top_k, backend=backend) if getattr(args, "assign", True)
                  else matcher.top_k(needs.records, k=top_k))
    seconds = time.perf_counter() - started
    _print_table(_summary(len(needs.records), len(resources.records), result, seconds, len(skipped)))
    pairs = result.pairs if isinstance(result, Assignment) else sorted(
        (s for group in result for s in group[:1]), key=lambda s: -s.score)
    titles = {n.id: n.title for n in needs.records} | {r.id: r.title for r in resources.records}
    print("\n最佳配对 best pairs:")
    for pair in pairs[:10]:
        print(f"  {pair.score:.3f}  {titles[pair.need_id]}  ⇄  {titles[pair.resource_id]}")
        print(f"         {'；'.join(pair.reasons)}")
    if args.out:
        rows = [{**row, "need_title": titles.get(row.get("need_id"), ""),
                 "resource_title": titles.get(row.get("resource_id"), "") if row.get("resource_id") else "",
                 "status": STATUS_WORDS.get(row["status"], row["status"]) if args.out.suffix.lower() != ".jsonl"
                 else row["status"]} for row in _rows(result, [n.id for n in needs.records])]
        write_rows(args.out, rows, COLUMNS, None if args.out.suffix.lower() == ".jsonl" else HEADERS)
        print(f"\n已写出 written: {args.out}")
    return 0


@contextlib.contextmanager
def _backend(spec: str | None) -> Iterator[object | None]:
    """A Dask backend for the spec, or None: this process alone."""
    if not spec:
        yield None
        return
    from matcher.distributed import DaskBackend, cluster, dashboard

    with cluster(spec) as client:
        link = dashboard(client)
        print(f"Dask cluster {spec}: {len(client.scheduler_info()['workers'])} workers"
              + (f", dashboard {link}" if link else ""), flush=True)
        yield DaskBackend(client)


def main(argv: Sequence[str] | None = None) -> int:
    return run(_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed match or demo command; 0 on success, 1 on bad input, 2 on bad options."""
    if getattr(args, "top_k", 1) < 1:
        print("duijie: error: --top-k: expected an integer >= 1", file=sys.stderr)
        return 2
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        print(f"duijie: error: --min-score: expected a number from 0 to 1, got {args.min_score}", file=sys.stderr)
        return 2
    try:
        if args.command == "demo":
            args.assign, args.skip_invalid = True, False
            return run_match(args, DEMO_DIR / "needs.jsonl", DEMO_DIR / "resources.jsonl", DEMO_DIR / "grids.jsonl")
        return run_match(args, args.needs, args.resources, args.grids)
    except (LoadError, InvalidRecordsError, RecordError, ValueError, FileExistsError) as exc:
        report_error(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
