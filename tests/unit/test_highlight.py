"""Highlight ranges of the article page. Pure logic."""

import pytest

from rag.documents.highlight import parse_ranges, segments
from rag.errors import BadInput


def test_highlight_ranges():
    assert parse_ranges(["5-8", "0-3", "2-4"], 10) == [(0, 4), (5, 8)]
    assert segments("abcdefghij", [(0, 4), (5, 8)]) == [("abcd", True), ("e", False), ("fgh", True), ("ij", False)]


@pytest.mark.parametrize("bad", [["x"], ["5-5"], ["3-99"], ["1-" + "9" * 5000], ["1-2"] * 21])
def test_bad_ranges_are_clear_errors(bad):
    with pytest.raises(BadInput):
        parse_ranges(bad, 10)
