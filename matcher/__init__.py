"""Duijie (对接): pairs needs (需求) with resources (资源) for the three-list mechanism."""

from matcher.errors import InvalidRecordsError, LoadError, NotFittedError, RecordError
from matcher.pipeline import Matcher
from matcher.records import Grid, Need, Resource
from matcher.suggestion import Assignment, Suggestion

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
