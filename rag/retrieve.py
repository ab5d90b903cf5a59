"""Hybrid retrieval: dense vectors from the store and BM25, fused by reciprocal rank."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
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


def _in_range(chunk: Chunk, since: str | None, until: str | None) -> bool:
    p = chunk.published
    if since and (not p or p < since):
        return False
    return not (until and (not p or p > until))


def recency_weight(published: str | None, as_of: str, half_life_days: float = 30.0) -> float:
    """1.0 for an article published on the as-of date, halving every ``half_life_days`` before it."""
    if not published:
        return 0.0
    try:
        days = (date.fromisoformat(as_of) - date.fromisoformat(published)).days
    except ValueError:
        return 0.0
    return math.pow(0.5, max(days, 0) / half_life_days)


class HybridRetriever:
    """Fuses dense (store) and lexical (BM25) candidate lists, then caps passages per article."""

    def __init__(self, store, lexical, embedder, candidates: int = 60, max_per_article: int = 2) -> None:
        self.store = store
        self.lexical = lexical
        self.embedder = embedder
        self.candidates = candidates
        self.max_per_article = max_per_article

    def retrieve(self, q: Query, query_vector: np.ndarray | None = None) -> list[Hit]:
        """The top ``q.k`` passages, at most ``max_per_article`` from one article."""
        return self.cap(self.rank(q, query_vector), q.k, self.max_per_article)

    def rank(self, q: Query, query_vector: np.ndarray | None = None) -> list[Hit]:
        """Every candidate either retriever found, fused, best first."""
        until = q.until
        if q.as_of and (not until or q.as_of < until):
            until = q.as_of  # nothing published after the time of asking can be its answer
        vec = self.embedder.embed_query(q.text) if query_vector is None else query_vector
        dense = self.store.dense_query(vec, self.candidates, since=q.since, until=until)
        lexical = [(c, s) for c, s in self.lexical.search(q.text, self.candidates * 3) if _in_range(c, q.since, until)]
        lexical = lexical[: self.candidates]
        return self.fuse(dense, lexical, as_of=q.as_of)

    @staticmethod
    def fuse(dense, lexical, as_of: str | None = None) -> list[Hit]:
        score: dict[str, float] = defaultdict(float)
        chunks: dict[str, Chunk] = {}
        dense_rank, lex_rank, sim = {}, {}, {}
        for r, (c, s) in enumerate(dense, 1):
            score[c.id] += 1.0 / (RRF_K + r)
            chunks[c.id], dense_rank[c.id], sim[c.id] = c, r, s
        for r, (c, _) in enumerate(lexical, 1):
            score[c.id] += 1.0 / (RRF_K + r)
            chunks[c.id], lex_rank[c.id] = c, r
        if as_of:
            for cid in score:
                score[cid] *= 1.0 + recency_weight(chunks[cid].published, as_of)
        ranked = sorted(score, key=lambda cid: (-score[cid], cid))
        return [Hit(chunk=chunks[cid], score=score[cid], dense_rank=dense_rank.get(cid),
                    lexical_rank=lex_rank.get(cid), dense_similarity=sim.get(cid)) for cid in ranked]

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


def article_ranking(ranked: list[Hit]) -> list[str]:
    """Distinct article ids in the order their best chunk ranks."""
    return list(dict.fromkeys(h.chunk.article_id for h in ranked))
