"""Numbers and dates: one grammar for typed spans, verification and article dates. Pure logic."""

from rag.language import grammar


def test_typed_spans():
    s = "Aid of $310 million was announced on June 1, 2023, and 17 politicians were named; inflation hit 8.5%."
    assert [f.text for f in grammar.find("money", s)] == ["$310 million"]
    assert "June 1, 2023" in [f.text for f in grammar.find("date", s)]
    assert [f.text for f in grammar.find("percent", s)] == ["8.5%"]
    assert "17" in [f.text for f in grammar.find("number", s)]
    old = "The Mongols invaded in 1237, in the 13th century; the ice retreated 22,000 years ago (9000 BP)."
    assert [f.text for f in grammar.find("date", old)] == ["1237", "13th century", "22,000 years ago", "9000 BP"]
    assert [f.text for f in grammar.find("quantity", "The river rose 4 meters; he weighs 215 pounds.")] == [
        "4 meters",
        "215 pounds",
    ]


def test_number_and_date_normalisation():
    facts = grammar.facts
    assert set(facts("$310 million")) == set(facts("310 million dollars")) == set(facts("310,000,000 dollars"))
    assert set(facts("June 1")) == set(facts("1 June")) == {("md", 6, 1)}
    assert ("y", 2023) in facts("on June 1, 2023")
    assert set(facts("$410 million")) != set(facts("$310 million"))
    assert facts("aid of $410 million") == {("num", 410e6): "$410 million"}
    assert set(facts("six months")) == {("num", 6.0)} == set(facts("6 months"))
    assert set(facts("Sept. 3")) == set(facts("3 September")) == {("md", 9, 3)}


def test_article_dates_in_several_forms():
    assert grammar.parse_date("Wednesday, May 31, 2023") == "2023-05-31"
    assert grammar.parse_date("1 June 2022") == "2022-06-01"
    assert grammar.parse_date("Sept. 3, 2021") == "2021-09-03"
    assert grammar.parse_date("2022-07-01T10:00:00Z") == "2022-07-01"
    assert grammar.parse_date("2023-05-31T10:00:00+02:00") == "2023-05-31"
    assert grammar.parse_date("February 30, 2022") is None
    assert grammar.parse_date("not a date") is None
    assert grammar.parse_date(None) is None
