import numpy as np
import pytest

from matcher.vectorize import TextVectorizer, char_text, row_cosine

TOKENS = [["社区", "托育", "服务"], ["员工", "餐饮"], ["托育", "名额"]]
CHARS = ["社区托育服务", "员工餐饮", "托育名额"]


def test_vectorizer_rows_are_l2_normalized_float32():
    vectors = TextVectorizer().fit(TOKENS, CHARS).transform(TOKENS, CHARS)
    assert vectors.dense is None  # embeddings come from the encoder stage, not from TF-IDF
    for matrix in (vectors.word, vectors.char):
        assert matrix.dtype == np.float32
        np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, rtol=1e-6)


def test_vectorizer_unknown_words_vanish_from_vectors():
    vectorizer = TextVectorizer().fit(TOKENS, CHARS)
    assert vectorizer.transform([["火星"]], ["火星"]).word.nnz == 0


def test_vectorizer_state_round_trip_gives_identical_vectors():
    vectorizer = TextVectorizer(char_ngrams=(1, 3)).fit(TOKENS, CHARS)
    meta, arrays = vectorizer.state()
    again = TextVectorizer.from_state(meta, arrays)
    for a, b in zip(vectorizer.transform(TOKENS, CHARS)[:2], again.transform(TOKENS, CHARS)[:2], strict=True):
        assert (a != b).nnz == 0


def test_vectorizer_from_state_rejects_mismatched_vocabulary():
    meta, arrays = TextVectorizer().fit(TOKENS, CHARS).state()
    meta["word_vocabulary"] = meta["word_vocabulary"][:-1]
    with pytest.raises(ValueError, match="vocabulary: expected 6 terms to match the IDF array, got 5"):
        TextVectorizer.from_state(meta, arrays)


def test_vectorizer_fit_rejects_empty_input():
    with pytest.raises(ValueError, match="texts: expected at least one text"):
        TextVectorizer().fit([], [])


def test_row_cosine_matches_dense_dot():
    vectors = TextVectorizer().fit(TOKENS, CHARS).transform(TOKENS, CHARS)
    left, right = vectors.char[[0, 0, 1]], vectors.char[[2, 0, 2]]
    expected = (left.toarray() * right.toarray()).sum(axis=1)
    np.testing.assert_allclose(row_cosine(left, right), expected, rtol=1e-6)


def test_row_cosine_rejects_shape_mismatch():
    vectors = TextVectorizer().fit(TOKENS, CHARS).transform(TOKENS, CHARS)
    with pytest.raises(ValueError, match="expected two matrices of one shape"):
        row_cosine(vectors.word[:2], vectors.word)


def test_char_text_keeps_only_word_characters():
    assert char_text("托育, 服务 (ai)!") == "托育服务ai"


@pytest.mark.parametrize("sublinear_tf", [False, True])
def test_vectorizer_transform_equals_sklearn_tfidf_transform(sublinear_tf):
    tokens = [*TOKENS, ["托育", "托育", "托育", "服务"], ["火星"]]
    chars = [*CHARS, "托育托育托育服务", "火星"]
    vectorizer = TextVectorizer(sublinear_tf=sublinear_tf).fit(tokens, chars)
    ours = vectorizer.transform(tokens, chars)
    np.testing.assert_allclose(ours.word.toarray(), vectorizer.word_.transform(tokens).toarray(), rtol=1e-6)
    np.testing.assert_allclose(ours.char.toarray(), vectorizer.char_.transform(chars).toarray(), rtol=1e-6)
