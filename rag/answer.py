"""Extractive, grounded answers: verbatim source sentences with [n] markers, and a typed short answer.

Nothing here writes prose: every sentence of an answer is a slice of an article, so every number and
date in it is in what it cites, and every citation's offsets index the article text exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from . import entities, places
from .chunk import split_sentences
from .types import Answer, Article, Citation, Hit, Passage

ABSTAIN_TEXT = "The articles in the index do not contain an answer to this question."
MAX_SENTENCES = 3

# Sentence score weights: meaning, shared rare words, the asked-for type present, the question's
# names/numbers present, retrieval rank. They order sentences; confidence is modelled separately.
W_DENSE, W_LEXICAL, W_TYPE, W_COVERAGE, W_RANK = 0.40, 0.30, 0.10, 0.10, 0.10

# Logistic model of "the best sentence answers the question", over Candidate.features():
# dense, sentence overlap, blended overlap, entity coverage, asked-for type missing; then the bias.
# Fitted by eval/calibrate.py on SQuAD questions asked as is, with their gold passage hidden, and with one
# name swapped for another; the default threshold (0.2) keeps held-out false abstention near 7%.
CONFIDENCE_WEIGHTS = (1.52, 1.92, 1.95, 0.84, -0.22)
CONFIDENCE_BIAS = -4.51

# A count is stated as a number: evidence without one does not say how many, however well it matches.
# Only "how many" is gated. Durations, dates and amounts are often answered in words ("well into the
# nineteenth century", "after the war", "most of it"): on SQuAD a quarter of the sentences answering a
# when-question hold no date.
ASKS_COUNT = re.compile(r"^(?:(?!\b(?:what|which|who|whom|whose|when|where|why|how)\b).)*\bhow many\b", re.I)

# Words that carry no answer on their own, trimmed from the edges of a short answer.
FILLER = {"also", "still", "just", "now", "only", "even", "already", "then", "said", "says", "say", "told",
          "reportedly", "however", "which", "that", "who", "whom", "whose", "there", "here", "more", "most"}
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do", "is", "are",
       "was", "were", "will", "would", "can", "could", "has", "have", "had", "in", "on", "at", "the", "a", "an"}
# When something happened, not what: a run of only these never answers a question that reaches
# residual_span (date questions are answered from typed dates).
WHEN_WORDS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "yesterday",
              "tonight", "tomorrow", "weekend", "on", "early", "late", "last", "this", "next", "morning",
              "afternoon", "evening", "night"}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"}


# A news dateline ("WASHINGTON –", "KYIV, Ukraine (AP) —", "New York (CNN Business)") says where the
# story was filed and who sent it, not what the sentence is about: it neither names the sentence's place
# nor answers a question.
DATELINE = re.compile(
    r"^[A-Z][A-Z.'’ -]{1,40}(?:,\s[A-Z][\w. ]{1,30})?(?:\s\([\w. ]{1,20}\))?\s*[–—-]{1,2}\s+"
    r"|^(?:[A-Z][\w.'’ -]{1,40}(?:,\s[A-Z][\w. ]{1,30})?\s)?\((?:CNN|AP|AFP|Reuters|UPI|Bloomberg|BBC|NPR)"
    r"(?:\s[A-Z][a-z]+)?\)\s*(?:[–—-]{1,2}\s*)?")

# "Which show ...", "What company ...": a which/what phrase that asks for a thing by its kind. It may
# open the question, follow a fronted phrase or an earlier sentence ("After more than 60 years, which
# beverage...", "... died this week. Which team...") or a preposition ("a visit to which area").
NAMED_FOCUS = re.compile(
    r"(?:^\s*|[.?!,;:]\s+|\b(?:at|to|in|into|of|for|from|with|by|on|near|about|against|behind|under|over)\s+)"
    r"(?:which|what)\s+(?!(?:is|was|are|were|did|does|do|has|have|had|will|would|can|could|should|may|might|"
    r"kinds?|types?|sorts?|happened|happens)\b)[a-z]+", re.I)
QUOTED = re.compile(r"[“\"]([^”\"]{2,80}?)[,.]?[”\"]")


def _strip_possessive(s: str) -> str:
    return re.sub(r"['’]s?$", "", s.strip())


def question_entities(question: str, context: str | None = None) -> list[str]:
    """Names, numbers and dates the question names: the constraints an answer must match.

    A word that opens one of the question's sentences is capitalised whatever it is ("Despite dropping
    slightly, how much...", "Supermarkets in France..."). Given the passages searched as ``context``, such
    a word counts as a name only if they capitalise it mid-sentence too.
    """
    words = re.findall(r"[\w$%][\w$%.,’'-]*|[.?!:;“”\"]", question)
    found = []
    opens = True
    for w in words:
        if re.fullmatch(r"[.?!:;“”\"]", w):
            opens = opens or w in ".?!:"
            continue
        was_opening, opens = opens, w.endswith((".", "?", "!", ":")) and not re.fullmatch(r"(?:[A-Z]\.)+", w)
        w = _strip_possessive(w.rstrip(".,:"))
        if not w:
            continue
        if any(ch.isdigit() for ch in w) or w.lower() in _MONTHS:
            found.append(w)
        elif w[0].isupper() and w.lower() not in _WH:
            if was_opening and context is not None and not _named_mid_sentence(w, context):
                continue
            found.append(w)
    return found


def _named_mid_sentence(word: str, text: str) -> bool:
    return re.search(rf"(?<=[a-z0-9,;’'] ){re.escape(word)}\b", text) is not None


def _acronym_free(text: str) -> str:
    """Initialisms without their dots ("U.S." -> "US"), for matching names."""
    return re.sub(r"\b((?:[A-Z]\.){2,})", lambda m: m.group(1).replace(".", ""), text)


def entity_coverage(names: list[str], text: str) -> float:
    if not names:
        return 1.0
    low, plain = text.lower(), _acronym_free(text)

    def present(name: str) -> bool:
        if re.fullmatch(r"[A-Z](?:\.?[A-Z]){1,4}\.?", name):
            # An initialism matches with or without its dots; a two-letter one by case too ("US" is not "us").
            core = name.replace(".", "")
            return re.search(rf"\b{core}\b", plain, 0 if len(core) <= 2 else re.IGNORECASE) is not None
        return name.lower() in low

    return sum(map(present, names)) / len(names)


@dataclass
class Candidate:
    passage: int  # 1-based passage number
    hit: Hit
    start: int
    end: int
    text: str
    dense: float = 0.0
    lexical: float = 0.0  # shared rare words, sentence and passage blended
    sentence_overlap: float = 0.0
    coverage: float = 1.0  # share of the question's names, numbers and dates found in the sentence
    typed: list[entities.Entity] | None = None
    type_missing: bool = False
    score: float = 0.0

    def features(self) -> list[float]:
        """The inputs of the confidence model, in CONFIDENCE_WEIGHTS order."""
        return [self.dense, self.sentence_overlap, self.lexical, self.coverage, float(self.type_missing)]


def to_passages(hits: list[Hit]) -> list[Passage]:
    return [
        Passage(n=i, article_id=h.chunk.article_id, chunk_id=h.chunk.id, score=round(h.score, 6),
                text=h.chunk.text, title=h.chunk.title, start=h.chunk.start, end=h.chunk.end)
        for i, h in enumerate(hits, 1)
    ]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9$%]+", " ", s.lower()).strip()


class ExtractiveAnswerer:
    """Picks the best-supported source sentences for a question and cites them.

    ``answer(question, question_vector, hits, articles)`` -> Answer. ``articles`` maps article id to
    Article and is used to verify offsets and fill citation metadata. Abstains when the confidence of
    the best sentence is below ``threshold``.
    """

    backend = "extractive"

    def __init__(self, embedder, analyzer, idf, threshold: float = 0.5) -> None:
        self.embedder = embedder
        self.analyzer = analyzer
        self.idf = idf  # term -> inverse document frequency, from the lexical index
        self.threshold = threshold

    # -- scoring ------------------------------------------------------------------------------------
    def candidates(self, question: str, qvec: np.ndarray, hits: list[Hit]) -> list[Candidate]:
        seen: set[tuple[str, int, int]] = set()
        cands: list[Candidate] = []
        for n, h in enumerate(hits, 1):
            for sp in split_sentences(h.chunk.text, offset=h.chunk.start):
                key = (h.chunk.article_id, sp.start, sp.end)
                local = h.chunk.text[sp.start - h.chunk.start: sp.end - h.chunk.start]
                # A question in an article (quiz pages, rhetorical openers) states nothing, however well
                # it matches the question asked.
                if key in seen or sp.end - sp.start < 15 or local.rstrip("\"'”’ ").endswith("?"):
                    continue
                seen.add(key)
                cands.append(Candidate(n, h, sp.start, sp.end, local))
        if not cands:
            return []
        vecs = self.embedder.embed_batch([c.text for c in cands])
        sims = vecs @ np.asarray(qvec, dtype=np.float32)
        q_terms = set(self.analyzer(question))
        q_entities = question_entities(question, " ".join(h.chunk.text for h in hits))
        weight = {t: self.idf(t) for t in q_terms}
        q_weight = sum(weight.values()) or 1.0
        kind = entities.expected_type(question)
        restates = restater(question, self.analyzer)

        def overlap(text: str) -> float:
            return sum(weight[t] for t in q_terms & set(self.analyzer(text))) / q_weight

        # An answering sentence often leaves the question's words to its neighbours ("It erupted...
        # Authorities evacuated 3,700"), so the passage's overlap counts alongside the sentence's own.
        passage_overlap = {h.chunk.id: overlap(h.chunk.embedding_text()) for h in hits}
        for c, sim in zip(cands, sims):
            content = DATELINE.sub("", c.text)
            c.dense = float(max(sim, 0.0))
            c.sentence_overlap = overlap(content)
            c.lexical = 0.6 * c.sentence_overlap + 0.4 * passage_overlap[c.hit.chunk.id]
            c.coverage = entity_coverage(q_entities, content)
            lead = len(c.text) - len(content)  # the dateline names where the story was filed, not an answer
            c.typed = [e for e in self._typed(kind, c.text, question)
                       if e.start >= lead and not restates(e.text)] if kind else []
            c.type_missing = bool(kind) and not c.typed
            c.score = (W_DENSE * c.dense + W_LEXICAL * c.lexical + W_TYPE * (not c.type_missing)
                       + W_COVERAGE * c.coverage + W_RANK / c.passage)
        cands.sort(key=lambda c: (-c.score, c.passage, c.start))
        return cands

    @staticmethod
    def _typed(kind: str, text: str, question: str) -> list[entities.Entity]:
        found = entities.counts(question, text) if kind == "number" else entities.find(kind, text)
        if not found and kind == "money":
            # "How much" also asks for a share or a measure: "up nearly 60%", "215 pounds".
            found = entities.find("percent", text) or entities.find("quantity", text) or entities.find("number", text)
        if not found and kind == "percent":
            found = entities.find("number", text)
        if kind == "place":
            listed = places.asked_list(question)
            if listed:
                # "Which country...?" is answered by a country, wherever the sentence puts it.
                spans = places.find(text, listed)
                if places.asks_several(question):
                    spans = places.joined(text, spans)
                in_list = [entities.Entity("place", s, e, t) for s, e, t in spans]
                if in_list:
                    return in_list
            if not found:
                found = entities.find("name", text)
        return found

    @staticmethod
    def confidence(best: Candidate) -> float:
        """Estimated probability that the best sentence answers the question."""
        z = CONFIDENCE_BIAS + sum(w * x for w, x in zip(CONFIDENCE_WEIGHTS, best.features()))
        return 1.0 / (1.0 + math.exp(-z))

    # -- the answer ---------------------------------------------------------------------------------
    def answer(self, question: str, qvec: np.ndarray, hits: list[Hit], articles: dict[str, Article]) -> Answer:
        passages = to_passages(hits)
        cands = self.candidates(question, qvec, hits)
        kind = entities.expected_type(question)
        if not cands:
            return self.abstain(question, passages, 0.0)
        best = cands[0]
        conf = self.confidence(best)
        if conf < self.threshold or (best.type_missing and ASKS_COUNT.match(question)):
            return self.abstain(question, passages, conf)
        chosen = [best]
        for c in cands[1:]:
            if len(chosen) >= MAX_SENTENCES or c.score < 0.9 * best.score:
                break
            if c.lexical > 0 and all(c.text != o.text for o in chosen):
                chosen.append(c)
        citations, parts = [], []
        for c in chosen:
            art = articles.get(c.hit.chunk.article_id)
            if art is None or art.text[c.start:c.end] != c.text:
                continue  # never cite what the stored article does not say at these offsets
            n = len(citations) + 1
            citations.append(Citation(
                n=n, article_id=art.id, title=art.title, url=art.url, published=art.published,
                chunk_id=c.hit.chunk.id, start=c.start, end=c.end, quote=c.text, source=art.source,
            ))
            parts.append(f"{c.text} [{n}]")
        if not citations:
            return self.abstain(question, passages, conf)
        # Only from what is cited: a short answer must be checkable against a quoted sentence.
        cited = {(cit.article_id, cit.start) for cit in citations}
        short = self.short_answer(question, kind, [c for c in chosen if (c.hit.chunk.article_id, c.start) in cited])
        return Answer(
            question=question, answer=" ".join(parts), short_answer=short, abstained=False,
            citations=citations, passages=passages, backend=self.backend, confidence=round(conf, 4),
        )

    def abstain(self, question: str, passages: list[Passage], conf: float) -> Answer:
        return Answer(question=question, answer=ABSTAIN_TEXT, short_answer=None, abstained=True, citations=[],
                      passages=passages, backend=self.backend, confidence=round(conf, 4))

    def short_answer(self, question: str, kind: str | None, ranked: list[Candidate]) -> str | None:
        """A short span that answers: of the asked-for type when there is one, else the words of the best
        sentence that the question does not already hold, next to the words it does."""
        q_terms = set(self.analyzer(question))
        if kind:
            for c in ranked:
                if c.typed:
                    # Nearness to the question's rarer words counts for more: "career sacks" beats "Allen".
                    weighted = [(m.start(), max((self.idf(t) for t in set(self.analyzer(m.group(0))) & q_terms), default=0.0))
                                for m in re.finditer(r"\w+", c.text)]
                    weighted = [(pos, w) for pos, w in weighted if w > 0]
                    best = min(c.typed, key=lambda e: (min((abs(e.start - pos) / w for pos, w in weighted),
                                                           default=math.inf), e.start))
                    return best.text.strip(" ,.;:")
            if kind not in ("person", "place"):
                return None
        if not ranked:
            return None
        if NAMED_FOCUS.search(question):
            # "Which show ...", "What company ...": the answer is usually a name or a quoted title.
            restates = restater(question, self.analyzer)
            text = ranked[0].text
            named = [entities.Entity("name", m.start(1), m.end(1), m.group(1)) for m in QUOTED.finditer(text)]
            named += entities.find("name", text)
            lead = len(text) - len(DATELINE.sub("", text))
            named = [e for e in named if e.start >= lead and not restates(e.text)]
            if named:
                anchors = [m.start() for m in re.finditer(r"\w+", text) if set(self.analyzer(m.group(0))) & q_terms]
                best = min(named, key=lambda e: (_distance(e.start, anchors, default=0), e.start))
                return best.text.strip(" ,.;:")
        return residual_span(DATELINE.sub("", ranked[0].text), q_terms, self.analyzer)


def restater(question: str, analyzer):
    """A test for spans that only repeat the question: "Mexicans" does not answer "Who won the Mexican
    elections?", however well the sentence around it matches."""
    q_norm, q_terms = _norm(question), set(analyzer(question))

    def restates(span: str) -> bool:
        terms = set(analyzer(span))
        return _norm(_strip_possessive(span)) in q_norm or (bool(terms) and terms <= q_terms)

    return restates


