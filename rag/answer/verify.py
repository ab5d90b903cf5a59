"""Checks an LLM's draft against the passages it cites.

Each sentence keeps only markers that point at a given passage; its support is the best-matching
source sentence in those passages (exact article offsets, like extractive citations); and every number,
amount, percentage and date in it must appear, normalised, in what it cites. A sentence that fails is
kept in `sentences` with `supported: false` and a reason, and left out of `answer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.documents.chunk import split_sentences
from rag.language import markers
from rag.language.grammar import facts
from rag.types import Article, Citation, Hit


@dataclass
class Verified:
    answer: str
    segments: list[dict]
    citations: list[Citation]
    sentences: list[dict]
    invalid_markers: int = 0
    facts_checked: int = 0
    facts_supported: int = 0
    supported: int = 0


class _Check:
    """The running state of one verification: citations made so far, and the counts reported."""

    def __init__(self, hits: list[Hit], articles: dict[str, Article], analyzer, min_overlap: float) -> None:
        self.hits, self.articles, self.analyzer, self.min_overlap = hits, articles, analyzer, min_overlap
        self.citations: list[Citation] = []
        self.by_source: dict[tuple[str, int], int] = {}
        self.invalid = self.checked = self.ok = 0

    def sentence(self, raw: str) -> dict | None:
        """One drafted sentence -> its entry: text, citations, supported, reason."""
        cited = markers.numbers(raw)
        text = markers.strip(raw).strip()
        if not text:
            return None
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(self.hits)]
        self.invalid += sum(1 for n in cited if not 1 <= n <= len(self.hits))
        entry = {"text": text, "citations": [], "supported": False, "reason": ""}
        if not valid:
            entry["reason"] = "cites no passage that was given" if cited else "cites nothing"
            return entry
        best = self._support(text, valid)
        entry["reason"] = self._missing_facts(text, valid) or (
            "the cited passage does not say this" if best is None or best[0] < self.min_overlap else ""
        )
        if best is not None:
            n = self._cite(*best[1:])
            entry["citations"] = [n] if n else []
        entry["supported"] = not entry["reason"] and bool(entry["citations"])
        return entry

    def _support(self, text: str, valid: list[int]):
        """The source sentence of the cited passages that shares most of this sentence's words."""
        words = set(self.analyzer(text))
        best = None
        for n in valid:
            chunk = self.hits[n - 1].chunk
            for s in split_sentences(chunk.text, offset=chunk.start):
                quote = chunk.text[s.start - chunk.start : s.end - chunk.start]
                overlap = len(words & set(self.analyzer(quote))) / max(len(words), 1)
                if best is None or overlap > best[0]:
                    best = (overlap, n, s.start, s.end, quote)
        return best

    def _missing_facts(self, text: str, valid: list[int]) -> str:
        """Every number and date of the sentence must be in what it cites; the reason when one is not."""
        cited_text = " ".join(self.hits[n - 1].chunk.text for n in valid)
        sentence_facts = facts(text)
        missing = [w for f, w in sentence_facts.items() if f not in facts(cited_text)]
        self.checked += len(sentence_facts)
        self.ok += len(sentence_facts) - len(missing)
        if not missing:
            return ""
        shown = ", ".join(f"“{w}”" for w in missing)
        where = "passages it cites" if len(valid) > 1 else "passage it cites"
        return f"{shown} {'is' if len(missing) == 1 else 'are'} not in the {where}"

    def _cite(self, n: int, start: int, end: int, quote: str) -> int | None:
        chunk = self.hits[n - 1].chunk
        art = self.articles.get(chunk.article_id)
        if art is None or art.text[start:end] != quote:
            return None  # never cite what the stored article does not say at these offsets
        key = (art.id, start)
        if key not in self.by_source:
            self.by_source[key] = len(self.citations) + 1
            self.citations.append(
                Citation(
                    n=self.by_source[key],
                    article_id=art.id,
                    title=art.title,
                    url=art.url,
                    published=art.published,
                    chunk_id=chunk.id,
                    start=start,
                    end=end,
                    quote=quote,
                    source=art.source,
                )
            )
        return self.by_source[key]


def verify(draft: str, hits: list[Hit], articles: dict[str, Article], analyzer, min_overlap: float = 0.25) -> Verified:
    """Check ``draft`` (sentences ending in [n] markers, n indexing ``hits`` from 1) against the passages."""
    check = _Check(hits, articles, analyzer, min_overlap)
    draft = draft.strip()
    sentences = [e for sp in split_sentences(draft) if (e := check.sentence(draft[sp.start : sp.end])) is not None]
    # Only citations that a supported sentence uses stay; renumber them in order of use.
    used: list[int] = []
    for e in sentences:
        if e["supported"]:
            used.extend(n for n in e["citations"] if n not in used)
    renumber = {old: new for new, old in enumerate(used, 1)}
    kept = sorted(
        (Citation(**{**c.__dict__, "n": renumber[c.n]}) for c in check.citations if c.n in renumber), key=lambda c: c.n
    )
    parts = []
    for e in sentences:
        e["citations"] = [renumber[n] for n in e["citations"] if n in renumber] if e["supported"] else []
        if e["supported"]:
            body, end = re.match(r"(.*?)([.!?]*[\"'”’)]*)$", e["text"], re.S).groups()
            parts.append((body, e["citations"][0], end))
    text, segments = markers.compose(parts)
    return Verified(
        answer=text,
        segments=segments,
        citations=kept,
        sentences=sentences,
        invalid_markers=check.invalid,
        facts_checked=check.checked,
        facts_supported=check.ok,
        supported=sum(e["supported"] for e in sentences),
    )
