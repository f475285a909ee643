import numpy as np

from matcher.columns import columns
from matcher.features import FEATURES, NEARNESS_KM, pair_features
from matcher.proximity import GridMap
from matcher.records import parse_grid, parse_need, parse_resource
from matcher.vectorize import TextVectorizer
from tests.conftest import GRIDS


def _table(need, resource, grids=GRIDS):
    grid_map = GridMap(parse_grid(g) for g in grids)
    needs, resources = [parse_need(need)], [parse_resource(resource)]
    tokens = [["托育", "服务"], ["托育", "名额"]]
    chars = ["托育服务", "托育名额"]
    vectorizer = TextVectorizer().fit(tokens, chars)
    table = pair_features(columns(needs, grid_map), columns(resources, grid_map),
                          vectorizer.transform(tokens[:1], chars[:1]), vectorizer.transform(tokens[1:], chars[1:]),
                          np.array([0]), np.array([0]), grid_map)
    return dict(zip(FEATURES, table.values[0], strict=True)), table


def test_pair_features_same_grid_sets_all_inner_rings():
    values, table = _table({"id": "n", "title": "托育服务", "grid": "P1"},
                           {"id": "r", "title": "托育名额", "grid": "P1"})
    assert (values["same_grid"], values["same_area"], values["same_street"]) == (1, 1, 1)
    assert table.ring[0] == 0


def test_pair_features_other_street_has_no_ring_bonus():
    values, table = _table({"id": "n", "title": "托育服务", "grid": "P1"},
                           {"id": "r", "title": "托育名额", "grid": "P5"})
    assert (values["same_grid"], values["same_area"], values["same_street"]) == (0, 0, 0)
    assert table.ring[0] == 3


def test_pair_features_category_match_is_signed():
    same, _ = _table({"id": "n", "title": "托育", "category": "托育"}, {"id": "r", "title": "托育", "category": "托育"})
    other, _ = _table({"id": "n", "title": "托育", "category": "托育"},
                      {"id": "r", "title": "托育", "category": "餐饮"})
    unknown, _ = _table({"id": "n", "title": "托育"}, {"id": "r", "title": "托育", "category": "餐饮"})
    assert (same["category_match"], other["category_match"], unknown["category_match"]) == (1, -1, 0)


def test_pair_features_nearness_decays_with_distance_and_is_zero_without_coordinates():
    values, table = _table({"id": "n", "title": "托育", "lat": 30.0, "lon": 104.0},
                           {"id": "r", "title": "托育", "lat": 30.01, "lon": 104.0})
    assert values["nearness"] == np.exp(-table.distance_km[0] / NEARNESS_KM)
    assert table.distance_km[0] == np.float64(table.distance_km[0]) and 1.0 < table.distance_km[0] < 1.2
    missing, table = _table({"id": "n", "title": "托育"}, {"id": "r", "title": "托育", "lat": 30.0, "lon": 104.0})
    assert missing["nearness"] == 0 and np.isnan(table.distance_km[0])


def test_pair_features_capacity_left_is_a_share():
    values, _ = _table({"id": "n", "title": "托育"}, {"id": "r", "title": "托育", "capacity": 4, "taken": 1})
    assert values["capacity_left"] == 0.75


def test_pair_features_text_cosines_are_in_unit_range():
    values, _ = _table({"id": "n", "title": "托育服务"}, {"id": "r", "title": "托育名额"})
    assert 0 < values["word_cosine"] < 1 and 0 < values["char_cosine"] < 1


def test_pair_features_same_grid_id_counts_without_grid_list():
    values, _ = _table({"id": "n", "title": "托育", "grid": "X9"}, {"id": "r", "title": "托育", "grid": "X9"},
                       grids=[])
    assert values["same_grid"] == 1


def test_pair_features_small_and_batch_paths_agree(monkeypatch):
    import matcher.features as features

    rng = np.random.default_rng(5)
    words = ["托育", "服务", "养老", "助餐", "法律", "咨询", "场地", "志愿"]
    texts = [[str(w) for w in rng.choice(words, 3)] for _ in range(12)]
    chars = ["".join(t) for t in texts]
    vectorizer = TextVectorizer().fit(texts, chars)
    grid_map = GridMap(parse_grid(g) for g in GRIDS)
    needs = columns([parse_need({"id": f"n{i}", "title": chars[i]}) for i in range(4)], grid_map)
    resources = columns([parse_resource({"id": f"r{i}", "title": chars[i]}) for i in range(4, 12)], grid_map)
    need_vectors = vectorizer.transform(texts[:4], chars[:4])
    resource_vectors = vectorizer.transform(texts[4:], chars[4:])
    for n_needs in (1, 4):  # one need uses a dense lookup, several a keyed search
        need_row, resource_row = rng.integers(0, n_needs, 20), rng.integers(0, 8, 20)
        args = (needs, resources, need_vectors, resource_vectors, need_row, resource_row, grid_map)
        if n_needs == 1:
            args = (needs, resources, type(need_vectors)(need_vectors.word[:1], need_vectors.char[:1]),
                    resource_vectors, need_row, resource_row, grid_map)
        small = pair_features(*args)
        monkeypatch.setattr(features, "FEW_PAIRS", 0)
        batch = pair_features(*args)
        monkeypatch.undo()
        np.testing.assert_allclose(small.values, batch.values, rtol=1e-6)
        for got, want in zip(small.word_product, batch.word_product, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
