"""`duijie` command line: the engine's match and demo, plus serve, keys and escalate for the service."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from matcher import cli as engine_cli
from matcher.messages import ChineseArgumentParser, in_chinese, report_error
from matcher.threads import limit_blas


def _parser() -> argparse.ArgumentParser:
    parser = ChineseArgumentParser(prog="duijie", description=engine_cli.DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    engine_cli.add_commands(commands)

    serve = commands.add_parser("serve", help="run the HTTP service (API at /v1, docs at /docs)",
                                description="Start the Duijie service. Settings also come from DUIJIE_* variables.")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--database-url", help="SQLAlchemy URL; default sqlite:///duijie.db, or postgresql://...")
    serve.add_argument("--demo", action="store_true",
                       help="on an empty database, load the bundled demo lists and run one batch match")
    serve.add_argument("--workers", type=int, help="worker processes (default 1; more need PostgreSQL, whose change "
                       "log keeps every worker's index in step)")

    keys = commands.add_parser("keys", help="create, list or revoke API keys",
                               description="Manage API keys. Roles: platform (lists and match), staff (suggestions "
                               "and projects of its grids), analyst (read all, models), admin (keys, everything).")
    keys.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--role", required=True, choices=("platform", "staff", "analyst", "leader", "admin"))
    create.add_argument("--grids", default="", help="comma-separated grid ids (staff: required unless --streets); "
                        "a block or area covers every grid under it")
    create.add_argument("--streets", default="", help="comma-separated street names: the key sees those streets "
                        "(a leader key reads their figures, lists and exports; staff also decide there)")
    create.add_argument("--note", default="", help="who or what the key is for")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)

    accounts = commands.add_parser("accounts", help="named accounts for the review pages (建立、重置、停用账号)",
                                   description="Accounts staff sign in to the pages with (username and password). "
                                   "Roles and scopes are those of keys; a password is printed once, never stored.")
    accounts.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    account_commands = accounts.add_subparsers(dest="account_command", required=True)
    make = account_commands.add_parser("create", help="create an account; prints its first password once")
    make.add_argument("username")
    make.add_argument("--role", required=True, choices=("staff", "analyst", "leader", "admin"))
    make.add_argument("--grids", default="", help="comma-separated grid ids (staff: required unless --streets)")
    make.add_argument("--streets", default="", help="comma-separated street names")
    account_commands.add_parser("list", help="list accounts with their roles and scopes")
    reset = account_commands.add_parser("reset", help="a new password (printed once); open sessions end")
    reset.add_argument("username")
    disable = account_commands.add_parser("disable", help="stop an account (not the last admin)")
    disable.add_argument("username")

    load = commands.add_parser("import", help="add needs, resources or grids from a file to the service's database",
                               description="Add records from a JSONL, CSV or XLSX file, all or nothing, through the "
                               "service's write path: a running service matches the new needs within seconds.")
    load.add_argument("kind", choices=("needs", "resources", "grids"))
    load.add_argument("file", type=Path)
    load.add_argument("--skip-invalid", action="store_true", help="skip bad records (each reported) instead of "
                      "refusing the file")
    load.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")

    escalate = commands.add_parser("escalate", help="flag overdue needs without a project and widen their ring")
    escalate.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    report = commands.add_parser("report", help="the month's figures per street and grid as an Excel workbook",
                                 description="Write the monthly report of the three lists: figures per street and "
                                 "per grid, the projects formed in the month, the needs overdue now, and a chart.")
    report.add_argument("--month", required=True, help="the month, YYYY-MM (e.g. 2026-11)")
    report.add_argument("--out", type=Path, required=True, help="the .xlsx file to write")
    report.add_argument("--street", help="one street only")
    report.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    _add_training(commands)
    return parser


def _add_training(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="learn the scoring model from past decisions; compare it with the active model",
        description="Fit a scoring model on decided pairs and print its held-out metrics beside the active "
        "model's on the same decisions. The history is a decisions export (JSONL/CSV: need, resource, decision "
        "accepted/rejected/shown, reason, reviewer, time; need and resource as records or ids into --needs and "
        "--resources), a TSV of text_a, text_b, label, or the service's own decisions (--from-db). The model is "
        "saved as a new version under models/.")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", type=Path, help="decisions file (.jsonl, .csv) or labelled pairs (.tsv, .txt)")
    source.add_argument("--from-db", action="store_true", help="train on the service's own review decisions")
    train.add_argument("--needs", type=Path, help="needs list that the history's need ids refer to")
    train.add_argument("--resources", type=Path, help="resources list that the history's resource ids refer to")
    train.add_argument("--grids", type=Path, help="grids list, for the ring features")
    train.add_argument("--eval", type=Path, help="evaluate on this held-out history instead of a split")
    train.add_argument("--index", type=Path, help="a saved matcher (Matcher.save) to compute the features in: the "
                       "index the model will score in; --from-db uses the service's own by default")
    train.add_argument("--model", choices=("logistic", "gbdt", "residual"), default="logistic",
                       help="logistic regression (default: readable weights), gradient-boosted trees, or residual: "
                       "the default model plus a learned part over the features and the sentence embeddings' "
                       "interactions, as strong as held-out needs show it should be (needs the encoder)")
    train.add_argument("--split", choices=("group", "time"), default="group",
                       help="hold out whole needs at random (group) or the most recent needs (time)")
    train.add_argument("--test-size", type=float, default=0.25, help="share of needs held out (default 0.25)")
    train.add_argument("--shown-weight", type=float, default=0.3,
                       help="weight of suggestions shown but not chosen, as negatives (0 leaves them out)")
    train.add_argument("--c", type=float, default=None,
                       help="inverse regularization of the logistic or residual model (default 1.0 and 0.01)")
    train.add_argument("--min-score", type=float, default=None,
                       help="score threshold for precision@min_score in the report (default: each model's own; "
                       "the trained model's is chosen on its training needs and saved in its card)")
    train.add_argument("--baseline", help="version to compare with (default: the active model)")
    train.add_argument("--name", help="version name (default: a timestamp)")
    train.add_argument("--out", type=Path, help="models folder (default: models/)")
    train.add_argument("--by", default=os.environ.get("USER", "analyst"), help="who trains, for the model card")
    train.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    train.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")

    models = commands.add_parser("models", help="list, show, promote or roll back scoring model versions")
    models.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    models.add_argument("--out", type=Path, help="models folder (default: models/)")
    model_commands = models.add_subparsers(dest="model_command", required=True)
    model_commands.add_parser("list", help="versions, the active one marked")
    show = model_commands.add_parser("show", help="a version's weights or importances and its card")
    show.add_argument("version")
    promote = model_commands.add_parser("promote", help="make a version active (refused if worse, unless --force)")
    promote.add_argument("version")
    promote.add_argument("--force", action="store_true", help="promote even if it ranks worse on held-out NDCG@10")
    model_commands.add_parser("rollback", help="return to the previously active model")


def _settings(args: argparse.Namespace):
    from api.settings import Settings

    overrides = {name: getattr(args, name) for name in ("host", "port", "database_url", "workers")
                 if getattr(args, name, None) is not None}
    if getattr(args, "demo", False):
        overrides["demo"] = True
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(exc) from None


class SettingsError(Exception):
    """Settings from DUIJIE_* variables that do not validate: one line per variable, no traceback."""

    def __init__(self, exc) -> None:
        lines = []
        for error in exc.errors():
            name = "DUIJIE_" + "_".join(str(part) for part in error["loc"]).upper() if error["loc"] else "settings"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(message if message.startswith("DUIJIE_") else
                         f"{name}: {message}, got {error.get('input')!r}")
        super().__init__("; ".join(lines))


class MissingDatabaseError(SettingsError):
    """A SQLite URL naming a file that is not there: opening it would make a new, empty database."""

    def __init__(self, path: Path, url: str) -> None:
        Exception.__init__(self, f"数据库文件不存在：{path}（数据库地址 {url}，"
                                 f"相对路径从当前文件夹 {Path.cwd()} 算起）。"
                                 "请在服务所在的文件夹运行，或用 --database-url / DUIJIE_DATABASE_URL 指明；"
                                 "新数据库只由 duijie serve 建立。"
                                 f" (database file not found: {path}; only `duijie serve` creates one)")


def existing_sqlite(url: str) -> None:
    """Refuse a SQLite URL whose file is missing (every command but serve and demo)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.exists():
            raise MissingDatabaseError(path.resolve(), url)


