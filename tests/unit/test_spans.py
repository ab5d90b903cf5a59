"""Candidate short answers in a sentence. Pure logic."""

from rag.answer import spans
from rag.language import lexicon
from rag.language.rules import disabled


def names(text):
    return [s.text for s in spans.names(text)]


def test_a_dateline_is_not_what_a_sentence_is_about():
    def strip(s):
        return s[spans.dateline_length(s) :]

    assert strip("WASHINGTON – The United States is expected") == "The United States is expected"
    assert strip("KYIV, Ukraine (AP) — Russian forces shelled") == "Russian forces shelled"
    assert strip("(CNN) A wildfire raging") == "A wildfire raging"
    assert strip("New York (CNN Business) Sprite is retiring") == "Sprite is retiring"
    for kept in (
        "U.S. officials said on Monday",
        "The US – and its allies – said",
        "I think so",
        "Senator Smith (D) said",
    ):
        assert strip(kept) == kept
    with disabled("dateline"):
        assert strip("(CNN) A wildfire raging") == "(CNN) A wildfire raging"


def test_country_state_and_continent_lists():
    text = "Sri Lanka is bankrupt, unlike South Sudan or the Philippines; Colombia's vote."
    assert [s.text for s in spans.places(text, lexicon.COUNTRIES, False)] == [
        "Sri Lanka",
        "South Sudan",
        "Philippines",
        "Colombia",
    ]
    assert spans.places("a china cup and a turkey dinner", lexicon.COUNTRIES, False) == []
    assert spans.places("migrants from Latin America", lexicon.COUNTRIES, False) == []
    text = "trips to Guatemala and Mexico, then Kansas, Ohio and Utah"
    joined = spans.places(text, lexicon.US_STATES + lexicon.COUNTRIES, True)
    assert [s.text for s in joined] == ["Guatemala and Mexico", "Kansas, Ohio and Utah"]


def test_phrases_are_the_runs_between_the_question_words():
    from rag.index.lexical import Analyzer

    a = Analyzer()
    question = set(a("What has the Biden administration committed to sharing with both countries?"))
    s = "The Biden administration has also committed to sharing vaccines with both countries."
    found = [p.text for p in spans.phrases(s, lambda w: bool(set(a(w)) & question))]
    assert "vaccines" in found
    s = "Heat waves swept through several European countries on Monday."
    assert [p.text for p in spans.phrases(s, lambda w: w.lower().strip(".") in {"swept", "countries"})][
        0
    ] == "Heat waves"
    assert all(p.text not in ("on Monday", "Monday") for p in spans.phrases(s, lambda w: False))


def test_quoted_titles():
    assert [s.text for s in spans.quoted("Netflix renewed “Squid Game,” its biggest hit.")] == ["Squid Game"]
