"""One grammar of numbers and dates, shared by reading (datelines), answering (typed spans) and verifying.

`find(kind, text)` finds amounts, percentages, quantities, counts and dates as written; `facts(text)` turns
every number and date into a normalised value ("$310 million" = "310 million dollars" = 310e6; "June 1" =
"1 June"); `parse_date` reads the date lines and metadata fields of articles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from rag.language.lexicon import (
    CURRENCY_SYMBOLS,
    CURRENCY_WORDS,
    MONTH_NUMBER,
    NUMBER_WORDS,
    ORDINALS,
    SCALES,
    UNITS,
    VAGUE_COUNTS,
    WEEKDAYS,
)


def _alternation(words) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
WEEKDAY = rf"(?:{_alternation(w.capitalize() for w in WEEKDAYS)})"
NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_SCALE = r"(?:\s?(?:million|billion|trillion|thousand|hundred|bn|m|k)\b)?"
_NUMWORD = rf"(?:{_alternation([*NUMBER_WORDS, *VAGUE_COUNTS])})"
_ORDINAL = rf"(?:{_alternation(ORDINALS)})"
_CURRENCY = f"[{re.escape(CURRENCY_SYMBOLS)}]"

PATTERNS: dict[str, re.Pattern] = {
    "money": re.compile(
        rf"(?:{_CURRENCY}\s?{NUM}{_SCALE}|{NUM}{_SCALE}\s(?:{_alternation(CURRENCY_WORDS)})|(?:US|C|A)\$\s?{NUM}{_SCALE})",
        re.I,
    ),
    "percent": re.compile(rf"{NUM}\s?(?:%|percent\b|per cent\b|percentage points?\b)", re.I),
    "date": re.compile(
        rf"(?:{WEEKDAY},?\s)?{MONTH}\.?\s\d{{1,2}}(?!\d)(?:st|nd|rd|th)?(?:,?\s\d{{4}})?"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?{MONTH}(?:,?\s\d{{4}})?"
        rf"|{MONTH}\s\d{{4}}|\b(?:1\d|20)\d{{2}}s?\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b"
        rf"|\b(?:\d{{1,2}}(?:st|nd|rd|th)|{_ORDINAL})[\s-]century\b|{NUM}\s(?:BC|BCE|AD|CE|BP|years ago)\b"
        rf"|\b(?:{MONTH}|{WEEKDAY})\b"
    ),
    "quantity": re.compile(rf"(?<![\w.]){NUM}{_SCALE}\s?(?:{_alternation(UNITS)})\b", re.I),
    "number": re.compile(rf"(?<![\w.]){NUM}{_SCALE}(?![\w.])|\b{_NUMWORD}(?:[\s-]{_NUMWORD})*\b", re.I),
}


@dataclass(frozen=True)
class Found:
    """A typed span of a text: ``text[start:end]`` is what was found."""

    kind: str
    start: int
    end: int
    text: str


def find(kind: str, text: str) -> list[Found]:
    """Every span of one kind (money, percent, date, quantity, number) in ``text``, in order."""
    return [Found(kind, m.start(), m.end(), m.group(0)) for m in PATTERNS[kind].finditer(text)]


# -- normalised values, for verifying that a claim's numbers and dates are in its source -------------------------
_VALUE = re.compile(
    rf"(?<![\w.])({_CURRENCY}\s?)?(\d{{1,3}}(?:,\d{{3}})+|\d+)(\.\d+)?"
    r"(?:\s?(thousand|million|billion|trillion|hundred|bn|mn|tn|m|k|b)\b)?(\s?%|\s?percent\b)?",
    re.I,
)
_WORD_VALUE = re.compile(rf"\b({_alternation(NUMBER_WORDS)})\b(?:\s(thousand|million|billion|trillion))?", re.I)
_MONTH_DAY = re.compile(rf"\b({MONTH})\.?\s(\d{{1,2}})(?!\d)")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?({MONTH})\b")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")


def _month(name: str) -> int:
    return MONTH_NUMBER[name.lower().rstrip(".")[:4] if name.lower().startswith("sept") else name.lower()[:3]]


def number_values(text: str) -> dict[tuple, str]:
    """("num", value) for amounts, counts and percentages, scale words applied, each mapped to its words."""
    out: dict[tuple, str] = {}
    for m in _VALUE.finditer(text):
        value = float(m.group(2).replace(",", "") + (m.group(3) or ""))
        if m.group(4):
            value *= SCALES[m.group(4).lower()]
        out.setdefault(("num", value), m.group(0))
    for m in _WORD_VALUE.finditer(text):
        value = float(NUMBER_WORDS[m.group(1).lower()])
        if m.group(2):
            value *= SCALES[m.group(2).lower()]
        out.setdefault(("num", value), m.group(0))
    return out


def date_values(text: str) -> dict[tuple, str]:
    """("md", month, day) for "June 1" and "1 June"; ("y", year) for years. Each mapped to its words."""
    out: dict[tuple, str] = {}
    for m in _MONTH_DAY.finditer(text):
        out.setdefault(("md", _month(m.group(1)), int(m.group(2))), m.group(0))
    for m in _DAY_MONTH.finditer(text):
        out.setdefault(("md", _month(m.group(2)), int(m.group(1))), m.group(0))
    for m in _YEAR.finditer(text):
        out.setdefault(("y", int(m.group(1))), m.group(0))
    return out


def facts(text: str) -> dict[tuple, str]:
    """Every number and date in ``text``, normalised, mapped to how ``text`` writes it. Years and days of the
    month are dates, not amounts."""
    dates = date_values(text)
    years = {float(d[1]) for d in dates if d[0] == "y"}
    days = {float(d[2]) for d in dates if d[0] == "md"}
    nums = {n: w for n, w in number_values(text).items() if n[1] not in years and n[1] not in days}
    return {**nums, **dates}


# -- dates of articles ------------------------------------------------------------------------------------------------
_WEEKDAY_PREFIX = r"(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s+)?"
_MONTH_NAME = rf"({MONTH})\.?"
_DATE_MDY = re.compile(rf"^\s*{_WEEKDAY_PREFIX}{_MONTH_NAME}\s+(\d{{1,2}}),?\s+(\d{{4}})\s*$", re.I)
_DATE_DMY = re.compile(rf"^\s*{_WEEKDAY_PREFIX}(\d{{1,2}})\s+{_MONTH_NAME},?\s+(\d{{4}})\s*$", re.I)
_DATE_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*$")


def parse_date(value: object) -> str | None:
    """A date-like value ("Wednesday, May 31, 2023", "1 June 2022", "2022-07-01T10:00:00Z") -> YYYY-MM-DD,
    or None when it is not a date this reads."""
    if value is None:
        return None
    if isinstance(value, (date, datetime)):
        return value.strftime("%Y-%m-%d")
    s = str(value).strip()
    try:
        if m := _DATE_ISO.match(s):
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if m := _DATE_MDY.match(s):
            return date(int(m[3]), _month(m[1]), int(m[2])).isoformat()
        if m := _DATE_DMY.match(s):
            return date(int(m[3]), _month(m[2]), int(m[1])).isoformat()
    except (ValueError, KeyError):
        return None
    return None
