"""Personal data in posts: masked for every reader who does not handle the post (api/privacy.py's rule)."""

import io
import re

import pytest
from openpyxl import load_workbook

from api.privacy import mask
from tests.api_helpers import database, service

CONTACT = "联系人：陈女士，电话138 1234 5678，座机028-85551234，身份证510104199001011234，邮箱chen.li@example.com"


@pytest.mark.parametrize(("text", "shown"), [
    ("电话13812345678", "电话138****5678"),
    ("电话138-1234-5678。", "电话138****5678。"),
    ("座机 028-85551234", "座机 028-****1234"),
    ("身份证号510104199001011234", "身份证号5101**********1234"),
    ("身份证51010419900101123X", "身份证5101**********123X"),
    ("写信 chen.li@example.com 即可", "写信 c***@example.com 即可"),
    ("邮箱chen.li@example.com", "邮箱c***@example.com"),
    # Not contact details: an order number's digits, a year and a count, a price.
    ("订单号 A2026120113812345678B", "订单号 A2026120113812345678B"),
    ("2026年共有120户，每月300元", "2026年共有120户，每月300元"),
    ("", ""),
])
def test_mask_hides_phones_id_cards_and_emails_and_leaves_other_numbers(text, shown):
    assert mask(text) == shown


@pytest.fixture
def svc(tmp_path):
    with database("sqlite", tmp_path) as url, service(url) as running:
        running.load_lists()
        running.keys["leader"] = running.new_key("leader", ["P1", "P2"])  # even of the post's grid
        assert running.call("POST", "/v1/needs", json={"id": "n-pii", "title": "园区员工午餐就餐难，希望附近有食堂",
                                                       "description": CONTACT, "grid": "P1"}).status_code == 201
        yield running


def test_the_poster_and_the_grids_staff_read_it_whole_everyone_else_masked(svc):
    for role, whole in (("platform", True), ("staff", True), ("leader", False), ("analyst", False),
                        ("admin", False)):
        shown = svc.call("GET", "/v1/needs/n-pii", role).json()["description"]
        assert (shown == CONTACT) is whole, role
        listed = {n["id"]: n for n in svc.call("GET", "/v1/needs", role, params={"limit": 100}).json()["items"]}
        assert (listed["n-pii"]["description"] == CONTACT) is whole, role
        if not whole:
            assert "13812345678" not in shown.replace(" ", "") and "138****5678" in shown and "c***@" in shown
    book = load_workbook(io.BytesIO(svc.call("GET", "/v1/needs", "leader", params={"format": "xlsx"}).content))
    cells = [str(c.value) for row in book.active.iter_rows() for c in row if c.value]
    assert any("138****5678" in c for c in cells) and not any("1234 5678" in c for c in cells)
    stored = svc.app.state.sessions().execute(
        __import__("sqlalchemy").text("SELECT description FROM needs WHERE id = 'n-pii'")).scalar()
    assert stored == CONTACT  # masked when shown, kept whole


def test_the_review_pages_mask_for_an_admin_not_for_the_grids_staff(svc):
    from tests.test_review_pages import _sign_in

    assert svc.match("n-pii")
    for role, whole in (("staff", True), ("admin", False)):
        svc.client.cookies.clear()
        assert _sign_in(svc.client, svc.keys[role]).status_code == 303
        page = svc.client.get("/review", params={"grid": "P1"}).text
        text = re.sub(r"<[^>]+>", "", page)
        assert ("138 1234 5678" in text) is whole and ("138****5678" in text) is (not whole), role


def test_an_administrator_can_turn_masking_off(tmp_path):
    with database("sqlite", tmp_path) as url, service(url, mask_personal_data=False) as svc:
        svc.load_lists()
        svc.call("POST", "/v1/needs", json={"id": "n-pii", "title": "老人助餐", "description": CONTACT, "grid": "P1"})
        assert svc.call("GET", "/v1/needs/n-pii", "analyst").json()["description"] == CONTACT
