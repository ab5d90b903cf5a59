"""The default reader: measured features of sentences and short answers, scored by the fitted weights.

Offline and instant: no model runs here, the sentences' vectors were computed at ingest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rag.answer.features import SentenceFeaturizer, SpanFeaturizer
from rag.answer.question import QuestionAnalysis
from rag.answer.reading import Evidence, Reading
from rag.answer.scoring import WEIGHTS, ScoringModel, logit


class FittedReader:
    name = "fitted"

    def __init__(
        self, analyzer: Callable[[str], list[str]], model: ScoringModel | None = None, weights=WEIGHTS
    ) -> None:
        self.sentence_features = SentenceFeaturizer(analyzer)
        self.span_features = SpanFeaturizer(analyzer)
        self._model = model
        self._weights = weights

    @property
    def model(self) -> ScoringModel:
        if self._model is None:
            self._model = ScoringModel.load(self._weights)
        return self._model

    @property
    def thresholds(self):
        return self.model.thresholds

    def warm_up(self) -> None:
        _ = self.model

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading:
        sentences = self.rank_sentences(question, evidence)
        spans = self.span_features.candidates(question, sentences, logit)
        if spans:
            probabilities = self.model.span.probabilities(np.stack([s.features for s in spans]))
            for s, p in zip(spans, probabilities):
                s.probability = float(p)
            spans.sort(key=lambda s: (-s.probability, -s.sentence.probability, s.start))
        return Reading(sentences, spans, self.name)

    def rank_sentences(self, question: QuestionAnalysis, evidence: Evidence):
        sentences = self.sentence_features.candidates(question, evidence)
        if sentences:
            probabilities = self.model.sentence.probabilities(np.stack([c.features for c in sentences]))
            for c, p in zip(sentences, probabilities):
                c.probability = float(p)
            sentences.sort(key=lambda c: (-c.probability, c.passage, c.start))
        return sentences
