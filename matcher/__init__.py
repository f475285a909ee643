"""Duijie (对接): pairs needs (需求) with resources (资源) for the three-list mechanism."""

from matcher.errors import InvalidRecordsError, LoadError, NotFittedError, RecordError
from matcher.records import Grid, Need, Resource
from matcher.suggestion import Assignment, Suggestion


def __getattr__(name: str) -> object:
    # The Matcher is loaded on first use (PEP 562), so a part of the engine (storage, shards, a Dask worker's
    # task functions) can be imported without the whole pipeline behind it.
    if name == "Matcher":
        from matcher.pipeline import Matcher

        return Matcher
    raise AttributeError(f"module 'matcher' has no attribute {name!r}")


__all__ = [
    "Assignment",
    "Grid",
    "InvalidRecordsError",
    "LoadError",
    "Matcher",
    "Need",
    "NotFittedError",
    "RecordError",
    "Resource",
    "Suggestion",
]
