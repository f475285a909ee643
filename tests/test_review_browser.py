"""The review page in a real browser: Debian's Chromium driven by Playwright against the live service."""

import datetime as dt
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import Service, database, live_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
# The flags keep a headless Chromium quiet on a machine with no network beyond loopback.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("DUIJIE_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
SCRIPT_TITLE = "<script>alert(1)</script>"
IMG_TITLE = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("review")
    # Every candidate is stored (min_score 0): hostile titles match nothing, yet must reach the page.
    with database("sqlite", tmp_path) as url, live_server(url, min_score=0.0) as (base, app):
        svc = Service.__new__(Service)
        svc.app, svc.keys = app, {}
        for role, grids in (("platform", []), ("staff", ["P1", "P2"]), ("staff_far", ["P3"])):
            svc.keys[role] = svc.new_key(role.split("_")[0], grids)
        svc.accounts = {"staff": svc.new_account("网格员小王", "staff", ["P1", "P2"])}
        with httpx.Client(base_url=base, timeout=30) as client:
            svc.client = client
            svc.load_lists()
            client.post("/v1/needs", headers=svc.headers("platform"),
                        json={"id": "n-xss", "title": SCRIPT_TITLE, "grid": "P1"})
            client.post("/v1/needs", headers=svc.headers("platform"),
                        json={"id": "n-img", "title": IMG_TITLE, "description": "员工午餐", "grid": "P2"})
            ids = {need: svc.match(need, k=2) for need in ("n-care", "n-food", "n-law", "n-xss", "n-img")}
        yield base, svc, ids


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, site):
    base, svc, _ = site
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/review")
    assert page.url.endswith("/review/login")
    page.fill("#username", svc.accounts["staff"][0])
    page.fill("#password", svc.accounts["staff"][1])
    page.press("#password", "Enter")
    page.wait_for_url(f"{base}/review")
    yield page
    context.close()


def _card(page, suggestion_id):
    return page.locator(f"article#s{suggestion_id}")


def test_review_queue_shows_only_own_grids(page, site):
    _, _, ids = site
    assert page.locator("article.card").count() > 0
    assert _card(page, ids["n-care"][0]["id"]).count() == 1
    assert _card(page, ids["n-law"][0]["id"]).count() == 0  # n-law is in grid P3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)


def test_review_script_titles_render_as_text(page):
    assert SCRIPT_TITLE in page.inner_text("main")
    assert IMG_TITLE in page.inner_text("main")
    assert page.locator("main script").count() == 0 and page.locator("main img").count() == 0
    assert page.dialogs == []


def test_review_session_cookie_is_httponly_and_samesite(page):
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "duijie_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_review_accept_forms_a_project_shown_on_projects_page(page, site):
    base, _, ids = site
    suggestion = ids["n-care"][0]
    _card(page, suggestion["id"]).locator("button[data-action=accept]").click()
    page.wait_for_url("**/review?notice=accepted")
    assert _card(page, suggestion["id"]).count() == 0  # decided: gone from the queue at once
    page.goto(f"{base}/review/projects")
    assert "双职工家庭需要暑期托管服务" in page.inner_text("table.projects")
    page.screenshot(path=str(ARTIFACTS / "review-projects.png"), full_page=True)
    page.goto(f"{base}/review")


def test_review_reject_with_reason(page, site):
    _, svc, ids = site
    suggestion = ids["n-food"][0]
    card = _card(page, suggestion["id"])
    card.locator("select[name=reason]").select_option("距离太远")
    card.locator("button[data-action=reject]").click()
    page.wait_for_url("**/review?notice=rejected")
    with svc.app.state.sessions() as session:
        from api.tables import AuditRow, ReviewRow

        review = session.query(ReviewRow).filter_by(suggestion_id=suggestion["id"]).one()
        audit = session.query(AuditRow).filter_by(action="reject", entity_id=str(suggestion["id"])).one()
        assert review.reason == "距离太远" and audit.key_id == review.key_id is not None


def test_review_decisions_survive_a_reload(page, site):
    _, _, ids = site
    page.reload()
    assert _card(page, ids["n-care"][0]["id"]).count() == 0
    assert _card(page, ids["n-food"][0]["id"]).count() == 0
    assert _card(page, ids["n-care"][1]["id"]).count() == 0  # the served need's other suggestion left too


def test_review_other_grids_suggestion_by_url_is_refused(page, site):
    base, _, ids = site
    response = page.goto(f"{base}/review/suggestions/{ids['n-law'][0]['id']}")
    assert response.status == 403
    assert "P3" in page.inner_text("main")
    own = page.goto(f"{base}/review/suggestions/{ids['n-img'][0]['id']}")
    assert own.status == 200
    page.goto(f"{base}/review")


def test_review_form_post_without_csrf_is_refused(page, site):
    base, _, ids = site
    response = page.request.post(f"{base}/review/suggestions/{ids['n-xss'][0]['id']}/accept", form={"csrf": "x"})
    assert response.status == 403


def test_review_keyboard_shortcut_accepts(page):
    first = page.locator("article.card").first
    first_id = first.get_attribute("data-suggestion")
    page.keyboard.press("a")
    page.wait_for_url("**/review?notice=accepted")
    assert _card(page, first_id).count() == 0
    assert "快捷键" in page.inner_text("main")


def test_review_escalated_page_and_fresh_match(page, site):
    base, svc, _ = site
    with httpx.Client(base_url=base) as client:
        past = (dt.date.today() - dt.timedelta(days=2)).isoformat()
        client.patch("/v1/needs/n-park", headers=svc.headers("platform"), json={"deadline": past})
        client.post("/v1/escalate", headers=svc.headers("platform"))
    page.goto(f"{base}/review/escalated")
    text = page.inner_text("main")
    assert "上下班" in text and "全区范围" in text  # its street-wide search widened to the whole district
    page.click("form[action='/review/needs/n-park/match'] button")
    page.wait_for_url("**/review?notice=matched")
    assert "上下班" in page.inner_text("main")


def test_review_works_at_phone_width(browser, site):
    base, svc, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    phone.goto(f"{base}/review/login")
    phone.fill("#username", svc.accounts["staff"][0])
    phone.fill("#password", svc.accounts["staff"][1])
    phone.press("#password", "Enter")
    phone.wait_for_url(f"{base}/review")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing forces sideways scrolling
    phone.screenshot(path=str(ARTIFACTS / "review-queue-phone.png"))
    context.close()


def test_review_sign_out_ends_the_session_on_the_server(page, site):
    base, _, _ = site
    copied = page.context.cookies()  # what someone who copied the cookie before sign-out would hold
    page.click("form.logout button")
    page.wait_for_url("**/review/login*")
    assert "已退出" in page.text_content("main")
    page.context.add_cookies(copied)
    page.goto(f"{base}/review/projects")
    assert "/review/login" in page.url  # the session ended on the server: the copy opens nothing
