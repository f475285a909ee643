"""Small lists written for the tests, and a matcher fitted on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matcher import Matcher

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"

GRIDS = [
    {"id": "B1", "name": "桂溪核心街区", "kind": "block", "street": "桂溪街道"},
    {"id": "A1", "name": "云栖科技园", "kind": "area", "parent": "B1", "street": "桂溪街道"},
    {"id": "P1", "name": "蓝鲸软件公司园区", "kind": "point", "parent": "A1", "street": "桂溪街道"},
    {"id": "P2", "name": "和美社区", "kind": "point", "parent": "A1", "street": "桂溪街道"},
    {"id": "P3", "name": "锦华医院", "kind": "point", "parent": "B1", "street": "桂溪街道"},
    {"id": "P4", "name": "市场监管所", "kind": "point", "street": "桂溪街道"},
    {"id": "P5", "name": "芳邻社区", "kind": "point", "street": "芳草街道"},
]

RESOURCES = [
    {"id": "r-care", "title": "企业职工儿童之家向社区开放托育服务", "grid": "P1", "side": "enterprise",
     "category": "托育", "capacity": 2, "lat": 30.576, "lon": 104.063},
    {"id": "r-food", "title": "社区食堂为园区员工提供平价午餐", "grid": "P2", "side": "community",
     "category": "餐饮", "capacity": 3, "lat": 30.578, "lon": 104.061},
    {"id": "r-law", "title": "律师事务所每周提供免费法律咨询", "grid": "P5", "side": "enterprise",
     "category": "法务"},
    {"id": "r-park", "title": "小区白天错时开放停车位给企业员工", "grid": "P2", "side": "community",
     "category": "停车"},
    {"id": "r-ip", "title": "专利代理机构提供专利申请和商标注册", "grid": "P4", "side": "enterprise",
     "category": "知识产权"},
    {"id": "r-care-far", "title": "托育中心提供普惠托育名额", "grid": "P5", "side": "enterprise", "category": "托育",
     "lat": 30.61, "lon": 104.046},
]

NEEDS = [
    {"id": "n-care", "title": "双职工家庭需要暑期托管服务", "grid": "P2", "side": "community", "category": "托育",
     "lat": 30.577, "lon": 104.062, "deadline": "2027-01-15"},
    {"id": "n-food", "title": "园区员工午餐就餐难，希望附近有食堂", "grid": "P1", "side": "enterprise",
     "category": "餐饮"},
    {"id": "n-law", "title": "企业遇到劳动合同纠纷需要法律咨询", "grid": "P3", "side": "enterprise"},
    {"id": "n-park", "title": "員工停車難，上下班車位不足", "grid": "P1", "side": "enterprise", "category": "停车"},
    {"id": "n-none", "title": "寻找会做川菜的厨师参加美食比赛", "grid": "P4"},
]


@pytest.fixture(scope="session")
def fitted() -> Matcher:
    return Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def demo_lists() -> dict[str, list[dict]]:
    return {name: read_jsonl(DEMO / f"{name}.jsonl") for name in ("grids", "needs", "resources")}


@pytest.fixture(scope="session")
def repeated_lists() -> tuple[list, list[dict], list[dict]]:
    """Grids, 2,000 needs and 1,260 resources: the demo lists' texts under more ids (needs seven times,
    resources three times over, so scores tie everywhere)."""
    from matcher.packaged import packaged
    from matcher.readers import load_list

    demo = packaged("duijie_data", "demo")
    grids = load_list(demo / "grids.jsonl", "grids").records
    needs = load_list(demo / "needs.jsonl", "needs").records
    resources = load_list(demo / "resources.jsonl", "resources").records
    more_needs = [n.to_dict() | {"id": f"{n.id}-{i}"} for i in range(7) for n in needs][:2000]
    more_resources = [r.to_dict() | {"id": f"{r.id}-{i}"} for i in range(3) for r in resources]
    return grids, more_needs, more_resources


@pytest.fixture(scope="session")
def demo_matcher(demo_lists) -> Matcher:
    return Matcher().fit(demo_lists["resources"], demo_lists["needs"], grids=demo_lists["grids"])


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where the browser tests left their screenshots."""
    from tests.test_review_browser import ARTIFACTS

    if ARTIFACTS.exists() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {ARTIFACTS}")


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashes():
    """Argon2 at the service's cost (64 MiB, 3 passes: ~0.1 s a hash) would add seconds to every sign-in
    test; the tests check who may sign in, not the hash's cost, so they hash cheaply."""
    from argon2 import PasswordHasher

    import api.accounts

    api.accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield


@pytest.fixture
def pages_svc(tmp_path):
    """A service for the pages' tests: the lists loaded, a fixed session secret, its database URL kept."""
    from tests.api_helpers import database, service

    with database("sqlite", tmp_path) as url, service(url, session_secret="s" * 40) as running:
        running.load_lists()
        running.url = url
        yield running
