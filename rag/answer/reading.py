"""The Reader seam: what a reader is given, and what it returns.

A reader ranks the sentences of the passages it is given by the probability that they support an answer, and
candidate short answers by the probability that they are right. It never decides: `decide` does, from the
probabilities alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rag.answer.question import QuestionAnalysis
from rag.encoders.vectors import SentenceVectors
from rag.types import Article, Hit


@dataclass(frozen=True)
class Thresholds:
    abstain: float  # below this probability that the best sentence holds the answer, abstain
    short_answer: float  # a short answer is shown from this probability that it is right
    cite_ratio: float  # further sentences are cited while their probability is at least this share of the best's


@dataclass(frozen=True)
class Evidence:
    """The passages found for a question, with what a reader may need of them."""

    hits: list[Hit]  # best first; passage n is hits[n - 1]
    articles: dict[str, Article]  # by id: full text, title, dates
    sentences: dict[str, SentenceVectors]  # by chunk id: stored sentence offsets and vectors
    question_vector: np.ndarray


@dataclass
class SentenceCandidate:
    passage: int  # 1-based passage number
    hit: Hit
    start: int  # article offsets: article.text[start:end] == text
    end: int
    text: str
    content_start: int = 0  # characters of dateline before what the sentence says
    features: np.ndarray | None = None
    probability: float = 0.0  # that this sentence holds the answer

    @property
    def article_id(self) -> str:
        return self.hit.chunk.article_id


@dataclass
class SpanCandidate:
    sentence: SentenceCandidate
    start: int  # article offsets
    end: int
    text: str
    kind: str
    features: np.ndarray | None = None
    probability: float = 0.0  # that this span is the answer


@dataclass
class Reading:
    """Ranked sentences and short answers, best first; each with its calibrated probability."""

    sentences: list[SentenceCandidate] = field(default_factory=list)
    spans: list[SpanCandidate] = field(default_factory=list)
    reader: str = ""
    # A reader that judges answerability itself (an extractive-QA model's no-answer score) says so here.
    no_answer_probability: float | None = None


class Reader(Protocol):
    """``read(question, evidence) -> Reading``. ``warm_up()`` loads whatever is heavy, once.

    Sentences and spans carry exact article offsets. Probabilities are calibrated: among candidates given
    probability p, about a share p are right."""

    name: str
    thresholds: Thresholds  # where its probabilities are cut: abstain, show a short answer, cite more

    def warm_up(self) -> None: ...

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading: ...
