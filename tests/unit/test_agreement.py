"""The pieces of "sources differ": values of the asked kind, what they count, and update against conflict. Pure
logic; the whole comparison runs on a real index in tests/integration/test_stories.py."""

from rag.answer.agreement import differ_kind, frame, values
from rag.index.lexical import Analyzer


def test_values_are_normalised_by_the_verifier_grammar():
    assert [v.key for v in values("money", "It pledged $1.5 billion, then $1,500 million more.")] == [
        ("num", 1.5e9),
        ("num", 1.5e9),
    ]
    assert [v.text for v in values("number", "The storm killed 12 people on March 3, 2023, and 40% lost power.")] == [
        "12"
    ]
    assert [v.key for v in values("date", "Voting ends on June 1 and results come in 2024.")] == [
        ("md", 6, 1),
        ("y", 2024),
    ]
    assert values("percent", "No figures here.") == []


def test_the_frame_is_the_words_around_a_value():
    analyzer = Analyzer()
    sentence = "The winter storm has killed at least 12 people across New York state, officials said."
    (twelve,) = values("number", sentence)
    words = frame(sentence, twelve, analyzer, [twelve])
    assert {"kill", "across", "new", "york"} <= words
    # Neither the figure nor words any count has ("at least", "people") nor the next clause ("officials said").
    assert not words & {"12", "least", "peopl", "offici", "said"}


def test_a_clause_ends_at_the_next_figure_and_at_a_joining_word():
    analyzer = Analyzer()
    sentence = "A fire broke out, killing around 40 and injuring about 115 others, police said."
    forty, one_fifteen = values("number", sentence)
    assert frame(sentence, forty, analyzer, [forty, one_fifteen]) == {"kill"}
    assert frame(sentence, one_fifteen, analyzer, [forty, one_fifteen]) == {"injur"}


def test_a_later_different_figure_is_an_update_and_the_same_day_a_conflict():
    twelve, fifteen = ("num", 12.0), ("num", 15.0)
    assert differ_kind([("2022-12-24", twelve), ("2022-12-27", fifteen)]) == "update"
    assert differ_kind([("2022-12-24", twelve), ("2022-12-24", fifteen)]) == "conflict"
    assert differ_kind([(None, twelve), ("2022-12-24", fifteen)]) == "conflict"  # undated: cannot be ordered
    # Agreeing reports on the same day do not make a conflict.
    assert differ_kind([("2022-12-24", twelve), ("2022-12-24", twelve), ("2022-12-27", fifteen)]) == "update"
