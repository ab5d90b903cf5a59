"""Checks an LLM's draft against the passages it cites.

Each sentence keeps only markers that point at a given passage; its support is the best-matching
source sentence in those passages (exact article offsets, like extractive citations); and every number,
amount, percentage and date in it must appear, normalised, in what it cites. A sentence that fails is
kept in `sentences` with `supported: false` and a reason, and left out of `answer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import entities
from .chunk import split_sentences
from .types import Article, Citation, Hit

MARKER = re.compile(r"\s*\[(\d+)\]")
SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
          "trillion": 1e12, "tn": 1e12, "hundred": 1e2}
MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"], 1)}


def number_values(text: str) -> dict[tuple[str, float], str]:
    """("num", value) for amounts, counts and percentages, with scale words applied: "$310 million",
    "310 million dollars" and "310,000,000" all give 310000000. Maps each to its words in ``text``."""
    out: dict[tuple, str] = {}
    for m in re.finditer(r"(?<![\w.])([$€£¥]\s?)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
                         r"(?:\s?(thousand|million|billion|trillion|hundred|bn|mn|tn|m|k|b)\b)?(\s?%|\s?percent\b)?",
                         text, re.I):
        value = float(m.group(2).replace(",", "") + (m.group(3) or ""))
        if m.group(4):
            value *= SCALES[m.group(4).lower()]
        out.setdefault(("num", value), m.group(0))
    for m in re.finditer(r"\b(" + "|".join(entities.NUMBER_WORDS) + r")\b(?:\s(thousand|million|billion|trillion))?",
                         text, re.I):
        value = float(entities.NUMBER_WORDS[m.group(1).lower()])
        if m.group(2):
            value *= SCALES[m.group(2).lower()]
        out.setdefault(("num", value), m.group(0))
    return out


def date_values(text: str) -> dict[tuple, str]:
    """("md", month, day) for "June 1" and "1 June"; ("y", year) for years. Maps each to its words."""
    out: dict[tuple, str] = {}
    month = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
    for m in re.finditer(rf"\b{month}\s(\d{{1,2}})(?!\d)", text):
        out.setdefault(("md", MONTHS[m.group(1).lower()[:3]], int(m.group(2))), m.group(0))
    for m in re.finditer(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?{month}", text):
        out.setdefault(("md", MONTHS[m.group(2).lower()[:3]], int(m.group(1))), m.group(0))
    for m in re.finditer(r"\b(1[5-9]\d\d|20\d\d)\b", text):
        out.setdefault(("y", int(m.group(1))), m.group(0))
    return out


def facts(text: str) -> dict[tuple, str]:
    """Every number and date in ``text``, normalised, mapped to how ``text`` writes it. Years and days of
    the month are dates, not amounts."""
    dates = date_values(text)
    years = {float(d[1]) for d in dates if d[0] == "y"}
    days = {float(d[2]) for d in dates if d[0] == "md"}
    nums = {n: w for n, w in number_values(text).items() if n[1] not in years and n[1] not in days}
    return {**nums, **dates}


@dataclass
class Verified:
    answer: str
    citations: list[Citation]
    sentences: list[dict]
    invalid_markers: int = 0
    facts_checked: int = 0
    facts_supported: int = 0
    supported: int = 0
    notes: list[str] = field(default_factory=list)


def _terms(text: str, analyzer) -> set[str]:
    return set(analyzer(text))


def verify(draft: str, hits: list[Hit], articles: dict[str, Article], analyzer, min_overlap: float = 0.25) -> Verified:
    """Check ``draft`` (sentences ending in [n] markers, n indexing ``hits`` from 1) against the passages."""
    citations: list[Citation] = []
    by_source: dict[tuple[str, int], int] = {}
    sentences, parts = [], []
    invalid = checked = ok = supported = 0
    for sp in split_sentences(draft.strip()):
        raw = draft.strip()[sp.start:sp.end]
        markers = [int(m) for m in re.findall(r"\[(\d+)\]", raw)]
        text = MARKER.sub("", raw).strip()
        if not text:
            continue
        valid = [n for n in dict.fromkeys(markers) if 1 <= n <= len(hits)]
        invalid += sum(1 for n in markers if not 1 <= n <= len(hits))
        entry = {"text": text, "citations": [], "supported": False, "reason": ""}
        if not valid:
            entry["reason"] = "cites no passage that was given" if markers else "cites nothing"
            sentences.append(entry)
            continue
        # The support: the source sentence in the cited passages that shares most of this sentence's words.
        words = _terms(text, analyzer)
        best = None
        for n in valid:
            chunk = hits[n - 1].chunk
            for s in split_sentences(chunk.text, offset=chunk.start):
                quote = chunk.text[s.start - chunk.start:s.end - chunk.start]
                overlap = len(words & _terms(quote, analyzer)) / max(len(words), 1)
                if best is None or overlap > best[0]:
                    best = (overlap, n, s.start, s.end, quote)
        cited_text = " ".join(hits[n - 1].chunk.text for n in valid)
        sentence_facts = facts(text)
        missing = [w for f, w in sentence_facts.items() if f not in facts(cited_text)]
        checked += len(sentence_facts)
        ok += len(sentence_facts) - len(missing)
        if missing:
            shown = ", ".join(f"“{w}”" for w in missing)
            where = "passages it cites" if len(valid) > 1 else "passage it cites"
            entry["reason"] = f"{shown} {'is' if len(missing) == 1 else 'are'} not in the {where}"
        elif best is None or best[0] < min_overlap:
            entry["reason"] = "the cited passage does not say this"
        art = articles.get(hits[best[1] - 1].chunk.article_id) if best else None
        if best and art is not None and art.text[best[2]:best[3]] == best[4]:
            key = (art.id, best[2])
            if key not in by_source:
                by_source[key] = len(citations) + 1
                citations.append(Citation(n=by_source[key], article_id=art.id, title=art.title, url=art.url,
                                          published=art.published, chunk_id=hits[best[1] - 1].chunk.id,
                                          start=best[2], end=best[3], quote=best[4], source=art.source))
            entry["citations"] = [by_source[key]]
        if not entry["reason"] and entry["citations"]:
            entry["supported"] = True
            supported += 1
            body, end = re.match(r"(.*?)([.!?]*[\"'”’)]*)$", text, re.S).groups()
            parts.append(f"{body} [{entry['citations'][0]}]{end}")
        sentences.append(entry)
    # Only citations that a supported sentence uses stay; renumber them in order of use.
    used = []
    for e in sentences:
        if e["supported"]:
            used.extend(n for n in e["citations"] if n not in used)
    renumber = {old: new for new, old in enumerate(used, 1)}
    kept = [Citation(**{**c.__dict__, "n": renumber[c.n]}) for c in citations if c.n in renumber]
    kept.sort(key=lambda c: c.n)
    answer = " ".join(MARKER.sub(lambda m: f" [{renumber[int(m.group(1))]}]", p) for p in parts)
    for e in sentences:
        e["citations"] = [renumber[n] for n in e["citations"] if n in renumber] if e["supported"] else []
    return Verified(answer=answer, citations=kept, sentences=sentences, invalid_markers=invalid,
                    facts_checked=checked, facts_supported=ok, supported=supported)
