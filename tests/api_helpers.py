"""Shared set-up for the service tests: databases on both backends, an app, keys, the small lists."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.keys import create_key
from api.main import create_app
from api.settings import Settings
from tests.conftest import GRIDS, NEEDS, RESOURCES

# CI starts PostgreSQL and sets this; without it the PostgreSQL half of each test is skipped locally.
POSTGRES_URL = os.environ.get("DUIJIE_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def database(backend: str, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL for one test; PostgreSQL gets its own throwaway database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'duijie.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("DUIJIE_TEST_POSTGRES_URL not set (CI sets it after starting PostgreSQL)")
    name = f"duijie_test_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _drop(admin_url, name)


def _drop(admin_url: str, name: str) -> None:
    """Drop a throwaway database. A backend of another role (autovacuum, say) can hold it for a moment,
    which FORCE may not end for a non-superuser: try again briefly, then leave it with a warning."""
    for attempt in range(10):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.2 * (attempt + 1))
    warnings.warn(f"test database {name} could not be dropped; it is left behind", stacklevel=2)


def settings_for(url: str, **overrides) -> Settings:
    """Settings for a test service: nothing runs by itself (no schedules, no matching on arrival) unless the
    test asks for it, so a test's own calls decide what is stored; tests/test_loop.py turns them on."""
    values = {"escalation_interval_s": 0, "batch_at": "", "arrival_matching": False, **overrides}
    return Settings(database_url=url, **values)


class Service:
    """A running app with one key per role and helpers to call it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.app = client.app
        self.keys: dict[str, str] = {}
        for role, grids in (("admin", []), ("platform", []), ("analyst", []), ("staff", ["P1", "P2"]),
                            ("staff_far", ["P5"])):
            self.keys[role] = self.new_key(role.split("_")[0], grids)

    def new_key(self, role: str, grids: list[str]) -> str:
        with self.app.state.sessions() as session, session.begin():
            _, plain = create_key(session, role, grids, check=False)  # keys come before the lists here
        return plain

    def new_account(self, username: str, role: str, grids: list[str]) -> tuple[str, str]:
        """A named account for the pages: (username, password), as an admin would hand them over."""
        from api.accounts import create_account

        with self.app.state.sessions() as session, session.begin():
            _, password = create_account(session, username, role, grids, check=False)
        return username, password

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def call(self, method: str, path: str, role: str = "platform", **kwargs):
        return self.client.request(method, path, headers=self.headers(role), **kwargs)

    def load_lists(self) -> None:
        # One upload per list, as the platform sends a list: one transaction and one index update each
        # (a request per record cost a second of every test's setup).
        for kind, records in (("grids", GRIDS), ("resources", RESOURCES), ("needs", NEEDS)):
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
            response = self.call("POST", f"/v1/{kind}/upload", files={"file": (f"{kind}.jsonl", body)})
            assert response.status_code == 200 and response.json()["created"] == len(records), response.text

    def match(self, need_id: str, k: int = 5, role: str = "platform") -> list[dict]:
        response = self.call("POST", "/v1/match", role, json={"need_id": need_id, "k": k})
        assert response.status_code == 200, response.text
        return response.json()["suggestions"]


@contextlib.contextmanager
def service(url: str, **overrides) -> Iterator[Service]:
    with TestClient(create_app(settings_for(url, **overrides))) as client:
        yield Service(client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(url: str, **overrides) -> Iterator[tuple[str, object]]:
    """The real service under uvicorn on a free local port, for tests that need concurrent requests."""
    app = create_app(settings_for(url, **overrides))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("service did not start in 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)
