"""Shared terms back to the words each original text used: 律師 in the need, 法务 in the resource.

Tokens are compared after normalizing (simplified script, synonyms folded to one head word), but
a reviewer reads the original posts. Folding the original one character at a time keeps every
folded character tied to its place in the original, so a term found in the folded text can be
cut out of the original as it was written, traditional script included.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

from matcher.normalize import to_simplified


@functools.lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char)
    if not folded.isascii():
        folded = to_simplified(folded)
    return folded.lower()


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> tuple[str, tuple[int, ...]]:
    """The folded text and, for each of its characters, the position of the original character."""
    chars, origin = [], []
    for position, char in enumerate(text):
        for folded in _fold_char(char):
            chars.append(folded)
            origin.append(position)
    return "".join(chars), tuple(origin)


def find_surface(original: str, variants: Iterable[str]) -> str | None:
    """The original spelling of the first variant (longest first) that occurs in `original`, if any."""
    folded, origin = fold(original)
    for variant in sorted(set(variants), key=len, reverse=True):
        at = folded.find(variant) if variant else -1
        if at >= 0:
            return original[origin[at]:origin[at + len(variant) - 1] + 1]
    return None
