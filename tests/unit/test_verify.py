"""Verification of an LLM's draft against the passages it cites, and the [n] markers. Pure logic."""

from rag.answer.verify import verify
from rag.index.lexical import Analyzer
from rag.language import markers
from rag.types import Article, Chunk, Hit

TEXT = (
    "Harris announced additional aid of $310 million for the region. She landed in Guatemala on Sunday. "
    "The trip lasts three days."
)
ARTICLE = Article("a1", "Harris visits Guatemala", TEXT, published="2021-06-07")
HITS = [Hit(Chunk("a1:0", "a1", 0, 0, len(TEXT), TEXT, ARTICLE.title), 1.0)]


def check(draft):
    return verify(draft, HITS, {"a1": ARTICLE}, Analyzer())


def test_a_supported_sentence_is_kept_with_exact_offsets():
    v = check("Harris announced $310 million in aid for the region [1].")
    assert v.supported == 1 and v.answer == "Harris announced $310 million in aid for the region [1]."
    (c,) = v.citations
    assert TEXT[c.start : c.end] == c.quote == "Harris announced additional aid of $310 million for the region."


def test_a_number_or_date_not_in_the_cited_passage_is_not_supported():
    v = check("Harris announced $410 million for the region [1]. She landed on Monday, June 7 [1].")
    assert v.supported == 0 and v.answer == ""
    assert "“$410 million” is not in the passage it cites" in v.sentences[0]["reason"]
    assert "“June 7” is not in the passage it cites" in v.sentences[1]["reason"]
    assert v.facts_checked == 2 and v.facts_supported == 0


def test_markers_to_passages_that_were_not_given_are_dropped_and_counted():
    v = check("She landed in Guatemala on Sunday [3]. The trip lasts three days [1][2].")
    assert v.invalid_markers == 2
    assert v.sentences[0]["reason"] == "cites no passage that was given"
    assert v.answer == "The trip lasts three days [1]."


def test_unrelated_claims_and_uncited_sentences_are_not_supported():
    v = check("The weather was sunny [1]. Harris met the president.")
    assert [s["reason"] for s in v.sentences] == ["the cited passage does not say this", "cites nothing"]


def test_marker_helpers():
    assert markers.numbers("A [1]. B [2][1].") == [1, 2, 1]
    assert markers.strip("A [1]. B [2].") == "A. B."  # noqa: B005 (our function, not str.strip)
    text, segments = markers.compose([("Aid grew [2] a year.", 1, ""), ("It was $5 million", 2, ".")])
    assert text == "Aid grew [2] a year. [1] It was $5 million [2]."
    assert "".join(s["text"] for s in segments) == text
    assert [s["n"] for s in segments if s["n"]] == [1, 2], "the quote's own [2] is text, not a citation"
    assert segments[0] == {"text": "Aid grew [2] a year. ", "n": None}


def test_a_verified_answer_links_only_its_own_markers():
    text = "Aid grew by $5 million [2] in 2021, the ministry said."
    article = Article("f1", "Footnoted", text)
    hits = [Hit(Chunk("f1:0", "f1", 0, 0, len(text), text, article.title), 1.0)]
    v = verify("Aid grew by $5 million in 2021 [1].", hits, {"f1": article}, Analyzer())
    assert v.supported == 1
    assert [s["n"] for s in v.segments if s["n"]] == [1]
    assert "".join(s["text"] for s in v.segments) == v.answer
