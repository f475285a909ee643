import json
import random

import numpy as np
import pytest

from matcher import Matcher, registry
from matcher.errors import InvalidRecordsError
from matcher.evaluation import acceptance_rate, evaluate, ndcg_at, recall_at
from matcher.features import FEATURES
from matcher.history import load_history
from matcher.scoring import LinearScorer
from matcher.training import build_dataset, fit_scorer, split, train

GRIDS = [{"id": f"G{i}", "kind": "point", "street": f"S{i % 2}"} for i in range(6)]
WORDS = ["托育", "餐饮", "停车", "法律", "医护", "人才", "场地", "融资"]


def _planted(tmp_path, n_needs=60, seed=3):
    """Staff here accept exactly the same-grid offer, whose text is unrelated; the offer that shares
    the need's words sits in another grid, so the text-led default model ranks the wrong one first."""
    rng = random.Random(seed)
    needs, resources, decisions = [], [], []
    for i in range(n_needs):
        grid = f"G{rng.randrange(6)}"
        word = rng.choice(WORDS)
        needs.append({"id": f"n{i}", "title": f"需要{word}服务{i}", "grid": grid})
        for j in range(4):
            rid = f"r{i}-{j}"
            same = j == 0
            text = word if j == 1 else rng.choice([w for w in WORDS if w != word])
            resources.append({"id": rid, "title": f"提供{text}服务",
                              "grid": grid if same else f"G{(int(grid[1]) + 1 + j) % 6}"})
            decisions.append({"need": f"n{i}", "resource": rid, "decision": "accepted" if same else "rejected",
                              "time": f"2026-0{1 + i % 9}-1{j}T10:00:00"})
    paths = {}
    for name, rows in (("needs", needs), ("resources", resources), ("grids", GRIDS), ("decisions", decisions)):
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return paths


def _history(paths):
    return load_history(paths["decisions"], needs=paths["needs"], resources=paths["resources"], grids=paths["grids"])


def test_train_recovers_a_planted_same_grid_preference(tmp_path):
    result = train(_history(_planted(tmp_path)), LinearScorer.load())
    weights = result.scorer.weights
    assert weights["same_grid"] == max(weights.values())
    assert result.metrics["ndcg@10"] > result.baseline["ndcg@10"]
    assert result.metrics["auc"] > 0.95


def test_train_time_split_holds_out_the_latest_needs(tmp_path):
    data = build_dataset(_history(_planted(tmp_path)))
    train_rows, test_rows = split(data, how="time", test_size=0.25)
    assert data.times[test_rows].min() >= np.median(data.times[train_rows])
    assert not set(data.groups[train_rows]) & set(data.groups[test_rows])


def test_group_split_never_splits_a_need(tmp_path):
    data = build_dataset(_history(_planted(tmp_path)))
    train_rows, test_rows = split(data, how="group")
    assert not set(data.groups[train_rows]) & set(data.groups[test_rows])


@pytest.mark.parametrize("kind", ["logistic", "gbdt"])
def test_trained_model_save_load_round_trip_gives_identical_scores(tmp_path, kind):
    data = build_dataset(_history(_planted(tmp_path)))
    scorer = fit_scorer(data, kind=kind)
    registry.save(tmp_path / "models", "v1", scorer, data.values, data.labels, data.groups)
    again = registry.load(tmp_path / "models", "v1")
    np.testing.assert_array_equal(scorer.score(data.values), again.score(data.values))
    with np.load(tmp_path / "models" / "v1" / registry.HOLDOUT_FILE, allow_pickle=False) as npz:
        assert npz["groups"].dtype.kind == "i"


def test_tree_scorer_matches_sklearn_probabilities(tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    from matcher.trees import TreeScorer

    rng = np.random.default_rng(0)
    values = rng.random((300, len(FEATURES)))
    labels = (values[:, 0] + values[:, 3] > 1).astype(int)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3).fit(values, labels)
    np.testing.assert_allclose(TreeScorer.from_sklearn(model).score(values), model.predict_proba(values)[:, 1],
                               rtol=1e-9)


def test_registry_refuses_to_overwrite_and_odd_names(tmp_path):
    data = build_dataset(_history(_planted(tmp_path)))
    scorer = fit_scorer(data)
    registry.save(tmp_path / "models", "v1", scorer, data.values, data.labels, data.groups)
    with pytest.raises(FileExistsError, match="exists already"):
        registry.save(tmp_path / "models", "v1", scorer, data.values, data.labels, data.groups)
    with pytest.raises(ValueError, match="version: expected letters"):
        registry.save(tmp_path / "models", "../escape", scorer, data.values, data.labels, data.groups)