def _sessions(args: argparse.Namespace):
    from api.db import make_engine, make_sessions, migrate

    url = _settings(args).database_url
    existing_sqlite(url)
    engine = make_engine(url)
    migrate(engine)
    return make_sessions(engine)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    settings = _settings(args)
    print(f"对接服务 Duijie service on http://{settings.host}:{settings.port}  (接口文档 API docs: /docs，"
          "审核页面 review page: /review)",
          flush=True)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                    log_config=None)
        return 0
    if settings.database_url.startswith("sqlite"):
        print(f"duijie: error: --workers {settings.workers} needs PostgreSQL (--database-url postgresql://...): "
              "SQLite lets one process write at a time, so several workers would queue on its lock and each "
              "hold an index the others' writes never reach. Use one worker with SQLite.", file=sys.stderr)
        return 2
    _prepare_workers(settings)
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("api.main:create_app", factory=True, host=settings.host, port=settings.port,
                            workers=settings.workers, log_level="info", log_config=None,
                            timeout_worker_healthcheck=settings.worker_healthcheck_s)
    Multiprocess(config, sockets=[_listener(settings.host, settings.port)]).run()
    return 0


def _listener(host: str, port: int):
    """The workers' shared listening socket, created with proto IPPROTO_TCP.

    uvicorn's own (`uvicorn.run(workers=N)`) leaves proto 0, so asyncio never sets TCP_NODELAY on the
    accepted connections and every keep-alive request after the first waits ~40 ms for a delayed ACK
    (uvicorn issue 3149; measured here: /healthz 44 ms with two workers, 0.9 ms with one).
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _prepare_workers(settings) -> None:
    """What several workers must share before they start: schema, demo lists, settings, a session secret
    and a folder for their metrics. Each worker builds its Settings from these DUIJIE_* variables."""
    import secrets
    import tempfile

    from api.db import make_engine, make_sessions, migrate
    from api.demo import load_demo, print_demo_sign_in

    engine = make_engine(settings.database_url)
    migrate(engine)  # once, here: workers starting together would race to create the schema
    if settings.demo and load_demo(make_sessions(engine), settings):
        print("demo lists loaded; with several workers no batch runs at start (POST /v1/match/batch)", flush=True)
    if settings.demo:
        print_demo_sign_in(make_sessions(engine), settings)
    engine.dispose()
    values = {"database_url": settings.database_url, "host": settings.host, "port": settings.port,
              "workers": settings.workers, "demo": "false",
              "session_secret": settings.session_secret or secrets.token_hex(32)}
    for name, value in values.items():
        os.environ[f"DUIJIE_{name.upper()}"] = str(value)
    # prometheus-client's multiprocess mode: each worker writes its figures here and /metrics sums them.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="duijie-metrics-"))


def _keys(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api import audit
    from api.keys import create_key, revoke_key
    from api.tables import ApiKeyRow

    sessions = _sessions(args)
    with sessions() as session, session.begin():
        if args.key_command == "create":
            grids = [g.strip() for g in args.grids.split(",") if g.strip()]
            streets = [g.strip() for g in args.streets.split(",") if g.strip()]
            try:
                row, plain = create_key(session, args.role, grids, args.note, streets)
            except ValueError as exc:
                report_error(exc)
                return 2
            audit.record(session, (None, "cli"), "create", "key", row.id, {"role": row.role, "grids": grids,
                                                                             "streets": streets})
            print(f"key id {row.id}, role {row.role}, grids {','.join(grids) or '-'}, "
                  f"streets {','.join(streets) or '-'}; "
                  "store it now, it is not shown again:")
            print(plain)
        elif args.key_command == "list":
            for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)):
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                print(f"{row.id}\t{row.prefix}…\t{row.role}\t{','.join(row.grids) or '-'}\t"
                      f"{','.join(row.streets or []) or '-'}\t{state}\t{row.note}")
        else:
            try:
                revoke_key(session, args.key_id)
            except (LookupError, ValueError) as exc:  # unknown, or the last admin
                report_error(exc)
                return 1
            audit.record(session, (None, "cli"), "revoke", "key", args.key_id)
            print(f"key {args.key_id} revoked")
    return 0


def _import(args: argparse.Namespace) -> int:

    from api.errors import DomainError
    from api.lists import load_file, row_fields
    from api.principal import Principal
    from api.writes import Writes
    from matcher.errors import InvalidRecordsError, LoadError

    settings = _settings(args)
    sessions = _sessions(args)
    try:
        with sessions() as session:
            loaded = load_file(session, args.kind, args.file, skip_invalid=args.skip_invalid)
    except (LoadError, InvalidRecordsError, OSError) as exc:
        report_error(exc)
        return 1
    defaults = {"ring": settings.initial_ring} if args.kind == "needs" else {}
    with sessions() as session:
        try:
            created = Writes(sessions).create_many(session, args.kind, [row_fields(r) for r in loaded.records],
                                                   Principal(None, "admin", frozenset()), defaults)
        except DomainError as exc:
            report_error(exc)
            return 1
    for problem in loaded.skipped:
        print(f"跳过 skipped: {in_chinese(problem)}")
    kind = {"needs": "需求", "resources": "资源", "grids": "网格"}[args.kind]
    print(f"{kind}：新增 {len(created)} 条，未变 {len(loaded.records) - len(created)} 条，跳过 {len(loaded.skipped)} 条"
          f"（{args.kind}: {len(created)} added, {len(loaded.records) - len(created)} unchanged, "
          f"{len(loaded.skipped)} skipped）")
    return 0


def _accounts(args: argparse.Namespace) -> int:
    from api import accounts, audit
    from api.labels import ROLES as ROLE_NAMES

    sessions = _sessions(args)
    try:
        with sessions() as session, session.begin():
            if args.account_command == "create":
                grids = [g.strip() for g in args.grids.split(",") if g.strip()]
                streets = [g.strip() for g in args.streets.split(",") if g.strip()]
                row, password = accounts.create_account(session, args.username, args.role, grids, streets)
                audit.record(session, (None, "cli"), "create", "account", row.id, {"role": args.role})
                scope = "，".join(filter(None, [",".join(grids), ",".join(streets)])) or "全区"
                print(f"账号 {row.username}（{ROLE_NAMES[args.role]}，{scope}）已建立。初始密码只显示这一次：")
                print(password)
            elif args.account_command == "list":
                for account, key in accounts.listing(session):
                    state = "已停用" if key.revoked_at else "有效"
                    scope = ",".join([*key.grids, *(key.streets or [])]) or "全区"
                    print(f"{account.username}\t{ROLE_NAMES.get(key.role, key.role)}\t{scope}\t{state}")
            elif args.account_command == "reset":
                password = accounts.reset_password(session, args.username)
                audit.record(session, (None, "cli"), "reset", "account", args.username)
                print(f"账号 {args.username.strip()} 的新密码只显示这一次（原有登录已结束）：")
                print(password)
            else:
                accounts.disable_account(session, args.username)
                audit.record(session, (None, "cli"), "disable", "account", args.username)
                print(f"账号 {args.username.strip()} 已停用")
    except ValueError as exc:  # AccountError, a key's refusal, the last admin: nothing was written
        report_error(exc)
        return 2
    return 0


def _escalate(args: argparse.Namespace) -> int:
    from api.writes import Writes

    sessions = _sessions(args)
    with sessions() as session:
        # The write path without an engine: a running service reads the events and matches the needs again.
        flagged = Writes(sessions).escalate(session, dt.date.today(), (None, "cli"))
    print(f"已上报 {len(flagged)} 个超期需求（escalated {len(flagged)} need(s)" + (f": {', '.join(flagged)}" if flagged
                                                                              else "") + "）")
    return 0


def _models_settings(args: argparse.Namespace):
    settings = _settings(args)
    if getattr(args, "out", None):
        settings.models_dir = args.out
    return settings


def _active_baseline(args: argparse.Namespace, settings) -> str:
    if args.baseline:
        return args.baseline
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return "default"  # no service database here: the shipped default model is what runs
    from api.models_state import active_version

    with _sessions(args)() as session:
        return active_version(session)


def _serving_matcher(args: argparse.Namespace, settings):
    """The index the service builds from its database (same tokenizer, encoder and stored embeddings)."""
    from api.engine import EngineState
    from api.models_state import active_model_dir

    sessions = _sessions(args)
    state = EngineState(sessions, active_model_dir(sessions, settings), matcher_params=settings.matcher_params())
    state.rebuild()
    if state.matcher is None:
        raise ValueError("--from-db: expected open resources in the database to build the serving index, found none")
    return state.matcher


def _train(args: argparse.Namespace) -> int:
    import json

    from api.models_state import load_version
    from matcher import registry
    from matcher.history import load_history
    from matcher.scoring import LinearScorer, model_min_score
    from matcher.training import train

    settings = _models_settings(args)
    matcher = None
    try:
        if args.index:
            from matcher import Matcher

            matcher = Matcher.load(args.index)
        if args.from_db:
            from api.history_db import history_from_db

            with _sessions(args)() as session:
                history = history_from_db(session)
            if matcher is None:
                matcher = _serving_matcher(args, settings)
        else:
            history = load_history(args.history, needs=args.needs, resources=args.resources, grids=args.grids)
        held = load_history(args.eval, needs=args.needs, resources=args.resources,
                            grids=args.grids) if args.eval else None
        baseline_version = _active_baseline(args, settings)
        baseline = load_version(settings, baseline_version)
        result = train(history, baseline, kind=args.model, how=args.split, test_size=args.test_size,
                       shown_weight=args.shown_weight, eval_history=held, min_score=args.min_score, c=args.c,
                       matcher=matcher)
    except (ValueError, LookupError, OSError) as exc:
        report_error(exc)
        return 1
    name = args.name or dt.datetime.now().strftime("v%Y%m%d-%H%M%S")
    scorer = result.scorer
    scorer.card.update({
        "created_by": args.by, "training_data": {"sha256": history.digest, **result.counts},
        "split": "eval file" if args.eval else f"{args.split}, {args.test_size:.0%} of needs held out",
        "training_seconds": round(result.seconds, 2),
        "metrics": {"model": result.metrics, "baseline": result.baseline,
                    "baseline_version": baseline_version},
    })
    if isinstance(scorer, LinearScorer):
        scorer.card["weights"] = {k: round(v, 4) for k, v in scorer.weights.items()}
    try:
        path = registry.save(settings.models_dir, name, scorer, result.holdout.values, result.holdout.labels,
                             result.holdout.groups, (result.holdout.need_dense, result.holdout.resource_dense))
    except (FileExistsError, ValueError) as exc:
        report_error(exc)
        return 1
    size = sum(p.stat().st_size for p in path.iterdir())
    counts = result.counts
    print(f"trained {args.model} on {counts['train_rows']} pairs in {result.seconds:.1f} s; "
          f"held out {counts['holdout_rows']} pairs")
    unlabelled = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in counts.items() if k.startswith("without_label:"))
    print(f"labels: {counts['accepted']} accepted, {counts['rejected']} rejected as not fitting, "
          f"{counts['shown']} shown and not chosen, {counts['outcomes']} project outcomes "
          f"(resolved {counts['outcome:resolved']}, partly {counts['outcome:partial']}, "
          f"unresolved {counts['outcome:unresolved']}); rejections left out as no relevance label: "
          f"{counts['rejections_without_label']}{f' ({unlabelled})' if unlabelled else ''}")
    print(f"min_score chosen on training needs: {model_min_score(scorer):.4g} "
          f"({baseline_version}: {model_min_score(baseline):.4g})")
    print(f"{'metric':<22}{'trained':>10}{baseline_version:>12}{'change':>10}")
    for metric, value in result.metrics.items():
        base = result.baseline[metric]
        print(f"{metric:<22}{value:>10.4f}{base:>12.4f}{value - base:>+10.4f}")
    print(f"saved as {name} ({path}, {size / 1024:.1f} KiB); promote with: duijie models promote {name}")
    if args.json:
        print(json.dumps({**result.metrics, "baseline": result.baseline, "version": name,
                          "baseline_version": baseline_version}, ensure_ascii=False))
    return 0


def _models(args: argparse.Namespace) -> int:
    import json

    from api.models_state import PromotionRefusedError, active_version, history, load_version, promote, rollback
    from matcher import registry

    settings = _models_settings(args)
    with _sessions(args)() as session, session.begin():
        try:
            if args.model_command == "list":
                active = active_version(session)
                for version in registry.versions(settings.models_dir):
                    card = load_version(settings, version).card
                    ndcg = card.get("metrics", {}).get("model", {}).get("ndcg@10", "")
                    print(f"{'*' if version == active else ' '} {version}	{card.get('created_at', '')}	"
                          f"{card.get('kind', 'linear')}	ndcg@10 {ndcg}")
                print(f"rollback would return to: {(history(session) or ['-'])[-1]}")
            elif args.model_command == "show":
                scorer = load_version(settings, args.version)
                print(json.dumps(scorer.to_json(), ensure_ascii=False, indent=2))
            elif args.model_command == "promote":
                message = promote(session, settings, args.version, force=args.force)
                audit_cli(session, "promote", args.version, {"force": args.force, "account": message})
                print(message)
            else:
                print(rollback(session))
                audit_cli(session, "rollback", active_version(session))
        except PromotionRefusedError as exc:
            print(f"duijie: {exc}", file=sys.stderr)
            return 3
        except (LookupError, ValueError) as exc:
            report_error(exc)
            return 1
    return 0


def audit_cli(session, action: str, version: str, detail: dict | None = None) -> None:
    from api import audit

    audit.record(session, (None, "cli"), action, "model", version, detail)


def _report(args: argparse.Namespace) -> int:
    from api.report import month_bounds, write_month_report

    try:
        first, last = month_bounds(args.month)
    except ValueError as exc:
        report_error(exc)
        return 2
    if args.out.suffix.lower() != ".xlsx":
        print(f"duijie: error: out: expected a file ending in .xlsx, got {args.out.name!r}", file=sys.stderr)
        return 2
    sessions = _sessions(args)
    with sessions() as session:
        settings = _settings(args)
        figures = write_month_report(session, first, last, args.out, street=args.street,
                                     mask_personal_data=settings.mask_personal_data, zone=settings.timezone)
    print(f"{args.month}：发布需求 {figures['needs_posted']} 个，资源 {figures['resources_posted']} 个，"
          f"形成项目 {figures['projects_formed']} 个，超期需求 {figures['needs_overdue']} 个"
          f"（{figures['projects_formed']} projects formed）")
    print(f"已写出 written: {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("match", "demo", "train"):
        limit_blas(1)  # the engine's query-path products are small; see matcher/threads.py
    handlers = {"serve": _serve, "keys": _keys, "accounts": _accounts, "escalate": _escalate, "import": _import,
                "train": _train, "models": _models, "report": _report}
    if args.command in handlers:
        try:
            return handlers[args.command](args)
        except SettingsError as exc:
            report_error(exc)
            return 2
    return engine_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
