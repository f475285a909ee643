import threading
import time

import pytest

from tests.api_helpers import BACKENDS, database, service


@pytest.fixture(params=BACKENDS)
def svc(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url) as running:
        running.load_lists()
        yield running


def _wait_for_job(svc, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = svc.call("GET", f"/v1/match/batch/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"batch {job_id} still {job['status']}")


def test_api_match_by_id_returns_and_stores_pending_suggestions(svc):
    suggestions = svc.match("n-care", k=2)
    assert suggestions[0]["resource_id"] == "r-care"
    first = suggestions[0]
    assert set(first) >= {"id", "need_id", "resource_id", "score", "features", "reasons", "model_version", "status"}
    assert first["status"] == "pending" and first["model_version"] == "default"
    stored = svc.call("GET", "/v1/suggestions", params={"need_id": "n-care", "status": "pending"}).json()
    assert stored["total"] == len(suggestions)


def test_api_match_again_supersedes_earlier_pending(svc):
    svc.match("n-care", k=2)
    svc.match("n-care", k=2)
    superseded = svc.call("GET", "/v1/suggestions", params={"need_id": "n-care", "status": "superseded"}).json()
    assert superseded["total"] == 2


def test_api_match_with_need_in_body_stores_the_need(svc):
    body = {"need": {"id": "n-body", "title": "企业需要专利申请服务", "grid": "P4"}, "k": 3}
    response = svc.call("POST", "/v1/match", json=body)
    assert response.status_code == 200
    assert response.json()["suggestions"][0]["resource_id"] == "r-ip"
    assert svc.call("GET", "/v1/needs/n-body").json()["ring"] == "street"


@pytest.mark.parametrize("body", [{}, {"need_id": "n-care", "need": {"id": "x", "title": "托育"}},
                                  {"need_id": "n-care", "k": 0}, {"need_id": "n-care", "k": 101}])
def test_api_match_bad_body_is_422(svc, body):
    assert svc.call("POST", "/v1/match", json=body).status_code == 422


def test_api_match_unknown_need_is_404(svc):
    assert svc.call("POST", "/v1/match", json={"need_id": "nope"}).status_code == 404


def test_api_match_closed_need_is_409(svc):
    svc.call("POST", "/v1/needs/n-care/close")
    assert svc.call("POST", "/v1/match", json={"need_id": "n-care"}).status_code == 409


def test_api_new_resource_is_matched_at_once(svc):
    svc.call("POST", "/v1/resources", json={"id": "r-new", "title": "托育机构新增暑期托管名额", "grid": "P2"})
    assert "r-new" in {s["resource_id"] for s in svc.match("n-care", k=3)}


def test_api_closed_resource_is_gone_at_once(svc):
    svc.call("POST", "/v1/resources/r-care/close")
    assert "r-care" not in {s["resource_id"] for s in svc.match("n-care", k=6)}


def test_api_edited_resource_text_changes_the_next_match(svc):
    # n-law searches its own street (the initial ring), where r-ip sits; r-law is a street away.
    before = svc.match("n-law", k=1)
    svc.call("PATCH", "/v1/resources/r-ip", json={"title": "律师为企业提供劳动合同纠纷法律咨询"})
    after = svc.match("n-law", k=1)
    assert all(s["resource_id"] != "r-ip" for s in before) and after[0]["resource_id"] == "r-ip"


def test_api_new_words_refit_a_small_index_at_once(svc):
    engine = svc.app.state.engine
    svc.call("POST", "/v1/resources", json={"id": "r-room", "title": "园区共享会议室按小时预约，可办路演"})
    assert "共享会议室" in engine.matcher.vectorizer_.word_.vocabulary_
    (top,) = svc.match("n-food", k=1)[:1] or [None]
    assert top is not None


def test_api_many_new_resources_refit_a_large_index_in_the_background(svc, monkeypatch):
    import api.engine

    monkeypatch.setattr(api.engine, "SMALL_INDEX", 0)
    engine = svc.app.state.engine
    for i in range(60):
        svc.call("POST", "/v1/resources", json={"id": f"r-bulk{i}", "title": f"园区第{i}号共享会议室按小时预约"})
    engine.wait_for_refit()
    assert "共享会议室" in engine.matcher.vectorizer_.word_.vocabulary_
    assert engine.matcher.n_resources_ == 66  # writes made during the refit were replayed


def test_api_batch_runs_in_background_and_reports_result(svc):
    response = svc.call("POST", "/v1/match/batch", json={"min_score": 0.2})
    assert response.status_code == 202
    job = _wait_for_job(svc, response.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0
    result = job["result"]
    assert result["pairs"] + result["unmatched"] == result["needs"] == 5
    batch = svc.call("GET", "/v1/suggestions", params={"status": "pending"}).json()["items"]
    assert len(batch) == result["pairs"] and all(s["origin"].startswith("batch:") for s in batch)


def test_api_second_batch_while_one_runs_is_409(svc):
    engine = svc.app.state.engine
    release = threading.Event()
    original = engine.assign

    def slow_assign(*args, **kwargs):
        release.wait(10)
        return original(*args, **kwargs)

    engine.assign = slow_assign
    first = svc.call("POST", "/v1/match/batch", json={})
    second = svc.call("POST", "/v1/match/batch", json={})
    release.set()
    assert (first.status_code, second.status_code) == (202, 409)
    assert "already running" in second.json()["detail"]
    assert _wait_for_job(svc, first.json()["id"])["status"] == "done"


def test_api_batch_that_dies_midway_writes_nothing(svc, monkeypatch):
    svc.match("n-food", k=2)
    before = svc.call("GET", "/v1/suggestions", params={"limit": 500}).json()["items"]
    import api.jobs

    real_store = api.jobs.store

    def dying_store(session, suggestions, *args, **kwargs):
        real_store(session, suggestions[:1], *args, **kwargs)
        session.flush()
        raise RuntimeError("power cut")

    monkeypatch.setattr(api.jobs, "store", dying_store)
    job = _wait_for_job(svc, svc.call("POST", "/v1/match/batch", json={"min_score": 0.1}).json()["id"])
    assert job["status"] == "failed" and "power cut" in job["error"]
    after = svc.call("GET", "/v1/suggestions", params={"limit": 500}).json()["items"]
    assert after == before


def test_api_batch_status_unknown_job_is_404(svc):
    assert svc.call("GET", "/v1/match/batch/nope").status_code == 404


def test_api_uses_an_injected_fitted_engine(tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from matcher import Matcher
    from tests.api_helpers import Service, settings_for
    from tests.conftest import GRIDS, RESOURCES

    engine = Matcher().fit(RESOURCES, grids=GRIDS)
    with database("sqlite", tmp_path) as url, TestClient(create_app(settings_for(url), matcher=engine)) as client:
        assert client.get("/readyz").json()["resources_indexed"] == len(RESOURCES)
        svc = Service(client)
        assert svc.app.state.engine.matcher is engine  # shared, not refitted at start-up


def test_api_match_during_a_batch_answers_and_the_batch_finishes(svc):
    # The batch is held inside the matcher it started with, where the whole engine used to be locked.
    matcher = svc.app.state.engine.snapshot.matcher
    inside, release = threading.Event(), threading.Event()
    original = matcher.assign

    def held_assign(*args, **kwargs):
        inside.set()
        release.wait(30)
        return original(*args, **kwargs)

    matcher.assign = held_assign
    job = svc.call("POST", "/v1/match/batch", json={}).json()
    try:
        assert inside.wait(10)
        suggestions = svc.match("n-care", k=2)
        status = svc.call("GET", f"/v1/match/batch/{job['id']}").json()["status"]
    finally:
        release.set()
    assert suggestions[0]["resource_id"] == "r-care" and status == "running"
    assert _wait_for_job(svc, job["id"])["status"] == "done"


def test_api_model_swap_during_a_batch_is_not_undone(svc):
    from matcher.features import FEATURES
    from matcher.scoring import LinearScorer

    engine = svc.app.state.engine
    before = engine.snapshot
    swapped = LinearScorer(weights=dict.fromkeys(FEATURES, 0.0) | {"word_cosine": 8.0}, bias=1.0, version="swapped")
    engine.set_scorer(swapped)
    svc.call("POST", "/v1/resources", json={"id": "r-new", "title": "园区共享会议室按小时预约", "grid": "P1"})
    after = engine.snapshot
    assert after.generation > before.generation and after.model_version == "swapped"
    assert before.model_version == "default" and "r-new" not in before.matcher  # published snapshots never change
    assert svc.match("n-care", k=1)[0]["model_version"] == "swapped"


def test_background_refit_overtaken_by_a_rebuild_discards_itself(svc):
    engine = svc.app.state.engine
    original_build = engine._build
    inside, release, builds = threading.Event(), threading.Event(), []

    def held_first_build():
        builds.append(threading.current_thread().name)
        if len(builds) == 1:  # the background refit's read of the database
            inside.set()
            release.wait(10)
        return original_build()

    engine._build = held_first_build
    engine._refit_in_background()
    assert inside.wait(10)
    engine.rebuild()  # newer data, published while the refit still builds from older rows
    newer = engine.snapshot
    release.set()
    engine.wait_for_refit()
    assert builds[0] == "duijie-refit" and engine.snapshot is newer


def test_api_match_and_batch_results_are_audited(svc):
    svc.match("n-care", k=2)
    job = svc.call("POST", "/v1/match/batch", json={}).json()
    _wait_for_job(svc, job["id"])
    entries = svc.call("GET", "/v1/audit", "admin", params={"limit": 200}).json()["items"]
    matched = [e for e in entries if e["action"] == "match" and e["entity_id"] == "n-care"]
    assert matched and matched[0]["detail"]["model_version"] == "default" and matched[0]["detail"]["suggestions"]
    finished = [e for e in entries if e["action"] == "finish" and e["entity_id"] == job["id"]]
    assert finished and finished[0]["detail"]["needs"] == 5
