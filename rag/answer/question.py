"""What a question asks, worked out once: the answer type, its names, its focus noun and its weighted terms.

Every later step (features of sentences, candidate spans, the decision) reads this one object instead of
parsing the question again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from rag.language import lexicon, rules

_AUX = "|".join(lexicon.AUXILIARIES)
_PLACE_NOUNS = r"(?:countr(?:y|ies)|cit(?:y|ies)|states?|regions?|continents?|nations?|places?|towns?|islands?)"
# "Which show ...", "What company ...": a which/what phrase that asks for a thing by its kind. It may open the
# question, follow a fronted phrase or an earlier sentence ("After more than 60 years, which beverage...",
# "... died this week. Which team...") or a preposition ("a visit to which area").
NAMED_FOCUS = re.compile(
    r"(?:^\s*|[.?!,;:]\s+|\b(?:at|to|in|into|of|for|from|with|by|on|near|about|against|behind|under|over)\s+)"
    r"(?:which|what)\s+(?!(?:is|was|are|were|did|does|do|has|have|had|will|would|can|could|should|may|might|"
    r"kinds?|types?|sorts?|happened|happens)\b)([a-z]+)",
    re.I,
)
# "How many" as the question's own wh-phrase, not inside another ("How was it decided how many...").
ASKS_COUNT = re.compile(
    r"^(?:(?!\b(?:what|which|who|whom|whose|when|where|why|how)\b).)*\bhow many\b((?:\s+[\w-]+){1,3})?", re.I
)
_ASKED_PLACE = re.compile(r"\b(?:which|what)\s+(?:[\w-]+\s+)?(countr(?:y|ies)|nations?|states?|continents?)\b", re.I)
_WORD = re.compile(r"[\w$%][\w$%.,’'-]*|[.?!:;“”\"]")


@dataclass(frozen=True)
class QuestionAnalysis:
    text: str
    terms: frozenset[str]  # analysed words: stemmed, stopwords dropped
    weights: dict[str, float]  # term -> inverse document frequency
    answer_type: str | None  # money, percent, number, date, person, place, or None
    named_focus: bool  # "which show...", "what company...": asks for a named thing
    focus: str | None  # the noun a which/what/how-many phrase asks about
    asks_count: bool
    places: tuple[str, ...] | None  # the names a which-country/state/continent question is answered from
    asks_several: bool  # "which two countries": a list of names
    names: tuple[str, ...]  # names, numbers and dates an answer must match
    bigrams: frozenset[tuple[str, str]]
    normalized: str
    referents: tuple[str, ...] = ()  # those of ``names`` that come from the earlier question a follow-up points at
    alone: QuestionAnalysis | None = None  # a follow-up read by its own words only (this one adds the earlier's)

    @property
    def total_weight(self) -> float:
        return sum(self.weights.values()) or 1.0

    def overlap(self, terms: set[str] | frozenset[str]) -> float:
        """The share of the question's term weight that ``terms`` hold."""
        return sum(w for t, w in self.weights.items() if t in terms) / self.total_weight

    def bigram_overlap(self, tokens: list[str]) -> float:
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & set(zip(tokens, tokens[1:]))) / len(self.bigrams)

    def restates(self, span: str, analyzer: Callable[[str], list[str]]) -> bool:
        """Whether a span only repeats the question: "Mexicans" for "Who won the Mexican elections?"."""
        if not rules.enabled("restated-span"):
            return False
        terms = set(analyzer(span))
        return _normalize(_strip_possessive(span)) in self.normalized or (bool(terms) and terms <= self.terms)


def analyse(
    question: str,
    analyzer: Callable[[str], list[str]],
    idf: Callable[[str], float],
    context: str | None = None,
    earlier: str = "",
) -> QuestionAnalysis:
    """``context`` is the text of the passages found: it tells a name from a capitalised sentence opener.
    ``earlier`` is the question a follow-up refers back to: "When did she land?" after "What did Kamala Harris do
    in Guatemala?" asks about the names of the earlier question."""
    names = question_names(question, context)
    referents = [n for n in _referents(earlier, context) if n not in names] if earlier else []
    names += referents
    terms = analyzer(question)
    named = NAMED_FOCUS.search(question)
    count = ASKS_COUNT.match(question)
    count_words = (count.group(1) or "").lower().split() if count else []
    place = _ASKED_PLACE.search(question)
    analysis = QuestionAnalysis(
        text=question,
        terms=frozenset(terms),
        weights={t: idf(t) for t in set(terms)},
        answer_type=expected_type(question),
        named_focus=bool(named),
        focus=(named.group(1).lower() if named else count_words[0] if count_words else None),
        asks_count=bool(count),
        places=_place_list(place.group(1)) if place and rules.enabled("place-lists") else None,
        asks_several=bool(place) and place.group(1).lower() in ("countries", "nations", "states", "continents"),
        names=tuple(names),
        bigrams=frozenset(zip(terms, terms[1:])),
        normalized=_normalize(question),
        referents=tuple(referents),
    )
    if earlier and rules.enabled("referent-in-passage"):
        # "On which day did it take effect?" is about the words of the question it points back at, too; but those
        # words can also drown what the follow-up asks ("When did she land?" after "...trip meant to achieve?").
        # So it is read both ways, and the more confident reading answers (`ExtractiveAnswerer`).
        extra = [t for t in analyzer(earlier) if t not in analysis.terms]
        if extra:
            both = [*terms, *extra]
            analysis = replace(
                analysis,
                terms=frozenset(both),
                weights={t: idf(t) for t in set(both)},
                alone=analysis,
            )
    return analysis


