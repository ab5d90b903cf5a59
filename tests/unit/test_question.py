"""Question analysis: what a question asks for, and the names an answer must match. Pure logic."""

from rag.answer.question import ASKS_COUNT, NAMED_FOCUS, analyse, expected_type, name_coverage, question_names
from rag.index.lexical import Analyzer
from rag.language.rules import disabled


def analysis(q, context=None):
    return analyse(q, Analyzer(), lambda t: 1.0, context)


def test_expected_types():
    assert expected_type("How much aid was announced?") == "money"
    assert expected_type("How many people were evacuated?") == "number"
    assert expected_type("When did Harris land?") == "date"
    assert expected_type("Who is the president of the MPI?") == "person"
    assert expected_type("Which two countries is Harris visiting?") == "place"
    assert expected_type("Why did prices rise?") is None
    # "when"/"where" inside a what-question is a clause, not the thing asked for
    assert expected_type("What happens when the immune system is less active than normal?") is None
    assert expected_type("When many people are arrested, what is a common tactic?") is None
    assert expected_type("Where's the museum?") == "place"
    assert expected_type("The summit is held where?") == "place"
    assert expected_type("In what years did Spain and Portugal join?") == "date"


def test_only_a_question_that_asks_how_many_is_a_count_question():
    assert ASKS_COUNT.match("How many people live in Honduras?")
    assert ASKS_COUNT.match("In how many cities did it rain?")
    assert not ASKS_COUNT.match("How was it decided how many ministers each camp got?")
    assert not ASKS_COUNT.match("How long did the plague last?")
    a = analysis("How many more days were they held?")
    assert a.asks_count and a.focus == "more"


def test_which_phrases_that_ask_for_a_named_thing():
    asks = [
        "Which show won?",
        "After more than 60 years, which popular beverage got a new bottle?",
        "Pelosi made a visit to which area this week?",
        "Vin Scully died this week. Which team did he call?",
    ]
    assert all(NAMED_FOCUS.search(q) for q in asks)
    others = [
        "What did Harris say?",
        "Which is larger?",
        "What types of schools opened?",
        "The company, which is based in Ohio, sold what?",
    ]
    assert not any(NAMED_FOCUS.search(q) for q in others)
    assert analysis("Which show won?").focus == "show"


def test_a_word_that_opens_a_sentence_of_the_question_is_a_name_only_if_the_passages_say_so():
    passages = "Walmart cut prices in the U.S. on Monday. Supermarkets in France ran out of mustard, Hollywood said."
    q = "Despite record levels, how much did Walmart cut prices in the US? Supermarkets in France lack what?"
    assert question_names(q, passages) == ["Walmart", "US", "France"]
    assert question_names(q) == ["Despite", "Walmart", "US", "Supermarkets", "France"]  # no passages: kept
    assert question_names("Hollywood mourned. Which film made her a star?", passages) == ["Hollywood"]
    with disabled("opening-word-names"):
        assert question_names(q, passages)[0] == "Despite"


def test_name_coverage_is_the_share_of_names_found():
    assert name_coverage(["Harris", "Guatemala"], "Harris landed in guatemala") == 1.0
    assert name_coverage(["Harris", "Mexico"], "Harris landed in Guatemala") == 0.5
    assert name_coverage([], "anything") == 1.0


def test_a_span_that_only_repeats_the_question_is_not_an_answer():
    a = analysis("Who won the Mexican elections?")
    analyzer = Analyzer()
    assert a.restates("Mexicans", analyzer)  # an inflection of a question word says nothing new
    assert a.restates("the Mexican elections", analyzer)
    assert not a.restates("Lopez Obrador", analyzer)
    assert not a.restates("Mexican President Lopez Obrador", analyzer)
    assert not analysis("How many people died?").restates("20", analyzer)
    assert analysis("What happened in 2020?").restates("2020", analyzer)


def test_weighted_terms_and_place_lists():
    a = analyse("Which country will require a common charger?", Analyzer(), lambda t: {"charger": 3.0}.get(t, 1.0))
    assert a.answer_type == "place" and a.places and "Guatemala" in a.places and not a.asks_several
    assert a.overlap({"charger"}) == 3.0 / sum(a.weights.values())
    assert analysis("Voters in which states rejected the amendment?").asks_several
    assert analysis("Which city hosted the summit?").places is None
    with disabled("place-lists"):
        assert analysis("Which country is bankrupt?").places is None
