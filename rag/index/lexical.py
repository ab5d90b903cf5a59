"""BM25 over the same chunks as the vector store, persisted next to the Chroma data.

The store is the source of truth: each snapshot is built from the store's chunks for one committed
generation (the chunks it keeps from the previous generation, and the store's for the articles changed since)
and saved under that generation's name, so a process never pairs BM25 with the wrong vectors.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.index import background
from rag.index.chunktable import ChunkTable, RowPlan
from rag.index.termcounts import K1, B, TermCounts
from rag.index.topk import best_positive
from rag.language import rules
from rag.language.lexicon import STOPWORDS
from rag.types import Chunk

# The group is the word; an apostrophe suffix ("'s", "’ll") is matched only to be dropped.
_TOKEN = re.compile(r"([a-z0-9]+)(?:['’][a-z]+)?")
# Weight of general English in term weights, in chunks: an index of a few articles leans on it, one of
# thousands hardly at all.
BACKGROUND_CHUNKS = 1000


class Analyzer:
    """Lowercase word tokens, stopwords removed, Snowball-stemmed.

    One Analyzer serves every thread: a Snowball stemmer must not be called concurrently, so each
    thread gets its own.
    """

    def __init__(self, cache: int = 0) -> None:
        """``cache``: texts whose tokens are remembered (least recently used go first). Answering analyses the
        same sentences and phrases again and again; the result depends on the text alone."""
        self._local = threading.local()
        if cache:
            self._analyse = functools.lru_cache(maxsize=cache)(self._analyse)

    @property
    def _stemmer(self):
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        return stemmer

    def __call__(self, text: str) -> list[str]:
        return list(self._analyse(text))

    def _analyse(self, text: str) -> tuple[str, ...]:
        return tuple(self._stemmer.stemWords([w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]))

    def token_ids(self, texts: list[str]) -> tuple[list[list[int]], dict[str, int]]:
        """Each text's tokens (as `__call__` gives them) as ids, and the vocabulary (token -> id, in id order),
        for many texts at once: what `TermCounts` counts, without turning every token into a string and back.

        An index repeats its words, and stemming every occurrence took a quarter of a large snapshot's build. Here
        each distinct word is stemmed once, for this call only, so a server that builds a snapshot keeps no
        vocabulary in its heap afterwards."""
        vocab: dict[str, int] = {}
        word_ids: dict[str, int] = {}
        stem = self._stemmer.stemWord
        out = []
        for text in texts:
            ids = []
            for w in _TOKEN.findall(text.lower()):
                if w in STOPWORDS:
                    continue
                i = word_ids.get(w)
                if i is None:
                    i = word_ids[w] = vocab.setdefault(stem(w), len(vocab))
                ids.append(i)
            out.append(ids)
        return out, vocab

    def stem_words(self, words: list[str]) -> list[str]:
        return self._stemmer.stemWords(words)

    @staticmethod
    @functools.cache
    def signature() -> str:
        """What decides an analysis: the token pattern, the stopwords and the stemmer's version. A snapshot saved
        under another signature is neither loaded nor grown on."""
        from importlib.metadata import version

        parts = [_TOKEN.pattern, *sorted(STOPWORDS), "english", version("PyStemmer")]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _bm25(counts: TermCounts):
    """A bm25s index over ``counts``, its term ids in term order."""
    import bm25s

    index = bm25s.BM25(k1=K1, b=B, method="lucene")
    index.scores = {
        "data": counts.weights(),
        "indices": counts.docs,
        "indptr": counts.indptr,
        "num_docs": counts.n_docs,
    }
    index.vocab_dict = {t: i for i, t in enumerate(counts.terms)}
    index.unique_token_ids_set = set(index.vocab_dict.values())
    index.nonoccurrence_array = None
    return index


def article_documents(chunks: list[Chunk]) -> dict[str, str]:
    """Each article's title and text rebuilt from its chunks, counting overlapping sentences once."""
    by_article: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_article.setdefault(c.article_id, []).append(c)
    docs = {}
    for aid, cs in by_article.items():
        cs.sort(key=lambda c: c.start)
        parts, covered = [cs[0].title], 0
        for c in cs:
            if c.end > covered:
                parts.append(c.text[max(covered - c.start, 0) :])
                covered = c.end
        docs[aid] = "\n".join(parts)
    return docs


