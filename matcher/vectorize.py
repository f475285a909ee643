"""tokens → sparse vectors: word TF-IDF over tokens and character n-gram TF-IDF, L2-normalized float32."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from matcher.rows import entry_rows, row_sums

# Characters that make no n-gram worth counting (punctuation and spacing left after normalize).
_NON_WORD = re.compile(r"[\W_]+")


def char_text(normalized: str) -> str:
    """The string character n-grams are taken from: words only, no punctuation or spaces."""
    return _NON_WORD.sub("", normalized)


def _identity(tokens: list[str]) -> list[str]:
    return tokens


class Vectors(NamedTuple):
    """Row-aligned word and character TF-IDF vectors of a batch of texts, and their sentence embeddings."""

    word: sp.csr_matrix
    char: sp.csr_matrix
    dense: np.ndarray | None = None  # (n, d) unit rows from the encoder; None when matching by words alone

    def rows(self, index: slice | np.ndarray) -> Vectors:
        return Vectors(self.word[index], self.char[index], None if self.dense is None else self.dense[index])

    def with_dense(self, dense: np.ndarray | None) -> Vectors:
        return Vectors(self.word, self.char, dense)


class TextVectorizer:
    """Fits and applies the two TF-IDF spaces; a thin wrapper over scikit-learn's TfidfVectorizer."""

    def __init__(self, *, char_ngrams: tuple[int, int] = (1, 2), sublinear_tf: bool = False) -> None:
        self.char_ngrams = char_ngrams
        self.sublinear_tf = sublinear_tf

    def _make(self) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        word = TfidfVectorizer(analyzer=_identity, lowercase=False, sublinear_tf=self.sublinear_tf,
                               dtype=np.float32)
        char = TfidfVectorizer(analyzer="char", ngram_range=tuple(self.char_ngrams), lowercase=False,
                               sublinear_tf=self.sublinear_tf, dtype=np.float32)
        return word, char

    def fit(self, tokens: Sequence[list[str]], chars: Sequence[str]) -> TextVectorizer:
        self.fit_transform(tokens, chars)
        return self

    def fit_transform(self, tokens: Sequence[list[str]], chars: Sequence[str]) -> Vectors:
        """Fit both vocabularies and return the vectors of the same texts, counting each text once."""
        if len(tokens) == 0:
            raise ValueError("texts: expected at least one text to fit the vocabulary, got none")
        self.word_, self.char_ = self._make()
        word = self.word_.fit_transform(tokens).astype(np.float32, copy=False).tocsr()
        char = self.char_.fit_transform(chars).astype(np.float32, copy=False).tocsr()
        self._keep_idf()
        return Vectors(word, char)

    def _keep_idf(self) -> None:
        # float32 copies of the fitted IDF: converting 100k+ weights on every query costs more than the query.
        self.word_idf_ = self.word_.idf_.astype(np.float32)
        self.char_idf_ = self.char_.idf_.astype(np.float32)

    def transform(self, tokens: Sequence[list[str]], chars: Sequence[str]) -> Vectors:
        return Vectors(self._tfidf(self.word_, self.word_idf_, tokens), self._tfidf(self.char_, self.char_idf_, chars))

    def _tfidf(self, vectorizer: TfidfVectorizer, idf: np.ndarray, docs: Sequence) -> sp.csr_matrix:
        """TfidfVectorizer.transform without its per-call validation and conversions.

        Counting uses the fitted vectorizer's own analyzer and vocabulary; weighting and
        normalizing are the two lines TfidfTransformer applies. scikit-learn's checks and
        index sorting cost more than the work itself for the one-need queries the platform
        sends, and the inputs here are always our own. Tests hold this to TfidfVectorizer.transform.
        """
        counts = _count(vectorizer, docs)
        if self.sublinear_tf:
            np.log(counts.data, counts.data)
            counts.data += 1.0
        counts.data *= idf[counts.indices]
        return _l2_rows(counts)

    def terms(self) -> list[str]:
        return _ordered(self.word_.vocabulary_)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able settings and vocabularies, plus the IDF arrays, for saving without pickle."""
        meta = {
            "char_ngrams": list(self.char_ngrams),
            "sublinear_tf": self.sublinear_tf,
            "word_vocabulary": _ordered(self.word_.vocabulary_),
            "char_vocabulary": _ordered(self.char_.vocabulary_),
        }
        arrays = {"word_idf": self.word_.idf_.astype(np.float64), "char_idf": self.char_.idf_.astype(np.float64)}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> TextVectorizer:
        self = cls(char_ngrams=tuple(meta["char_ngrams"]), sublinear_tf=bool(meta["sublinear_tf"]))
        self.word_, self.char_ = self._make()
        for vectorizer, vocab, idf in (
            (self.word_, meta["word_vocabulary"], arrays["word_idf"]),
            (self.char_, meta["char_vocabulary"], arrays["char_idf"]),
        ):
            if len(vocab) != len(idf):
                raise ValueError(f"vocabulary: expected {len(idf)} terms to match the IDF array, got {len(vocab)}")
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(vocab)}
            vectorizer.fixed_vocabulary_ = True
            vectorizer.idf_ = idf
        self._keep_idf()
        return self


def _count(vectorizer: TfidfVectorizer, docs: Sequence) -> sp.csr_matrix:
    """Term counts of `docs` in the fitted vocabulary: float32 CSR with sorted indices."""
    vocabulary = vectorizer.vocabulary_
    analyze = vectorizer.build_analyzer()
    indptr, indices, values = [0], [], []
    for doc in docs:
        counts = Counter(map(vocabulary.get, analyze(doc)))
        counts.pop(None, None)  # terms outside the vocabulary
        terms = sorted(counts)
        indices.extend(terms)
        values.extend(map(counts.__getitem__, terms))
        indptr.append(len(indices))
    # int32 indptr while it fits: scipy builds such a matrix without a conversion pass.
    indptr_type = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                          np.asarray(indptr, dtype=indptr_type)), shape=(len(docs), len(vocabulary)))


def _l2_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to unit length in place; empty rows stay empty."""
    rows = entry_rows(matrix.indptr)
    norms = np.sqrt(np.bincount(rows, weights=matrix.data.astype(np.float64) ** 2, minlength=matrix.shape[0]))
    matrix.data /= norms[rows].astype(np.float32)
    return matrix


def _ordered(vocabulary: dict[str, int]) -> list[str]:
    terms = [""] * len(vocabulary)
    for term, index in vocabulary.items():
        terms[index] = term
    return terms


def row_cosine(left: sp.csr_matrix, right: sp.csr_matrix) -> np.ndarray:
    """Cosine of left[i] with right[i] for L2-normalized rows, without forming left @ right.T."""
    if left.shape != right.shape:
        raise ValueError(f"rows: expected two matrices of one shape, got {left.shape} and {right.shape}")
    return row_sums(left.multiply(right).tocsr()).clip(0.0, 1.0)  # float64 sums, as aligned_dot makes
