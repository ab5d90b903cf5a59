"""Candidate short answers in a sentence: amounts, counts, dates, names, places, quoted titles and phrases.

Each candidate is a slice of the sentence with its kind; which one answers is for the fitted scoring to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.language import grammar, lexicon, rules

_AGENCIES = "|".join(lexicon.NEWS_AGENCIES)
# "WASHINGTON –", "KYIV, Ukraine (AP) —", "New York (CNN Business)", "(CNN)": where a story was filed and who
# sent it, at the start of its first sentence.
DATELINE = re.compile(
    r"^[A-Z][A-Z.'’ -]{1,40}(?:,\s[A-Z][\w. ]{1,30})?(?:\s\([\w. ]{1,20}\))?\s*[–—-]{1,2}\s+"
    rf"|^(?:[A-Z][\w.'’ -]{{1,40}}(?:,\s[A-Z][\w. ]{{1,30}})?\s)?"
    rf"\((?:{_AGENCIES})(?:\s[A-Z][a-z]+)?\)\s*(?:[–—-]{{1,2}}\s*)?"
)
QUOTED = re.compile(r"[“\"]([^”\"]{2,80}?)[,.]?[”\"]")
_CAP = r"[A-Z][\w’'.-]*[\w]"
_JOINERS = "|".join(lexicon.NAME_JOINERS)
NAME = re.compile(rf"\b{_CAP}(?:\s(?:{_JOINERS})\s{_CAP}|\s{_CAP})*")
_CALENDAR_WORD = re.compile(rf"{grammar.MONTH}|{grammar.WEEKDAY}")
_PHRASE_TOKEN = re.compile(r"[^\s,;:()“”\"]+|[,;:()]")
MAX_PHRASE_WORDS = 8


@dataclass(frozen=True)
class Span:
    kind: str  # money, percent, quantity, number, date, name, place, quoted, phrase
    start: int  # offsets in the sentence
    end: int
    text: str


def dateline_length(sentence: str) -> int:
    """Characters of dateline or agency credit that open the sentence (0 when there is none)."""
    if not rules.enabled("dateline"):
        return 0
    m = DATELINE.match(sentence)
    return m.end() if m else 0


def typed(kind: str, sentence: str) -> list[Span]:
    return [Span(f.kind, f.start, f.end, f.text) for f in grammar.find(kind, sentence)]


def names(sentence: str) -> list[Span]:
    """Capitalised names ("Bank of America", "Lopez Obrador"), without sentence openers."""
    out = []
    for m in NAME.finditer(sentence):
        s, e, t = m.start(), m.end(), m.group(0)
        first, _, rest = t.partition(" ")
        if _CALENDAR_WORD.fullmatch(t):
            continue
        if first in lexicon.SENTENCE_STARTERS:
            if not rest:
                continue
            s, t = s + len(first) + 1, rest
        out.append(Span("name", s, e, t))
    return out


def places(sentence: str, listed: tuple[str, ...], several: bool) -> list[Span]:
    """Listed places as written ("Guatemala and Mexico" as one span when the question asks for several)."""
    rx = _place_pattern(listed)
    found = [(m.start(), m.end()) for m in rx.finditer(sentence)]
    if several:
        joined: list[tuple[int, int]] = []
        for a, b in found:
            if joined and re.fullmatch(r",?\s+(?:and|&)\s+|,\s+", sentence[joined[-1][1] : a]):
                joined[-1] = (joined[-1][0], b)
            else:
                joined.append((a, b))
        found = joined
    return [Span("place", a, b, sentence[a:b]) for a, b in found]


def quoted(sentence: str) -> list[Span]:
    return [Span("quoted", m.start(1), m.end(1), m.group(1)) for m in QUOTED.finditer(sentence)]


def phrases(sentence: str, is_question_word) -> list[Span]:
    """Runs of words that are not the question's, trimmed to content: "vaccines" in "...committed to sharing
    vaccines with both countries" for "What has the administration committed to sharing...?"."""
    words = [(m.start(), m.end(), m.group(0)) for m in _PHRASE_TOKEN.finditer(sentence)]
    marks = [w in ",;:()" or is_question_word(w) for _, _, w in words]
    out, run = [], []
    for i, mark in enumerate([*marks, True]):
        if not mark:
            run.append(i)
            continue
        while run and _edge_filler(words[run[0]][2]):
            run = run[1:]
        while run and _edge_filler(words[run[-1]][2]):
            run = run[:-1]
        if run and not all(words[j][2].lower().strip(".,") in lexicon.WHEN_WORDS for j in run):
            run = run[:MAX_PHRASE_WORDS]
            a, b = words[run[0]][0], words[run[-1]][1]
            text = sentence[a:b].rstrip(" ,.;:’'\"")
            if text:
                out.append(Span("phrase", a, a + len(text), text))
        run = []
    return out


def _edge_filler(word: str) -> bool:
    w = word.lower().strip(".,’'\"")
    return not any(ch.isalnum() for ch in w) or w in lexicon.STOPWORDS or w in lexicon.FILLER


_PLACE_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


def _place_pattern(listed: tuple[str, ...]) -> re.Pattern:
    rx = _PLACE_PATTERNS.get(listed)
    if rx is None:
        # Longest first, so "South Sudan" is found whole rather than as "Sudan".
        alternatives = "|".join(re.escape(n) for n in sorted(set(listed), key=len, reverse=True))
        rx = _PLACE_PATTERNS[listed] = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return rx
