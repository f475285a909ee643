"""The texts of a record that each stage reads: words, embedding, and the words reasons quote."""

from __future__ import annotations

from matcher.normalize import normalize
from matcher.records import Need, Resource


def record_text(record: Need | Resource) -> str:
    # The title counts twice: it is what the poster chose to say first, descriptions ramble.
    return normalize(f"{record.title} {record.title} {record.description}")


def embedding_text(record: Need | Resource) -> str:
    """What the sentence encoder reads (once each: the encoder weighs the title itself)."""
    return normalize(f"{record.title} {record.description}")


def original_text(record: Need | Resource) -> str:
    """The post as its author wrote it, where reasons find the words to quote."""
    return f"{record.title}\n{record.description}"
