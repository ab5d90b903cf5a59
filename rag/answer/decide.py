"""The decision, from probabilities alone: answer with a short answer, answer with the evidence only, or abstain.

- Nothing supports an answer (the best sentence's probability is under the abstain threshold): abstain.
- Evidence, but no short answer likely enough to be right: answer with the cited sentences, no headline.
- Both: the short answer leads, taken from a cited sentence so it can be checked against a quote.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.reading import Reading, SentenceCandidate, SpanCandidate
from rag.answer.scoring import Thresholds

MAX_CITED = 3


@dataclass(frozen=True)
class Decision:
    abstain: bool
    cited: list[SentenceCandidate]
    short: SpanCandidate | None
    support: float  # the probability that the best sentence holds the answer


def decide(reading: Reading, thresholds: Thresholds) -> Decision:
    if not reading.sentences:
        return Decision(True, [], None, 0.0)
    best = reading.sentences[0]
    support = best.probability
    if reading.no_answer_probability is not None:
        support = min(support, 1.0 - reading.no_answer_probability)
    if support < thresholds.abstain:
        return Decision(True, [], None, support)
    cited = [best]
    for c in reading.sentences[1:]:
        if len(cited) >= MAX_CITED or c.probability < thresholds.cite_ratio * best.probability:
            break
        if all(c.text != o.text for o in cited):
            cited.append(c)
    chosen = {(c.article_id, c.start) for c in cited}
    short = next(
        (
            s
            for s in reading.spans
            if (s.sentence.article_id, s.sentence.start) in chosen and s.probability >= thresholds.short_answer
        ),
        None,
    )
    return Decision(False, cited, short, support)
