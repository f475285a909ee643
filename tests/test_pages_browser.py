"""The statistics, export, paging, posting and docs pages in a real browser (Debian's Chromium, Playwright),
with screenshots of every page at desktop and phone width kept in test-artifacts/."""

from __future__ import annotations

import random
import re

import httpx
import pytest
from openpyxl import load_workbook

from api.tables import SuggestionRow
from tests import test_review_browser as review_browser
from tests.api_helpers import Service, database, live_server
from tests.test_review_browser import ARTIFACTS, pytestmark  # noqa: F401

# The review page tests' Chromium, launched once per module by their fixture.
browser = review_browser.browser

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {"queue": "/review", "decided": "/review/decided", "projects": "/review/projects",
         "escalated": "/review/escalated", "stats": "/review/stats", "post": "/review/post",
         "import": "/review/import", "landing": "/", "docs": "/docs"}
# At phone width a table's rows stack; each cell then says what it is (its ::before label).
UNLABELLED = """Array.from(document.querySelectorAll('table.projects tbody td'))
  .filter(td => !/^["']?.+：/.test(getComputedStyle(td, '::before').content.replace(/^"|"$/g, ''))).length"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pages")
    with database("sqlite", tmp_path) as url, live_server(url, min_score=0.0) as (base, app):
        svc = Service.__new__(Service)
        svc.app, svc.keys = app, {}
        for role, grids in (("platform", []), ("staff", ["P1", "P2"]), ("analyst", [])):
            svc.keys[role] = svc.new_key(role, grids)
        svc.accounts = {role: svc.new_account(f"{role}1", role, grids)
                        for role, grids in (("staff", ["P1", "P2"]), ("analyst", []))}
        with httpx.Client(base_url=base, timeout=60) as client:
            svc.client = client
            svc.load_lists()
            first = svc.match("n-care", k=2)[0]["id"]
            assert client.post(f"/v1/suggestions/{first}/accept", headers=svc.headers("staff")).status_code == 201
        # A long queue: 500 pending suggestions in the staff member's grids, written straight to the table.
        rng = random.Random(7)
        with app.state.sessions() as session, session.begin():
            session.add_all(SuggestionRow(need_id=rng.choice(["n-food", "n-park"]),
                                          resource_id=rng.choice(["r-food", "r-care", "r-park"]),
                                          score=round(rng.random(), 4), features={}, reasons=["测试理由"], terms=[],
                                          model_version="default", origin="test") for _ in range(500))
        yield base, svc


def _signed_in(browser, base: str, account: tuple[str, str], viewport: dict):
    context = browser.new_context(viewport=viewport, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base}/review/login")
    page.fill("#username", account[0])
    page.fill("#password", account[1])
    page.press("#password", "Enter")
    page.wait_for_load_state()
    return context, page


def test_stats_page_draws_its_charts_from_the_apps_own_files(browser, site):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["analyst"], WIDTHS["desktop"])
    try:
        assert page.url.endswith("/review/stats")  # an analyst lands on the figures
        page.wait_for_selector("#trend[data-drawn='1']")
        page.wait_for_selector("#streets[data-drawn='1'] svg")
        assert page.text_content("[data-figure=projects_formed]").strip() == "1"
        assert "全区" in page.text_content("h1")
    finally:
        context.close()


def test_export_button_downloads_a_workbook_openpyxl_reads(browser, site, tmp_path):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["staff"], WIDTHS["desktop"])
    try:
        page.goto(f"{base}/review/projects")
        with page.expect_download() as download:
            page.click("a.export")
        saved = tmp_path / "projects.xlsx"
        download.value.save_as(saved)
        sheet = load_workbook(saved)["项目清单"]
        assert sheet["A1"].value == "项目清单" and sheet["A4"].value.startswith("导出人：网格员")
        assert [c.value for c in sheet[5]][:3] == ["项目编号", "需求编号", "需求标题"]
        assert sheet["C6"].value == "双职工家庭需要暑期托管服务"
    finally:
        context.close()


def test_queue_pages_to_its_last_card(browser, site):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["staff"], WIDTHS["desktop"])
    try:
        total = int(re.search(r"共 (\d+) 条", page.text_content("h1")).group(1))
        assert total >= 500
        page.click("nav.pager >> text=末页")
        page.wait_for_load_state()
        cards = page.locator("article.card")
        assert 1 <= cards.count() <= 20
        last_on_page = cards.nth(cards.count() - 1).get_attribute("data-suggestion")
        api = httpx.get(f"{base}/v1/suggestions", headers=svc.headers("staff"),
                        params={"status": "pending", "limit": 1, "offset": total - 1}).json()
        assert api["total"] == total
        assert f"第 {(total + 19) // 20} / {(total + 19) // 20} 页" in page.text_content("nav.pager")
        assert last_on_page is not None
    finally:
        context.close()


def test_a_need_posted_on_the_web_reaches_the_queue_after_a_match(browser, site):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["staff"], WIDTHS["desktop"])
    try:
        page.goto(f"{base}/review/post")
        page.check("input[name=kind][value=needs]")
        page.fill("input[name=title]", "园区员工午餐没地方吃，希望附近有食堂")
        page.select_option("select[name=grid]", "P1")
        page.select_option("select[name=side]", "企业")
        page.click("form.post button[type=submit]")
        posted = re.search(r"需求 (W\d{8}-[0-9A-F]{6})", page.text_content("main")).group(1)
        matched = httpx.post(f"{base}/v1/match", headers=svc.headers("platform"), json={"need_id": posted, "k": 3})
        assert matched.status_code == 200 and matched.json()["suggestions"]
        page.goto(f"{base}/review?q=没地方吃")
        assert page.locator("article.card").count() >= 1
        assert "没地方吃" in page.text_content("article.card h2")
    finally:
        context.close()


def test_reject_with_other_and_no_note_stays_on_the_page_and_says_why(browser, site):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["staff"], WIDTHS["desktop"])
    try:
        card = page.locator("article.card").first
        card.locator("select[name=reason]").select_option("其他")
        card.locator("button.reject-button").click()
        assert page.url.rstrip("/").endswith("/review")  # not sent
        assert card.locator("[data-role=note-missing]").is_visible()
    finally:
        context.close()


def test_docs_render_with_the_network_limited_to_the_apps_own_origin(browser, site):
    base, _ = site
    context = browser.new_context(viewport=WIDTHS["desktop"])
    blocked: list[str] = []

    def only_own(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_own)
    page = context.new_page()
    try:
        page.goto(f"{base}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "Duijie" in page.text_content(".swagger-ui .info .title")
        assert page.locator(".opblock").count() > 10
        assert not blocked, blocked
    finally:
        context.close()


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_screenshots_of_every_page(browser, site, width):
    base, svc = site
    context, page = _signed_in(browser, base, svc.accounts["staff"], WIDTHS[width])
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, path in PAGES.items():
            response = page.goto(f"{base}{path}")
            assert response.status == 200, (name, response.status)
            if name == "stats":
                page.wait_for_selector("#streets[data-drawn='1']")
            if name == "docs":
                page.wait_for_selector(".swagger-ui .info .title")
            page.screenshot(path=str(ARTIFACTS / f"page-{name}-{width}.png"), full_page=True)
            if width == "phone":
                assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
                assert page.evaluate(UNLABELLED) == 0, name
    finally:
        context.close()
