"""The semantic stage inside the engine: hybrid candidates within the ring, new words, reasons, saves."""

import json

import numpy as np
import pytest

from matcher import Matcher
from matcher.dense import DistinctIndex, top_dense
from matcher.encode import EmbeddingCache
from tests.conftest import NEEDS, RESOURCES

GRIDS = [
    {"id": "E1", "name": "东园", "kind": "area", "street": "东街道"},
    {"id": "E1a", "name": "东园一号楼", "kind": "point", "parent": "E1", "street": "东街道"},
    {"id": "E2", "name": "东街区", "kind": "block", "street": "东街道"},
    {"id": "W1", "name": "西园", "kind": "area", "street": "西街道"},
]
UNRELATED = ["园区物业提供保洁服务", "社区开设书法兴趣班", "餐饮店招聘服务员", "快递驿站代收包裹", "健身房会员优惠",
             "二手家具回收", "打印复印和装订", "花卉绿植租摆", "宠物美容洗护", "手机维修和贴膜"]


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    return EmbeddingCache()


def _street_lists():
    # 400 unrelated resources in the need's street, listed first; the one that serves the need is listed
    # last; 40 look-alikes of it sit in another street.
    resources = [{"id": f"u{i}", "title": f"{UNRELATED[i % 10]}（{i}号）", "grid": "E2" if i % 2 else "E1a"}
                 for i in range(400)]
    resources += [{"id": f"far{i}", "title": f"律师事务所提供企业法律咨询和合同审查{i}", "grid": "W1"}
                  for i in range(40)]
    resources.append({"id": "right", "title": "律所为企业审查合同、解答劳动用工法律问题", "grid": "E2"})
    need = {"id": "n1", "title": "公司需要律师帮忙审查合同", "grid": "E1a", "ring": "street"}
    return resources, need


@pytest.mark.parametrize("encoder", ["e5-small", "none"])
def test_street_need_finds_its_resource_among_hundreds_of_unrelated_neighbours(encoder, cache):
    resources, need = _street_lists()
    matcher = Matcher(encoder=encoder, embedding_cache=cache, pool=10, nearby_limit=50).fit(resources, grids=GRIDS)
    found = matcher.top_k([need], k=3)[0]
    assert found[0].resource_id == "right"
    assert not any(s.resource_id.startswith("far") for s in found)  # the ring limit holds


def test_need_without_a_grid_has_no_ring_limit(cache):
    resources, _ = _street_lists()
    matcher = Matcher(embedding_cache=cache).fit(resources, grids=GRIDS)
    found = matcher.top_k([{"id": "x", "title": "需要律师做合同审查和法律咨询", "ring": "street"}], k=3)[0]
    assert found and all(s.resource_id in ("right",) or s.resource_id.startswith("far") for s in found)


def test_added_resource_with_new_words_is_found_at_once(cache):
    resources = [{"id": "r1", "title": "职工子女暑期托管班"}, {"id": "r2", "title": "小微企业应急转贷"},
                 {"id": "r3", "title": "园区团餐配送"}, {"id": "r4", "title": "错时共享停车位"}]
    matcher = Matcher(embedding_cache=cache).fit(resources)
    matcher.add([{"id": "r5", "title": "心理咨询师一对一疏导"}])
    assert matcher.top_k([{"id": "n", "title": "员工需要心理咨询疏导"}], k=1)[0][0].resource_id == "r5"


def test_colloquial_need_meets_formal_resource_without_a_shared_word(cache):
    resources = [{"id": "care", "title": "职工子女暑期托管班"}, {"id": "loan", "title": "小微企业应急转贷和信用贷款"},
                 {"id": "food", "title": "园区团餐配送"}]
    matcher = Matcher(embedding_cache=cache).fit(resources)
    best = matcher.top_k([{"id": "n", "title": "放暑假了娃白天没人看"}], k=1)[0][0]
    assert best.resource_id == "care" and best.features["word_cosine"] == 0.0
    closer = matcher.top_k([{"id": "n", "title": "放暑假了孩子白天没人管"}], k=1)[0][0]
    assert closer.resource_id == "care" and closer.terms == []
    assert closer.reasons[0].startswith("无共同关键词，但语义相近")


def test_reasons_quote_traditional_text_as_each_post_wrote_it(cache):
    law = {"id": "law", "title": "法务团队提供合同审查", "description": "有意者请联系"}
    matcher = Matcher(embedding_cache=cache).fit([law])
    (best,) = matcher.top_k([{"id": "n", "title": "需要律師審查合同，有意者請聯繫"}], k=1)[0]
    assert {"term": "法务", "need": "律師", "resource": "法务"} in best.terms
    assert {"term": "审查", "need": "審查", "resource": "审查"} in best.terms
    assert "律師 ↔ 法务" in best.reasons[0]
    assert not any(t["term"] in ("联系", "有意者") for t in best.terms)  # filler is never a reason


