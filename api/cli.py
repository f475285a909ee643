"""`duijie` command line: the engine's match and demo, plus serve, keys and escalate for the service."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from matcher import cli as engine_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duijie", description=engine_cli.DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    engine_cli.add_commands(commands)

    serve = commands.add_parser("serve", help="run the HTTP service (API at /v1, docs at /docs)",
                                description="Start the Duijie service. Settings also come from DUIJIE_* variables.")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--database-url", help="SQLAlchemy URL; default sqlite:///duijie.db, or postgresql://...")
    serve.add_argument("--demo", action="store_true",
                       help="on an empty database, load the bundled demo lists and run one batch match")

    keys = commands.add_parser("keys", help="create, list or revoke API keys",
                               description="Manage API keys. Roles: platform (lists and match), staff (suggestions "
                               "and projects of its grids), analyst (read all, models), admin (keys, everything).")
    keys.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--role", required=True, choices=("platform", "staff", "analyst", "admin"))
    create.add_argument("--grids", default="", help="comma-separated grid ids (required for staff)")
    create.add_argument("--note", default="", help="who or what the key is for")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)

    escalate = commands.add_parser("escalate", help="flag overdue needs without a project and widen their ring")
    escalate.add_argument("--database-url", help="SQLAlchemy URL (default from DUIJIE_DATABASE_URL)")
    return parser


def _settings(args: argparse.Namespace):
    from api.settings import Settings

    overrides = {name: getattr(args, name) for name in ("host", "port", "database_url")
                 if getattr(args, name, None) is not None}
    if getattr(args, "demo", False):
        overrides["demo"] = True
    return Settings(**overrides)


def _sessions(args: argparse.Namespace):
    from api.db import make_engine, make_sessions, migrate

    engine = make_engine(_settings(args).database_url)
    migrate(engine)
    return make_sessions(engine)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    settings = _settings(args)
    print(f"Duijie service on http://{settings.host}:{settings.port}  (API docs: /docs, review page: /review)",
          flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def _keys(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api import audit
    from api.keys import create_key, revoke_key
    from api.tables import ApiKeyRow

    sessions = _sessions(args)
    with sessions() as session, session.begin():
        if args.key_command == "create":
            grids = [g.strip() for g in args.grids.split(",") if g.strip()]
            try:
                row, plain = create_key(session, args.role, grids, args.note)
            except ValueError as exc:
                print(f"duijie: error: {exc}", file=sys.stderr)
                return 2
            audit.record(session, (None, "cli"), "create", "key", row.id, {"role": row.role, "grids": grids})
            print(f"key id {row.id}, role {row.role}, grids {','.join(grids) or '-'}; "
                  "store it now, it is not shown again:")
            print(plain)
        elif args.key_command == "list":
            for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)):
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                print(f"{row.id}\t{row.prefix}…\t{row.role}\t{','.join(row.grids) or '-'}\t{state}\t{row.note}")
        else:
            try:
                revoke_key(session, args.key_id)
            except LookupError as exc:
                print(f"duijie: error: {exc}", file=sys.stderr)
                return 1
            audit.record(session, (None, "cli"), "revoke", "key", args.key_id)
            print(f"key {args.key_id} revoked")
    return 0


def _escalate(args: argparse.Namespace) -> int:
    from api.escalation import escalate

    with _sessions(args)() as session, session.begin():
        flagged = escalate(session, dt.date.today(), (None, "cli"))
    print(f"escalated {len(flagged)} need(s)" + (f": {', '.join(flagged)}" if flagged else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"serve": _serve, "keys": _keys, "escalate": _escalate}
    if args.command in handlers:
        return handlers[args.command](args)
    return engine_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
