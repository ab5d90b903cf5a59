"""The decision, from probabilities alone. Pure logic."""

from rag.answer.decide import decide
from rag.answer.reading import Reading, SentenceCandidate, SpanCandidate, Thresholds
from rag.types import Chunk, Hit

HIT = Hit(Chunk("a:0", "a", 0, 0, 100, "x" * 100, "T"), 1.0)
T = Thresholds(abstain=0.3, short_answer=0.8, cite_ratio=0.5)


def sentence(start, p, text=None):
    return SentenceCandidate(1, HIT, start, start + 10, text or f"sentence {start}", probability=p)


def test_nothing_supports_an_answer_so_it_abstains():
    d = decide(Reading([sentence(0, 0.2)], []), T)
    assert d.abstain and d.cited == [] and d.short is None and d.support == 0.2
    assert decide(Reading([], []), T).abstain


def test_evidence_without_a_likely_short_answer_is_cited_without_a_headline():
    s1, s2, s3 = sentence(0, 0.9), sentence(20, 0.5), sentence(40, 0.3)
    d = decide(Reading([s1, s2, s3], [SpanCandidate(s1, 0, 4, "x", "name", probability=0.7)]), T)
    assert not d.abstain and d.cited == [s1, s2] and d.short is None


def test_a_likely_short_answer_leads_only_from_a_cited_sentence():
    s1, s2 = sentence(0, 0.9), sentence(20, 0.2)
    uncited = SpanCandidate(s2, 20, 24, "no", "name", probability=0.95)
    cited = SpanCandidate(s1, 0, 4, "yes", "name", probability=0.85)
    d = decide(Reading([s1, s2], [uncited, cited]), T)
    assert d.short is cited


def test_a_readers_no_answer_score_can_make_it_abstain():
    d = decide(Reading([sentence(0, 0.9)], [], no_answer_probability=0.8), T)
    assert d.abstain and abs(d.support - 0.2) < 1e-9
