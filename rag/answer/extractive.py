"""Extractive, grounded answers: verbatim source sentences with [n] markers, and a short answer when it is
likely right.

Nothing here writes prose: every sentence of an answer is a slice of an article, so every number and date in
it is in what it cites, and every citation's offsets index the article text exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from rag.answer.decide import decide
from rag.answer.question import QuestionAnalysis
from rag.answer.reading import Evidence, Reader
from rag.answer.scoring import Thresholds
from rag.language import markers, relative_dates
from rag.types import Answer, Citation, Hit, Passage

ABSTAIN_TEXT = "The articles in the index do not contain an answer to this question."


def _resolved(quote: str, published: str | None) -> tuple[dict, ...]:
    """The quote's relative dates ("on Sunday") as the days they name, from its article's date."""
    return tuple(
        {"text": d.text, "start": d.start, "end": d.end, "date": d.date}
        for d in relative_dates.resolve(quote, published)
    )


def to_passages(hits: list[Hit]) -> list[Passage]:
    return [
        Passage(
            n=i,
            article_id=h.chunk.article_id,
            chunk_id=h.chunk.id,
            score=round(h.score, 6),
            text=h.chunk.text,
            title=h.chunk.title,
            start=h.chunk.start,
            end=h.chunk.end,
        )
        for i, h in enumerate(hits, 1)
    ]


def abstention(question: str, passages: list[Passage], backend: str, support: float = 0.0, **extra) -> Answer:
    return Answer(
        question=question,
        answer=ABSTAIN_TEXT,
        segments=markers.plain_segments(ABSTAIN_TEXT),
        short_answer=None,
        abstained=True,
        citations=[],
        passages=passages,
        backend=backend,
        confidence=round(support, 4),
        **extra,
    )


class ExtractiveAnswerer:
    """Answers from a Reader's ranking, by the thresholds' decision."""

    backend = "extractive"

    def __init__(self, reader: Reader, overrides: dict[str, float | None] | None = None) -> None:
        self.reader = reader
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._thresholds: Thresholds | None = None

    @property
    def thresholds(self) -> Thresholds:
        """The reader's thresholds (fitted, for the default reader), with any a setting overrides."""
        if self._thresholds is None:
            self._thresholds = replace(self.reader.thresholds, **self.overrides)
        return self._thresholds

    def stream(self, question: QuestionAnalysis, evidence: Evidence) -> Iterator[tuple[str, Any]]:
        """("token", text)... then ("answer", Answer). The answer is complete at once; it is sent in word-sized
        pieces so that every backend streams the same way."""
        answer = self.answer(question, evidence)
        for piece in re.findall(r"\S+\s*", answer.answer):
            yield "token", piece
        yield "answer", answer

    def answer(self, question: QuestionAnalysis, evidence: Evidence) -> Answer:
        passages = to_passages(evidence.hits)
        decision = decide(self.reader.read(question, evidence), self.thresholds)
        if question.alone is not None:  # a follow-up: also read by its own words; the more confident reading wins
            alone = decide(self.reader.read(question.alone, evidence), self.thresholds)
            if alone.support > decision.support:
                decision = alone
        if decision.abstain:
            return abstention(question.text, passages, self.backend, decision.support)
        citations, parts = [], []
        for c in decision.cited:
            article = evidence.articles.get(c.article_id)
            if article is None or article.text[c.start : c.end] != c.text:
                continue  # never cite what the stored article does not say at these offsets
            n = len(citations) + 1
            citations.append(
                Citation(
                    n=n,
                    article_id=article.id,
                    title=article.title,
                    url=article.url,
                    published=article.published,
                    chunk_id=c.hit.chunk.id,
                    start=c.start,
                    end=c.end,
                    quote=c.text,
                    source=article.source,
                    dates=_resolved(c.text, article.published) if question.answer_type == "date" else (),
                )
            )
            parts.append((c.text, n, ""))
        if not citations:
            return abstention(question.text, passages, self.backend, decision.support)
        short = decision.short
        cited = {(c.article_id, c.start) for c in citations}
        if short is not None and (short.sentence.article_id, short.sentence.start) not in cited:
            short = None
        text, segments = markers.compose(parts)
        return Answer(
            question=question.text,
            answer=text,
            segments=segments,
            short_answer=short.text if short else None,
            short_answer_confidence=round(short.probability, 4) if short else None,
            abstained=False,
            citations=citations,
            passages=passages,
            backend=self.backend,
            confidence=round(decision.support, 4),
        )
