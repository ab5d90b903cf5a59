"""Request validation: every bad field is a 400 that names it. Pure logic."""

import json
import re

import pytest

from rag.errors import BadInput
from rag.question_request import AskRequest


def parse(**fields):
    return AskRequest.parse(**fields).check(2000)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"question": ""}, "empty"),
        ({"question": "   "}, "empty"),
        ({}, "empty"),
        ({"question": "x" * 2001}, "limit is 2,000"),
        ({"question": "aid?", "k": "lots"}, "k='lots': Input should be a valid integer"),
        ({"question": "aid?", "k": 2.9}, "k=2.9: Input should be a valid integer"),
        ({"question": "aid?", "k": True}, "k=True: Input should be a valid integer"),
        ({"question": "aid?", "k": float("inf")}, "k=inf: Input should be a valid integer"),
        ({"question": "aid?", "k": 0}, "k=0: Input should be greater than or equal to 1"),
        ({"question": "aid?", "k": 51}, "k=51: Input should be less than or equal to 50"),
        ({"question": "aid?", "since": "yesterday"}, "since='yesterday': 'yesterday' is not a date; use YYYY-MM-DD"),
        ({"question": "aid?", "since": "2022-02-30"}, "since='2022-02-30':"),
        ({"question": "aid?", "since": "2023-02-01", "until": "2023-01-01"}, "is after until"),
        ({"question": "bad \ud800 text"}, "question holds invalid Unicode"),
        ({"question": "aid?", "history": ["q"] * 21}, "history: List should have at most 20 items"),
        ({"question": "aid?", "history": [{"no": "question"}]}, "history: each turn must be"),
        ({"question": 42}, "question=42: Input should be a valid string"),
    ],
)
def test_bad_requests_name_the_field(fields, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        parse(**fields)


def test_a_good_request_is_tidied():
    r = parse(question="  How much\naid?  ", k=3, since="2023-01-01", history=["a", {"question": " b "}, "  "])
    assert (r.question, r.k, r.since.isoformat(), list(r.history)) == ("How much aid?", 3, "2023-01-01", ["a", "b"])


def test_json_that_python_reads_as_infinity_is_refused():
    body = json.loads('{"question": "Who won?", "k": 1e999}')
    with pytest.raises(BadInput, match="k=inf: Input should be a valid integer"):
        parse(**body)
