"""The hand-written rules the reader still uses: each named, with an example, and each can be switched off.

`rag eval --ablate NAME` (or `python eval/fit_scoring.py --ablate NAME`) runs without one, so each rule keeps
its place only while it measurably helps on questions it was not written for. `eval/fit_scoring.py` reports
the effect of each on the 2023-2026 news queries, and the README lists the figures.

Three are kept without a measured gain there. "general-english" acts only on small indexes, and the fitting index
holds 6,732 articles, so that measurement cannot see it; the bundled one-article index is where it works.
"surname-referent" and "referent-in-passage" act only on follow-up questions, which the news queries do not hold;
`eval/follow_ups.py` measures what they change.
"rounded-figure" acts only where two reports of one story give a figure for the same quantity; `eval/stories.py`
measures it on labelled cases, where it removes one false "sources differ" of 18 among the cases its rules were
written from, and changes nothing among the 20 labelled after (none of which rounds a figure).
"dateline" measured neutral (-0.004 to +0.004) and is next in line for deletion; it also marks where a sentence's
statement begins, which quoting and the span features use, so removing it needs a refit of its own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    does: str
    example: str


RULES = {
    r.name: r
    for r in (
        Rule(
            "dateline",
            "A dateline or agency credit opens a story; it is never what a sentence says, nor an answer.",
            "'New York (CNN Business) Sprite is retiring...': 'New York' does not answer 'Which soda...?'",
        ),
        Rule(
            "surname-referent",
            "A follow-up refers back to a person named in full by the last name alone: of two names in a row in "
            "the earlier question, only the second is required of the answer.",
            "'When did she land?' after 'What is Kamala Harris's trip meant to achieve?' is answered by 'Harris "
            "landed in Guatemala on Sunday', which does not say 'Kamala'",
        ),
        Rule(
            "referent-in-passage",
            "A follow-up's referents (the names of the earlier question it points back at) count as present in a "
            "sentence when its passage or its article's title names them: the answer to a follow-up refers back "
            "with a pronoun too.",
            "'Which team did they beat?' after 'Which team won the Stanley Cup Finals?' is answered by 'The "
            "Colorado Avalanche defeated the Tampa Bay Lightning...', which does not say 'Stanley Cup Finals'",
        ),
        Rule(
            "question-sentence",
            "A question in an article states nothing, so it is never cited as an answer.",
            "A quiz page's 'Which show was renewed?' does not answer 'Which show was renewed?'",
        ),
        Rule(
            "opening-word-names",
            "A word that only opens a sentence of the question is a name only if the passages "
            "capitalise it mid-sentence.",
            "'Despite dropping slightly, how much...': 'Despite' is not a name to find.",
        ),
        Rule(
            "place-lists",
            "'Which country/state/continent' is answered from lists of countries, US states and continents.",
            "'Which continent will require a common charger?' -> 'Europe', not 'Apple'.",
        ),
        Rule(
            "restated-span",
            "A span made only of the question's words is not an answer.",
            "'Mexicans' does not answer 'Who won the Mexican elections?'.",
        ),
        Rule(
            "answer-type",
            "A question that asks when, how much, how many, what share, who or where is answered only "
            "by a span of that kind (or one that can stand in for it).",
            "'When did she land?' is answered by 'Sunday', never by 'Guatemala'.",
        ),
        Rule(
            "rounded-figure",
            "Two reports agree on a figure when the less precise one is the other rounded to its own digits.",
            "'nearly 52 million viewers' agrees with 'peaked at 51.7 million'; '658 arrested' differs from '668'.",
        ),
        Rule(
            "general-english",
            "Term weights lean on general-English word frequencies while the index is small.",
            "In a one-article index 'Guatemala' still weighs more than 'trip'.",
        ),
    )
}

_disabled: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("disabled_rules", default=frozenset())
_process_disabled: frozenset[str] = frozenset()


def enabled(name: str) -> bool:
    return name not in _disabled.get() and name not in _process_disabled


def disabled_now() -> frozenset[str]:
    """The rules switched off here and now: for this context, and for the whole process."""
    return _disabled.get() | _process_disabled


def check(names) -> frozenset[str]:
    unknown = sorted(set(names) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; the rules are: {', '.join(sorted(RULES))}")
    return frozenset(names)


def disable_everywhere(names) -> None:
    """Switch rules off for the whole process (an evaluation run with --ablate)."""
    global _process_disabled
    _process_disabled = check(names)


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Switch rules off for the code run inside (one thread's or task's context)."""
    token = _disabled.set(_disabled.get() | check(names))
    try:
        yield
    finally:
        _disabled.reset(token)