def test_words_only_matcher_keeps_no_embeddings():
    matcher = Matcher(encoder="none").fit([{"id": "r", "title": "托育服务"}])
    assert matcher.resource_vectors_.dense is None and matcher.embeddings_ is None
    (best,) = matcher.top_k([{"id": "n", "title": "托育"}], k=1)[0]
    assert best.features["semantic_cosine"] == 0.0 and matcher.scorer_.version == "lexical"


def test_matcher_rejects_an_unknown_encoder():
    with pytest.raises(ValueError, match="encoder: expected one of e5-small, none, got 'gpt'"):
        Matcher(encoder="gpt").fit([{"id": "r", "title": "托育"}])


def test_min_score_defaults_to_the_models_own():
    matcher = Matcher().fit([{"id": "r", "title": "托育"}])
    assert matcher.min_score_ == matcher.scorer_.card["min_score"]
    assert Matcher(min_score=0.5).fit([{"id": "r", "title": "托育"}]).min_score_ == 0.5


def test_save_load_keeps_embeddings_and_scores_without_pickle(tmp_path, cache):
    resources, need = _street_lists()
    matcher = Matcher(embedding_cache=cache).fit(resources[-5:], grids=GRIDS)
    before = matcher.top_k([need], k=3)[0]
    path = matcher.save(tmp_path / "m")
    for name in ("arrays.npz", "embeddings.npz"):
        with np.load(path / name, allow_pickle=False) as npz:
            assert all(npz[key].dtype != object for key in npz.files)
    loaded = Matcher.load(path)
    np.testing.assert_array_equal(loaded.resource_vectors_.dense, matcher.resource_vectors_.dense)
    assert [(s.resource_id, s.score) for s in loaded.top_k([need], k=3)[0]] == [(s.resource_id, s.score)
                                                                                 for s in before]
    assert len(loaded.embeddings_) >= len(resources[-5:])


def test_save_made_before_the_semantic_stage_loads_as_words_only(tmp_path):
    path = Matcher(encoder="none").fit([{"id": "r", "title": "托育服务"}]).save(tmp_path / "old")
    params = json.loads((path / "params.json").read_text(encoding="utf-8"))
    params["format"] = "duijie-matcher/1"
    for name in ("encoder", "encoder_threads"):
        del params["settings"][name]
    (path / "params.json").write_text(json.dumps(params), encoding="utf-8")
    loaded = Matcher.load(path)
    assert loaded.encoder == "none" and loaded.top_k([{"id": "n", "title": "托育"}], k=1)[0][0].resource_id == "r"


def test_save_without_its_embeddings_is_refused_with_the_reason(tmp_path, cache):
    path = Matcher(embedding_cache=cache).fit([{"id": "r", "title": "托育服务"}]).save(tmp_path / "m")
    (path / "embeddings.npz").unlink()
    with pytest.raises(ValueError, match="expected the resource embeddings of encoder 'e5-small'"):
        Matcher.load(path)


def test_save_of_an_unknown_format_is_refused(tmp_path):
    path = Matcher(encoder="none").fit([{"id": "r", "title": "托育服务"}]).save(tmp_path / "m")
    params = json.loads((path / "params.json").read_text(encoding="utf-8"))
    params["format"] = "duijie-matcher/9"
    (path / "params.json").write_text(json.dumps(params), encoding="utf-8")
    with pytest.raises(ValueError, match=r"field 'format': expected 'duijie-matcher/2'"):
        Matcher.load(path)


def _pairs(found) -> set[tuple[int, int]]:
    need_row, resource_row = found
    return set(zip(need_row.tolist(), resource_row.tolist(), strict=True))


def test_dense_search_of_a_wide_scope_equals_the_gathered_product(cache):
    resources, _ = _street_lists()
    matcher = Matcher(embedding_cache=cache).fit(resources, grids=GRIDS)
    scope = np.arange(0, 420, 2)  # wider than a quarter of the index: scored over all rows, then picked
    dense = matcher.resource_vectors_.dense
    wide = DistinctIndex.of(dense).subset(scope, copy=False)  # the shard's path for a need or two
    for queries in (dense[[3]], dense[[3, 401]]):
        assert _pairs(wide.top(queries, 7)) == _pairs(top_dense(queries, dense[scope], 7))


def test_the_index_and_the_embedding_cache_share_one_copy_of_the_resource_embeddings():
    # The cache's rows were the arrays they were encoded into; the index's matrix was a second copy of
    # them (307 MB at 200k resources). After a fit the cache holds views of the index's matrix.
    cache = EmbeddingCache()
    matcher = Matcher(embedding_cache=cache).fit(RESOURCES, NEEDS)
    dense = matcher.resource_vectors_.dense
    shared = [np.shares_memory(cache.get(k), dense) for k in cache.arrays()["keys"].astype(str)]
    assert len(shared) == len(RESOURCES) and all(shared)
    np.testing.assert_array_equal(matcher.embed(RESOURCES), dense)  # the same vectors, read from the cache
    matcher.embed(NEEDS)  # encoded later: rows of their own, the index's matrix untouched
    assert len(cache) == len(RESOURCES) + len(NEEDS) and matcher.resource_vectors_.dense is dense
