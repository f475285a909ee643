import numpy as np
import scipy.sparse as sp

from matcher.features import FEATURES, FeatureTable
from matcher.reasons import SEMANTIC_REASON, as_written, explain, shared_terms
from matcher.vectorize import TextVectorizer


def test_shared_terms_orders_by_contribution():
    tokens = [["托育", "服务", "社区"], ["托育", "服务", "名额"], ["服务", "大厅"], ["托育", "社区"]]
    vectorizer = TextVectorizer().fit(tokens, ["a", "b", "c", "d"])
    vectors = vectorizer.transform(tokens, ["a", "b", "c", "d"])
    terms = [""] * len(vectorizer.word_.vocabulary_)
    for term, i in vectorizer.word_.vocabulary_.items():
        terms[i] = term
    shared = shared_terms(vectors.word[[0, 0]].multiply(vectors.word[[1, 2]]).tocsr(), terms)
    # 托育 is rarer than 服务, so it weighs more in the shared cosine.
    assert shared == [["托育", "服务"], ["服务"]]


def test_explain_names_terms_ring_distance_category_capacity():
    values = np.zeros((1, len(FEATURES)))
    values[0, FEATURES.index("word_cosine")] = 0.5
    values[0, FEATURES.index("category_match")] = 1
    table = FeatureTable(np.array([0]), np.array([0]), values, np.array([1], dtype=np.int8), np.array([1.24]),
                         sp.csr_matrix((1, 3)))
    (reasons,) = explain(table, [[{"term": "托育", "need": "托育", "resource": "托育"}]], ["托育"], [2])
    assert reasons == ["共同关键词：托育（文本相似度 0.50）", "距离圈层：同一园区/街区", "相距约 1.2 公里",
                       "类别一致：托育", "资源剩余容量：2"]


def _table(semantic: float) -> FeatureTable:
    values = np.zeros((1, len(FEATURES)))
    values[0, FEATURES.index("semantic_cosine")] = semantic
    return FeatureTable(np.array([0]), np.array([0]), values, np.array([3], dtype=np.int8), np.array([np.nan]),
                        sp.csr_matrix((1, 3)))


def test_explain_names_a_synonym_as_the_pair_each_post_wrote():
    term = {"term": "法务", "need": "律師", "resource": "法律咨询"}
    (reasons,) = explain(_table(0.5), [[term]], [""], [1])
    assert reasons[0].startswith("共同关键词：律師 ↔ 法律咨询")


def test_explain_says_semantic_when_no_word_is_shared():
    (reasons,) = explain(_table(SEMANTIC_REASON + 0.01), [[]], [""], [1])
    assert reasons[0] == f"无共同关键词，但语义相近 {SEMANTIC_REASON + 0.01:.2f}"
    (reasons,) = explain(_table(SEMANTIC_REASON - 0.05), [[]], [""], [1])
    assert "语义相近" not in "".join(reasons)


def test_as_written_finds_terms_in_traditional_text_and_skips_filler():
    variants = {"法务": ["法务", "律师", "法律咨询"], "联系": ["联系"], "合同": ["合同"]}.get
    need, resource = "需要律師審查合同，有意者請聯繫", "法务团队提供法律咨询\n合同审查"
    (terms,) = as_written([["联系", "法务", "合同"]], [need], [resource], variants)
    assert terms == [{"term": "法务", "need": "律師", "resource": "法律咨询"},
                     {"term": "合同", "need": "合同", "resource": "合同"}]


def test_as_written_falls_back_to_the_head_word_when_no_post_spells_it():
    (terms,) = as_written([["托育"]], ["孩子没人带"], ["托育班"], lambda t: [t])
    assert terms == [{"term": "托育", "need": "托育", "resource": "托育"}]


def test_explain_without_shared_terms_or_distance():
    table = FeatureTable(np.array([0]), np.array([0]), np.zeros((1, len(FEATURES))), np.array([3], dtype=np.int8),
                         np.array([np.nan]), sp.csr_matrix((1, 3)))
    (reasons,) = explain(table, [[]], [""], [1])
    assert reasons[0].startswith("无共同关键词") and "相距" not in "".join(reasons)
