"""BM25 over the same chunks as the vector store, persisted next to the Chroma data.

The store is the source of truth: each snapshot is built from the store's chunks for one committed
generation and saved under that generation's name, so a process never pairs BM25 with the wrong vectors.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections import Counter
from pathlib import Path

from . import background, rules
from .chunktable import ChunkTable
from .lexicon import STOPWORDS
from .topk import best_positive
from .types import Chunk

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
        for a whole index at once: what bm25s indexes without converting every token itself.

        The stemmer costs about 0.7 us a word, and an index repeats its words: 21 million words went through it
        for the bench index's snapshot (14.7 of its 56 s). Here each distinct word is stemmed once, for this call
        only, so a server that builds a snapshot keeps no vocabulary in its heap afterwards."""
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


def _indexable(ids: list[list[int]], vocab: dict[str, int]):
    """Token ids as bm25s indexes them; a text with no token at all gets the placeholder "_", so it still has a
    row (no analysed token can be "_")."""
    from bm25s.tokenization import Tokenized

    if any(not d for d in ids):
        blank = vocab.setdefault("_", len(vocab))
        ids = [d or [blank] for d in ids]
    return Tokenized(ids=ids, vocab=vocab)


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
                parts.append(c.text[max(covered - c.start, 0):])
                covered = c.end
        docs[aid] = "\n".join(parts)
    return docs


class LexicalIndex:
    """BM25 (via bm25s) over chunk texts with their titles, and over whole articles: one generation's snapshot.

    Never changed after it is built: a newer generation is a new LexicalIndex, swapped in whole, so a search
    running in another thread never sees half of each.
    """

    def __init__(self, chunks: ChunkTable, generation: str, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or Analyzer()
        self.generation = generation
        self.chunks = chunks
        self._published = {aid: published for aid, _, published in chunks.articles}
        self.article_set = frozenset(self._published)
        self._bm25 = self._article_bm25 = None
        self._article_ids: list[str] = []
        self._df: dict[str, int] = {}

    @classmethod
    def build(cls, chunks: list[Chunk], generation: str, analyzer: Analyzer | None = None) -> LexicalIndex:
        import bm25s

        index = cls(ChunkTable.from_chunks(chunks), generation, analyzer)
        docs = _indexable(*index.analyzer.token_ids([c.embedding_text() for c in chunks]))
        words = list(docs.vocab)
        index._df = {words[i]: n for i, n in Counter(i for d in docs.ids for i in set(d)).items()}
        if chunks:
            index._bm25 = bm25s.BM25()
            index._bm25.index(docs, show_progress=False)
            articles = article_documents(chunks)
            index._article_ids = sorted(articles)
            index._article_bm25 = bm25s.BM25()
            index._article_bm25.index(_indexable(*index.analyzer.token_ids([articles[a] for a in index._article_ids])),
                                      show_progress=False)
        return index

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(directory / "bm25"))
            self._article_bm25.save(str(directory / "bm25-articles"))
        (directory / "article_ids.json").write_text(json.dumps(self._article_ids))
        self.chunks.save(directory)
        (directory / "df.json").write_text(json.dumps(self._df))
        # Written last: a folder without it is incomplete.
        (directory / "generation").write_text(self.generation)

    @classmethod
    def load(cls, directory: Path, analyzer: Analyzer | None = None) -> LexicalIndex | None:
        """The snapshot saved in ``directory``, or None when it is missing or incomplete."""
        try:
            generation = (directory / "generation").read_text()
            chunks = ChunkTable.load(directory)
            df = json.loads((directory / "df.json").read_text())
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
        index._bm25, index._article_bm25, index._article_ids, index._df = bm, abm, article_ids, df
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
        df = self._df.get(term, 0) + prior
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

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
        # Not bm25s's own retrieve: its top-k partitions every score, most of them 0 (rag.topk says why).
        return best_positive(bm25.get_scores(tokens), n)

    @property
    def article_ids(self) -> list[str]:
        """Every article, in the order of the article BM25 index (and of a snapshot's article vectors)."""
        return self._article_ids

    def published(self, article_id: str) -> str | None:
        return self._published.get(article_id)
