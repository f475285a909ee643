import json
import threading
import time

import numpy as np
import pytest
from sqlalchemy import select

from api.cli import main as cli_main
from api.tables import AuditRow
from matcher import registry
from matcher.features import FEATURES
from matcher.residual import ResidualScorer
from matcher.scoring import LinearScorer
from tests.api_helpers import database, service
from tests.test_api_match import _wait_for_job

DEMO = "data/demo"


def _text_only(version: str) -> LinearScorer:
    weights = dict.fromkeys(FEATURES, 0.0) | {"word_cosine": 8.0}
    return LinearScorer(weights=weights, bias=-3.0, version=version)


def _sharper(version: str, min_score: float = 0.5) -> LinearScorer:
    """The default model with its decision scaled: other scores, the same ranking everywhere (so the guard
    passes it), and a threshold of its own."""
    default = LinearScorer.load()
    return LinearScorer(weights={f: 1.5 * w for f, w in default.weights.items()}, bias=1.5 * default.bias + 0.3,
                        version=version, card={"min_score": min_score})


@pytest.fixture()
def svc(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    # These tests are about which model scores, not the threshold: every candidate is stored.
    with database("sqlite", tmp_path) as url, service(url, models_dir=models, model_poll_s=0.2,
                                                      min_score=0.0) as running:
        running.load_lists()
        running.models = models
        running.url = url
        yield running


def _save(svc, version, scorer, labels=None):
    # A held-out set where ranking by word cosine is right: the text-only model wins on it.
    rng = np.random.default_rng(0)
    values = rng.random((40, len(FEATURES)))
    labels = (values[:, 0] > 0.6).astype(float) if labels is None else labels
    registry.save(svc.models, version, scorer, values, labels, np.repeat(np.arange(10), 4))


def test_api_models_list_and_show(svc):
    _save(svc, "text1", _text_only("text1"))
    listed = svc.call("GET", "/v1/models", "analyst").json()
    assert [m["version"] for m in listed] == ["default", "text1"] and listed[0]["active"]
    shown = svc.call("GET", "/v1/models/text1", "analyst").json()
    assert shown["weights"]["word_cosine"] == 8.0
    assert svc.call("GET", "/v1/models/nope", "analyst").status_code == 404


def test_api_promote_switches_scoring_at_once_and_records_version(svc):
    _save(svc, "text1", _sharper("text1"))
    response = svc.call("POST", "/v1/models/text1/promote", "analyst", json={})
    assert response.status_code == 200, response.text
    assert svc.match("n-care")[0]["model_version"] == "text1"


def test_api_promote_worse_model_is_refused_with_margin_unless_forced(svc):
    worse = LinearScorer(weights=dict.fromkeys(FEATURES, 0.0) | {"word_cosine": -8.0}, version="worse")
    _save(svc, "worse", worse)
    refused = svc.call("POST", "/v1/models/worse/promote", "analyst", json={})
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith("拒绝启用 worse：在留出的审核决定上 NDCG@10 低") and "对比现用模型 default" in detail
    assert "口语需求样本上 MRR 低" in detail and "force" in detail
    forced = svc.call("POST", "/v1/models/worse/promote", "analyst", json={"force": True})
    assert forced.status_code == 200 and "按 force 强制启用" in forced.json()["message"]
    with svc.app.state.sessions() as session:
        row = session.scalars(select(AuditRow).where(AuditRow.action == "promote")).one()
        assert row.detail["force"] is True and "强制" in row.detail["account"]


def test_api_guard_refuses_a_model_that_wins_its_own_decisions_but_wrecks_the_canary(svc):
    # The held-out decisions reward word cosine, so a words-only model wins them; colloquial needs share
    # few words with formal resources, so on the canary it falls far behind the default.
    _save(svc, "words", _text_only("words"))
    refused = svc.call("POST", "/v1/models/words/promote", "analyst", json={})
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "口语需求样本上 MRR 低" in detail and "留出的审核决定上" not in detail.split("（")[0]
    assert svc.call("GET", "/v1/models/active", "analyst").json()["version"] == "default"


def test_api_promotion_keeps_the_cards_threshold_and_shows_both(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with database("sqlite", tmp_path) as url, service(url, models_dir=models, model_poll_s=0.2) as running:
        running.load_lists()
        running.models = models
        _save(running, "sharp", _sharper("sharp", min_score=0.61))
        before = running.app.state.engine.snapshot.min_score(None)
        response = running.call("POST", "/v1/models/sharp/promote", "analyst", json={})
        assert response.status_code == 200, response.text
        assert f"min_score {before:.4g} → 0.61" in response.json()["message"]
        assert running.app.state.engine.snapshot.min_score(None) == 0.61
        assert all(s["score"] >= 0.61 for s in running.match("n-care"))


def test_api_serves_a_residual_model_in_match_and_batch(svc):
    # A residual with a small random embedding term: the service must compute its terms in the candidate
    # search (match and batch) and score with them.
    rng = np.random.default_rng(1)
    default = LinearScorer.load()
    residual = ResidualScorer(base=default, projection=rng.normal(0, 0.05, (768, 1)), weights=np.zeros(len(FEATURES)),
                              offset=np.zeros(len(FEATURES)), scale=np.ones(len(FEATURES)), bias=0.0, strength=1.0,
                              card={"min_score": 0.0})
    registry.save(svc.models, "res1", residual, np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0))
    forced = svc.call("POST", "/v1/models/res1/promote", "analyst", json={"force": True})
    assert forced.status_code == 200, forced.text
    found = svc.match("n-care")
    assert found and {s["model_version"] for s in found} == {"res1"}
    assert all(0 <= s["score"] <= 1 for s in found)
    started = svc.call("POST", "/v1/match/batch", json={})
    assert started.status_code == 202, started.text
    assert _wait_for_job(svc, started.json()["id"])["status"] == "done"


def test_api_rollback_restores_earlier_scores_exactly(svc):
    before = [s["score"] for s in svc.match("n-care")]
    _save(svc, "text1", _sharper("text1"))
    svc.call("POST", "/v1/models/text1/promote", "analyst", json={})
    during = [s["score"] for s in svc.match("n-care")]
    assert svc.call("POST", "/v1/models/rollback", "analyst").json()["active"] == "default"
    after = [s["score"] for s in svc.match("n-care")]
    assert after == before and during != before
    assert svc.call("POST", "/v1/models/rollback", "analyst").status_code == 409  # nothing earlier left


def test_api_model_swap_drops_no_request(svc):
    _save(svc, "text1", _sharper("text1"))
    results, errors, stop = [], [], threading.Event()

    def keep_matching():
        try:
            while not stop.is_set():
                response = svc.call("POST", "/v1/match", json={"need_id": "n-food", "k": 3})
                versions = {s["model_version"] for s in response.json().get("suggestions", [])}
                results.append((response.status_code, versions, response.text[:300]))
        except Exception as exc:  # reported below rather than leaving the waits to hang
            errors.append(repr(exc))

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(results) < count and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    worker = threading.Thread(target=keep_matching)
    worker.start()
    wait_for(5)
    svc.call("POST", "/v1/models/text1/promote", "analyst", json={})
    wait_for(len(results) + 5)
    stop.set()
    worker.join()
    assert not errors
    assert all(code == 200 for code, _, _ in results), [text for code, _, text in results if code != 200]
    results = [(code, versions) for code, versions, _ in results]
    assert all(len(versions) == 1 for _, versions in results)  # no answer mixes two models
    assert results[0][1] == {"default"} and results[-1][1] == {"text1"}


def test_cli_promote_reaches_the_running_service(svc, capsys):
    _save(svc, "text1", _sharper("text1"))
    code = cli_main(["models", "--database-url", svc.url, "--out", str(svc.models), "promote", "text1"])
    assert code == 0 and "text1 已启用，替换 default" in capsys.readouterr().out
    deadline = time.monotonic() + 10
    while svc.app.state.engine.model_version != "text1" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.match("n-care")[0]["model_version"] == "text1"


def test_cli_train_on_demo_history_beats_default_and_prints_json(tmp_path, capsys):
    code = cli_main(["train", "--history", f"{DEMO}/decisions.jsonl", "--needs", f"{DEMO}/needs.jsonl",
                     "--resources", f"{DEMO}/resources.jsonl", "--grids", f"{DEMO}/grids.jsonl",
                     "--out", str(tmp_path), "--name", "demo1", "--json",
                     "--database-url", f"sqlite:///{tmp_path / 'none.db'}"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"auc", "ndcg@5", "ndcg@10", "spearman", "baseline"} <= set(metrics)
    assert metrics["ndcg@10"] > metrics["baseline"]["ndcg@10"] and metrics["auc"] > metrics["baseline"]["auc"]
    card = json.loads((tmp_path / "demo1" / "model.json").read_text(encoding="utf-8"))["card"]
    # 52 of the 1,920 decisions are rejections for 资源已满 or 需求已解决: no relevance label, left out.
    assert card["training_data"]["decisions"] == 1868 and card["training_data"]["rejections_without_label"] == 52
    assert card["metrics"]["baseline_version"] == "default" and 0 < card["min_score"] < 1
    assert len(card["training_data"]["sha256"]) == 64 and card["created_by"]


def test_cli_train_bad_history_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    path.write_text('{"need": "n1", "resource": "r1", "decision": "accepted"}\n', encoding="utf-8")
    code = cli_main(["train", "--history", str(path), "--out", str(tmp_path),
                     "--database-url", f"sqlite:///{tmp_path / 'none.db'}"])
    assert code == 1 and "field 'need': expected the id of a need in the needs list" in capsys.readouterr().err


def test_cli_train_from_db_uses_the_services_decisions(svc, tmp_path, capsys):
    for i in range(12):
        svc.call("POST", "/v1/needs", json={"id": f"n-x{i}", "title": "员工午餐就餐难", "grid": "P1"})
        suggestions = svc.match(f"n-x{i}", k=3)
        svc.call("POST", f"/v1/suggestions/{suggestions[-1]['id']}/reject", "staff", json={"reason": "不相关"})
        if i % 2 == 0:
            svc.call("POST", f"/v1/suggestions/{suggestions[0]['id']}/accept", "staff")
        else:
            svc.call("POST", f"/v1/suggestions/{suggestions[0]['id']}/reject", "staff", json={"reason": "距离太远"})
    code = cli_main(["train", "--from-db", "--database-url", svc.url, "--out", str(tmp_path), "--name", "db1"])
    assert code == 0, capsys.readouterr().err
    assert "saved as db1" in capsys.readouterr().out


def test_broken_active_model_keeps_the_last_good_one_and_readyz_names_it(svc):
    from api.models_state import set_active

    broken = svc.models / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json", encoding="utf-8")
    assert svc.call("GET", "/readyz").json()["checks"] == {"database": "ok", "engine": "ok", "model": "ok"}
    with svc.app.state.sessions() as session, session.begin():
        set_active(session, "broken")
    deadline = time.monotonic() + 10
    while svc.call("GET", "/readyz").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    ready = svc.call("GET", "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["model"].startswith("active model broken could not")
    assert svc.match("n-care")[0]["model_version"] == "default"  # the last good model still serves


def test_service_starts_on_the_default_model_when_the_active_one_is_broken(tmp_path):
    from api.models_state import set_active

    models = tmp_path / "models"
    (models / "broken").mkdir(parents=True)
    (models / "broken" / "model.json").write_text("[]", encoding="utf-8")
    with database("sqlite", tmp_path) as url:
        with service(url, models_dir=models) as first, first.app.state.sessions() as session, session.begin():
            set_active(session, "broken")
        with service(url, models_dir=models, model_poll_s=60) as second:
            ready = second.call("GET", "/readyz")
            assert ready.status_code == 503 and "could not be loaded" in ready.json()["checks"]["model"]
            assert second.app.state.engine.model_version == "default"
