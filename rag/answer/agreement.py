"""Whether the other reports of a story give the asked figure or date as the cited one does.

When a question asks for an amount, a count, a percentage or a date, the value the answer cites is compared with
what the other articles of the same story (rag.index.stories) say about the same quantity. The same quantity is a
sentence whose vector lies close to the cited sentence's, holding a value of the asked kind with some of the same
words around it ("killed 12 people" and "15 people were killed"). Values are compared with the verifier's number
and date grammar (rag.language.grammar), so "$1.5 billion" and "$1,500 million" agree.

A different value from the same day is a conflict; one published on another day is an update (the story moved on).
Each differing report is cited, so the reader can open both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol

import numpy as np

from rag.answer.question import QuestionAnalysis
from rag.language import grammar, lexicon, markers, rules
from rag.types import Answer, Citation

# Cosine similarity of two sentences' vectors from which they may state the same quantity. Set by hand, not fitted:
# the labelled cases (eval/stories.py, docs/measurements/stories.json) show no value that separates right from
# wrong reports; the words around each figure do more of the work.
SAME_QUANTITY = 0.70
FRAME_WORDS = 4  # words each side of a value that say what it counts
MAX_REPORTS = 8  # other articles of the story compared, nearest in date first
ASKED_KIND = {"money": "money", "percent": "percent", "number": "number", "date": "date"}


class StoryReports(Protocol):
    """What comparing needs of the index: a story's other articles, their records, texts and sentences."""

    def others(self, article_id: str) -> list[str]:
        """The other articles of this article's story."""

    def record(self, article_id: str) -> dict | None:
        """{"article_id", "title", "source", "url", "published"}."""

    def text(self, article_id: str) -> str: ...

    def sentences(self, article_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Starts, ends (article offsets) and unit vectors of the article's sentences."""

    def chunk_at(self, article_id: str, start: int, end: int) -> str:
        """The id of a chunk of the article that holds [start, end)."""


@dataclass(frozen=True)
class Value:
    key: tuple  # normalised: ("num", 310000000.0), ("md", 6, 1), ("y", 2023)
    text: str
    start: int  # in its sentence
    end: int


@dataclass(frozen=True)
class Context:
    """What the cited statement of the asked quantity is about: its value, and its clause's words."""

    frame: set[str]
    value: Value


@dataclass(frozen=True)
class Statement:
    """One article's value for the asked quantity, in one of its sentences."""

    article_id: str
    start: int
    end: int
    value: Value


def asked_kind(analysis: QuestionAnalysis) -> str | None:
    if analysis.asks_count:
        return "number"
    return ASKED_KIND.get(analysis.answer_type or "")


def values(kind: str, sentence: str) -> list[Value]:
    """The values of a kind a sentence states, normalised; a money or percent value is not also a number, and a year
    or a day of the month is not a count."""
    if kind == "number":
        # The verifier's normalised values, scale words included ("peaked at 51.7 million." at a sentence's end),
        # years and days of the month left out; a money, percent or date span is not also a count.
        taken = [(f.start, f.end) for k in ("money", "percent", "date") for f in grammar.find(k, sentence)]
        out = []
        for key, text in grammar.facts(sentence).items():
            start = sentence.find(text)
            if key[0] == "num" and start >= 0 and not any(a < start + len(text) and start < b for a, b in taken):
                out.append(Value(key, text.strip(), start, start + len(text)))
        return sorted(out, key=lambda v: v.start)
    found = grammar.find(kind, sentence)
    out = []
    for f in found:
        keys = grammar.date_values(f.text) if kind == "date" else grammar.number_values(f.text)
        if kind == "date":
            # The most specific part: a month and day, else a year. A bare weekday says nothing comparable.
            keys = {k: v for k, v in keys.items() if k[0] == "md"} or keys
        if keys:
            out.append(Value(next(iter(keys)), f.text, f.start, f.end))
    return out


_BOUNDARY = re.compile(r"[,;:()\u2013\u2014]|\s-\s")


def clause(sentence: str, value: Value, others: list[Value]) -> tuple[list[str], list[str]]:
    """The words before and after a value within its clause: up to FRAME_WORDS each side, stopping at punctuation,
    at another value, and (after it) at a word that starts another clause."""
    left = max([0] + [o.end for o in others if o.end <= value.start])
    right = min([len(sentence)] + [o.start for o in others if o.start >= value.end])
    before_text = _BOUNDARY.split(sentence[left : value.start])[-1]
    after_text = _BOUNDARY.split(sentence[value.end : right])[0]
    before = before_text.split()
    for i in range(len(before) - 1, -1, -1):
        if before[i].lower() in lexicon.CLAUSE_JOINERS:
            before = before[i + 1 :]
            break
    after = []
    for word in after_text.split():
        if word.lower() in lexicon.CLAUSE_JOINERS:
            break
        after.append(word)
    return before[-FRAME_WORDS:], after[:FRAME_WORDS]


def frame(sentence: str, value: Value, analyzer: Callable[[str], list[str]], others: list[Value] = ()) -> set[str]:
    """The analysed words around a value in its clause: what it counts or dates."""
    before, after = clause(sentence, value, list(others))
    return set(analyzer(" ".join(before + after))) - set(analyzer(value.text)) - _filler(analyzer)


_FILLER: dict[int, set[str]] = {}


def _filler(analyzer: Callable[[str], list[str]]) -> set[str]:
    """lexicon.FIGURE_FILLER as the analyzer writes it."""
    key = id(analyzer)
    if key not in _FILLER:
        _FILLER[key] = set(analyzer(" ".join(lexicon.FIGURE_FILLER)))
    return _FILLER[key]


def _significant(text: str) -> int | None:
    """The significant digits a figure is written with ("1.8 billion" 2, "51.7 million" 3, "5,000" 1); None for a
    figure in words."""
    digits = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    if digits is None:
        return None
    whole, _, fraction = digits.group(0).replace(",", "").partition(".")
    return len((whole + fraction).lstrip("0")) if fraction else len(whole.lstrip("0").rstrip("0")) or 1


def same_figure(a: Value, b: Value) -> bool:
    """Whether two values are one figure: equal, or (rule rounded-figure) the less precise one is the other rounded
    to its significant digits."""
    if a.key == b.key:
        return True
    if a.key[0] != "num" or b.key[0] != "num" or not rules.enabled("rounded-figure"):
        return False
    digits_a, digits_b = _significant(a.text), _significant(b.text)
    # A one-digit round figure ("more than 100") is more often a floor than a rounding: it does not agree by rounding.
    if digits_a is None or digits_b is None or digits_a == digits_b or min(digits_a, digits_b) < 2:
        return False
    rough, exact = (a, b) if digits_a < digits_b else (b, a)
    digits = min(digits_a, digits_b)
    x = exact.key[1]
    if x == 0:
        return False
    rounded = round(x, digits - 1 - math.floor(math.log10(abs(x))))
    return math.isclose(rounded, rough.key[1], rel_tol=1e-9)


class Comparison:
    """Finds, for an answer's first citation, the other reports of its story that give the asked quantity."""

    def __init__(self, analysis: QuestionAnalysis, analyzer: Callable[[str], list[str]], reports: StoryReports) -> None:
        self.analysis, self.analyzer, self.reports = analysis, analyzer, reports
        self.kind = asked_kind(analysis)

    def anchor(self, answer: Answer) -> tuple[Statement, np.ndarray, Context] | None:
        """The cited statement of the asked quantity: the cited value whose surrounding words share the most with
        the question (its focus noun counts double: "how many workers"), its sentence's vector, and its frame."""
        if self.kind is None or answer.abstained or not answer.citations:
            return None
        wanted = {v.key for v in values(self.kind, answer.short_answer)} if answer.short_answer else None
        # The question's words but its names: "New York" says where, not what is counted.
        question = self.analysis.terms - set(self.analyzer(" ".join(self.analysis.names)))
        focus = set(self.analyzer(self.analysis.focus)) if self.analysis.focus else set()
        scored = []
        for order, c in enumerate(answer.citations):
            found = values(self.kind, c.quote)
            for v in found:
                if wanted is None or v.key in wanted:
                    words = frame(c.quote, v, self.analyzer, found)
                    scored.append((len(words & question) + len(words & focus), -order, -v.start, c, v))
        if not scored:
            return None
        # On a tie within one sentence, its first figure: a sentence leads with its main one ("668 people detained in
        # 36 cities").
        scored.sort(key=lambda s: s[:3], reverse=True)
        _, _, _, c, value = scored[0]
        if scored[0][0] == 0:
            return None  # no word around it says it is what was asked
        starts, ends, vectors = self.reports.sentences(c.article_id)
        if not len(starts):
            return None
        overlap = np.minimum(ends, c.end) - np.maximum(starts, c.start)
        row = int(np.argmax(overlap))
        if overlap[row] <= 0:
            return None
        context = Context(frame(c.quote, value, self.analyzer, values(self.kind, c.quote)), value)
        return Statement(c.article_id, c.start, c.end, value), vectors[row], context

    def statement(self, article_id: str, vector: np.ndarray, anchor: Context) -> Statement | None:
        """The article's sentence that most likely states the same quantity, and its value: the cited figure itself
        when the sentence gives it, else the value whose clause shares the most words with the cited one's. None
        without such a sentence."""
        starts, ends, vectors = self.reports.sentences(article_id)
        if not len(starts):
            return None
        text = self.reports.text(article_id)
        similarity = vectors @ vector
        candidates = []
        for row in np.flatnonzero(similarity >= SAME_QUANTITY):
            sentence = text[int(starts[row]) : int(ends[row])]
            found = values(self.kind, sentence)
            framed = []
            for v in found:
                shared = len(frame(sentence, v, self.analyzer, found) & anchor.frame)
                if not shared:
                    continue
                framed.append((same_figure(v, anchor.value), shared, -v.start, v))
            if framed:
                candidates.append((max(framed, key=lambda f: f[:3]), int(row)))
        if not candidates:
            return None
        # A sentence that gives the cited figure itself says the article agrees, whatever else it adds.
        (_, _, _, value), row = max(candidates, key=lambda c: (c[0][0], similarity[c[1]]))
        return Statement(article_id, int(starts[row]), int(ends[row]), value)

    def statements(self, answer: Answer) -> tuple[Statement, list[Statement]] | None:
        """The cited statement, and every other report of its story that states the same quantity."""
        found = self.anchor(answer)
        if found is None:
            return None
        anchor, vector, context = found
        day = (self.reports.record(anchor.article_id) or {}).get("published") or ""
        others = sorted(
            self.reports.others(anchor.article_id),
            key=lambda a: (_days_apart((self.reports.record(a) or {}).get("published"), day), a),
        )[:MAX_REPORTS]
        return anchor, [s for a in others if (s := self.statement(a, vector, context)) is not None]


def _days_apart(a: str | None, b: str | None) -> int:
    try:
        return abs((date.fromisoformat(a) - date.fromisoformat(b)).days)
    except (TypeError, ValueError):
        return 1 << 20


def differ_kind(dated: list[tuple[str | None, tuple]]) -> str:
    """ "update" when every pair of different values was published on different days, else "conflict"."""
    for i, (day_a, key_a) in enumerate(dated):
        for day_b, key_b in dated[i + 1 :]:
            if key_a != key_b and (not day_a or day_a == day_b):
                return "conflict"
    return "update"


def sources_differ(answer: Answer, comparison: Comparison) -> Answer:
    """The answer with `sources_differ` when other reports of the cited story give another value for what was
    asked: each differing report is cited, and a closing sentence names the values, their sources and dates."""
    found = comparison.statements(answer)
    if found is None:
        return answer
    anchor, others = found
    differing: dict[tuple, Statement] = {}
    for s in others:
        if not same_figure(s.value, anchor.value) and s.value.key not in differing:
            differing[s.value.key] = s
    if not differing:
        return answer
    reports = comparison.reports
    citations = list(answer.citations)

    def already(s: Statement) -> int | None:
        for c in citations:
            if c.article_id == s.article_id and c.start < s.end and s.start < c.end:
                return c.n
        return None

    cited = [(anchor, already(anchor))]
    for s in differing.values():
        if (n := already(s)) is not None:
            cited.append((s, n))
            continue
        record = reports.record(s.article_id) or {}
        n = len(citations) + 1
        text = reports.text(s.article_id)
        citations.append(
            Citation(
                n=n,
                article_id=s.article_id,
                title=record.get("title", ""),
                url=record.get("url"),
                published=record.get("published"),
                chunk_id=reports.chunk_at(s.article_id, s.start, s.end),
                start=s.start,
                end=s.end,
                quote=text[s.start : s.end],
                source=record.get("source"),
            )
        )
        cited.append((s, n))
    rows, keys = [], []
    for s, n in cited:
        record = reports.record(s.article_id) or {}
        rows.append(
            {"value": s.value.text, "n": n, "source": record.get("source"), "published": record.get("published")}
        )
        keys.append(s.value.key)
    kind = differ_kind([(r["published"], k) for r, k in zip(rows, keys)])
    rows.sort(key=lambda r: (r["published"] or "", r["n"]))
    entry = {"quantity": comparison.analysis.focus or comparison.kind, "values": rows, "kind": kind}
    # The closing sentence's segments are marked, so a page that shows `sources_differ` on its own can leave it out.
    closing = [{"text": " Updated since:" if kind == "update" else " Sources differ:", "n": None}]
    for i, r in enumerate(rows):
        where = ", ".join(x for x in (r["source"], r["published"]) if x)
        closing.append({"text": f"{';' if i else ''} {r['value']} ", "n": None})
        closing.append({"text": f"[{r['n']}]", "n": r["n"]})
        if where:
            closing.append({"text": f" ({where})", "n": None})
    closing.append({"text": ".", "n": None})
    merged = _merge(list(answer.segments) or markers.plain_segments(answer.answer)) + [
        {**s, "part": "sources_differ"} for s in _merge(closing)
    ]
    return replace(
        answer,
        answer="".join(s["text"] for s in merged),
        segments=merged,
        citations=citations,
        sources_differ=[entry],
    )


def _merge(segments: list[dict]) -> list[dict]:
    out: list[dict] = []
    for s in segments:
        if out and s["n"] is None and out[-1]["n"] is None:
            out[-1] = {"text": out[-1]["text"] + s["text"], "n": None}
        else:
            out.append(dict(s))
    return out
