"""The service with the semantic stage: the min_score gate, grid-less needs, stored embeddings, highlights."""

import json
import re

import pytest
from sqlalchemy import func, select

import matcher.encode
from api.tables import EmbeddingRow, SuggestionRow
from tests.api_helpers import BACKENDS, database, service


@pytest.fixture(params=BACKENDS)
def svc(request, tmp_path):
    with database(request.param, tmp_path) as url, service(url) as running:
        running.load_lists()
        running.url = url
        yield running


def _stored(svc, model) -> int:
    with svc.app.state.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_api_match_stores_nothing_below_min_score(svc):
    # Nothing on the lists serves a call for a Sichuan cook: every candidate falls under the minimum.
    body = svc.call("POST", "/v1/match", json={"need_id": "n-none", "k": 5}).json()
    assert body["suggestions"] == [] and body["below_min_score"] >= 1
    assert body["min_score"] == svc.app.state.engine.scorer.card["min_score"]
    assert svc.call("GET", "/v1/suggestions", params={"need_id": "n-none"}).json()["total"] == 0


def test_api_match_returns_only_suggestions_at_or_above_min_score(svc):
    body = svc.call("POST", "/v1/match", json={"need_id": "n-care", "k": 6}).json()
    assert body["suggestions"][0]["resource_id"] == "r-care"
    assert all(s["score"] >= body["min_score"] for s in body["suggestions"])
    assert len(body["suggestions"]) + body["below_min_score"] <= 6


def test_api_min_score_setting_overrides_the_models(tmp_path):
    with database("sqlite", tmp_path) as url, service(url, min_score=0.0) as running:
        running.load_lists()
        body = running.call("POST", "/v1/match", json={"need_id": "n-none", "k": 3}).json()
        assert body["min_score"] == 0.0 and len(body["suggestions"]) == 3 and body["below_min_score"] == 0


def test_api_need_posted_without_a_grid_gets_suggestions(svc):
    body = {"need": {"id": "x", "title": "需要律师做合同审查和法律咨询"}, "k": 3}
    response = svc.call("POST", "/v1/match", json=body)
    assert response.status_code == 200
    assert response.json()["suggestions"][0]["resource_id"] == "r-law"


def test_api_suggestions_carry_terms_as_each_post_wrote_them(svc):
    svc.call("POST", "/v1/needs", json={"id": "n-tw", "title": "員工停車難，希望附近有車位", "grid": "P1"})
    (best, *_) = svc.match("n-tw", k=3)
    assert best["resource_id"] == "r-park"
    assert {"term": "停车", "need": "停車", "resource": "停车位"} in best["terms"] or any(
        t["need"] in ("停車", "車位") for t in best["terms"])


def test_api_posted_need_is_encoded_and_stored_once(svc):
    before = _stored(svc, EmbeddingRow)
    svc.call("POST", "/v1/needs", json={"id": "n-new", "title": "园区想办一场青年联谊活动", "grid": "P1"})
    assert _stored(svc, EmbeddingRow) == before + 1
    svc.match("n-new", k=2)  # encoded already: matching stores nothing new
    assert _stored(svc, EmbeddingRow) == before + 1


def test_api_restart_reuses_stored_embeddings_without_encoding(tmp_path, monkeypatch):
    with database("sqlite", tmp_path) as url:
        with service(url) as first:
            first.load_lists()
            stored = _stored(first, EmbeddingRow)
        assert stored >= 6 + 5  # every resource and need text
        calls = []
        original = matcher.encode.E5Small.encode
        monkeypatch.setattr(matcher.encode.E5Small, "encode",
                            lambda self, texts: calls.append(list(texts)) or original(self, texts))
        with service(url) as second:
            assert second.match("n-care", k=1)[0]["resource_id"] == "r-care"
            assert calls == [] and _stored(second, EmbeddingRow) == stored


def test_review_page_highlights_traditional_text_from_stored_terms(svc):
    svc.call("POST", "/v1/needs", json={"id": "n-tw", "title": "員工停車難，上下班車位不足", "grid": "P1"})
    svc.match("n-tw", k=2)
    with svc.app.state.sessions() as session:
        terms = session.scalars(select(SuggestionRow.terms).where(SuggestionRow.need_id == "n-tw")).first()
    assert terms, "the suggestion was stored with its shared terms"
    client = svc.client
    page = client.get("/review/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/review/login", data={"key": svc.keys["staff"], "csrf": csrf}, follow_redirects=False)
    queue = client.get("/review", params={"grid": "P1"}).text
    marked = set(re.findall(r"<mark>([^<]+)</mark>", queue))
    assert {t["need"] for t in terms} & marked  # the need's own (traditional) spelling is what lights up


def test_api_upload_stores_every_new_embedding_in_one_go(svc, monkeypatch):
    before = _stored(svc, EmbeddingRow)
    writes = []
    original = svc.app.state.engine.store_embeddings
    monkeypatch.setattr(svc.app.state.engine, "store_embeddings", lambda: writes.append(1) or original())
    lines = [json.dumps({"id": f"r-up{i}", "title": f"园区第{i}号共享会议室按小时预约", "grid": "P1"},
                        ensure_ascii=False) for i in range(5)]
    files = {"file": ("more.jsonl", "\n".join(lines).encode("utf-8"), "application/json")}
    assert svc.call("POST", "/v1/resources/upload", files=files).json()["created"] == 5
    # Once for the upload, and again when its new words refit the small index in the background (twice
    # when a refit outlasts the next edit, seen on a loaded machine): never once per row.
    assert _stored(svc, EmbeddingRow) == before + 5 and len(writes) < len(lines)
