"""Relative dates resolved against an article's publication date."""

import pytest

from rag.language.relative_dates import resolve


def dates(text, published):
    return [(d.text, d.date) for d in resolve(text, published)]


@pytest.mark.parametrize(
    "text, published, expected",
    [
        # the example: "Tuesday" in an article of Thursday 2023-06-01 is two days before
        ("The vote took place on Tuesday.", "2023-06-01", [("Tuesday", "2023-05-30")]),
        ("He spoke Thursday.", "2023-06-01", [("Thursday", "2023-06-01")]),  # the publication's own day
        ("She will speak on Friday.", "2023-06-01", [("Friday", "2023-06-02")]),  # looks ahead
        ("The team is to meet again next Thursday.", "2023-06-01", [("Thursday", "2023-06-08")]),
        ("The decision came last Friday.", "2023-06-01", [("Friday", "2023-05-26")]),
        (
            "Harris landed on Sunday and was to fly to Mexico on Tuesday.",
            "2023-05-31",
            [("Sunday", "2023-05-28"), ("Tuesday", "2023-06-06")],  # each by its own clause
        ),
        (
            "Yesterday the court ruled; the appeal is due tomorrow.",
            "2023-06-01",
            [("Yesterday", "2023-05-31"), ("tomorrow", "2023-06-02")],
        ),
        ("The law took effect on December 30.", "2023-01-02", [("December 30", "2022-12-30")]),  # the nearer year
        ("Talks resume June 12.", "2023-06-01", [("June 12", "2023-06-12")]),
        ("It opened on June 1, 2021.", "2023-06-01", []),  # a full date is no relative date
        ("Sunday was calm.", None, []),  # nothing to count from
        ("The Monday Club met.", "not a date", []),
    ],
)
def test_relative_dates_are_resolved_from_the_publication_date(text, published, expected):
    assert dates(text, published) == expected


def test_offsets_point_at_the_words():
    text = "Harris landed in Guatemala on Sunday."
    [d] = resolve(text, "2023-05-31")
    assert text[d.start : d.end] == "Sunday"
