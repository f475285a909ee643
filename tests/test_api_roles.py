"""Who may do what: every route against every role."""

import json
import time

import pytest

from tests.api_helpers import database, service

# (method, path, body, roles that may) — everything else gets 403, and no key gets 401.
ROUTES = [
    ("GET", "/v1/needs", None, {"platform", "staff", "analyst", "admin"}),
    ("POST", "/v1/needs", {"id": "n-role", "title": "社区需要义诊"}, {"platform", "admin"}),
    ("PATCH", "/v1/needs/n-food", {"description": "中午"}, {"platform", "admin"}),
    ("POST", "/v1/needs/n-none/close", None, {"platform", "admin"}),
    ("GET", "/v1/resources", None, {"platform", "staff", "analyst", "admin"}),
    ("POST", "/v1/resources", {"id": "r-role", "title": "医院义诊"}, {"platform", "admin"}),
    ("GET", "/v1/grids", None, {"platform", "staff", "analyst", "admin"}),
    ("POST", "/v1/grids", {"id": "P9", "street": "桂溪街道"}, {"platform", "admin"}),
    ("POST", "/v1/match", {"need_id": "n-food"}, {"platform", "staff", "admin"}),
    ("POST", "/v1/match/batch", {}, {"platform", "admin"}),
    ("GET", "/v1/suggestions", None, {"platform", "staff", "analyst", "admin"}),
    ("POST", "/v1/suggestions/{sid}/accept", None, {"staff", "admin"}),
    ("POST", "/v1/suggestions/{sid}/reject", {"reason": "不相关"}, {"staff", "admin"}),
    ("GET", "/v1/projects", None, {"platform", "staff", "analyst", "admin"}),
    ("GET", "/v1/keys", None, {"admin"}),
    ("POST", "/v1/keys", {"role": "analyst"}, {"admin"}),
    ("GET", "/v1/audit", None, {"analyst", "admin"}),
    ("POST", "/v1/escalate", None, {"platform", "admin"}),
    ("GET", "/v1/models/active", None, {"analyst", "admin"}),
]
ROLES = ("platform", "staff", "analyst", "admin")


@pytest.fixture()
def svc(tmp_path):
    with database("sqlite", tmp_path) as url, service(url) as running:
        running.load_lists()
        yield running


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES])
def test_api_role_matrix(svc, method, path, body, allowed):
    for role in ROLES:
        # A fresh need in grid P1 (the staff key's grid) with a pending suggestion, for each role to try.
        svc.call("POST", "/v1/needs", json={"id": f"n-{role}", "title": "员工午餐就餐难", "grid": "P1"})
        sid = svc.match(f"n-{role}", k=1)[0]["id"]
        response = svc.call(method, path.format(sid=sid), role, json=body)
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert f"role '{role}' may not do this" in response.json()["detail"]
    assert svc.client.request(method, path.format(sid=1), json=body).status_code == 401


@pytest.mark.parametrize("raw", ['{"id": "n-nan", "title": "托育", "lat": NaN, "lon": 104.0}',
                                 '{"id": "n-inf", "title": "托育", "lat": Infinity, "lon": 104.0}',
                                 '{"id": "n-big", "title": "托育", "lat": 1e400, "lon": 104.0}'])
def test_api_non_finite_number_in_a_body_is_422_naming_the_field(svc, raw):
    response = svc.client.post("/v1/needs", content=raw, headers={**svc.headers("platform"),
                                                                   "Content-Type": "application/json"})
    assert response.status_code == 422
    (error,) = [e for e in response.json()["detail"] if "lat" in e["loc"]]
    assert isinstance(error["input"], str | float)  # echoed as finite JSON
    assert svc.call("GET", "/v1/needs/" + json.loads(raw.replace("NaN", "0").replace("Infinity", "0")
                                                    .replace("1e400", "0"))["id"]).status_code == 404


def test_api_validation_error_never_echoes_a_huge_value(svc):
    response = svc.call("POST", "/v1/needs", json={"id": "n-long", "title": 7, "description": ["x" * 100_000]})
    assert response.status_code == 422 and len(response.content) < 5_000


def test_api_staff_batch_status_names_unmatched_needs_of_own_grids_only(svc):
    job = svc.call("POST", "/v1/match/batch", json={"min_score": 0.99}).json()  # nothing passes: all unmatched
    deadline = time.monotonic() + 60
    while svc.call("GET", f"/v1/match/batch/{job['id']}").json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    everyone = svc.call("GET", f"/v1/match/batch/{job['id']}").json()["result"]["unmatched_needs"]
    staff = svc.call("GET", f"/v1/match/batch/{job['id']}", "staff").json()["result"]["unmatched_needs"]
    grids = {n["id"]: n["grid"] for n in svc.call("GET", "/v1/needs").json()["items"]}
    assert set(staff) == {n for n in everyone if grids[n] in ("P1", "P2")} and set(staff) < set(everyone)


@pytest.mark.parametrize("bad_id", ["n\u200b1", "\u202en1"])
def test_api_create_refuses_an_id_with_invisible_characters(svc, bad_id):
    response = svc.call("POST", "/v1/needs", json={"id": bad_id, "title": "托育"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "id"


def test_api_upload_with_a_title_of_invisible_characters_stores_nothing_and_names_the_field(svc):
    lines = [json.dumps({"id": "r-ok", "title": "社区活动场地"}), json.dumps({"id": "r-nul", "title": "\x00\x0c"})]
    files = {"file": ("bad.jsonl", "\n".join(lines).encode(), "application/jsonl")}
    response = svc.call("POST", "/v1/resources/upload", files=files)
    assert response.status_code == 422 and "title" in response.text and "non-empty" in response.text
    assert svc.call("GET", "/v1/resources/r-ok").status_code == 404  # all or nothing


def test_api_body_over_the_limit_is_413_naming_the_limit(svc):
    body = json.dumps({"id": "n-big", "title": "托育", "description": "长" * 600_000}, ensure_ascii=False)
    response = svc.client.post("/v1/needs", content=body.encode(), headers={**svc.headers("platform"),
                                                                           "Content-Type": "application/json"})
    assert response.status_code == 413 and "at most 1000000 bytes" in response.json()["detail"]
    assert svc.call("GET", "/v1/needs/n-big").status_code == 404


def test_api_chunked_body_over_the_limit_is_413(svc):
    def chunks():
        for _ in range(40):
            yield b"x" * 50_000

    response = svc.client.post("/v1/needs", content=chunks(), headers={**svc.headers("platform"),
                                                                      "Content-Type": "application/json"})
    assert response.status_code == 413
