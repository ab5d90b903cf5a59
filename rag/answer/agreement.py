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

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol

import numpy as np

from rag.answer.question import QuestionAnalysis
from rag.language import grammar, markers
from rag.types import Answer, Citation

# Cosine similarity of two sentences' vectors from which they are read as stating the same quantity. Chosen on
# labelled cases from realtimeqa-news-scale (eval/sources_differ.py, docs/measurements/sources-differ.json).
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
class Statement:
    """One article's value for the asked quantity, in one of its sentences."""

    article_id: str
    start: int
    end: int
    value: Value
    similarity: float = 1.0


def asked_kind(analysis: QuestionAnalysis) -> str | None:
    if analysis.asks_count:
        return "number"
    return ASKED_KIND.get(analysis.answer_type or "")


def values(kind: str, sentence: str) -> list[Value]:
    """The values of a kind a sentence states, normalised; a money or percent value is not also a number, and a year
    or a day of the month is not a count."""
    found = grammar.find(kind, sentence)
    if kind == "number":
        taken = [(f.start, f.end) for k in ("money", "percent", "date") for f in grammar.find(k, sentence)]
        found = [f for f in found if not any(a < f.end and f.start < b for a, b in taken)]
    out = []
    for f in found:
        keys = grammar.date_values(f.text) if kind == "date" else grammar.number_values(f.text)
        if kind == "date":
            # The most specific part: a month and day, else a year. A bare weekday says nothing comparable.
            keys = {k: v for k, v in keys.items() if k[0] == "md"} or keys
        if keys:
            out.append(Value(next(iter(keys)), f.text, f.start, f.end))
    return out


def frame(sentence: str, value: Value, analyzer: Callable[[str], list[str]]) -> set[str]:
    """The analysed words around a value: what it counts or dates."""
    before = sentence[: value.start].split()[-FRAME_WORDS:]
    after = sentence[value.end :].split()[:FRAME_WORDS]
    return set(analyzer(" ".join(before + after))) - set(analyzer(value.text))


class Comparison:
    """Finds, for an answer's first citation, the other reports of its story that give the asked quantity."""

    def __init__(self, analysis: QuestionAnalysis, analyzer: Callable[[str], list[str]], reports: StoryReports) -> None:
        self.analysis, self.analyzer, self.reports = analysis, analyzer, reports
        self.kind = asked_kind(analysis)

    def anchor(self, answer: Answer) -> tuple[Statement, np.ndarray, set[str]] | None:
        """The cited statement of the asked quantity: the cited value whose surrounding words share the most with
        the question (its focus noun counts double: "how many workers"), its sentence's vector, and its frame."""
        if self.kind is None or answer.abstained or not answer.citations:
            return None
        wanted = {v.key for v in values(self.kind, answer.short_answer)} if answer.short_answer else None
        question = self.analysis.terms
        focus = set(self.analyzer(self.analysis.focus)) if self.analysis.focus else set()
        scored = []
        for order, c in enumerate(answer.citations):
            for v in values(self.kind, c.quote):
                if wanted is None or v.key in wanted:
                    words = frame(c.quote, v, self.analyzer)
                    scored.append((len(words & question) + len(words & focus), -order, -v.start, c, v))
        if not scored:
            return None
        scored.sort(key=lambda s: s[:3], reverse=True)
        if len(scored) > 1 and scored[0][:2] == scored[1][:2] and scored[0][4].key != scored[1][4].key:
            return None  # one sentence gives two values, and nothing says which one the question asks for
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
        return Statement(c.article_id, c.start, c.end, value), vectors[row], frame(c.quote, value, self.analyzer)

    def statement(self, article_id: str, vector: np.ndarray, anchor_frame: set[str]) -> Statement | None:
        """The article's sentence that most likely states the same quantity, and its value; None without one."""
        starts, ends, vectors = self.reports.sentences(article_id)
        if not len(starts):
            return None
        text = self.reports.text(article_id)
        similarity = vectors @ vector
        for row in np.argsort(-similarity):
            if similarity[row] < SAME_QUANTITY:
                return None
            sentence = text[int(starts[row]) : int(ends[row])]
            framed = [(len(frame(sentence, v, self.analyzer) & anchor_frame), v) for v in values(self.kind, sentence)]
            framed = [(n, v) for n, v in framed if n]
            if framed:
                best = max(framed, key=lambda f: (f[0], -f[1].start))[1]
                return Statement(article_id, int(starts[row]), int(ends[row]), best, float(similarity[row]))
        return None

    def statements(self, answer: Answer) -> tuple[Statement, list[Statement]] | None:
        """The cited statement, and every other report of its story that states the same quantity."""
        found = self.anchor(answer)
        if found is None:
            return None
        anchor, vector, anchor_frame = found
        day = (self.reports.record(anchor.article_id) or {}).get("published") or ""
        others = sorted(
            self.reports.others(anchor.article_id),
            key=lambda a: (_days_apart((self.reports.record(a) or {}).get("published"), day), a),
        )[:MAX_REPORTS]
        return anchor, [s for a in others if (s := self.statement(a, vector, anchor_frame)) is not None]


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
        if s.value.key != anchor.value.key and s.value.key not in differing:
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
    segments = list(answer.segments) or markers.plain_segments(answer.answer)
    lead = " Updated since:" if kind == "update" else " Sources differ:"
    segments.append({"text": lead, "n": None})
    for i, r in enumerate(rows):
        where = ", ".join(x for x in (r["source"], r["published"]) if x)
        segments.append({"text": f"{';' if i else ''} {r['value']} ", "n": None})
        segments.append({"text": f"[{r['n']}]", "n": r["n"]})
        if where:
            segments.append({"text": f" ({where})", "n": None})
    segments.append({"text": ".", "n": None})
    merged = _merge(segments)
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
