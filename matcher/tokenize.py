"""str → list[str]: word tokens from an own jieba tokenizer, domain dictionary, synonyms and stopwords."""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import jieba

from matcher.packaged import packaged

DATA_DIR = packaged("duijie_data", "dict")
DEFAULT_DICTIONARY = DATA_DIR / "domain.txt"
DEFAULT_STOPWORDS = DATA_DIR / "stopwords.txt"
DEFAULT_SYNONYMS = DATA_DIR / "synonyms.tsv"
REASON_STOPWORDS = DATA_DIR / "reason_stopwords.txt"
BACKENDS = ("auto", "jieba", "rjieba")

# jieba and jieba-rs cut runs like "0.4-110kv" or "1.6mpa" differently; re-cutting every token into
# letter runs, numbers and runs of non-ASCII word characters makes the two agree, keeps units apart
# from values and drops punctuation. Tokens are joined with NUL, which no piece can contain, so one
# regex pass over the whole text cuts every token at once.
_PIECES = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)*|[^\W\x00-\x7f]+")
# Without new-word guessing jieba also cuts ASCII runs apart ("1.6" into 1 . 6); the joints between two
# ASCII tokens are dropped again so the pieces above see the run whole.
_ASCII_JOINT = re.compile(r"(?<=[\x01-\x7f])\x00(?=[\x01-\x7f])")


def read_dictionary(path: Path) -> list[tuple[str, int | None]]:
    """Read a jieba user dictionary: `word [freq] [tag]` per line, `#` comments."""
    entries: list[tuple[str, int | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            entries.append((parts[0], freq))
    return entries


def read_stopwords(path: Path) -> frozenset[str]:
    words = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w)


def read_synonyms(path: Path) -> dict[str, str]:
    """Read `canonical<TAB>variant,variant` lines into a variant → canonical map."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        canonical, _, variants = line.partition("\t")
        for variant in variants.split(","):
            if variant.strip():
                table[variant.strip()] = canonical.strip()
    return table


class Tokenizer:
    """Cuts normalized text into content tokens.

    Owns its segmenter (never jieba's global one), so two tokenizers with different
    dictionaries can live in one process. `backend="rjieba"` uses jieba-rs, the same
    algorithm and dictionary in Rust; tests hold it to jieba's output.
    """

    def __init__(
        self,
        *,
        dictionary: Path | None = DEFAULT_DICTIONARY,
        stopwords: Path | None = DEFAULT_STOPWORDS,
        synonyms: Path | None = DEFAULT_SYNONYMS,
        backend: str = "auto",
        new_words: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        self.dictionary = dictionary
        self.stopwords = stopwords
        self.synonyms = synonyms
        self.backend = backend
        # jieba's HMM guesses words its dictionary lacks, but guesses them differently from one text to
        # the next (心塞 in one post, 心塞是 in another), and a word cut two ways never matches itself.
        # Off, unknown words fall apart into characters the same way everywhere; on LCQMC that scores
        # higher on both dev and test (bench/RESULTS.md).
        self.new_words = new_words
        self._cut = None

    def _build(self) -> None:
        entries = read_dictionary(self.dictionary) if self.dictionary else []
        self._stop = read_stopwords(self.stopwords) if self.stopwords else frozenset()
        self._synonym = read_synonyms(self.synonyms) if self.synonyms else {}
        # Every Chinese synonym variant must survive segmentation as one token to be folded. ASCII ones
        # must not enter the dictionary: "ip" there would cut "script" into scr/ip/t.
        words = [(w, f) for w, f in entries] + [(w, None) for w in self._synonym if len(w) > 1 and not w.isascii()]
        backend = self.backend
        if backend == "auto":
            backend = "rjieba" if importlib.util.find_spec("rjieba") else "jieba"
        if backend == "rjieba":
            import rjieba

            segmenter = rjieba.Jieba()
            for word, freq in words:
                segmenter.add_word(word, freq, None)
            self._cut = functools.partial(segmenter.cut, hmm=self.new_words)
        else:
            logging.getLogger("jieba").setLevel(logging.WARNING)
            segmenter = jieba.Tokenizer()
            segmenter.initialize()
            for word, freq in words:
                segmenter.add_word(word, freq)
            self._cut = functools.partial(segmenter.lcut, HMM=self.new_words)
        self.backend_ = backend

    def __call__(self, text: str) -> list[str]:
        if self._cut is None:
            self._build()
        synonym, stop = self._synonym, self._stop
        joined = _ASCII_JOINT.sub("", "\x00".join(self._cut(text)))
        pieces = (synonym.get(p, p) for p in _PIECES.findall(joined))
        return [p for p in pieces if p not in stop]

    def variants(self, term: str) -> list[str]:
        """The term and every word that folds into it (律师 and 法律咨询 for 法务)."""
        if self._cut is None:
            self._build()
        if not hasattr(self, "_variants"):
            table: dict[str, list[str]] = {}
            for variant, canonical in self._synonym.items():
                table.setdefault(canonical, []).append(variant)
            self._variants = table
        return [term, *self._variants.get(term, [])]

    def many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self(text) for text in texts]