def _distance(position: int, anchors: list[int], default: float = math.inf) -> float:
    """Characters from ``position`` to the nearest of the question's words in the sentence."""
    return min((abs(position - a) for a in anchors), default=default)


def residual_span(sentence: str, q_terms: set[str], analyzer, max_words: int = 12) -> str | None:
    """The run of words not in the question that sits closest between the question's words."""
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[^\s,;:()“”\"]+|[,;:()]", sentence)]
    is_term = [bool(set(analyzer(w)) & q_terms) for _, _, w in words]
    runs, cur = [], []
    for i, (_, _, w) in enumerate(words):
        if is_term[i] or w in ",;:()":
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(i)
    if cur:
        runs.append(cur)
    best, best_score = None, -math.inf
    for run in runs:
        # Trim function words and fillers from both edges: an answer starts and ends on content.
        while run and (not analyzer(words[run[0]][2]) or words[run[0]][2].lower() in FILLER):
            run = run[1:]
        while run and (not analyzer(words[run[-1]][2]) or words[run[-1]][2].lower() in FILLER):
            run = run[:-1]
        if not run or all(words[i][2].lower().strip(".,") in WHEN_WORDS for i in run):
            continue
        before = any(is_term[j] for j in range(max(0, run[0] - 2), run[0]))
        after = any(is_term[j] for j in range(run[-1] + 1, min(len(words), run[-1] + 3)))
        score = 2.0 * before + 1.0 * after - 0.1 * len(run) + 0.01 * run[0]  # ties go to the later run
        if score > best_score:
            best, best_score = run[:max_words], score
    if best is None:
        return None
    return sentence[words[best[0]][0]:words[best[-1]][1]].strip(" ,.;:’'\"")
