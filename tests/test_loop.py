"""The three-list loop running by itself: match on arrival from every door, schedules, signed webhooks
from the outbox, scope by the grid tree, project follow-up and a review flow that keeps its place."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import time

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from api import outbox
from api.cli import main as cli_main
from api.history_db import outcome_decisions
from api.schedule import Schedules
from api.tables import BatchJobRow, OutboxRow, ScheduleRunRow, SuggestionRow
from matcher.history import Decision, check
from tests.api_helpers import BACKENDS, database, free_port, service

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, as the spec's secrets are
PAST = (dt.date.today() - dt.timedelta(days=3)).isoformat()
LOOP = {"arrival_matching": True, "arrival_debounce_s": 0.05, "change_poll_s": 0.2, "webhook_poll_s": 0.1}
# Webhook tests count events: only the calls a test makes write them.
HOOKS = {**LOOP, "arrival_matching": False}


def wait_for(check, timeout: float = 20.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s: {check}")


def pending(svc, need_id: str) -> list[dict]:
    return svc.call("GET", "/v1/suggestions", params={"need_id": need_id, "status": "pending"}).json()["items"]


@pytest.fixture(params=BACKENDS)
def loop(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url, **LOOP) as svc:
        svc.load_lists()
        svc.url = url
        yield svc


# ------------------------------------------------------------------ match on arrival, by every door
def test_a_need_created_by_the_api_gets_suggestions_without_a_match_call(loop):
    response = loop.call("POST", "/v1/needs", json={"id": "n-new", "title": "企业需要申请专利和注册商标", "grid": "P4"})
    assert response.status_code == 201
    found = wait_for(lambda: pending(loop, "n-new"))
    assert found[0]["origin"] == "arrival" and found[0]["resource_id"]


def test_an_uploaded_need_gets_suggestions(loop):
    data = json.dumps({"id": "n-up", "title": "职工孩子暑假没人带，需要托管", "grid": "P2"}, ensure_ascii=False)
    response = loop.call("POST", "/v1/needs/upload", files={"file": ("needs.jsonl", data.encode(), "text/plain")})
    assert response.json()["created"] == 1
    assert wait_for(lambda: pending(loop, "n-up"))[0]["resource_id"] == "r-care"


def test_an_edited_need_is_matched_again_on_its_new_text(loop):
    wait_for(lambda: pending(loop, "n-none") or True)
    loop.app.state.writes.arrivals.wait_idle()
    loop.call("PATCH", "/v1/needs/n-none", json={"title": "公司需要申请专利和注册商标"})
    assert wait_for(lambda: [s for s in pending(loop, "n-none") if s["resource_id"] == "r-ip"])


def test_a_need_posted_on_the_web_form_gets_suggestions(tmp_path):
    with database("sqlite", tmp_path) as url, service(url, session_secret="s" * 40, **LOOP) as svc:
        svc.load_lists()
        page = svc.client.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        svc.client.post("/review/login", data={"key": svc.keys["staff"], "csrf": csrf})
        csrf = re.search(r'name="csrf" value="([^"]+)"', svc.client.get("/review/post").text).group(1)
        answer = svc.client.post("/review/post", data={"kind": "needs", "title": "社区需要停车位给来访家属",
                                                        "grid": "P2", "csrf": csrf})
        assert answer.status_code == 201 and "正在为它匹配" in answer.text
        need_id = re.search(r"已发布 需求 (W[0-9A-F-]+)", answer.text).group(1)
        assert wait_for(lambda: pending(svc, need_id))


def test_a_need_imported_by_the_cli_into_the_service_database_is_matched_once(loop, tmp_path, capsys):
    path = tmp_path / "needs.jsonl"
    path.write_text(json.dumps({"id": "n-cli", "title": "企业员工午餐没有地方吃", "grid": "P1"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli_main(["import", "needs", str(path), "--database-url", loop.url]) == 0
    assert "1 added" in capsys.readouterr().out
    found = wait_for(lambda: pending(loop, "n-cli"))
    assert found[0]["resource_id"] == "r-food"
    time.sleep(0.6)  # more polls of the change log: the claimed event is not matched again
    with loop.app.state.readers() as session:
        made = session.scalar(select(func.count()).select_from(SuggestionRow).where(SuggestionRow.need_id == "n-cli"))
    assert made == len(found)


def test_a_new_resource_rematches_waiting_needs_in_its_ring(loop):
    loop.app.state.writes.arrivals.wait_idle()
    assert not pending(loop, "n-none")  # nothing fits a chef contest yet
    loop.call("POST", "/v1/resources", json={"id": "r-chef", "title": "川菜厨师可参加美食比赛担任评委和选手",
                                             "grid": "P4", "category": "餐饮"})
    assert wait_for(lambda: [s for s in pending(loop, "n-none") if s["resource_id"] == "r-chef"])


def test_a_match_call_is_not_undone_by_the_arrival_queue(loop):
    body = {"need": {"id": "n-both", "title": "企业需要专利申请服务", "grid": "P4"}, "k": 3}
    ids = {s["id"] for s in loop.call("POST", "/v1/match", json=body).json()["suggestions"]}
    loop.app.state.writes.arrivals.wait_idle()
    time.sleep(0.3)
    assert {s["id"] for s in pending(loop, "n-both")} == ids


def test_a_full_arrival_queue_drops_and_says_so(loop):
    arrivals = loop.app.state.writes.arrivals
    assert arrivals.wait_idle()  # the lists' own arrivals matched first: n-care is no longer queued
    arrivals._limit = 0
    assert arrivals.submit(["n-care"]) == 0


# ------------------------------------------------------------------ the write path applies once
def test_an_accept_publishes_one_snapshot_and_its_echo_none(loop):
    engine = loop.app.state.engine
    loop.app.state.writes.arrivals.wait_idle()
    sid = next(s["id"] for s in loop.match("n-care") if s["resource_id"] == "r-care")
    before = engine.snapshot.generation
    assert loop.call("POST", f"/v1/suggestions/{sid}/accept", "staff").status_code == 201
    assert engine.snapshot.generation == before + 1  # capacity taken: one index edit
    found = loop.app.state.changes.poll()  # this worker's own events come back from the log ...
    loop.app.state.writes.follow(found)
    assert engine.snapshot.generation == before + 1  # ... and change nothing
    assert engine.matcher.indexed("r-care").taken == 1


# ------------------------------------------------------------------ schedules
def test_escalation_runs_at_start_so_the_escalated_page_is_filled(tmp_path):
    with database("sqlite", tmp_path) as url:
        with service(url) as svc:
            svc.load_lists()
            svc.call("PATCH", "/v1/needs/n-law", json={"deadline": PAST})
        with service(url, escalation_interval_s=3600, **LOOP) as svc:
            assert wait_for(lambda: svc.call("GET", "/v1/needs", params={"escalated": "true"}).json()["items"])
            jobs = {j["job"]: j for j in svc.call("GET", "/v1/schedules").json()}
            assert jobs["escalation"]["last_run"]["status"] == "done"
            assert jobs["escalation"]["next_run"] and jobs["nightly_batch"]["enabled"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_nightly_batch_runs_once_with_two_workers(backend, tmp_path):
    with database(backend, tmp_path) as url, service(url, batch_at="02:00") as svc:
        svc.load_lists()
        state = svc.app.state
        workers = [Schedules(state.sessions, state.batches, state.writes, worker=name, batch_at="02:00")
                   for name in ("worker-a", "worker-b")]
        results: list = []
        threads = [threading.Thread(target=lambda w=w: results.append(w.nightly_batch())) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(results, key=str) == [None, "done"]
        with state.readers() as session:
            assert session.scalar(select(func.count()).select_from(BatchJobRow)) == 1
            run = session.scalar(select(ScheduleRunRow))
            assert run.job == "nightly_batch" and run.status == "done" and run.detail["pairs"] >= 1
        jobs = {j["job"]: j for j in svc.call("GET", "/v1/schedules").json()}
        assert jobs["nightly_batch"]["enabled"] and jobs["nightly_batch"]["next_run"]


def test_bad_schedule_settings_are_refused_naming_the_variable():
    from pydantic import ValidationError

    from api.settings import Settings

    with pytest.raises(ValidationError, match="DUIJIE_BATCH_AT: expected a local time HH:MM"):
        Settings(batch_at="2am")
    with pytest.raises(ValidationError, match="DUIJIE_TIMEZONE"):
        Settings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="DUIJIE_WEBHOOK_SECRET: expected a secret starting with whsec_"):
        Settings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="plain")


# ------------------------------------------------------------------ webhooks
class Receiver:
    """A webhook receiver on loopback that answers `fail` times 500, then 204, and keeps what came."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.got = fail, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append((dict(self.headers), body))
                code = 500 if outer.fail > 0 else 204
                outer.fail -= 1
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, type_: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for h, b in self.got if json.loads(b)["type"] == type_]


