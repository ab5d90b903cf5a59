"""Dates an article gives relative to its own day, resolved against its publication date: "Tuesday" in an article
published on Thursday 2023-06-01 is 2023-05-30; "yesterday", "today", "tomorrow"; and a month and day without a
year ("June 1") in the year that puts it nearest the publication date.

A weekday is the one before the publication day unless the words before it in its clause look ahead ("will",
"is to", "was to", "expected", "plans", "next", "scheduled"): then it is the one after. A weekday that is the
publication's own day is that day. Nothing is resolved without a publication date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from rag.language.lexicon import MONTH_NUMBER, WEEKDAYS

_WEEKDAY = re.compile(
    r"\b(?:(this|last|next|on|by|until|from|since)\s+)?(" + "|".join(w.capitalize() for w in WEEKDAYS) + r")\b"
)
_RELATIVE = re.compile(r"\b(yesterday|today|tomorrow)\b", re.I)
_MONTH_DAY = re.compile(
    r"\b("
    + "|".join(sorted((m.capitalize() for m in MONTH_NUMBER), key=len, reverse=True))
    + r")\.?\s(\d{1,2})(?:st|nd|rd|th)?\b(?!,?\s\d{4})(?!\d)"
)
# Words that make a weekday the coming one: "is to fly to Mexico on Tuesday", "will meet on Friday".
_AHEAD = re.compile(
    r"\b(?:will|would|shall|is to|are to|was to|were to|is due|are due|expected|expects|plans?|planned|scheduled|"
    r"set to|going to|next|upcoming|later this week)\b",
    re.I,
)
_CLAUSE_START = re.compile(r"[.;:!?]\s|\b(?:and|but|while|after|before|as|where|when)\b", re.I)


@dataclass(frozen=True)
class ResolvedDate:
    text: str  # as written: "Tuesday", "yesterday", "June 1"
    start: int  # offsets in the text it was found in
    end: int
    date: str  # YYYY-MM-DD


def resolve(text: str, published: str | None) -> list[ResolvedDate]:
    """The relative dates in ``text`` (a sentence of an article published on ``published``), resolved."""
    try:
        day = date.fromisoformat(published or "")
    except ValueError:
        return []
    found: list[ResolvedDate] = []
    for m in _WEEKDAY.finditer(text):
        wanted = WEEKDAYS.index(m.group(2).lower())
        before = text[: m.start(2)]
        clause = before[max((c.end() for c in _CLAUSE_START.finditer(before)), default=0) :]
        modifier = (m.group(1) or "").lower()
        ahead = modifier == "next" or (modifier != "last" and bool(_AHEAD.search(clause)))
        shift = (wanted - day.weekday()) % 7
        if ahead:
            resolved = day + timedelta(days=shift or 7) if modifier == "next" else day + timedelta(days=shift)
        else:
            resolved = day - timedelta(days=(day.weekday() - wanted) % 7)
        found.append(ResolvedDate(m.group(2), m.start(2), m.end(2), resolved.isoformat()))
    for m in _RELATIVE.finditer(text):
        offset = {"yesterday": -1, "today": 0, "tomorrow": 1}[m.group(1).lower()]
        found.append(ResolvedDate(m.group(1), m.start(), m.end(), (day + timedelta(days=offset)).isoformat()))
    for m in _MONTH_DAY.finditer(text):
        month, dom = MONTH_NUMBER[m.group(1).lower()], int(m.group(2))
        candidates = []
        for year in (day.year - 1, day.year, day.year + 1):
            try:
                candidates.append(date(year, month, dom))
            except ValueError:
                continue
        if candidates:
            nearest = min(candidates, key=lambda d: abs((d - day).days))
            found.append(ResolvedDate(m.group(0), m.start(), m.end(), nearest.isoformat()))
    return sorted(found, key=lambda r: r.start)
