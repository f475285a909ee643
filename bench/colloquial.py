"""Colloquial needs against formally worded resources: MRR and recall@1, meaning vs words.

data/canary/ holds a set written for this project: 60 resources worded as a service list would
word them, and two needs for each, worded as people post them ("放暑假了娃白天没人看"). Resources
with an odd number and their needs form the dev half, the even ones the test half; every need is
searched against all 60 resources. Baselines in the same run: the words-only engine, e5 alone and
plain jieba TF-IDF.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import jieba
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common import embedding_cache, print_table, save_embedding_cache
from matcher import Matcher
from matcher.encode import embed, get_encoder
from matcher.normalize import normalize

# The set ships with the package as the promotion guard's canary (matcher/canary.py).
HERE = Path(__file__).resolve().parent.parent / "data" / "canary"


def read_set() -> tuple[list[dict], list[dict], list[str], list[str]]:
    with open(HERE / "resources.tsv", encoding="utf-8") as f:
        resources = list(csv.DictReader(f, delimiter="\t"))
    with open(HERE / "needs.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    needs = [{"id": r["id"], "title": r["text"]} for r in rows]
    gold = [r["resource"] for r in rows]
    half = ["dev" if int(g[1:]) % 2 else "test" for g in gold]
    return [{"id": r["id"], "title": r["title"], "description": r["description"]} for r in resources], needs, gold, half


def ranks_of(rankings: list[list[str]], gold: list[str]) -> np.ndarray:
    """1-based rank of each need's right resource; inf where it was not returned."""
    return np.array([ranking.index(g) + 1 if g in ranking else np.inf for ranking, g in zip(rankings, gold,
                                                                                               strict=True)])


def engine(resources, needs, cache, **settings) -> list[list[str]]:
    matcher = Matcher(embedding_cache=cache, **settings).fit(resources, needs)
    return [[s.resource_id for s in found] for found in matcher.top_k(needs, k=len(resources))]


def e5_alone(resources, needs, cache) -> list[list[str]]:
    encoder = get_encoder("e5-small")
    r = embed([normalize(f"{x['title']} {x['description']}") for x in resources], encoder, cache)
    n = embed([normalize(x["title"]) for x in needs], encoder, cache)
    return [[resources[j]["id"] for j in np.argsort(-row, kind="stable")] for row in n @ r.T]


def jieba_tfidf(resources, needs, cache) -> list[list[str]]:
    logging.getLogger("jieba").setLevel(logging.WARNING)
    cutter = jieba.Tokenizer()
    vectorizer = TfidfVectorizer(tokenizer=cutter.lcut, token_pattern=None)
    docs = vectorizer.fit_transform([f"{x['title']} {x['description']}" for x in resources])
    queries = vectorizer.transform([x["title"] for x in needs])
    scores = (queries @ docs.T).toarray()
    return [[resources[j]["id"] for j in np.argsort(-row, kind="stable")] for row in scores]


def main() -> None:
    resources, needs, gold, half = read_set()
    cache = embedding_cache("colloquial")
    methods = [("duijie default (words + e5-small)", lambda r, n, c: engine(r, n, c)),
               ("duijie words only (encoder none)", lambda r, n, c: engine(r, n, c, encoder="none")),
               ("e5-small cosine alone", e5_alone), ("jieba TF-IDF cosine", jieba_tfidf)]
    rows = []
    for name, method in methods:
        ranks = ranks_of(method(resources, needs, cache), gold)
        row = [name]
        for part in ("dev", "test"):
            mine = ranks[np.array(half) == part]
            row += [round(float(np.mean(1 / mine)), 3), round(float(np.mean(mine == 1)), 3)]
        rows.append(row)
    save_embedding_cache("colloquial", cache)
    print_table(f"Colloquial needs → formal resources ({len(needs)} needs, {len(resources)} resources)",
                ["method", "dev MRR", "dev recall@1", "test MRR", "test recall@1"], rows)


if __name__ == "__main__":
    main()
