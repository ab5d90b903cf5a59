"""Answering: a question's analysis and its evidence in, an Answer out.

The Answerer seam is `stream(question, evidence)`: ("token", text) events while the answer is written, then one
("answer", Answer). The extractive answerer reads with a Reader (the fitted one by default) and decides from its
probabilities; the LLM answerer drafts with a model and keeps only what verification finds in the sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from rag.answer.question import QuestionAnalysis
from rag.answer.reading import Evidence


class Answerer(Protocol):
    backend: str

    def stream(self, question: QuestionAnalysis, evidence: Evidence) -> Iterator[tuple[str, Any]]: ...
