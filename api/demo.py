"""Loading the bundled demo lists into an empty database, as `duijie serve --demo` does."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import lists
from api.principal import Principal
from api.settings import Settings
from api.tables import BatchJobRow, NeedRow
from matcher.cli import DEMO_DIR
from matcher.readers import load_list

SYSTEM = Principal(None, "admin", frozenset())


def load_demo(sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Insert the demo grids, needs and resources when the database has no needs; True if it did."""
    with sessions() as session, session.begin():
        if session.scalar(select(func.count()).select_from(NeedRow)):
            return False
        for kind in ("grids", "needs", "resources"):
            defaults = {"ring": settings.initial_ring} if kind == "needs" else {}
            for record in load_list(DEMO_DIR / f"{kind}.jsonl", kind).records:
                lists.create(session, kind, lists.row_fields(record), SYSTEM, defaults)
            session.flush()
    return True


def print_batch_summary(sessions: sessionmaker[Session], job_id: str) -> None:
    """The demo batch's outcome, as a table on the console where `make run` was typed."""
    with sessions() as session:
        job = session.get(BatchJobRow, job_id)
    result = job.result
    lines = [("batch", job.status), ("needs", result.get("needs", 0)), ("pairs made", result.get("pairs", 0)),
             ("unmatched", result.get("unmatched", 0))]
    lines += [(f"  {reason}", count) for reason, count in sorted(result.get("unmatched_by_reason", {}).items())]
    lines += [("total score", result.get("total_score", 0)), ("model", result.get("model_version", ""))]
    print("demo lists loaded and matched:")
    for name, value in lines:
        print(f"  {name:<20} {value}")
    print("  the pairs are pending suggestions: GET /v1/suggestions, or the review page", flush=True)


def print_demo_sign_in(sessions: sessionmaker[Session], settings: Settings) -> None:
    """The demo's accounts (made, or given new passwords, at every start) and where to sign in."""
    from api.accounts import demo_accounts
    from api.labels import ROLES

    with sessions() as session, session.begin():
        made = demo_accounts(session)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"demo sign-in at http://{host}:{settings.port}/review/login (演示账号，每次启动重新生成密码):")
    for username, password, role in made:
        print(f"  {ROLES[role]:<4} 用户名 {username:<8} 密码 {password}")
    print("  more accounts: duijie accounts create NAME --role staff --grids ... (or 账号管理 on the page)",
          flush=True)
