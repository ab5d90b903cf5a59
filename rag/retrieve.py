"""Hybrid retrieval: four ranked lists fused by reciprocal rank.

Chunk level: dense vectors (store) and BM25 (lexical index). Article level: the mean of an article's
chunk vectors (store) and BM25 over the whole article. Article evidence lifts every chunk of that
article, because a question about a story is often answered by a passage that shares few words with it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from .types import Chunk, Hit

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks


@dataclass(frozen=True)
class Query:
    text: str
    k: int = 5
    since: str | None = None
    until: str | None = None
    as_of: str | None = None  # time of asking: favours articles published shortly before it
    context: str = ""  # the earlier question a follow-up leans on ("When did she land?")

    @property
    def search_text(self) -> str:
        """What retrieval searches for: the question, with the earlier one it refers back to."""
        return f"{self.context} {self.text}".strip()


@dataclass
class Ranking:
    hits: list[Hit] = field(default_factory=list)  # every candidate chunk, best first
    articles: list[str] = field(default_factory=list)  # every candidate article, best first


def in_range(published: str | None, since: str | None, until: str | None, keep_undated: bool = False) -> bool:
    """Whether an article's date is within [since, until]; an undated one is in only if ``keep_undated``."""
    if not published:
        return keep_undated or not (since or until)
    return not (since and published < since) and not (until and published > until)


def recency_weight(published: str | None, as_of: str, half_life_days: float = 30.0) -> float:
    """1.0 for an article published on the as-of date, halving every ``half_life_days`` before it."""
    if not published:
        return 0.0
    try:
        days = (date.fromisoformat(as_of) - date.fromisoformat(published)).days
    except ValueError:
        return 0.0
    return math.pow(0.5, max(days, 0) / half_life_days)


def rrf(ranked_keys) -> dict:
    return {key: 1.0 / (RRF_K + r) for r, key in enumerate(ranked_keys, 1)}


class HybridRetriever:
    """Fuses the four candidate lists; `cap` then limits passages per article."""

    def __init__(self, store, lexical, embedder, candidates: int = 60, max_per_article: int = 2) -> None:
        self.store = store
        self.lexical = lexical
        self.embedder = embedder
        self.candidates = candidates
        self.max_per_article = max_per_article

    def rank(self, q: Query, query_vector: np.ndarray | None = None) -> Ranking:
        """Every candidate chunk and article that any retriever found, fused, best first."""
        until = q.until
        if q.as_of and (not until or q.as_of < until):
            until = q.as_of  # nothing published after the time of asking can be its answer
        # A date range the user asks for admits only dated articles; the time of asking alone only
        # favours recent ones, so an undated article stays in the running.
        keep = not (q.since or q.until)
        n = self.candidates
        vec = self.embedder.embed_query(q.search_text) if query_vector is None else query_vector
        dense = self.store.dense_query(vec, n, since=q.since, until=until, keep_undated=keep)
        lexical = [(c, s) for c, s in self.lexical.search(q.search_text, n * 3)
                   if in_range(c.published, q.since, until, keep)][:n]
        dense_articles = self.store.dense_article_query(vec, n, since=q.since, until=until, keep_undated=keep)
        lexical_articles = [(a, s) for a, s in self.lexical.search_articles(q.search_text, n * 3)
                            if in_range(self.lexical.published(a), q.since, until, keep)][:n]
        return self.fuse(dense, lexical, dense_articles, lexical_articles, as_of=q.as_of)

    @staticmethod
    def fuse(dense, lexical, dense_articles=(), lexical_articles=(), as_of: str | None = None) -> Ranking:
        chunks: dict[str, Chunk] = {}
        chunk_score: dict[str, float] = defaultdict(float)
        for hits in (dense, lexical):
            for cid, s in rrf(c.id for c, _ in hits).items():
                chunk_score[cid] += s
            chunks.update({c.id: c for c, _ in hits})
        article_evidence: dict[str, float] = defaultdict(float)
        for hits in (dense_articles, lexical_articles):
            for aid, s in rrf(a for a, _ in hits).items():
                article_evidence[aid] += s
        published = {c.article_id: c.published for c in chunks.values()}
        best_chunk: dict[str, float] = defaultdict(float)
        for cid, s in chunk_score.items():
            aid = chunks[cid].article_id
            best_chunk[aid] = max(best_chunk[aid], s)

        def prior(aid: str) -> float:
            return 1.0 + recency_weight(published.get(aid), as_of) if as_of else 1.0

        article_score = {aid: (best_chunk.get(aid, 0.0) + article_evidence.get(aid, 0.0)) * prior(aid)
                         for aid in set(best_chunk) | set(article_evidence)}
        final = {cid: (s + article_evidence.get(chunks[cid].article_id, 0.0)) * prior(chunks[cid].article_id)
                 for cid, s in chunk_score.items()}
        hits = [Hit(chunk=chunks[cid], score=final[cid]) for cid in sorted(final, key=lambda cid: (-final[cid], cid))]
        articles = sorted(article_score, key=lambda a: (-article_score[a], a))
        return Ranking(hits=hits, articles=articles)

    @staticmethod
    def cap(ranked: list[Hit], k: int, max_per_article: int) -> list[Hit]:
        per_article: dict[str, int] = defaultdict(int)
        hits: list[Hit] = []
        for h in ranked:
            if per_article[h.chunk.article_id] >= max_per_article:
                continue
            per_article[h.chunk.article_id] += 1
            hits.append(h)
            if len(hits) >= k:
                break
        return hits
