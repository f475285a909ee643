import numpy as np
import scipy.sparse as sp

from matcher.features import FEATURES, FeatureTable
from matcher.reasons import explain, shared_terms
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
    (reasons,) = explain(table, [["托育"]], ["托育"], [2])
    assert reasons == ["共同关键词：托育（文本相似度 0.50）", "距离圈层：同一园区/街区", "相距约 1.2 公里",
                       "类别一致：托育", "资源剩余容量：2"]


def test_explain_without_shared_terms_or_distance():
    table = FeatureTable(np.array([0]), np.array([0]), np.zeros((1, len(FEATURES))), np.array([3], dtype=np.int8),
                         np.array([np.nan]), sp.csr_matrix((1, 3)))
    (reasons,) = explain(table, [[]], [""], [1])
    assert reasons[0].startswith("无共同关键词") and "相距" not in "".join(reasons)