@pytest.fixture
def receiver():
    made = []

    def make(fail: int = 0) -> Receiver:
        made.append(Receiver(fail))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_webhooks_are_signed_by_the_standard_and_verify(backend, tmp_path, receiver):
    hook = receiver()
    with database(backend, tmp_path) as url, service(url, webhook_url=hook.url, webhook_secret=SECRET, **HOOKS) as svc:
        svc.load_lists()
        sid = next(s["id"] for s in svc.match("n-care") if s["resource_id"] == "r-care")
        project = svc.call("POST", f"/v1/suggestions/{sid}/accept", "staff").json()
        svc.call("PATCH", f"/v1/projects/{project['id']}", "staff", json={"note": "已电话联系双方"})
        wait_for(lambda: hook.events("project.updated") and hook.events("project.created")
                 and hook.events("suggestion.created"))
    for headers, body in hook.got:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["webhook-id"].startswith("msg_")
        event = Webhook(SECRET).verify(body, lowered)  # raises on a bad signature
        assert set(event) == {"type", "timestamp", "data"}
    (headers, body), = hook.events("project.created")
    assert json.loads(body)["data"]["project_id"] == project["id"]
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(SECRET).verify(body.replace(b"active", b"closed"), {k.lower(): v for k, v in headers.items()})


