import json

import numpy as np
import pytest

from matcher import Matcher, Need, NotFittedError, RecordError, Resource
from tests.conftest import GRIDS, NEEDS, RESOURCES


def test_matcher_init_does_no_work():
    matcher = Matcher(k=3)
    assert matcher.k == 3
    assert not [name for name in vars(matcher) if name.endswith("_")]


def test_matcher_fit_returns_self():
    matcher = Matcher()
    assert matcher.fit(RESOURCES) is matcher


def test_matcher_methods_need_fit_first():
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        Matcher().top_k(NEEDS)


def test_matcher_rejects_bad_setting():
    with pytest.raises(ValueError, match="k: expected an integer >= 1, got 0"):
        Matcher(k=0).fit(RESOURCES)


def test_matcher_fit_rejects_empty_resources():
    with pytest.raises(ValueError, match="resources: expected at least one resource"):
        Matcher().fit([])


def test_matcher_fit_rejects_unknown_grid():
    with pytest.raises(RecordError, match="needs, record 1: field 'grid': expected the id of a grid in the grid list"):
        Matcher().fit(RESOURCES, [{"id": "n", "title": "托育", "grid": "G404"}], grids=GRIDS)


def test_matcher_fit_rejects_duplicate_resource_ids():
    with pytest.raises(RecordError, match="resources, record 2: field 'id': expected an id unique in resources"):
        Matcher().fit([RESOURCES[0], RESOURCES[0]])


def test_top_k_is_best_first_and_at_most_k(fitted):
    for suggestions in fitted.top_k(NEEDS, k=3):
        assert len(suggestions) <= 3
        scores = [s.score for s in suggestions]
        assert scores == sorted(scores, reverse=True)


def test_top_k_prefers_the_nearby_resource_of_the_same_kind(fitted):
    (care,) = fitted.top_k([NEEDS[0]], k=2)
    assert [s.resource_id for s in care] == ["r-care", "r-care-far"]
    assert care[0].features["same_area"] == 1 and "距离圈层：同一园区/街区" in care[0].reasons


def test_top_k_folds_traditional_script_and_synonyms(fitted):
    (parking,) = fitted.top_k([NEEDS[3]], k=1)
    assert parking[0].resource_id == "r-park"
    assert any("停车" in reason for reason in parking[0].reasons)


def test_top_k_ring_limit_keeps_search_inside_the_grid(fitted):
    (limited,) = fitted.top_k([{**NEEDS[0], "ring": "grid"}], k=5)
    assert {s.resource_id for s in limited} == {"r-food", "r-park"}  # only what grid P2 itself offers
    (wider,) = fitted.top_k([{**NEEDS[0], "ring": "area"}], k=5)
    assert {s.resource_id for s in wider} <= {"r-care", "r-food", "r-park"}


def test_top_k_accepts_own_record_types(fitted):
    (suggestions,) = fitted.top_k([Need(id="x", title="法律咨询")], k=1)
    assert suggestions[0].resource_id == "r-law"


def test_top_k_equals_dense_brute_force_over_word_sharing_pairs(demo_lists):
    # The candidate set is every resource sharing a word with the need (plus its grid and area):
    # scored exhaustively with a dense product, the ranking must be the same.
    resources, needs = demo_lists["resources"], demo_lists["needs"][:25]
    matcher = Matcher(pool=len(resources)).fit(resources, demo_lists["needs"], grids=demo_lists["grids"])
    got = matcher.top_k(needs, k=len(resources))
    word = matcher.vectorizer_.transform(*matcher._texts([Need(id=n["id"], title=n["title"],
                                                               description=n["description"]) for n in needs])).word
    dense = word.toarray() @ matcher.resource_vectors_.word.toarray().T
    for row, (need, suggestions) in enumerate(zip(needs, got, strict=True)):
        sharing = np.flatnonzero(dense[row] > 0)
        expected = np.sort(matcher.score_pairs([need] * len(sharing), [resources[i] for i in sharing]))[::-1]
        mine = [s.score for s in suggestions if s.features["word_cosine"] > 0]
        np.testing.assert_allclose(mine, expected, atol=1e-6)


def test_assign_respects_capacity_and_min_score(demo_matcher, demo_lists):
    result = demo_matcher.assign(demo_lists["needs"], k=10, min_score=0.3)
    capacity = {r["id"]: r.get("capacity", 1) for r in demo_lists["resources"]}
    used = {}
    for pair in result.pairs:
        used[pair.resource_id] = used.get(pair.resource_id, 0) + 1
        assert pair.score >= 0.3
    assert all(used[r] <= capacity[r] for r in used)
    assert len({p.need_id for p in result.pairs}) == len(result.pairs)
    assert len(result.pairs) + len(result.unmatched) == len(demo_lists["needs"])


def test_assign_explains_each_unmatched_need(fitted):
    result = fitted.assign(NEEDS, min_score=0.5)
    assert result.unmatched["n-none"].startswith(("below_min_score", "no_candidate"))
    assert set(result.unmatched) | {p.need_id for p in result.pairs} == {n["id"] for n in NEEDS}