def expected_type(question: str) -> str | None:
    """The kind of span the question asks for, from its wh-phrase; None when no single type fits."""
    q = question.lower().strip()
    # "When"/"where" ask for a time/place only as the question's own wh-word ("When did...", "...where was it?"),
    # not as a clause inside a what-question ("What happens when the system fails?").
    q = re.sub(rf"\b(when|where)\b(?!\s+(?:{_AUX})\b|['’]s\b|\s*\?)", r"\1clause", q)
    if re.search(r"\bhow much\b|\bwhat (?:was|is) the (?:cost|price|amount|value)|\bhow (?:expensive|costly)", q):
        return "money"
    if re.search(r"\bwhat (?:percent|percentage|share|proportion)\b|\bby how much\b", q):
        return "percent"
    if re.search(r"\bhow many\b|\bhow (?:old|long|far|tall|big|large|high|deep)\b|\bwhat (?:number|age)\b", q):
        return "number"
    if re.search(
        r"\bwhen\b|\bwhat (?:years?|dates?|days?|months?|time|decades?|century|centuries)\b"
        r"|\bwhich (?:years?|dates?|days?|months?)\b|\bsince when\b",
        q,
    ):
        return "date"
    if re.search(
        r"^(?:who|whom|whose)\b|\bwho\b|\bwhich (?:person|man|woman|leader|official|president|company|"
        r"organization|group|team)\b",
        q,
    ):
        return "person"
    if re.search(rf"\bwhere\b|\b(?:which|what)\s(?:\w+\s)?{_PLACE_NOUNS}\b", q):
        return "place"
    return None


_NAME_RUN = re.compile(r"[A-Z][\w’'.-]*(?:\s+[A-Z][\w’'.-]*)+")


def _referents(earlier: str, context: str | None) -> list[str]:
    """The names of the question a follow-up refers back to, as the follow-up's answer would name them."""
    names = question_names(earlier, context)
    if not rules.enabled("surname-referent"):
        return names
    # Two names in a row are a person's given name and surname far more often than a place's ("New York City").
    leading = {_strip_possessive(run.split()[0]) for run in _NAME_RUN.findall(earlier) if len(run.split()) == 2}
    return [n for n in names if n not in leading]


def question_names(question: str, context: str | None = None) -> list[str]:
    """Names, numbers and dates the question names: the constraints an answer must match.

    A word that opens one of the question's sentences is capitalised whatever it is ("Despite dropping
    slightly, how much...", "Supermarkets in France..."). Given the passages as ``context``, such a word counts
    as a name only if they capitalise it mid-sentence too."""
    found = []
    opens = True
    months = set(lexicon.MONTHS)
    for w in _WORD.findall(question):
        if re.fullmatch(r"[.?!:;“”\"]", w):
            opens = opens or w in ".?!:"
            continue
        was_opening, opens = opens, w.endswith((".", "?", "!", ":")) and not re.fullmatch(r"(?:[A-Z]\.)+", w)
        w = _strip_possessive(w.rstrip(".,:"))
        if not w:
            continue
        if any(ch.isdigit() for ch in w) or w.lower() in months:
            found.append(w)
        elif w[0].isupper() and w.lower() not in lexicon.QUESTION_WORDS:
            if (
                was_opening
                and context is not None
                and rules.enabled("opening-word-names")
                and not re.search(rf"(?<=[a-z0-9,;’'] ){re.escape(w)}\b", context)
            ):
                continue
            found.append(w)
    return found


def name_coverage(names: tuple[str, ...] | list[str], text: str, held: frozenset[str] = frozenset()) -> float:
    """The share of ``names`` found in ``text``, or ``held`` elsewhere; 1.0 when there are none."""
    if not names:
        return 1.0
    low = text.lower()
    return sum(name in held or name.lower() in low for name in names) / len(names)


def _place_list(word: str) -> tuple[str, ...]:
    word = word.lower()
    if word.startswith(("countr", "nation")):
        return lexicon.COUNTRIES
    if word.startswith("state"):
        return lexicon.US_STATES + lexicon.COUNTRIES  # "state" also means a country ("member states")
    return lexicon.CONTINENTS


def _strip_possessive(s: str) -> str:
    return re.sub(r"['’]s?$", "", s.strip())


def _normalize(s: str) -> str:
    return re.sub(r"[^a-z0-9$%]+", " ", s.lower()).strip()


__all__ = ["QuestionAnalysis", "analyse", "expected_type", "name_coverage", "question_names"]