def test_a_receiver_outage_is_retried_with_the_same_webhook_id(tmp_path, receiver, monkeypatch):
    monkeypatch.setattr(outbox, "FIRST_RETRY_S", 0.05)
    hook = receiver(fail=2)
    with database("sqlite", tmp_path) as url, service(url, webhook_url=hook.url, webhook_secret=SECRET, **HOOKS) as svc:
        svc.load_lists()
        svc.match("n-care")
        wait_for(lambda: len(hook.got) >= 3)
        ids = {h["webhook-id"] for h, _ in hook.got}
        assert len(ids) == 1  # three attempts of one event
        with svc.app.state.readers() as session:
            row = session.scalar(select(OutboxRow))
            assert row.status == "delivered" and row.attempts == 3


def test_a_dead_event_is_shown_and_can_be_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox, "GIVE_UP", dt.timedelta(seconds=0))
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with database("sqlite", tmp_path) as url, service(url, webhook_url=dead_url, webhook_secret=SECRET, **HOOKS) as svc:
        svc.load_lists()
        svc.match("n-care")
        listed = wait_for(lambda: svc.call("GET", "/v1/webhooks", "analyst").json()["items"])
        assert listed[0]["last_error"] and svc.call("GET", "/v1/webhooks", "analyst").json()["counts"]["dead"] == 1
        assert "duijie_webhook_attempts_total" in svc.client.get("/metrics").text
        assert svc.call("POST", f"/v1/webhooks/{listed[0]['id']}/retry", "admin").json()["status"] == "pending"
        assert svc.call("POST", "/v1/webhooks/999999/retry", "admin").status_code == 404


