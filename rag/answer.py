"""Extractive, grounded answers: verbatim source sentences with [n] markers, and a typed short answer.

Nothing here writes prose: every sentence of an answer is a slice of an article, so every number and
date in it is in what it cites, and every citation's offsets index the article text exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from . import entities
from .chunk import split_sentences
from .types import Answer, Article, Citation, Hit, Passage

ABSTAIN_TEXT = "The articles in the index do not contain an answer to this question."
MAX_SENTENCES = 3

# Sentence score weights: meaning, shared rare words, the asked-for type present, retrieval rank.
W_DENSE, W_LEXICAL, W_TYPE, W_RANK = 0.45, 0.35, 0.10, 0.10


@dataclass
class Candidate:
    passage: int  # 1-based passage number
    hit: Hit
    start: int
    end: int
    text: str
    dense: float = 0.0
    lexical: float = 0.0
    typed: list[entities.Entity] | None = None
    score: float = 0.0


def to_passages(hits: list[Hit]) -> list[Passage]:
    return [
        Passage(n=i, article_id=h.chunk.article_id, chunk_id=h.chunk.id, score=round(h.score, 6),
                text=h.chunk.text, title=h.chunk.title, start=h.chunk.start, end=h.chunk.end)
        for i, h in enumerate(hits, 1)
    ]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9$%]+", " ", s.lower()).strip()


class ExtractiveAnswerer:
    """Picks the best-supported source sentences for a question and cites them.

    ``answer(question, question_vector, hits, articles)`` -> Answer. ``articles`` maps article id to
    Article and is used to verify offsets and fill citation metadata. Abstains when the confidence of
    the best sentence is below ``threshold``.
    """

    backend = "extractive"

    def __init__(self, embedder, analyzer, idf, threshold: float = 0.5) -> None:
        self.embedder = embedder
        self.analyzer = analyzer
        self.idf = idf  # term -> inverse document frequency, from the lexical index
        self.threshold = threshold

    # -- scoring ------------------------------------------------------------------------------------
    def candidates(self, question: str, qvec: np.ndarray, hits: list[Hit]) -> list[Candidate]:
        seen: set[tuple[str, int, int]] = set()
        cands: list[Candidate] = []
        for n, h in enumerate(hits, 1):
            for sp in split_sentences(h.chunk.text, offset=h.chunk.start):
                key = (h.chunk.article_id, sp.start, sp.end)
                if key in seen or sp.end - sp.start < 15:
                    continue
                seen.add(key)
                local = h.chunk.text[sp.start - h.chunk.start: sp.end - h.chunk.start]
                cands.append(Candidate(n, h, sp.start, sp.end, local))
        if not cands:
            return []
        vecs = self.embedder.embed_batch([c.text for c in cands])
        sims = vecs @ np.asarray(qvec, dtype=np.float32)
        q_terms = set(self.analyzer(question))
        q_weight = sum(self.idf(t) for t in q_terms) or 1.0
        kind = entities.expected_type(question)
        q_norm = _norm(question)
        for c, sim in zip(cands, sims):
            c.dense = float(max(sim, 0.0))
            terms = set(self.analyzer(c.text))
            c.lexical = sum(self.idf(t) for t in q_terms & terms) / q_weight
            c.typed = [e for e in self._typed(kind, c.text) if _norm(e.text) not in q_norm] if kind else []
            type_ok = 1.0 if (not kind or c.typed) else 0.0
            c.score = W_DENSE * c.dense + W_LEXICAL * c.lexical + W_TYPE * type_ok + W_RANK / c.passage
        cands.sort(key=lambda c: (-c.score, c.passage, c.start))
        return cands

    @staticmethod
    def _typed(kind: str, text: str) -> list[entities.Entity]:
        found = entities.find(kind, text)
        if not found and kind == "money":
            found = entities.find("quantity", text) or entities.find("number", text)
        if not found and kind == "percent":
            found = entities.find("number", text)
        if not found and kind == "place":
            found = entities.find("name", text)
        return found

    def confidence(self, best: Candidate, kind: str | None) -> float:
        """How strongly the best sentence answers the question, in [0, 1]."""
        conf = 0.6 * best.dense + 0.4 * best.lexical
        if kind and not best.typed:
            conf *= 0.8  # the question asks for an amount, date or name the sentence does not have
        return max(0.0, min(1.0, conf))

    # -- the answer ---------------------------------------------------------------------------------
    def answer(self, question: str, qvec: np.ndarray, hits: list[Hit], articles: dict[str, Article]) -> Answer:
        passages = to_passages(hits)
        cands = self.candidates(question, qvec, hits)
        kind = entities.expected_type(question)
        if not cands:
            return self.abstain(question, passages, 0.0)
        best = cands[0]
        conf = self.confidence(best, kind)
        if conf < self.threshold:
            return self.abstain(question, passages, conf)
        chosen = [best]
        for c in cands[1:]:
            if len(chosen) >= MAX_SENTENCES or c.score < 0.9 * best.score:
                break
            if c.lexical > 0 and all(c.text != o.text for o in chosen):
                chosen.append(c)
        citations, parts = [], []
        for c in chosen:
            art = articles.get(c.hit.chunk.article_id)
            if art is None or art.text[c.start:c.end] != c.text:
                continue  # never cite what the stored article does not say at these offsets
            n = len(citations) + 1
            citations.append(Citation(
                n=n, article_id=art.id, title=art.title, url=art.url, published=art.published,
                chunk_id=c.hit.chunk.id, start=c.start, end=c.end, quote=c.text,
            ))
            parts.append(f"{c.text} [{n}]")
        if not citations:
            return self.abstain(question, passages, conf)
        short = self.short_answer(question, kind, chosen + cands[len(chosen):5])
        return Answer(
            question=question, answer=" ".join(parts), short_answer=short, abstained=False,
            citations=citations, passages=passages, backend=self.backend, confidence=round(conf, 4),
        )

    def abstain(self, question: str, passages: list[Passage], conf: float) -> Answer:
        return Answer(question=question, answer=ABSTAIN_TEXT, short_answer=None, abstained=True, citations=[],
                      passages=passages, backend=self.backend, confidence=round(conf, 4))

    def short_answer(self, question: str, kind: str | None, ranked: list[Candidate]) -> str | None:
        """The span of the asked-for type nearest the question's words in the best sentences."""
        if not kind:
            return None
        q_terms = set(self.analyzer(question))
        for c in ranked:
            if not c.typed:
                continue
            anchors = [m.start() for m in re.finditer(r"\w+", c.text) if set(self.analyzer(m.group(0))) & q_terms]
            def distance(e: entities.Entity) -> float:
                return min((abs(e.start - a) for a in anchors), default=math.inf)
            best = min(c.typed, key=lambda e: (distance(e), e.start))
            return best.text.strip(" ,.;:")
        return None
