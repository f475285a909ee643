"""Write data/demo/decisions.jsonl: staff decisions on the demo suggestions, from a simulated reviewer.

The suggestions are today's engine's (words and the e5-small embeddings, the default model), so the demo
learns from what staff would actually see; the file was first simulated on the words-only engine and
re-simulated when the engine changed (run this again whenever it does).

The reviewer's taste, on purpose not the default model's:
- a strong preference for resources in the need's own grid (utility +1.5), a little for its area (+0.5);
- a dislike of far resources: each km beyond the first costs 0.6, and beyond 3 km the reason is 距离太远;
- relevance matters: 2 x the better of the word cosine and the embedding cosine's margin over
  unrelated text (cosine 0.80 → 0, 0.95 → 1), as a person understands a need without shared words;
  a matching category helps (+0.5);
- some noise (sigma 0.3): people are not consistent.
For each need the reviewer sees the engine's top 6, accepts the best if its utility passes 0.8, rejects
the ones below 0.3 (不相关, or 距离太远), and leaves the rest shown but undecided. Some rejections are not
about the pair: a resource already full (资源已满) or a need solved meanwhile (需求已解决), a few per
hundred; training leaves those out. Seeded, so the file is stable.
Run from the project root: python data/demo/simulate_reviews.py
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from matcher import Matcher

HERE = Path(__file__).resolve().parent
SEED = 20261127


def _read(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line]


def utility(features: dict[str, float], rng: random.Random) -> float:
    distance = features.get("distance_km", 2.0)
    meaning = min(max((features["semantic_cosine"] - 0.80) / 0.15, 0.0), 1.0)
    return (2.0 * max(features["word_cosine"], meaning) + 1.5 * features["same_grid"] + 0.5 * features["same_area"]
            - 0.6 * max(distance - 1.0, 0.0) + 0.5 * max(features["category_match"], 0.0) + rng.gauss(0, 0.3))


def main() -> None:
    rng = random.Random(SEED)
    grids, needs, resources = _read("grids"), _read("needs"), _read("resources")
    matcher = Matcher().fit(resources, needs, grids=grids)
    start = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    reviewers = ["网格员-张", "网格员-李", "党建指导员-王", "网格员-陈"]
    rows = []
    for number, (need, suggestions) in enumerate(zip(needs, matcher.top_k(needs, k=6), strict=True)):
        when = start + dt.timedelta(hours=13 * number + rng.randint(0, 6))
        scored = [(utility(s.features, rng), s) for s in suggestions]
        best = max(scored, key=lambda pair: pair[0], default=None)
        for value, suggestion in scored:
            if best is not None and suggestion is best[1] and value > 0.8:
                decision, reason = "accepted", ""
            elif rng.random() < 0.04:
                decision, reason = "rejected", rng.choice(["资源已满", "需求已解决"])
            elif value < 0.3:
                decision = "rejected"
                reason = "距离太远" if suggestion.features.get("distance_km", 0) > 3 else "不相关"
            else:
                decision, reason = "shown", ""
            rows.append({"need": need["id"], "resource": suggestion.resource_id, "decision": decision,
                         "reason": reason, "reviewer": rng.choice(reviewers),
                         "time": when.isoformat(timespec="seconds")})
    (HERE / "decisions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")


if __name__ == "__main__":
    main()
