import datetime as dt

import pytest

from api.cli import main as cli_main
from tests.api_helpers import BACKENDS, database, service

PAST = (dt.date.today() - dt.timedelta(days=3)).isoformat()
FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()


@pytest.fixture(params=BACKENDS)
def svc(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url) as running:
        running.load_lists()
        running.url = url
        yield running


def test_api_escalate_flags_overdue_need_and_widens_ring(svc):
    svc.call("PATCH", "/v1/needs/n-law", json={"deadline": PAST, "ring": "area"})
    svc.call("PATCH", "/v1/needs/n-food", json={"deadline": FUTURE})
    assert svc.call("POST", "/v1/escalate").json() == {"escalated": ["n-law"]}
    need = svc.call("GET", "/v1/needs/n-law").json()
    assert need["escalated"] and need["ring"] == "street"
    listed = svc.call("GET", "/v1/needs", params={"escalated": "true"}).json()["items"]
    assert [n["id"] for n in listed] == ["n-law"]
    assert svc.call("POST", "/v1/escalate").json() == {"escalated": []}  # once per need


def test_api_escalated_need_reaches_a_wider_ring(svc):
    svc.call("PATCH", "/v1/needs/n-law", json={"deadline": PAST, "ring": "street"})
    before = {s["resource_id"] for s in svc.match("n-law", k=6)}
    svc.call("POST", "/v1/escalate")
    after = {s["resource_id"] for s in svc.match("n-law", k=6)}
    assert "r-law" not in before and "r-law" in after  # r-law sits in another street


def test_api_need_with_project_is_not_escalated(svc):
    svc.call("PATCH", "/v1/needs/n-care", json={"deadline": PAST})
    sid = next(s["id"] for s in svc.match("n-care") if s["resource_id"] == "r-care")
    svc.call("POST", f"/v1/suggestions/{sid}/accept", "staff")
    assert svc.call("POST", "/v1/escalate").json() == {"escalated": []}


def test_cli_escalate_does_the_same(svc, capsys):
    svc.call("PATCH", "/v1/needs/n-law", json={"deadline": PAST})
    assert cli_main(["escalate", "--database-url", svc.url]) == 0
    assert "escalated 1 need(s): n-law" in capsys.readouterr().out
