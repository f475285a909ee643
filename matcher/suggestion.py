"""The engine's answers: a Suggestion per proposed pair, an Assignment for a global pairing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A proposed need–resource pairing (推荐配对) with its score and the reasons for it."""

    need_id: str
    resource_id: str
    score: float
    features: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    # Shared terms as each post wrote them: {"term": head word, "need": ..., "resource": ...}; what the
    # review page highlights, so it never re-tokenizes.
    terms: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class Assignment:
    """Pairs chosen by the global assignment, and why each other need stayed unmatched."""

    pairs: list[Suggestion]
    unmatched: dict[str, str]

    @property
    def total_score(self) -> float:
        return float(sum(p.score for p in self.pairs))