def test_undelivered_events_survive_a_restart(tmp_path, receiver):
    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    with database("sqlite", tmp_path) as url:
        with service(url, webhook_url=dead_url, webhook_secret=SECRET, **HOOKS) as svc:
            svc.load_lists()
            svc.match("n-care")
            wait_for(lambda: svc.call("GET", "/v1/webhooks", "analyst", params={"state": "pending"}).json()["items"])
            with svc.app.state.readers() as session:
                kept = session.scalar(select(OutboxRow.webhook_id))
        hook = receiver()
        with service(url, webhook_url=hook.url, webhook_secret=SECRET, **HOOKS) as svc:
            with svc.app.state.sessions() as session, session.begin():  # due now, not after its backoff
                session.execute(OutboxRow.__table__.update().values(next_attempt_at=dt.datetime.now(dt.UTC)))
            svc.app.state.writes.sender.wake()
            wait_for(lambda: hook.got)
        assert hook.got[0][0]["webhook-id"] == kept


# ------------------------------------------------------------------ scope by the grid tree
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_block_grid_key_sees_every_grid_under_it(backend, tmp_path):
    with database(backend, tmp_path) as url, service(url) as svc:
        svc.load_lists()
        svc.call("POST", "/v1/needs", json={"id": "n-p3", "title": "医院职工午餐就餐难，希望有食堂", "grid": "P3"})
        for need in ("n-care", "n-food", "n-p3", "n-park"):
            svc.match(need)
        svc.keys["block"] = svc.new_key("staff", ["B1"])  # B1 > A1 > P1, P2; B1 > P3
        seen = {s["need_id"] for s in svc.call("GET", "/v1/suggestions", "block").json()["items"]}
        assert seen == {"n-care", "n-food", "n-p3", "n-park"}
        svc.keys["area"] = svc.new_key("staff", ["A1"])
        seen = {s["need_id"] for s in svc.call("GET", "/v1/suggestions", "area").json()["items"]}
        assert seen == {"n-care", "n-food", "n-park"}  # n-p3 sits in P3, under the block only


def test_unknown_grids_and_streets_are_refused_by_name(loop, capsys):
    assert cli_main(["keys", "--database-url", loop.url, "create", "--role", "staff", "--grids", "P1,NOPE"]) == 2
    assert "unknown NOPE" in capsys.readouterr().err
    assert cli_main(["keys", "--database-url", loop.url, "create", "--role", "leader", "--streets", "火星街道"]) == 2
    assert "unknown 火星街道" in capsys.readouterr().err
    response = loop.call("POST", "/v1/keys", "admin", json={"role": "staff", "grids": ["NOPE"]})
    assert response.status_code == 422 and "NOPE" in response.text


def test_a_street_leader_reads_its_street_and_decides_nothing(loop, capsys):
    for need in ("n-care", "n-law"):
        loop.match(need)
    assert cli_main(["keys", "--database-url", loop.url, "create", "--role", "leader", "--streets", "芳草街道"]) == 0
    loop.keys["leader"] = capsys.readouterr().out.strip().splitlines()[-1]
    needs = {n["id"] for n in loop.call("GET", "/v1/needs", "leader").json()["items"]}
    assert needs == set()  # no need is posted in 芳草街道 (P5)
    resources = {r["id"] for r in loop.call("GET", "/v1/resources", "leader").json()["items"]}
    assert resources == {"r-law", "r-care-far"}
    assert loop.call("GET", "/v1/stats", "leader").status_code == 200
    sid = loop.call("GET", "/v1/suggestions", "admin").json()["items"][0]["id"]
    assert loop.call("POST", f"/v1/suggestions/{sid}/accept", "leader").status_code == 403


