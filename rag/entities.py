"""Typed spans in text: amounts, numbers, dates, names and places. Pure regex, no models.

Used to pick a short answer of the type a question asks for, and to check that numbers and dates in
an answer appear in what it cites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUMWORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|dozens?|hundreds|thousands|millions|billions)"
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first)"
_SCALE = r"(?:\s?(?:million|billion|trillion|thousand|hundred|bn|m|k)\b)?"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"

PATTERNS: dict[str, re.Pattern] = {
    "money": re.compile(
        rf"(?:[$€£¥]\s?{_NUM}{_SCALE}|{_NUM}{_SCALE}\s(?:dollars|euros|pounds|yen|yuan|rupees)|(?:US|C|A)\$\s?{_NUM}{_SCALE})",
        re.I,
    ),
    "percent": re.compile(rf"{_NUM}\s?(?:%|percent\b|per cent\b|percentage points?\b)", re.I),
    "date": re.compile(
        rf"(?:{_WEEKDAY},?\s)?{_MONTH}\.?\s\d{{1,2}}(?!\d)(?:st|nd|rd|th)?(?:,?\s\d{{4}})?"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?{_MONTH}(?:,?\s\d{{4}})?"
        rf"|{_MONTH}\s\d{{4}}|\b(?:1\d|20)\d{{2}}s?\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b"
        rf"|\b(?:\d{{1,2}}(?:st|nd|rd|th)|{_ORDINAL})[\s-]century\b|{_NUM}\s(?:BC|BCE|AD|CE|BP|years ago)\b"
        rf"|\b(?:{_MONTH}|{_WEEKDAY})\b",
    ),
    "quantity": re.compile(
        rf"(?<![\w.]){_NUM}{_SCALE}\s?(?:meters?|metres?|feet|foot|miles?|km|kilometers?|kilometres?|inches|"
        rf"pounds|lbs|kilograms?|kg|tons?|tonnes?|degrees?|acres?|hectares?|gallons?|liters?|litres?|barrels?|"
        rf"hours?|days?|weeks?|months?|years?|minutes?|seconds?|people|points?|votes?|seats?)\b",
        re.I,
    ),
    "number": re.compile(rf"(?<![\w.]){_NUM}{_SCALE}(?![\w.])|\b{_NUMWORD}(?:[\s-]{_NUMWORD})*\b", re.I),
}

# Capitalised word sequences, allowing short joiners ("Bank of America", "Lopez Obrador").
_CAP = r"[A-Z][\w’'.-]*[\w]"
NAME = re.compile(rf"\b{_CAP}(?:\s(?:of|de|la|del|van|von|the|and|al|bin)\s{_CAP}|\s{_CAP})*")
SENTENCE_STARTERS = {
    "The", "A", "An", "In", "On", "At", "But", "And", "He", "She", "It", "They", "We", "I", "This", "That",
    "These", "Those", "After", "Since", "As", "When", "While", "For", "If", "Speaking", "There", "Its",
    "His", "Her", "Their", "Our", "Some", "Many", "Most", "Other", "Another", "According", "Also", "Still",
}


@dataclass(frozen=True)
class Entity:
    kind: str
    start: int
    end: int
    text: str


def find(kind: str, text: str) -> list[Entity]:
    if kind in ("person", "place", "name"):
        return _names(text, kind)
    return [Entity(kind, m.start(), m.end(), m.group(0)) for m in PATTERNS[kind].finditer(text)]


# Adjective, participle and adverb endings: "Legendary broadcaster Vin Scully", "Following the ...",
# "Currently". Not after j/q/x: "Beijing", "Chongqing" and other pinyin names end in -ing too.
_MODIFIER_ENDING = re.compile(r"[A-Z][a-z]{2,}(?:(?<![jqx])ing|ous|ful|less|ive|able|ible|ary|ly)")


def _capitalised_modifier(text: str, start: int, word: str) -> bool:
    """Whether ``word`` is capitalised only because it opens the sentence, and reads as a modifier.

    A word that is capitalised again mid-sentence is a name all the same ("Reading ... Reading won").
    """
    before = text[:start].rstrip()
    opens = not before or before[-1] in ").:;—–-\"“”'"
    if not opens or not _MODIFIER_ENDING.fullmatch(word):
        return False
    return not re.search(rf"(?<![.!?]\s)(?<!^)\b{re.escape(word)}\b", text[start + len(word):])


def _names(text: str, kind: str) -> list[Entity]:
    out = []
    for m in NAME.finditer(text):
        s, e, t = m.start(), m.end(), m.group(0)
        first, _, rest = t.partition(" ")
        if re.fullmatch(rf"{_MONTH}|{_WEEKDAY}", t):
            continue
        if not rest and _capitalised_modifier(text, s, first):
            continue
        if first in SENTENCE_STARTERS:  # a capitalised sentence opener is not part of the name
            if not rest:
                continue
            s, t = s + len(first) + 1, rest
        # "the Denver Broncos Tuesday": a trailing weekday says when, and is not part of the name.
        words = t.split(" ")
        while len(words) > 1 and re.fullmatch(rf"{_WEEKDAY}|of|de|la|del|van|von|the|and|al|bin", words[-1]):
            e -= len(words.pop()) + 1
        if len(words) < len(t.split(" ")):
            t = " ".join(words)
            if re.fullmatch(rf"{_MONTH}|{_WEEKDAY}", t):
                continue
        if kind == "place" and not re.search(rf"\b(?:in|at|to|from|near|across|outside|inside)\s+{re.escape(t)}", text):
            continue
        out.append(Entity(kind, s, e, t))
    return out


NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}


_TIME_UNIT = r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|decades?|centur(?:y|ies))"
_DURATION_AFTER = re.compile(rf"\s?(?:-\s?)?(?:more\s|full\s|straight\s)?{_TIME_UNIT}\b", re.I)


def counts(question: str, text: str) -> list[Entity]:
    """Numbers in ``text`` that can answer a how-many question.

    "How many migrants...?" is not answered by the 20 of "the highest levels in 20 years": a number
    followed by a unit of time counts time, so it answers only a question that asks for time.
    """
    found = find("number", text)
    asked = re.search(r"\bhow many((?:\s+[\w-]+){1,3})", question.lower())
    if not asked or any(re.fullmatch(_TIME_UNIT, w) for w in asked.group(1).split()):
        return found
    return [e for e in found if not _DURATION_AFTER.match(text, e.end)]


_AUX = "did|does|do|was|were|is|are|will|would|can|could|has|have|had|should|shall|may|might|must"


def expected_type(question: str) -> str | None:
    """The kind of span the question asks for, from its wh-phrase; None when no single type fits."""
    q = question.lower().strip()
    # "When"/"where" ask for a time/place only as the question's own wh-word ("When did...", "...where
    # was it?"), not as a clause inside a what-question ("What happens when the system fails?").
    q = re.sub(rf"\b(when|where)\b(?!\s+(?:{_AUX})\b|['’]s\b|\s*\?)", r"\1clause", q)
    if re.search(r"\bhow much\b|\bwhat (?:was|is) the (?:cost|price|amount|value)|\bhow (?:expensive|costly)", q):
        return "money"
    if re.search(r"\bwhat (?:percent|percentage|share|proportion)\b|\bby how much\b", q):
        return "percent"
    if re.search(r"\bhow many\b|\bhow (?:old|long|far|tall|big|large|high|deep)\b|\bwhat (?:number|age)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (?:years?|dates?|days?|months?|time|decades?|century|centuries)\b"
                 r"|\bwhich (?:years?|dates?|days?|months?)\b|\bsince when\b", q):
        return "date"
    if re.search(r"^(?:who|whom|whose)\b|\bwho\b|\bwhich (?:person|man|woman|leader|official|president|company|organization|group|team)\b", q):
        return "person"
    places = r"(?:countr(?:y|ies)|cit(?:y|ies)|states?|regions?|continents?|nations?|places?|towns?|islands?)"
    if re.search(rf"\bwhere\b|\b(?:which|what)\s(?:\w+\s)?{places}\b", q):
        return "place"
    return None
