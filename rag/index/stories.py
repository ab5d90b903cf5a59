"""Stories: the articles that report one event, grouped as they are ingested.

Two tests put a new article into an existing story:
- a near-copy (wire copy republished, a page saved again) shares most of its word shingles with a stored article:
  MinHash signatures and an LSH index (datasketch) find it without comparing against every article;
- a same-event article is one whose vector (the mean of its chunk vectors) lies close to a stored article's,
  published within a few days of it.

The new article joins the story of its closest match, or starts its own. Nothing already stored is regrouped,
so adding an article costs one signature and two lookups however large the archive is. The signature is kept
with the article, so a later write rebuilds its LSH index without reading the texts again.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

NUM_PERM = 128
SCHEME = "affine32"  # datasketch's hash scheme: one uint32 per permutation, stored as they are
SHINGLE_WORDS = 5
# A near-copy: estimated Jaccard similarity of 5-word shingles at least this, published within NEAR_COPY_DAYS of each
# other (a column that recurs every year shares its boilerplate with last year's, and is another story).
NEAR_COPY = 0.5
NEAR_COPY_DAYS = 30
# Same event: cosine similarity of article vectors at least SAME_EVENT, published within SAME_EVENT_DAYS. SAME_EVENT is
# chosen on hand-labelled pairs and written to stories.json by `python eval/stories.py --write`.
FITTED = Path(__file__).with_name("stories.json")
SAME_EVENT = float(json.loads(FITTED.read_text())["same_event_cosine"])
SAME_EVENT_DAYS = 3
NEIGHBOURS = 8  # nearest articles looked at for a same-event match

_WORD = re.compile(r"\w+")


def shingles(text: str, width: int = SHINGLE_WORDS) -> set[bytes]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + width]).encode() for i in range(max(1, len(words) - width + 1))}


def signature(text: str) -> str:
    """The article text's MinHash signature, as compact text (base64 of NUM_PERM uint32s) for a metadata field."""
    m = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    m.update_batch(list(shingles(text)))
    return base64.b64encode(np.asarray(m.hashvalues, dtype="<u4").tobytes()).decode("ascii")


def _values(sig: str) -> np.ndarray | None:
    try:
        values = np.frombuffer(base64.b64decode(sig.encode("ascii"), validate=True), dtype="<u4")
    except (ValueError, UnicodeEncodeError):
        return None
    return values if len(values) == NUM_PERM else None


def similarity(a: str, b: str) -> float:
    """Estimated Jaccard similarity of two signatures' shingle sets (0 when either cannot be read)."""
    va, vb = _values(a), _values(b)
    return float(np.mean(va == vb)) if va is not None and vb is not None else 0.0


def _days(iso: str | None) -> int | None:
    try:
        return date.fromisoformat(iso).toordinal() if iso else None
    except ValueError:
        return None


def _ord(day: int) -> int:
    """An ordinal day as YYYYMMDD, the form the vector indexes filter dates by."""
    d = date.fromordinal(day)
    return d.year * 10000 + d.month * 100 + d.day


def date_key(iso: str | None) -> int:
    """YYYY-MM-DD as YYYYMMDD (0 when undated), the form the vector indexes filter dates by."""
    day = _days(iso)
    return _ord(day) if day is not None else 0


@dataclass(frozen=True)
class Member:
    """What story assignment knows of a stored article."""

    article_id: str
    story: str
    published: str | None
    signature: str


# The store's or snapshot's vector search over articles: (vector, n, low YYYYMMDD, high YYYYMMDD) -> [(id, cosine)].
ArticleSearch = Callable[[np.ndarray, int, int | None, int | None], list[tuple[str, float]]]


@dataclass(frozen=True)
class Placement:
    story: str
    signature: str
    match: str | None = None  # the article it was grouped with
    why: str = "new"  # "near-copy", "same event" or "new"


