"""The review pages without a browser: server-side sessions, undo, roles, posting and the landing page."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from api.tables import ReviewRow, WebSessionRow
from tests.api_helpers import service


def _sign_in(client, key: str):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/review/login", data={"key": key, "csrf": csrf}, follow_redirects=False)


def _csrf(client, path: str = "/review") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


@pytest.fixture
def svc(pages_svc):
    return pages_svc


def test_logout_ends_the_session_on_the_server_a_copied_cookie_opens_nothing(svc):
    assert _sign_in(svc.client, svc.keys["staff"]).status_code == 303
    copied = dict(svc.client.cookies)
    svc.client.post("/review/logout", data={"csrf": _csrf(svc.client)})
    svc.client.cookies.clear()
    for name, value in copied.items():
        svc.client.cookies.set(name, value, path="/review")
    response = svc.client.get("/review", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review/login"


def test_an_idle_session_expires(svc):
    _sign_in(svc.client, svc.keys["staff"])
    assert svc.client.get("/review").status_code == 200
    with svc.app.state.sessions() as session, session.begin():
        session.execute(update(WebSessionRow).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=svc.app.state.settings.session_idle_s + 5)))
    assert svc.client.get("/review", follow_redirects=False).headers["location"] == "/review/login"


def test_a_restart_with_the_same_secret_keeps_staff_signed_in(svc):
    _sign_in(svc.client, svc.keys["staff"])
    cookies = dict(svc.client.cookies)
    with service(svc.url, session_secret="s" * 40) as again:
        for name, value in cookies.items():
            again.client.cookies.set(name, value, path="/review")
        assert again.client.get("/review").status_code == 200


def test_an_analyst_signs_in_to_the_figures_and_not_the_queue(svc):
    assert _sign_in(svc.client, svc.keys["analyst"]).headers["location"] == "/review/stats"
    assert svc.client.get("/review/stats").status_code == 200
    refused = svc.client.get("/review")
    assert refused.status_code == 403 and "此页面只供网格员使用" in refused.text


def test_undo_an_accept_restores_the_queue_and_the_capacity(svc):
    suggestions = svc.match("n-food", k=3)
    assert len(suggestions) >= 2
    _sign_in(svc.client, svc.keys["staff"])
    csrf = _csrf(svc.client)
    chosen = suggestions[0]
    svc.client.post(f"/review/suggestions/{chosen['id']}/accept", data={"csrf": csrf})
    taken = svc.call("GET", f"/v1/resources/{chosen['resource_id']}").json()["taken"]
    decided = svc.client.get("/review/decided").text
    # The decision's time as staff read it: Chengdu's wall clock (DUIJIE_TIMEZONE), not the stored UTC.
    local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    assert local.strftime("%m-%d %H:") in decided or (local - dt.timedelta(minutes=1)).strftime("%m-%d %H:") in decided
    review_id = re.search(r"/review/decisions/(\d+)/undo", decided).group(1)
    undone = svc.client.post(f"/review/decisions/{review_id}/undo", data={"csrf": csrf}, follow_redirects=False)
    assert undone.headers["location"] == "/review/decided?notice=undone"
    pending = svc.call("GET", "/v1/suggestions", params={"need_id": "n-food", "status": "pending"}).json()
    assert {s["id"] for s in pending["items"]} == {s["id"] for s in suggestions}  # the superseded came back
    assert svc.call("GET", "/v1/projects").json()["total"] == 0
    assert svc.call("GET", f"/v1/resources/{chosen['resource_id']}").json()["taken"] == taken - 1
    audit = svc.call("GET", "/v1/audit", "admin", params={"limit": 500}).json()["items"]
    assert any(a["action"] == "undo" and a["entity_id"] == str(chosen["id"]) for a in audit)


def test_undo_after_the_window_is_refused_with_a_chinese_page(svc):
    sid = svc.match("n-care", k=2)[0]["id"]
    _sign_in(svc.client, svc.keys["staff"])
    csrf = _csrf(svc.client)
    svc.client.post(f"/review/suggestions/{sid}/reject", data={"csrf": csrf, "reason": "不相关"})
    with svc.app.state.sessions() as session, session.begin():
        session.execute(update(ReviewRow).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        review_id = session.query(ReviewRow.id).scalar()
    refused = svc.client.post(f"/review/decisions/{review_id}/undo", data={"csrf": csrf})
    assert refused.status_code == 409 and "不能撤销" in refused.text
    stranger = svc.new_key("staff", ["P1", "P2"])
    svc.client.cookies.clear()
    _sign_in(svc.client, stranger)
    other = svc.client.post(f"/review/decisions/{review_id}/undo", data={"csrf": _csrf(svc.client)})
    assert other.status_code == 404  # only one's own decisions


def test_posting_to_another_grid_is_refused_in_chinese_and_nothing_is_stored(svc):
    _sign_in(svc.client, svc.keys["staff"])
    before = svc.call("GET", "/v1/needs").json()["total"]
    refused = svc.client.post("/review/post", data={"csrf": _csrf(svc.client, "/review/post"), "kind": "needs",
                                                    "title": "需要法律咨询", "grid": "P5"})
    assert refused.status_code == 422 and "无权处理网格 P5" in refused.text
    empty = svc.client.post("/review/post", data={"csrf": _csrf(svc.client, "/review/post"), "kind": "resources",
                                                  "title": "  ", "grid": "P1"})
    # The field and what it should hold, in Chinese (the catalogue), the code beside it for a file's header.
    assert empty.status_code == 422 and "标题（title）应为" in empty.text and "expected" not in empty.text
    assert svc.call("GET", "/v1/needs").json()["total"] == before


def test_unknown_review_pages_and_bad_addresses_answer_a_chinese_page(svc):
    _sign_in(svc.client, svc.keys["staff"])
    missing = svc.client.get("/review/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    bad = svc.client.get("/review", params={"page": "abc"})
    assert bad.status_code == 422 and "页码（page）" in bad.text and "应为整数" in bad.text
    assert bad.headers["content-type"].startswith("text/html")


def test_landing_page_links_the_pages_and_sets_no_cookie(svc):
    response = svc.client.get("/")
    assert response.status_code == 200 and "/review" in response.text and "/docs" in response.text
    assert "set-cookie" not in response.headers


def test_import_page_previews_row_errors_in_chinese_then_imports_all_or_the_good_rows(svc):
    _sign_in(svc.client, svc.keys["staff"])  # grids P1 and P2
    sheet = ("编号,标题,描述,网格,截止日期\nimp1,社区需要助餐服务,每天午饭,P1,2026-12-31\nimp2,老人需要陪诊,,P2,\n"
             "imp3,需要法律咨询,,P5,\nimp4,需要场地,,P1,下周\n").encode("gbk")
    preview = svc.client.post("/review/import", data={"csrf": _csrf(svc.client, "/review/import"), "kind": "needs"},
                              files={"file": ("网格需求.csv", sheet, "text/csv")})
    assert preview.status_code == 200 and "可导入 2 行，有误 2 行" in preview.text
    assert "无权处理网格 P5" in preview.text and "第 5 条：截止日期（deadline）应为日期" in preview.text
    token = re.search(r'name="token" value="([^"]+)"', preview.text).group(1)
    before = svc.call("GET", "/v1/needs").json()["total"]
    refused = svc.client.post("/review/import/confirm", data={"csrf": _csrf(svc.client, "/review/import"),
                                                             "token": token, "mode": "all"})
    assert refused.status_code == 422 and "未导入任何一行" in refused.text
    assert svc.call("GET", "/v1/needs").json()["total"] == before  # all or nothing: nothing
    done = svc.client.post("/review/import/confirm", data={"csrf": _csrf(svc.client, "/review/import"),
                                                          "token": token, "mode": "skip"})
    assert done.status_code == 201 and "新建 2 条" in done.text and "跳过有误的 2 行" in done.text
    assert svc.call("GET", "/v1/needs/imp1").json()["deadline"] == "2026-12-31"
    again = svc.client.post("/review/import/confirm", data={"csrf": _csrf(svc.client, "/review/import"),
                                                           "token": token, "mode": "skip"})
    assert again.status_code == 404  # an import happens once