# ------------------------------------------------------------------ project follow-up
@pytest.mark.parametrize("backend", BACKENDS)
def test_follow_up_and_outcome_round_trip(backend, tmp_path):
    with database(backend, tmp_path) as url, service(url) as svc:
        svc.load_lists()
        sid = next(s["id"] for s in svc.match("n-care") if s["resource_id"] == "r-care")
        pid = svc.call("POST", f"/v1/suggestions/{sid}/accept", "staff").json()["id"]
        noted = svc.call("POST", f"/v1/projects/{pid}/notes", "staff", json={"note": "双方已见面，下周开班"})
        assert noted.status_code == 201 and noted.json()["notes"][0]["note"] == "双方已见面，下周开班"
        refused = svc.call("PATCH", f"/v1/projects/{pid}", "staff", json={"status": "completed"})
        assert refused.status_code == 422 and "resolution" in refused.text
        bad = svc.call("PATCH", f"/v1/projects/{pid}", "staff", json={"satisfaction": 9})
        assert bad.status_code == 422 and "satisfaction" in bad.text
        done = svc.call("PATCH", f"/v1/projects/{pid}", "staff",
                        json={"status": "completed", "resolution": "解决", "satisfaction": 5, "outcome": "已开班"})
        assert done.status_code == 200
        project = svc.call("GET", f"/v1/projects/{pid}").json()
        assert (project["status"], project["resolution"], project["satisfaction"]) == ("completed", "resolved", 5)
        assert project["finished_at"] and len(project["notes"]) == 1
        again = svc.call("PATCH", f"/v1/projects/{pid}", "staff", json={"status": "cancelled"})
        assert again.status_code == 409
        total = svc.call("GET", "/v1/stats").json()["total"]
        assert total["projects_completed"] == 1 and total["projects_by_resolution"] == {"解决": 1}
        assert total["median_days_to_completion"] is not None
        with svc.app.state.readers() as session:
            audit = svc.call("GET", "/v1/audit", "analyst").json()["items"]
            assert any(a["action"] == "follow_up" for a in audit)
            outcomes = [(d.need_id, d.resource_id, d.label, d.kind) for d in outcome_decisions(session)]
        assert outcomes == [("n-care", "r-care", 1.0, "outcome:resolved")]
        # an unsolved outcome outranks the accept that formed the project: a negative, not a clash
        merged = check([Decision("n", "r", 1.0, "accepted", None, "", ""),
                        Decision("n", "r", 0.0, "outcome:unresolved", None, "", ""),
                        *[Decision(f"n{i}", "r", float(i % 2), "accepted" if i % 2 else "rejected", None, "", "")
                          for i in range(40)]], source="test")
        assert next(d for d in merged if d.need_id == "n").kind == "outcome:unresolved"


# ------------------------------------------------------------------ the review flow keeps its place
@pytest.fixture
def page(tmp_path):
    with database("sqlite", tmp_path) as url, service(url, session_secret="s" * 40) as svc:
        svc.load_lists()
        for need in ("n-care", "n-food", "n-park"):
            svc.match(need, k=3)
        login = svc.client.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        svc.client.post("/review/login", data={"key": svc.keys["staff"], "csrf": csrf})
        yield svc


def _csrf(client, path="/review") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def test_a_decision_returns_to_the_same_filter_search_and_page(page):
    sid = page.call("GET", "/v1/suggestions", params={"need_id": "n-food"}).json()["items"][0]["id"]
    here = "/review?grid=P1&q=%E5%8D%88%E9%A4%90&page=1"
    answer = page.client.post(f"/review/suggestions/{sid}/reject", follow_redirects=False,
                              data={"csrf": _csrf(page.client), "reason": "不相关", "next": here})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/review?grid=P1&q=%E5%8D%88%E9%A4%90&page=1&notice=rejected"
    sid = page.call("GET", "/v1/suggestions",
                    params={"need_id": "n-food", "status": "pending"}).json()["items"][0]["id"]
    answer = page.client.post(f"/review/suggestions/{sid}/accept", follow_redirects=False,
                              data={"csrf": _csrf(page.client), "next": "//evil.example/x"})
    assert answer.headers["location"] == "/review?notice=accepted"  # never another site


def test_bulk_decisions_one_transaction_each_with_per_card_results(page):
    items = page.call("GET", "/v1/suggestions", params={"status": "pending"}).json()["items"]
    care = [s["id"] for s in items if s["need_id"] == "n-care"][:2]  # two of one need: the second is superseded
    answer = page.client.post("/review/suggestions/bulk", data={"csrf": _csrf(page.client), "action": "accept",
                                                                "ids": care, "next": "/review?grid=P2"})
    assert answer.status_code == 200 and "批量处理结果" in answer.text
    assert "已接受，项目 #" in answer.text and "已被处理" in answer.text
    park = [s["id"] for s in items if s["need_id"] == "n-park"]
    answer = page.client.post("/review/suggestions/bulk", data={"csrf": _csrf(page.client), "action": "reject",
                                                                "reason": "不相关", "ids": park})
    assert answer.text.count("已拒绝（不相关）") == len(park)
    refused = page.client.post("/review/suggestions/bulk", data={"csrf": _csrf(page.client), "action": "reject",
                                                                 "reason": "其他", "ids": park})
    assert refused.status_code == 422 and "请填写说明" in refused.text