class StoryAssigner:
    """Places articles into stories while one writer holds the index.

    ``members`` are the committed articles (their stories and signatures); ``search`` finds stored articles by
    vector. Articles placed before the next commit are remembered here, so a batch's articles find each other."""

    def __init__(self, members: Iterable[Member], search: ArticleSearch, same_event: float = SAME_EVENT) -> None:
        self._members = {m.article_id: m for m in members}
        self._search = search
        self.same_event = same_event
        self._lsh: MinHashLSH | None = None
        self._fresh = _Placed()

    def _index(self) -> MinHashLSH:
        if self._lsh is None:
            self._lsh = MinHashLSH(threshold=NEAR_COPY, num_perm=NUM_PERM)
            for m in self._members.values():
                self._insert(m)
        return self._lsh

    def _insert(self, m: Member) -> None:
        values = _values(m.signature)
        if values is None or self._lsh is None:
            return
        if m.article_id in self._lsh.keys:
            self._lsh.remove(m.article_id)
        self._lsh.insert(m.article_id, LeanMinHash(seed=1, hashvalues=values, scheme=SCHEME))

    def place(self, article_id: str, text: str, published: str | None, vector: np.ndarray) -> Placement:
        sig = signature(text)
        day = _days(published)
        placement = self._near_copy(article_id, sig, day) or self._same_event(article_id, vector, day)
        if placement is None:
            placement = Placement(article_id, sig)
        else:
            placement = Placement(placement.story, sig, placement.match, placement.why)
        member = Member(article_id, placement.story, published, sig)
        self._members[article_id] = member
        self._index()
        self._insert(member)
        self._fresh.add(article_id, vector, day)
        return placement

    def _near_copy(self, article_id: str, sig: str, day: int | None) -> Placement | None:
        query = LeanMinHash(seed=1, hashvalues=_values(sig), scheme=SCHEME)
        found = []
        for other in self._index().query(query):
            m = self._members.get(other)
            if m is None or other == article_id:
                continue
            there = _days(m.published)
            if day is None or there is None or abs(day - there) <= NEAR_COPY_DAYS:
                found.append((other, similarity(sig, m.signature)))
        best = _closest(found, NEAR_COPY)
        return Placement(self._members[best].story, sig, best, "near-copy") if best else None

    def _same_event(self, article_id: str, vector: np.ndarray, day: int | None) -> Placement | None:
        if day is None:
            return None  # without a date, "the same days" cannot be told
        vector = np.asarray(vector, dtype=np.float32)
        found = self._search(vector, NEIGHBOURS, _ord(day - SAME_EVENT_DAYS), _ord(day + SAME_EVENT_DAYS))
        found += self._fresh.near(vector, day)
        # An id without a member is what a dead writer left half-written; this article's own id is its older version.
        best = _closest([(i, s) for i, s in found if i in self._members and i != article_id], self.same_event)
        return Placement(self._members[best].story, "", best, "same event") if best else None


class _Placed:
    """The vectors of the articles placed since the last commit (not yet in the snapshot), in one growing matrix, so a
    large ingest compares each new article with them in one product rather than one by one."""

    UNDATED = -(1 << 40)  # far from every day

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.days = np.zeros(0, dtype=np.int64)

    def add(self, article_id: str, vector: np.ndarray, day: int | None) -> None:
        vector = np.asarray(vector, dtype=np.float32)
        if article_id in self.row:  # placed again (rewritten before the commit): its new vector counts
            i = self.row[article_id]
        else:
            i = len(self.ids)
            if i == len(self.matrix):
                grown = np.zeros((max(64, 2 * i), len(vector)), dtype=np.float32)
                if i:
                    grown[:i] = self.matrix[:i]
                self.matrix = grown
                self.days = np.concatenate([self.days, np.full(len(grown) - len(self.days), self.UNDATED)])
            self.ids.append(article_id)
            self.row[article_id] = i
        self.matrix[i] = vector
        self.days[i] = day if day is not None else self.UNDATED

    def near(self, vector: np.ndarray, day: int) -> list[tuple[str, float]]:
        """(id, cosine) of the placed articles published within SAME_EVENT_DAYS of ``day``."""
        n = len(self.ids)
        rows = np.flatnonzero(np.abs(self.days[:n] - day) <= SAME_EVENT_DAYS)
        if not len(rows):
            return []
        scores = self.matrix[rows] @ vector
        return [(self.ids[r], float(s)) for r, s in zip(rows.tolist(), scores.tolist())]


def _closest(found: list[tuple[str, float]], threshold: float) -> str | None:
    """The id with the highest score at or above ``threshold`` (the smaller id on a tie), or None."""
    kept = sorted((-s, i) for i, s in found if s >= threshold)
    return kept[0][1] if kept else None


class StoryView:
    """A committed snapshot's stories, as answering reads them (rag.answer.agreement.StoryReports)."""

    def __init__(self, snapshot) -> None:
        self.snapshot = snapshot

    def others(self, article_id: str) -> list[str]:
        articles = self.snapshot.articles
        story = articles.story_of(article_id)
        return [a for a in articles.story_members(story) if a != article_id] if story else []

    def record(self, article_id: str) -> dict | None:
        return self.snapshot.articles.record(article_id)

    def text(self, article_id: str) -> str:
        article = self.snapshot.articles.get(article_id)
        return article.text if article else ""

    def sentences(self, article_id: str):
        return self.snapshot.article_sentences(article_id)

    def chunk_at(self, article_id: str, start: int, end: int) -> str:
        chunks = self.snapshot.chunks
        entry = chunks.article_entry(article_id)
        rows = np.flatnonzero(chunks.article_rows() == entry) if entry is not None else []
        found = [chunks[int(r)] for r in rows]
        holding = [c for c in found if c.start <= start and end <= c.end]
        return (holding or found)[0].id if found else ""

    def also_reported_by(self, article_id: str, limit: int = 8) -> tuple[dict, ...]:
        """The other articles of its story, oldest first: {"article_id", "title", "source", "url", "published"}."""
        records = [r for a in self.others(article_id) if (r := self.record(a)) is not None]
        records.sort(key=lambda r: (r["published"] or "", r["article_id"]))
        return tuple(records[:limit])