class LexicalIndex:
    """BM25 (via bm25s) over chunk texts with their titles, and over whole articles: one generation's snapshot.

    Never changed after it is built: a newer generation is a new LexicalIndex, swapped in whole, so a search
    running in another thread never sees half of each. Each BM25 index is saved with its term counts, from
    which the next generation's is made without analysing the chunks it keeps.
    """

    COUNTS = "counts.npy"  # beside bm25s's own files

    def __init__(self, chunks: ChunkTable, generation: str, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or Analyzer()
        self.generation = generation
        self.chunks = chunks
        self._published = {aid: published for aid, _, published in chunks.articles}
        self.article_set = frozenset(self._published)
        self._bm25 = self._article_bm25 = None
        self._article_ids: list[str] = []
        self._counts: dict[str, TermCounts] = {}  # "bm25" and "bm25-articles", when built here
        self._directory: Path | None = None  # where a loaded index's counts are

    @classmethod
    def merged(
        cls,
        base: LexicalIndex | None,
        plan: RowPlan,
        new: Sequence[Chunk],
        generation: str,
        analyzer: Analyzer | None = None,
        directory: Path | None = None,
    ) -> LexicalIndex:
        """The chunks ``plan`` names, from ``base`` and from ``new``. Only ``new`` is analysed: the kept chunks'
        term counts come from ``base``. An article's chunks must all be kept or all be new. With ``directory``,
        the chunk table's texts and both BM25 indexes are written there as `save` would, and mapped: each index's
        counts and weights leave the heap before the next is made (0.11 GB held through the build otherwise, at
        64,570 chunks)."""
        index = cls(ChunkTable.merged(base.chunks if base else None, plan, new, directory), generation, analyzer)
        analyse = index.analyzer.token_ids
        base_position, new_position = plan.positions(len(base.chunks) if base else 0, len(new))
        parts = [(TermCounts.from_token_ids(*analyse([c.embedding_text() for c in new])), new_position)]
        if base is not None:
            parts.append((base.term_counts("bm25"), base_position))
        if len(plan):
            index._bm25 = index._made("bm25", TermCounts.combine(parts, len(plan)), directory)

        index._article_ids = sorted(index.article_set)
        row = {a: i for i, a in enumerate(index._article_ids)}
        documents = article_documents(list(new))
        added = list(documents)
        parts = [
            (
                TermCounts.from_token_ids(*analyse([documents[a] for a in added])),
                np.asarray([row[a] for a in added], dtype=np.int64),
            )
        ]
        if base is not None:
            kept = [row.get(a, -1) if a not in documents else -1 for a in base.article_ids]
            parts.append((base.term_counts("bm25-articles"), np.asarray(kept, dtype=np.int64)))
        if len(plan):
            index._article_bm25 = index._made(
                "bm25-articles", TermCounts.combine(parts, len(index._article_ids)), directory
            )
        return index

    def _made(self, name: str, counts: TermCounts, directory: Path | None):
        """The BM25 index over ``counts``: in memory, or saved in ``directory`` (with the counts) and mapped."""
        bm25 = _bm25(counts)
        if directory is None:
            self._counts[name] = counts
            return bm25
        import bm25s

        self._save_bm25(directory, name, bm25, counts)
        self._directory = directory
        return bm25s.BM25.load(str(directory / name), mmap=True)

    def _save_bm25(self, directory: Path, name: str, bm25, counts: TermCounts) -> None:
        bm25.save(str(directory / name))
        np.save(directory / name / self.COUNTS, counts.counts)

    def term_counts(self, name: str) -> TermCounts:
        """The term counts of the chunk ("bm25") or article ("bm25-articles") index."""
        if name in self._counts:
            return self._counts[name]
        bm25 = self._bm25 if name == "bm25" else self._article_bm25
        if bm25 is None:
            return TermCounts.empty()
        terms = list(bm25.vocab_dict)
        if list(bm25.vocab_dict.values()) != list(range(len(terms))) or terms != sorted(terms):
            raise ValueError(f"the {name} vocabulary in {self._directory} is not in term order")
        counts = np.asarray(np.load(self._directory / name / self.COUNTS, mmap_mode="r"))
        scores = bm25.scores
        if len(counts) != len(scores["indices"]):
            raise ValueError(f"{self._directory / name / self.COUNTS} does not fit its BM25 index")
        return TermCounts(
            terms, np.asarray(scores["indptr"]), np.asarray(scores["indices"]), counts, int(scores["num_docs"])
        )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # Made in this folder already (see `merged`): writing over the mapped files would cut them short.
        in_place = self._directory is not None and self._directory.resolve() == directory.resolve()
        if self._bm25 is not None and not in_place:
            for name, bm25 in (("bm25", self._bm25), ("bm25-articles", self._article_bm25)):
                self._save_bm25(directory, name, bm25, self.term_counts(name))
        (directory / "article_ids.json").write_text(json.dumps(self._article_ids))
        self.chunks.save(directory)
        # Written last: a folder without it is incomplete.
        (directory / "generation").write_text(self.generation)

    @classmethod
    def load(cls, directory: Path, analyzer: Analyzer | None = None) -> LexicalIndex | None:
        """The snapshot saved in ``directory``, or None when it is missing or incomplete."""
        try:
            generation = (directory / "generation").read_text()
            chunks = ChunkTable.load(directory)
            article_ids = json.loads((directory / "article_ids.json").read_text())
            bm = abm = None
            if len(chunks):
                import bm25s

                # Mapped like the chunks: the score matrices stay in the page cache, shared between processes.
                bm = bm25s.BM25.load(str(directory / "bm25"), mmap=True)
                abm = bm25s.BM25.load(str(directory / "bm25-articles"), mmap=True)
        except (OSError, ValueError):
            return None
        index = cls(chunks, generation, analyzer)
        index._bm25, index._article_bm25, index._article_ids, index._directory = bm, abm, article_ids, directory
        return index

    def idf(self, term: str) -> float:
        """Inverse document frequency of an analysed term, in BM25's form, over the index's chunks plus
        BACKGROUND_CHUNKS pseudo-chunks of general English.

        The pseudo-chunks are a prior: they decide the weights while the index is small (one article
        cannot tell a name from a common word) and fade as real chunks outnumber them."""
        if not rules.enabled("general-english"):
            prior = 0.0
        else:
            table = background.stem_frequencies(self.analyzer.stem_words)
            prior = BACKGROUND_CHUNKS * background.chunk_probability(table.get(term, 0.0))
        n = len(self.chunks) + BACKGROUND_CHUNKS
        df = self._document_frequency(term) + prior
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _document_frequency(self, term: str) -> int:
        i = self._bm25.vocab_dict.get(term) if self._bm25 is not None else None
        if i is None:
            return 0
        indptr = self._bm25.scores["indptr"]
        return int(indptr[i + 1] - indptr[i])

    def search(self, query: str, n: int) -> list[tuple[Chunk, float]]:
        """Top ``n`` chunks by BM25 score, best first; chunks sharing no term with the query are left out."""
        return [(self.chunks[i], s) for i, s in self.search_rows(query, n)]

    def search_rows(self, query: str, n: int) -> list[tuple[int, float]]:
        """`search` as rows of ``chunks``, so that a caller makes only the chunks it keeps."""
        return self._top(self._bm25, len(self.chunks), query, n)

    def search_articles(self, query: str, n: int) -> list[tuple[str, float]]:
        """Top ``n`` whole articles by BM25: (article id, score), best first."""
        return [(self._article_ids[i], s) for i, s in self._top(self._article_bm25, len(self._article_ids), query, n)]

    def _top(self, bm25, size: int, query: str, n: int) -> list[tuple[int, float]]:
        if bm25 is None or not size:
            return []
        tokens = [t for t in self.analyzer(query) if t in bm25.vocab_dict]
        if not tokens:
            return []
        # Not bm25s's own retrieve: its top-k partitions every score, most of them 0 (rag.index.topk says why).
        return best_positive(bm25.get_scores(tokens), n)

    @property
    def article_ids(self) -> list[str]:
        """Every article, in the order of the article BM25 index (and of a snapshot's article vectors)."""
        return self._article_ids

    def published(self, article_id: str) -> str | None:
        return self._published.get(article_id)