def test_title_search_reads_traditional_script_and_synonyms(tmp_path):
    with database("sqlite", tmp_path) as url, service(url, session_secret="s" * 40) as svc:
        svc.load_lists()
        svc.call("PATCH", "/v1/needs/n-law", json={"ring": "district"})  # r-law is in another street
        svc.match("n-law", k=6)
        svc.keys["far"] = svc.new_key("staff", ["P3", "P5"])
        login = svc.client.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        svc.client.post("/review/login", data={"key": svc.keys["far"], "csrf": csrf})
        for query in ("律師", "法务", "律师"):
            shown = svc.client.get("/review", params={"q": query}).text
            assert "律师事务所" in shown or "法律咨询" in shown, query
        assert "没有待审核" in svc.client.get("/review", params={"q": "火箭发射"}).text


def test_project_follow_up_on_the_page(page):
    sid = next(s["id"] for s in page.match("n-care") if s["resource_id"] == "r-care")
    pid = page.call("POST", f"/v1/suggestions/{sid}/accept", "staff").json()["id"]
    csrf = _csrf(page.client, "/review/projects")
    answer = page.client.post(f"/review/projects/{pid}", data={"csrf": csrf, "note": "已回访，家长满意",
                                                               "next": "/review/projects?q=托育"},
                              follow_redirects=False)
    assert answer.headers["location"].startswith("/review/projects?q=")
    shown = page.client.get("/review/projects").text
    assert "已回访，家长满意" in shown
    done = page.client.post(f"/review/projects/{pid}", data={"csrf": csrf, "status": "completed"})
    assert done.status_code == 422 and "请选择结果" in done.text
    page.client.post(f"/review/projects/{pid}", data={"csrf": csrf, "status": "completed", "resolution": "partial",
                                                      "satisfaction": "4"})
    shown = page.client.get("/review/projects").text
    assert "部分解决" in shown and "满意度 4 / 5" in shown


def test_the_cli_escalation_goes_through_the_write_path(loop, capsys):
    loop.call("PATCH", "/v1/needs/n-law", json={"deadline": PAST})
    loop.app.state.writes.arrivals.wait_idle()
    assert cli_main(["escalate", "--database-url", loop.url]) == 0
    assert "n-law" in capsys.readouterr().out
    with loop.app.state.readers() as session:
        assert session.scalar(select(OutboxRow.type).where(OutboxRow.type == "need.escalated"))
    # the service claims the escalated need from the log and matches it in its wider ring
    assert wait_for(lambda: [s for s in pending(loop, "n-law") if s["resource_id"] == "r-law"])


def test_signed_headers_verify_with_the_package():
    body = '{"type":"need.escalated","timestamp":"t","data":{}}'
    assert Webhook(SECRET).verify(body, outbox.signed_headers(SECRET, "msg_x", body))["type"] == "need.escalated"


def test_several_workers_get_a_health_check_timeout_a_long_batch_fits_in(monkeypatch):
    captured = {}

    class Supervisor:  # stands in for uvicorn's: records the config it would run with
        def __init__(self, config, sockets):
            captured["timeout"] = config.timeout_worker_healthcheck
            for sock in sockets:
                sock.close()

        def run(self):
            pass

    monkeypatch.setattr("uvicorn.supervisors.Multiprocess", Supervisor)
    monkeypatch.setattr("api.cli._prepare_workers", lambda settings: None)
    monkeypatch.setenv("DUIJIE_WORKER_HEALTHCHECK_S", "120")
    args = ["serve", "--workers", "2", "--database-url", "postgresql://nobody@127.0.0.1/none", "--port",
            str(free_port())]
    assert cli_main(args) == 0
    assert captured["timeout"] == 120  # uvicorn's own default, 5 s, restarted a busy worker mid-batch
