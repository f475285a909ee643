import json

import numpy as np
import pytest

from matcher.features import FEATURES
from matcher.scoring import (
    DEFAULT_MODEL_DIR,
    FALLBACK_MIN_SCORE,
    LEXICAL_MODEL_DIR,
    LinearScorer,
    model_min_score,
)


def _values(rows=5, seed=0):
    return np.random.default_rng(seed).random((rows, len(FEATURES)))


def test_default_model_scores_in_unit_interval():
    scores = LinearScorer.load(DEFAULT_MODEL_DIR).score(_values(100))
    assert ((scores >= 0) & (scores <= 1)).all()


def test_default_model_ranks_closer_meaning_higher():
    scorer = LinearScorer.load()
    low, high = np.full((1, len(FEATURES)), 0.0), np.full((1, len(FEATURES)), 0.0)
    low[0, FEATURES.index("semantic_cosine")], high[0, FEATURES.index("semantic_cosine")] = 0.85, 0.92
    assert scorer.score(high)[0] > scorer.score(low)[0]


def test_lexical_model_ranks_more_text_overlap_higher():
    scorer = LinearScorer.load(LEXICAL_MODEL_DIR)
    low, high = np.zeros((1, len(FEATURES))), np.zeros((1, len(FEATURES)))
    high[0, FEATURES.index("word_cosine")] = 0.8
    assert scorer.score(high)[0] > scorer.score(low)[0]


def test_model_saved_before_semantic_feature_loads_with_weight_zero(tmp_path):
    data = LinearScorer.load(LEXICAL_MODEL_DIR).to_json()
    del data["weights"]["semantic_cosine"]
    scorer = LinearScorer.from_json(data)
    assert scorer.weights["semantic_cosine"] == 0.0


def test_default_model_card_names_its_min_score():
    assert model_min_score(LinearScorer.load()) == LinearScorer.load().card["min_score"]
    assert model_min_score(LinearScorer(weights={})) == FALLBACK_MIN_SCORE


def test_scorer_save_load_round_trip_gives_identical_scores(tmp_path):
    scorer = LinearScorer(weights={f: i / 3 for i, f in enumerate(FEATURES)}, bias=-1.5,
                          offset={"word_cosine": 0.2}, scale={"char_cosine": 2.0}, version="v-test")
    scorer.save(tmp_path)
    again = LinearScorer.load(tmp_path)
    np.testing.assert_array_equal(scorer.score(_values()), again.score(_values()))
    assert again.version == "v-test"


def test_scorer_save_refuses_to_overwrite(tmp_path):
    scorer = LinearScorer.load()
    scorer.save(tmp_path)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        scorer.save(tmp_path)


def test_scorer_rejects_unknown_feature():
    with pytest.raises(ValueError, match=r"weights: expected feature names from .*, got \['age'\]"):
        LinearScorer(weights={"age": 1.0})


def test_scorer_rejects_non_finite_weight():
    with pytest.raises(ValueError, match="word_cosine: expected a finite number, got nan"):
        LinearScorer(weights={"word_cosine": float("nan")})


def test_scorer_rejects_non_positive_scale():
    with pytest.raises(ValueError, match=r"scale of nearness: expected a positive finite number, got 0\.0"):
        LinearScorer(weights={}, scale={"nearness": 0.0})


def test_scorer_load_rejects_wrong_format(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"format": "pickle"}), encoding="utf-8")
    with pytest.raises(ValueError, match="field 'format': expected 'duijie-linear/1', got 'pickle'"):
        LinearScorer.load(tmp_path)


def test_scorer_load_rejects_missing_weights(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"format": "duijie-linear/1", "weights": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="expected a weight for every feature"):
        LinearScorer.load(tmp_path)


def test_scorer_load_rejects_unreadable_json(tmp_path):
    (tmp_path / "model.json").write_bytes(b"\x80not json")
    with pytest.raises(ValueError, match="expected a JSON model file"):
        LinearScorer.load(tmp_path)


def test_scorer_rejects_wrong_feature_count():
    with pytest.raises(ValueError, match=r"values: expected shape \(n, 11\), got \(2, 3\)"):
        LinearScorer.load().score(np.zeros((2, 3)))
