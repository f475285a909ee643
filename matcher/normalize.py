"""str → str: width folding, traditional → simplified, stray pinyin removed, punctuation and spaces folded."""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

# Reports reposted through converters carry pinyin readings after characters, e.g. 關(guān), 個(gè).
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN = re.compile(
    r"(?<=[\u3400-\u9fff])\(\s*("
    rf"[a-zü{_TONED}]*[{_TONED}][a-zü{_TONED}]*"  # any syllable with a tone mark
    r"|(?:[zcs]h|[bpmfdtnlgkhjqxrzcsyw])?(?:[aeiouv]|ü)(?:[aeiou]|ü)?(?:ng|n|r)?"  # or a bare syllable
    r")\s*\)"
)

# Chinese punctuation that NFKC leaves alone, folded to one ASCII form each.
_PUNCT = str.maketrans({
    "、": ",", "。": ".", "「": '"', "」": '"', "『": '"', "』": '"', "“": '"', "”": '"', "‘": "'",
    "’": "'", "《": '"', "》": '"', "〈": '"', "〉": '"', "【": "[", "】": "]", "〔": "(", "〕": ")",
    "—": "-", "–": "-", "―": "-", "～": "~", "·": " ", "•": " ", "…": "...", "\u3000": " ",
})
_REPEATED_PUNCT = re.compile(r"([!?,.;:~\-])\1+")
_SPACES = re.compile(r"\s+")
# A space between two Chinese characters is a typing slip, never a word boundary.
_HAN_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
# What pasted text carries that no reader sees: C0 and C1 controls (backspace, form feed from office
# software), zero-width characters, text-direction marks and embeddings (which can make a title display
# as something else), and lone surrogates (unencodable halves of a broken emoji). Tab and line breaks
# stay; vertical tab, form feed and the Unicode line and paragraph separators become line breaks.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f"
    "\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]")
_BREAKS = str.maketrans({"\x0b": "\n", "\x0c": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"})


def clean_text(text: str) -> str:
    """`text` without invisible characters (see _INVISIBLE), line breaks kept: what every text field stores.

    Unlike `normalize`, it keeps what the person wrote otherwise, so pages show their own words.
    """
    return _INVISIBLE.sub("", text.translate(_BREAKS))


@functools.cache
def _converter() -> opencc.OpenCC:
    # One converter per process: building it parses OpenCC's dictionaries.
    return opencc.OpenCC("t2s")


def strip_pinyin(text: str) -> str:
    """Drop pinyin readings in parentheses that follow a Chinese character."""
    return _PINYIN.sub("", text)


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese with OpenCC's phrase-aware tables."""
    return _converter().convert(text)


def normalize(text: str) -> str:
    """Return the canonical form of `text` used for tokens, vectors and comparisons.

    NFKC folds full-width digits, letters and punctuation; pinyin readings go before
    conversion so a reading is never mistaken for content; ASCII is lower-cased.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", clean_text(text))
    text = strip_pinyin(text)
    text = to_simplified(text)
    text = text.translate(_PUNCT)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    text = _HAN_GAP.sub("", text)
    return text.lower()