def test_text_pair_tsv_is_a_valid_history(tmp_path):
    lines = [f"社区需要{w}服务\t提供{w}服务\t1" for w in WORDS] + [f"社区需要{w}服务\t提供{v}服务\t0"
                                                                   for w in WORDS for v in WORDS[:3] if v != w]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train(load_history(path), LinearScorer.load())
    assert result.metrics["spearman"] > 50 and "spearman" in result.baseline


def _write(tmp_path, rows, name="decisions.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_history_unknown_ids_are_named(tmp_path):
    paths = _planted(tmp_path)
    bad = _write(tmp_path, [{"need": "n0", "resource": "r-missing", "decision": "accepted"}], "bad.jsonl")
    with pytest.raises(InvalidRecordsError, match="record 1: field 'resource': expected the id of a resource"):
        load_history(bad, needs=paths["needs"], resources=paths["resources"])


def test_history_one_class_only_is_refused(tmp_path):
    rows = [{"need": {"id": f"n{i}", "title": "托育"}, "resource": {"id": f"r{i}", "title": "托育"},
             "decision": "accepted"} for i in range(30)]
    with pytest.raises(ValueError, match="expected both accepted and rejected decisions, got only accepted"):
        load_history(_write(tmp_path, rows))


def test_history_too_few_decisions_says_how_many(tmp_path):
    rows = [{"need": {"id": "n", "title": "托育"}, "resource": {"id": "r", "title": "托育"}, "decision": "accepted"}]
    with pytest.raises(ValueError, match="expected at least 20 decisions to train and hold some out, got 1"):
        load_history(_write(tmp_path, rows))


def test_history_opposite_decisions_for_one_pair_are_reported(tmp_path):
    rows = [{"need": {"id": f"n{i}", "title": "托育"}, "resource": {"id": f"r{i}", "title": "托育"},
             "decision": "accepted" if i % 2 else "rejected"} for i in range(30)]
    rows.append({"need": "n1", "resource": "r1", "decision": "rejected"})
    with pytest.raises(ValueError, match=r"opposite decisions for 1 pair\(s\): n1 ⇄ r1: accepted and rejected"):
        load_history(_write(tmp_path, rows))


def test_history_bad_decision_value(tmp_path):
    rows = [{"need": {"id": "n", "title": "托育"}, "resource": {"id": "r", "title": "托育"}, "decision": "maybe"}]
    with pytest.raises(InvalidRecordsError, match="field 'decision': expected accepted, rejected or shown"):
        load_history(_write(tmp_path, rows))


def test_ndcg_known_values():
    scores = np.array([0.9, 0.8, 0.1, 0.5, 0.4])
    labels = np.array([0, 1, 0, 1, 0])
    groups = np.array(["a", "a", "a", "b", "b"])
    # Need a: the positive is second, DCG 1/log2(3), ideal 1. Need b: the positive is first.
    assert ndcg_at(scores, labels, groups, 5) == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert recall_at(scores, labels, groups, 1) == 0.5
    assert acceptance_rate(scores, labels, groups) == 0.5


def test_evaluate_reports_every_metric():
    metrics = evaluate(np.array([0.9, 0.1, 0.8, 0.2]), np.array([1, 0, 1, 0]), np.array([1, 1, 2, 2]), min_score=0.35)
    assert set(metrics) == {"auc", "ndcg@5", "ndcg@10", "recall@5", "precision@min_score", "acceptance_rate",
                            "spearman"}
    assert metrics["auc"] == 1.0 and metrics["acceptance_rate"] == 1.0


def test_build_dataset_uses_the_serving_index_when_given(tmp_path):
    paths = _planted(tmp_path, n_needs=20)
    history = _history(paths)
    # The serving index knows far more resources than the history: its IDF differs from the history's own.
    extra = [{"id": f"x{i}", "title": f"提供{WORDS[i % len(WORDS)]}和咨询服务", "grid": "G1"} for i in range(200)]
    serving = Matcher(encoder="none").fit(list(history.resources.values()) + extra, grids=history.grids)
    data = build_dataset(history, shown_weight=0.3, matcher=serving)
    decisions = history.decisions
    expected = serving.pair_table([history.needs[d.need_id] for d in decisions],
                                  [history.resources[d.resource_id] for d in decisions]).values
    np.testing.assert_array_equal(data.values, expected)
    own = build_dataset(history, shown_weight=0.3)
    assert not np.allclose(own.values[:, FEATURES.index("word_cosine")], data.values[:, FEATURES.index("word_cosine")])
