"""Title search that reads as people write: 律師 finds 律师, and 法务 finds 律师 (a synonym of it).

Each stored title keeps a search text (its normalized form and its canonical tokens); a query is
normalized and tokenized the same way, and every one of its tokens must appear.
"""

from __future__ import annotations

import functools

from sqlalchemy import ColumnElement, and_, or_, true

from matcher.normalize import normalize
from matcher.tokenize import Tokenizer


@functools.cache
def _tokenizer() -> Tokenizer:
    return Tokenizer()


def search_text(title: str) -> str:
    """The stored search text of a title: normalized, then its canonical tokens (synonyms folded)."""
    text = normalize(title or "")
    return f"{text} {' '.join(dict.fromkeys(_tokenizer()(text)))}".strip()


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matches(column, query: str) -> ColumnElement[bool]:
    """A condition on a search-text column: the normalized query as written, or all of its tokens."""
    text = normalize(query or "")
    if not text:
        return true()
    tokens = list(dict.fromkeys(_tokenizer()(text)))
    whole = column.like(_like(text), escape="\\")
    if not tokens:
        return whole
    return or_(whole, and_(*(column.like(_like(t), escape="\\") for t in tokens)))
