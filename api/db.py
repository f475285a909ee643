"""Database engine and sessions: SQLite by default, PostgreSQL by URL; schema by Alembic migrations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from matcher.packaged import packaged

T = TypeVar("T")
MIGRATIONS = packaged("api.migrations")


# How long a writer waits for SQLite's write lock before the request is answered 503 + Retry-After.
# Writes are short (no engine call runs inside a transaction), so a long wait means overload: fail fast.
BUSY_TIMEOUT_S = 5.0
# Connections kept and allowed beyond that; a request waits this long for one, then gets 503.
POOL_SIZE, POOL_OVERFLOW, POOL_TIMEOUT_S = 10, 20, 5.0
# Execution option that marks a session as read-only: on SQLite it begins a deferred transaction.
READ_ONLY = "duijie_read_only"


def make_engine(url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S, pool_size: int = POOL_SIZE,
                pool_overflow: int = POOL_OVERFLOW, pool_timeout_s: float = POOL_TIMEOUT_S) -> Engine:
    pool = {"pool_size": pool_size, "max_overflow": pool_overflow, "pool_timeout": pool_timeout_s}
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
                               **({} if in_memory else pool))

        # pysqlite's own BEGIN handling defers locks, so two writers can both read a pending
        # suggestion and then fail to upgrade. A writer's BEGIN IMMEDIATE takes the write lock up
        # front; readers begin deferred and, in WAL mode, go on beside the writer without waiting.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            read_only = connection.get_execution_options().get(READ_ONLY, False)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **pool)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that writes (on SQLite each transaction takes the write lock at BEGIN)."""
    return sessionmaker(engine, expire_on_commit=False)


def make_readers(engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that only reads: never wait for, nor hold, SQLite's write lock."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates it on an empty database)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


# SQLSTATEs of a transaction the database rolled back to break a deadlock or a serialization conflict.
RETRYABLE = {"40P01", "40001"}


def retryable(exc: OperationalError) -> bool:
    """Whether the database undid the whole transaction and running it again is safe."""
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE


def in_transaction(session: Session, work: Callable[[Session], T], *, attempts: int = 3) -> T:
    """Run `work` in one transaction, again (up to `attempts` times) when the database broke a deadlock.

    Safe because a broken transaction left nothing behind; any other error goes to the caller.
    """
    for attempt in range(1, attempts + 1):
        try:
            with session.begin():
                return work(session)
        except OperationalError as exc:
            if attempt == attempts or not retryable(exc):
                raise
            time.sleep(0.02 * attempt)
    raise AssertionError("unreachable")


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with sessions() as session, session.begin():
        yield session