def test_assign_reports_capacity_taken_by_better_pair():
    resources = [{"id": "r", "title": "社区食堂午餐", "capacity": 1}]
    needs = [{"id": "a", "title": "社区食堂午餐"}, {"id": "b", "title": "食堂午餐"}]
    result = Matcher().fit(resources, needs).assign(needs, min_score=0.1)
    assert [p.need_id for p in result.pairs] == ["a"]
    assert result.unmatched["b"].startswith("capacity_taken") and "r→a" in result.unmatched["b"]


def test_score_pairs_scores_row_aligned_pairs(fitted):
    scores = fitted.score_pairs(NEEDS[:2], RESOURCES[:2])
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()


def test_score_pairs_rejects_length_mismatch(fitted):
    with pytest.raises(ValueError, match="resources: expected 2 records, one per need, got 1"):
        fitted.score_pairs(NEEDS[:2], RESOURCES[:1])


def test_add_makes_new_resource_findable_without_refit():
    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    vocabulary = dict(matcher.vectorizer_.word_.vocabulary_)
    matcher.add([Resource(id="r-new", title="社区食堂新开晚餐窗口", grid="P1")])
    (food,) = matcher.top_k([NEEDS[1]], k=3)
    assert "r-new" in {s.resource_id for s in food}
    assert matcher.vectorizer_.word_.vocabulary_ == vocabulary


def test_add_rejects_an_id_already_indexed(fitted):
    with pytest.raises(RecordError, match="field 'id': expected an id not already indexed, got 'r-law'"):
        fitted.add([{"id": "r-law", "title": "律师"}])


def test_remove_drops_resource_and_unknown_id_removes_nothing():
    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    with pytest.raises(KeyError, match="unknown"):
        matcher.remove(["r-law", "r-missing"])
    assert len(matcher.resources_) == len(RESOURCES)
    matcher.remove(["r-law"])
    (law,) = matcher.top_k([NEEDS[2]], k=5)
    assert "r-law" not in {s.resource_id for s in law}


def test_update_of_capacity_only_keeps_the_vectors_and_the_word_index():
    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    index_t, words = matcher.shards_[0].index_t, matcher.resource_vectors_.word
    law = next(r for r in RESOURCES if r["id"] == "r-law")
    full = {**law, "capacity": 1, "taken": 1}
    matcher.update([full])
    assert matcher.shards_[0].index_t is index_t and matcher.resource_vectors_.word is words
    assert matcher.tombstones_ == 0
    (law_need,) = matcher.top_k([NEEDS[2]], k=5)
    assert "r-law" not in {s.resource_id for s in law_need}  # full: no capacity left


def test_update_retires_changed_text_and_appends_it_anew():
    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    law = next(r for r in RESOURCES if r["id"] == "r-law")
    matcher.update([{**law, "title": "社区食堂午餐配送", "description": ""}])
    assert matcher.tombstones_ == 1 and matcher.n_resources_ == len(RESOURCES)
    (food,) = matcher.top_k([NEEDS[1]], k=len(RESOURCES))
    assert [s.resource_id for s in food].count("r-law") == 1  # the new row only, never the tombstone


def test_update_does_not_change_a_copy_taken_before_it():
    import copy

    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    before = matcher.top_k(NEEDS)
    earlier = copy.copy(matcher)
    matcher.update([Resource(id="r-new", title="社区食堂新开晚餐窗口", grid="P1")], remove=["r-law"])
    assert earlier.top_k(NEEDS) == before
    assert "r-new" not in earlier and "r-law" in earlier


def test_compact_gives_the_answers_of_a_fresh_fit_with_the_same_vocabulary():
    matcher = Matcher().fit(RESOURCES, NEEDS, grids=GRIDS)
    matcher.update(remove=["r-law"])
    edited = matcher.top_k(NEEDS)
    matcher.compact()
    assert matcher.tombstones_ == 0 and len(matcher.resources_) == len(RESOURCES) - 1
    assert matcher.top_k(NEEDS) == edited


def test_save_load_round_trip_gives_identical_results(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    again = Matcher.load(tmp_path / "m")
    assert again.top_k(NEEDS) == fitted.top_k(NEEDS)
    assert again.assign(NEEDS) == fitted.assign(NEEDS)
    np.testing.assert_array_equal(again.score_pairs(NEEDS, RESOURCES[:5]), fitted.score_pairs(NEEDS, RESOURCES[:5]))


def test_load_keeps_the_new_word_setting_the_index_was_cut_with(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert Matcher.load(tmp_path / "m").tokenizer_.new_words is False
    params_path = tmp_path / "m" / "params.json"
    params = json.loads(params_path.read_text(encoding="utf-8"))
    del params["settings"]["new_words"]  # as saved before the setting existed, when guessing was on
    params_path.write_text(json.dumps(params), encoding="utf-8")
    assert Matcher.load(tmp_path / "m").tokenizer_.new_words is True


def test_save_refuses_to_overwrite_unless_asked(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        fitted.save(tmp_path / "m")
    fitted.save(tmp_path / "m", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_saved_matcher_holds_no_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    assert {p.suffix for p in (tmp_path / "m").iterdir()} <= {".json", ".npz", ".jsonl", ".txt", ".tsv"}


def test_load_refuses_arrays_that_need_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "arrays.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["word_idf"] = np.array([{"evil": "payload"}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        Matcher.load(tmp_path / "m")


def test_load_missing_folder_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected a saved matcher folder with params\.json"):
        Matcher.load(tmp_path / "nothing")
