"""Candidates and their feature vectors: the sentences of the passages, and short answers in the best ones.

Features only measure; what they are worth is fitted (`eval/fit_scoring.py`) and applied in `scoring`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from rag.answer import spans
from rag.answer.question import QuestionAnalysis, name_coverage
from rag.answer.reading import Evidence, SentenceCandidate, SpanCandidate
from rag.language import lexicon, rules

MIN_SENTENCE_CHARS = 15
SPAN_SENTENCES = 4  # short answers are looked for in this many of the best sentences
FREQUENCY_SENTENCES = 10  # a short answer's support is counted over this many of the best sentences

SENTENCE_FEATURES = (
    "dense",
    "dense_gap",
    "overlap",
    "overlap_gap",
    "window_overlap",
    "passage_overlap",
    "title_overlap",
    "bigrams",
    "names",
    "names_passage",
    "has_names",
    "type_present",
    "has_type",
    "count_missing",
    "passage_rank",
    "article_rank",
    "position",
    "length",
    "opens_with_quote",
    "retrieval_score",
)
SPAN_KINDS = ("money", "percent", "quantity", "number", "date", "name", "place", "quoted", "phrase")
QUESTION_TYPES = ("money", "percent", "number", "date", "person", "place", None)
SPAN_FEATURES = (
    "sentence_logit",
    "sentence_rank",
    "kind_match",
    "kind_compatible",
    *(f"kind_{k}" for k in SPAN_KINDS),
    *(f"asks_{t or 'other'}" for t in QUESTION_TYPES),
    "named_focus",
    "question_words",
    "near_question",
    "near_rare_question_word",
    "question_word_left",
    "question_word_right",
    "frequency",
    "articles",
    "words",
    "capitalised",
    "in_title",
    "position",
    "focus_near",
    "in_dateline_sentence",
)
# What each question type is answered by, and what can stand in for it ("How much...?" -> "up 60%").
MATCHES = {
    "money": {"money"},
    "percent": {"percent"},
    "number": {"number", "quantity"},
    "date": {"date"},
    "person": {"name"},
    "place": {"place", "name"},
}
COMPATIBLE = {
    "money": {"percent", "quantity", "number"},
    "percent": {"number"},
    "number": set(),
    "date": set(),
    "person": {"quoted"},
    "place": set(),
    None: {"name", "quoted", "phrase"},
}
_WORD = re.compile(r"\w+")


class SentenceFeaturizer:
    def __init__(self, analyzer: Callable[[str], list[str]]) -> None:
        self.analyzer = analyzer

    def candidates(self, q: QuestionAnalysis, evidence: Evidence) -> list[SentenceCandidate]:
        """Every sentence of the passages, once, with its features."""
        cands: list[SentenceCandidate] = []
        rows: list[list[float]] = []
        seen: set[tuple[str, int]] = set()
        article_rank: dict[str, int] = {}
        top_score = max((h.score for h in evidence.hits), default=1.0) or 1.0
        qvec = np.asarray(evidence.question_vector, dtype=np.float32)
        for n, hit in enumerate(evidence.hits, 1):
            chunk, stored = hit.chunk, evidence.sentences.get(hit.chunk.id)
            article = evidence.articles.get(chunk.article_id)
            if stored is None or article is None:
                continue
            article_rank.setdefault(chunk.article_id, len(article_rank) + 1)
            texts = [article.text[a:b] for a, b in zip(stored.starts.tolist(), stored.ends.tolist())]
            tokens_of = [self.analyzer(t) for t in texts]
            terms = [set(t) for t in tokens_of]
            dense = stored.codes.astype(np.float32) @ qvec * stored.scales
            passage_terms = set(self.analyzer(chunk.embedding_text()))
            title_terms = set(self.analyzer(article.title))
            passage_names = name_coverage(q.names, chunk.embedding_text())
            # A follow-up's referents, named in the passage or the title, need not be named again in the sentence.
            held = (
                frozenset(
                    n for n in q.referents if name_coverage((n,), f"{article.title}\n{chunk.embedding_text()}") == 1.0
                )
                if rules.enabled("referent-in-passage")
                else frozenset()
            )
            for j, text in enumerate(texts):
                start, end = int(stored.starts[j]), int(stored.ends[j])
                if (chunk.article_id, start) in seen or end - start < MIN_SENTENCE_CHARS:
                    continue
                if rules.enabled("question-sentence") and text.rstrip("\"'”’ ").endswith("?"):
                    continue  # a question in an article states nothing, however well it matches
                seen.add((chunk.article_id, start))
                lead = spans.dateline_length(text)
                content = text[lead:]
                content_terms = set(self.analyzer(content)) if lead else terms[j]
                window = (
                    content_terms | (terms[j - 1] if j else set()) | (terms[j + 1] if j + 1 < len(terms) else set())
                )
                tokens = self.analyzer(content) if lead else tokens_of[j]
                typed = _typed_spans(q, content, self.analyzer)
                rows.append(
                    [
                        float(max(dense[j], 0.0)),
                        0.0,
                        q.overlap(content_terms),
                        0.0,
                        q.overlap(window),
                        q.overlap(passage_terms),
                        q.overlap(title_terms),
                        q.bigram_overlap(tokens),
                        name_coverage(q.names, content, held),
                        passage_names,
                        float(bool(q.names)),
                        float(bool(typed)) if q.answer_type else 0.0,
                        float(bool(q.answer_type)),
                        float(q.asks_count and not typed),
                        1.0 / n,
                        1.0 / article_rank[chunk.article_id],
                        start / max(len(article.text), 1),
                        math.log1p(len(text)) / math.log(1000.0),
                        float(text[:1] in "\"“‘'"),
                        hit.score / top_score,
                    ]
                )
                cands.append(SentenceCandidate(n, hit, start, end, text, content_start=lead))
        if cands:
            x = np.asarray(rows, dtype=np.float32)
            x[:, 1] = x[:, 0] - x[:, 0].max()
            x[:, 3] = x[:, 2] - x[:, 2].max()
            for c, row in zip(cands, x):
                c.features = row
        return cands


class SpanFeaturizer:
    def __init__(self, analyzer: Callable[[str], list[str]]) -> None:
        self.analyzer = analyzer

    def candidates(
        self, q: QuestionAnalysis, ranked: list[SentenceCandidate], logit: Callable[[float], float]
    ) -> list[SpanCandidate]:
        """Short answers in the best sentences (``ranked`` best first), one per distinct text, with features."""
        pool = [_normalize(c.text) for c in ranked[:FREQUENCY_SENTENCES]]
        pool_articles = [c.article_id for c in ranked[:FREQUENCY_SENTENCES]]
        best: dict[str, SpanCandidate] = {}
        rare = max(q.weights.values(), default=1.0) or 1.0
        for rank, sentence in enumerate(ranked[:SPAN_SENTENCES], 1):
            text, lead = sentence.text, sentence.content_start
            words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
            weights = [max((q.weights.get(t, 0.0) for t in self.analyzer(w)), default=0.0) for _, _, w in words]
            title = _normalize(sentence.hit.chunk.title)
            for span in _all_spans(q, text[lead:], self.analyzer):
                a, b = span.start + lead, span.end + lead
                key = _normalize(span.text)
                if not key or key in best or q.restates(span.text, self.analyzer) or not _answers_type(q, span):
                    continue
                inside = [i for i, (s, e, _) in enumerate(words) if s >= a and e <= b]
                first = inside[0] if inside else 0
                last = inside[-1] if inside else 0
                span_terms = set(self.analyzer(span.text))
                distances = [
                    abs(i - first) if i < first else abs(i - last)
                    for i, w in enumerate(weights)
                    if w > 0 and not (first <= i <= last)
                ]
                weighted = [
                    w / rare / (1 + abs(i - (first if i < first else last)))
                    for i, w in enumerate(weights)
                    if w > 0 and not (first <= i <= last)
                ]
                occurrences = [i for i, p in enumerate(pool) if f" {key} " in f" {p} "]
                row = [
                    logit(sentence.probability),
                    1.0 / rank,
                    float(span.kind in MATCHES.get(q.answer_type, set())),
                    float(span.kind in COMPATIBLE.get(q.answer_type, set())),
                    *(float(span.kind == k) for k in SPAN_KINDS),
                    *(float(q.answer_type == t) for t in QUESTION_TYPES),
                    float(q.named_focus),
                    len(span_terms & q.terms) / max(len(span_terms), 1),
                    1.0 / (1 + min(distances, default=50)),
                    max(weighted, default=0.0),
                    float(any(w > 0 for w in weights[max(0, first - 3) : first])),
                    float(any(w > 0 for w in weights[last + 1 : last + 4])),
                    math.log1p(len(occurrences)),
                    math.log1p(len({pool_articles[i] for i in occurrences})),
                    min(len(inside), 10) / 10,
                    float(span.text[:1].isupper()),
                    float(f" {key} " in f" {title} "),
                    a / max(len(text), 1),
                    float(_focus_near(q, text, a, b)),
                    float(lead > 0),
                ]
                best[key] = SpanCandidate(
                    sentence,
                    sentence.start + a,
                    sentence.start + b,
                    span.text,
                    span.kind,
                    np.asarray(row, dtype=np.float32),
                )
        return list(best.values())


def _answers_type(q: QuestionAnalysis, span: spans.Span) -> bool:
    """A question that asks for a kind of thing is answered by that kind, or by one that can stand in for it."""
    if q.answer_type not in MATCHES or not rules.enabled("answer-type"):
        return True
    return span.kind in MATCHES[q.answer_type] or span.kind in COMPATIBLE[q.answer_type]


def _typed_spans(q: QuestionAnalysis, content: str, analyzer) -> list[spans.Span]:
    """Spans of the type the question asks for, that are not just its own words."""
    kind = q.answer_type
    if not kind:
        return []
    if kind == "number":
        found = spans.typed("number", content)
        found += spans.typed("quantity", content)
    elif kind == "money":
        found = spans.typed("money", content) or spans.typed("percent", content) or spans.typed("quantity", content)
    elif kind == "percent":
        found = spans.typed("percent", content)
    elif kind == "date":
        found = spans.typed("date", content)
    elif kind == "place" and q.places:
        found = spans.places(content, q.places, q.asks_several)
    else:
        found = spans.names(content)
    return [s for s in found if not q.restates(s.text, analyzer)]


def _all_spans(q: QuestionAnalysis, content: str, analyzer) -> list[spans.Span]:
    found: list[spans.Span] = []
    for kind in ("money", "percent", "quantity", "date"):
        found += spans.typed(kind, content)
    found += spans.typed("number", content)
    if q.places:
        found += spans.places(content, q.places, q.asks_several)
    found += spans.names(content) + spans.quoted(content)
    question_terms = q.terms
    found += spans.phrases(content, lambda w: bool(set(analyzer(w)) & question_terms))
    return found


def _focus_near(q: QuestionAnalysis, text: str, a: int, b: int) -> bool:
    """Whether the thing a which/what phrase asks about sits next to the span ("the beverage Sprite")."""
    if not q.focus or q.focus in lexicon.STOPWORDS:
        return False
    window = text[max(0, a - 40) : min(len(text), b + 40)].lower()
    return re.search(rf"\b{re.escape(q.focus[:5])}", window) is not None


def _normalize(s: str) -> str:
    s = re.sub(r"[^\w$%.]+", " ", s.lower())
    return " ".join(w for w in s.split() if w not in ("a", "an", "the")).strip(" .")
