"""The residual model, every trained card's min_score, and labels that mean what staff meant."""

import datetime as dt
import json

import numpy as np
import pytest

from matcher import Matcher, registry
from matcher.canary import canary_mrr
from matcher.guard import CANARY_TOLERANCE, judge
from matcher.history import Decision, load_history, relevance_decisions
from matcher.residual import RESIDUAL_FILE, ResidualScorer
from matcher.scoring import FALLBACK_MIN_SCORE, LinearScorer, load_scorer, model_min_score
from matcher.training import KIND_WEIGHTS, build_dataset, fit_residual, train
from tests.test_training import _history, _planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A planted history (staff accept the same-grid offer) and its dataset, built once for the module."""
    paths = _planted(tmp_path_factory.mktemp("planted"))
    history = _history(paths)
    return paths, history, build_dataset(history)


def test_residual_beats_the_untrained_engine_on_a_planted_preference(planted):
    _, history, _ = planted
    result = train(history, LinearScorer.load(), kind="residual")
    assert isinstance(result.scorer, ResidualScorer) and result.scorer.strength > 0
    assert result.metrics["ndcg@10"] > result.baseline["ndcg@10"] + 0.1
    assert 0 < result.scorer.card["min_score"] < 1


def test_residual_stays_at_the_default_where_the_default_is_already_right(planted):
    _, _, data = planted
    default = LinearScorer.load()
    # Labels that the default's own ranking gets exactly right: nothing is left for a residual to add.
    labels = (default.score(data.values) > np.median(default.score(data.values))).astype(float)
    model = fit_residual(data._replace(labels=labels), base=default)
    assert model.strength == 0.0
    np.testing.assert_allclose(model.score(data.values, terms=data.terms(model)), default.score(data.values))


def test_residual_scores_alike_in_search_pairs_and_after_a_save(planted, tmp_path):
    _, history, data = planted
    model = fit_residual(data, base=LinearScorer.load())
    registry.save(tmp_path, "res1", model, data.values[:20], data.labels[:20], data.groups[:20],
                  (data.need_dense[:20], data.resource_dense[:20]))
    loaded = load_scorer(tmp_path / "res1")
    assert isinstance(loaded, ResidualScorer) and loaded.strength == model.strength
    np.testing.assert_allclose(loaded.score(data.values, terms=data.terms(loaded)),
                               model.score(data.values, terms=data.terms(model)), rtol=1e-6)
    # The service's path: the candidate search computes the terms inside pair_features.
    matcher = Matcher(model_dir=tmp_path / "res1").fit(list(history.resources.values()),
                                                       list(history.needs.values()), grids=history.grids)
    need = next(iter(history.needs.values()))
    found = matcher.top_k([need], k=3)[0]
    resources = [history.resources[s.resource_id] for s in found]
    np.testing.assert_allclose([s.score for s in found], matcher.score_pairs([need] * 3, resources), atol=1e-6)
    held = registry.holdout(tmp_path, "res1")
    assert held.need_dense.dtype == np.float16 and held.need_dense.shape == data.need_dense[:20].shape


def test_residual_file_with_pickled_arrays_is_refused(planted, tmp_path):
    _, _, data = planted
    model = fit_residual(data, base=LinearScorer.load())
    registry.save(tmp_path, "res2", model, data.values[:5], data.labels[:5], data.groups[:5])
    np.savez(tmp_path / "res2" / RESIDUAL_FILE, projection=np.array([object()], dtype=object),
             weights=model.weights, offset=model.offset, scale=model.scale)
    with pytest.raises(ValueError, match=r"residual\.npz: expected the arrays"):
        load_scorer(tmp_path / "res2")


def test_residual_needs_embeddings_and_says_so(planted):
    _, _, data = planted
    empty = np.zeros((len(data.labels), 0), np.float32)
    with pytest.raises(ValueError, match="encoder none"):
        fit_residual(data._replace(need_dense=empty, resource_dense=empty))
    model = fit_residual(data, base=LinearScorer.load())
    with pytest.raises(ValueError, match="terms: this model reads each pair's embedding terms"):
        model.score(data.values)


@pytest.mark.parametrize("kind", ["logistic", "gbdt"])
def test_every_trained_card_carries_its_min_score(planted, kind):
    _, history, _ = planted
    result = train(history, LinearScorer.load(), kind=kind)
    chosen = result.scorer.card["min_score"]
    assert 0 < chosen < 1 and model_min_score(result.scorer) == chosen != FALLBACK_MIN_SCORE


def test_min_score_falls_back_in_one_place_for_a_card_without_one():
    assert model_min_score(LinearScorer(weights={"word_cosine": 1.0})) == FALLBACK_MIN_SCORE


def _decision(kind: str, reason: str = "", label: float = 0.0) -> Decision:
    return Decision("n1", "r1", label, kind, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "", reason)


def test_rejection_reasons_map_to_relevance():
    reasons = ["不相关", "距离太远", "资源已满：本月已排满", "需求已解决", "重复", "其他：说不清"]
    kept, left = relevance_decisions([*(_decision("rejected", r) for r in reasons), _decision("accepted", label=1.0)])
    assert [d.reason for d in kept] == ["不相关", "距离太远", "其他：说不清", ""]
    assert left == ("资源已满", "需求已解决", "重复")


def test_a_decisions_file_leaves_out_rejections_that_say_nothing_of_relevance(tmp_path):
    paths = _planted(tmp_path, n_needs=20)
    rows = [json.loads(line) for line in paths["decisions"].read_text(encoding="utf-8").splitlines()]
    for row in rows[1::4]:
        row["reason"] = "资源已满"
    paths["decisions"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    history = _history(paths)
    assert len(history.decisions) == len(rows) - len(rows[1::4]) and history.unlabelled == ("资源已满",) * 20
    counts = train(history, LinearScorer.load()).counts
    assert counts["rejections_without_label"] == 20 and counts["without_label:资源已满"] == 20


def test_a_solved_need_weighs_more_than_an_accept(planted):
    _, history, _ = planted
    first = history.decisions[0]
    solved = first._replace(kind="outcome:resolved", label=1.0)
    data = build_dataset(history._replace(decisions=[solved, *history.decisions[1:]]))
    assert data.weights[0] == KIND_WEIGHTS["outcome:resolved"] == 2.0 and data.weights[1] == 1.0


def test_pasted_control_characters_do_not_stop_training(tmp_path):
    lines = [f"托育\b服务{i}\f第二页\u200b\t提供托\x7f育服务{i}\t{i % 2}" for i in range(30)]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines), encoding="utf-8")
    history = load_history(path)
    assert len(history.decisions) == 30
    need = next(iter(history.needs.values()))
    assert "\b" not in need.title and "\u200b" not in need.title and need.title.startswith("托育服务")
    matcher = Matcher(encoder="none").fit(list(history.resources.values()))
    assert np.isfinite(matcher.score_pairs([need], [next(iter(history.resources.values()))])).all()


def test_canary_guard_refuses_a_words_only_model_and_states_the_tolerance():
    words = LinearScorer(weights={"word_cosine": 8.0}, bias=-3.0)
    mine, theirs = canary_mrr([words, LinearScorer.load()])
    assert mine < theirs - CANARY_TOLERANCE
    verdict = judge((0.9, 0.8), (mine, theirs))
    assert verdict.refused and f"超过容差 {CANARY_TOLERANCE}" in verdict.reason and "留出" not in verdict.reason
    assert not judge((0.8, 0.8), (theirs, theirs)).refused


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_decisions_spreadsheet_loads_and_its_pasted_reasons_are_cleaned(tmp_path, suffix):
    import csv

    import openpyxl

    paths = _planted(tmp_path, n_needs=20)
    rows = [json.loads(line) for line in paths["decisions"].read_text(encoding="utf-8").splitlines()]
    header = ["need", "resource", "decision", "reason", "time"]
    # A zero-width space pasted after the reason: still 资源已满, so no relevance label.
    table = [[r["need"], r["resource"], r["decision"], "资源已满\u200b" if i % 4 == 1 else "", r["time"]]
             for i, r in enumerate(rows)]
    path = tmp_path / f"decisions{suffix}"
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([header, *table])
    else:
        book = openpyxl.Workbook()
        for row in [header, *table]:
            book.active.append(row)
        book.save(path)
    history = load_history(path, needs=paths["needs"], resources=paths["resources"], grids=paths["grids"])
    assert history.unlabelled == ("资源已满",) * 20 and len(history.decisions) == len(rows) - 20
