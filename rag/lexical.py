"""BM25 over the same chunks as the vector store, persisted next to the Chroma data.

The store is the source of truth: each snapshot is built from the store's chunks for one committed
generation and saved under that generation's name, so a process never pairs BM25 with the wrong vectors.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from . import background
from .types import Chunk

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Common English function words; they match everywhere and only add noise to BM25.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it much many
    its me my not of on or our she so than that the their them then there these they this those to was we
    were what when where which who whom why will with would you your""".split()
)


# Weight of general English in term weights, in chunks: an index of a few articles leans on it, one of
# thousands hardly at all.
BACKGROUND_CHUNKS = 1000


# English irregular verbs, base form first. A stemmer leaves "won" and "win" apart; answering needs them
# together ("Which team won...?" is answered by "...to win the team's first Stanley Cup"). Forms that are
# mostly other words ("ground", "wound", "bit", "bound", "lay") are left out.
_IRREGULAR_VERBS = """
    arise arose arisen|awake awoke awoken|be was were been|bear bore borne|beat beat beaten|
    become became become|begin began begun|bend bent bent|bet bet bet|bid bid bid|
    bleed bled bled|blow blew blown|break broke broken|breed bred bred|bring brought brought|
    build built built|burn burnt burnt|burst burst burst|buy bought bought|catch caught caught|
    choose chose chosen|cling clung clung|come came come|cost cost cost|creep crept crept|cut cut cut|
    deal dealt dealt|dig dug dug|do did done|draw drew drawn|drink drank drunk|drive drove driven|
    eat ate eaten|fall fell fallen|feed fed fed|feel felt felt|fight fought fought|find found found|
    flee fled fled|fly flew flown|forbid forbade forbidden|forget forgot forgotten|forgive forgave forgiven|
    freeze froze frozen|get got gotten|give gave given|go went gone|grow grew grown|
    hang hung hung|have had had|hear heard heard|hide hid hidden|hit hit hit|hold held held|hurt hurt hurt|
    keep kept kept|kneel knelt knelt|know knew known|lay laid laid|lead led led|leave left left|
    lend lent lent|let let let|light lit lit|lose lost lost|make made made|mean meant meant|
    meet met met|pay paid paid|put put put|quit quit quit|read read read|ride rode ridden|ring rang rung|
    rise rose risen|run ran run|say said said|see saw seen|seek sought sought|sell sold sold|send sent sent|
    set set set|shake shook shaken|shine shone shone|shoot shot shot|show showed shown|shrink shrank shrunk|
    shut shut shut|sing sang sung|sink sank sunk|sit sat sat|sleep slept slept|slide slid slid|
    speak spoke spoken|spend spent spent|spin spun spun|split split split|spread spread spread|
    stand stood stood|steal stole stolen|stick stuck stuck|sting stung stung|strike struck struck|
    swear swore sworn|sweep swept swept|swim swam swum|swing swung swung|take took taken|teach taught taught|
    tear tore torn|tell told told|think thought thought|throw threw thrown|understand understood understood|
    wake woke woken|wear wore worn|weep wept wept|win won won|withdraw withdrew withdrawn|
    write wrote written|overtake overtook overtaken|undergo underwent undergone|uphold upheld upheld|
    withhold withheld withheld|oversee oversaw overseen|mislead misled misled
"""
BASE_FORMS = {form: row.split()[0] for row in _IRREGULAR_VERBS.replace("\n", "").split("|") for form in row.split()[1:]
              if form != row.split()[0]}


class Analyzer:
    """Lowercase word tokens, stopwords removed, Snowball-stemmed.

    With ``base_forms``, irregular verb forms become their base form first ("won" -> "win"). The BM25
    index does without: on RealTime QA it changed nothing there, and its stored tokens stay as they are.
    One Analyzer serves every thread: a Snowball stemmer must not be called concurrently, so each
    thread gets its own.
    """

    def __init__(self, base_forms: bool = False) -> None:
        self._base = BASE_FORMS if base_forms else {}
        self._local = threading.local()

    @property
    def _stemmer(self):
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        return stemmer

    def __call__(self, text: str) -> list[str]:
        words = [w.replace("’", "'").split("'")[0] for w in _TOKEN.findall(text.lower())]
        return self._stemmer.stemWords([self._base.get(w, w) for w in words if w and w not in STOPWORDS])

    def stem_words(self, words: list[str]) -> list[str]:
        return self._stemmer.stemWords(words)


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

    def __init__(self, chunks: list[Chunk], generation: str, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or Analyzer()
        self.generation = generation
        self.chunks = chunks
        self._published = {c.article_id: c.published for c in chunks}
        self._bm25 = self._article_bm25 = None
        self._article_ids: list[str] = []
        self._df: dict[str, int] = {}

    @classmethod
    def build(cls, chunks: list[Chunk], generation: str, analyzer: Analyzer | None = None) -> LexicalIndex:
        import bm25s

        index = cls(chunks, generation, analyzer)
        docs = [index.analyzer(c.embedding_text()) or ["_"] for c in chunks]
        index._df = dict(Counter(t for d in docs for t in set(d)))
        if chunks:
            index._bm25 = bm25s.BM25()
            index._bm25.index(docs, show_progress=False)
            articles = article_documents(chunks)
            index._article_ids = sorted(articles)
            index._article_bm25 = bm25s.BM25()
            index._article_bm25.index([index.analyzer(articles[a]) or ["_"] for a in index._article_ids],
                                      show_progress=False)
        return index

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(directory / "bm25"))
            self._article_bm25.save(str(directory / "bm25-articles"))
        (directory / "article_ids.json").write_text(json.dumps(self._article_ids))
        rows = [[c.id, c.article_id, c.ordinal, c.start, c.end, c.title, c.published, c.text] for c in self.chunks]
        (directory / "chunks.json").write_text(json.dumps(rows))
        (directory / "df.json").write_text(json.dumps(self._df))
        # Written last: a folder without it is incomplete.
        (directory / "generation").write_text(self.generation)

    @classmethod
    def load(cls, directory: Path, analyzer: Analyzer | None = None) -> LexicalIndex | None:
        """The snapshot saved in ``directory``, or None when it is missing or incomplete."""
        try:
            generation = (directory / "generation").read_text()
            rows = json.loads((directory / "chunks.json").read_text())
            df = json.loads((directory / "df.json").read_text())
            article_ids = json.loads((directory / "article_ids.json").read_text())
            bm = abm = None
            if rows:
                import bm25s

                bm = bm25s.BM25.load(str(directory / "bm25"))
                abm = bm25s.BM25.load(str(directory / "bm25-articles"))
        except (OSError, ValueError):
            return None
        chunks = [Chunk(id=r[0], article_id=r[1], ordinal=r[2], start=r[3], end=r[4], title=r[5], published=r[6],
                        text=r[7]) for r in rows]
        index = cls(chunks, generation, analyzer)
        index._bm25, index._article_bm25, index._article_ids, index._df = bm, abm, article_ids, df
        return index

    def idf(self, term: str) -> float:
        """Inverse document frequency of an analysed term, in BM25's form, over the index's chunks plus
        BACKGROUND_CHUNKS pseudo-chunks of general English.

        The pseudo-chunks are a prior: they decide the weights while the index is small (one article
        cannot tell a name from a common word) and fade as real chunks outnumber them."""
        table = background.stem_frequencies(self.analyzer.stem_words)
        prior = BACKGROUND_CHUNKS * background.chunk_probability(table.get(term, 0.0))
        n = len(self.chunks) + BACKGROUND_CHUNKS
        df = self._df.get(term, 0) + prior
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, n: int) -> list[tuple[Chunk, float]]:
        """Top ``n`` chunks by BM25 score, best first; chunks sharing no term with the query are left out."""
        return [(self.chunks[i], s) for i, s in self._top(self._bm25, len(self.chunks), query, n)]

    def search_articles(self, query: str, n: int) -> list[tuple[str, float]]:
        """Top ``n`` whole articles by BM25: (article id, score), best first."""
        return [(self._article_ids[i], s) for i, s in self._top(self._article_bm25, len(self._article_ids), query, n)]

    def _top(self, bm25, size: int, query: str, n: int) -> list[tuple[int, float]]:
        if bm25 is None or not size:
            return []
        tokens = [t for t in self.analyzer(query) if t in bm25.vocab_dict]
        if not tokens:
            return []
        docs, scores = bm25.retrieve([tokens], k=min(n, size), show_progress=False)
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def published(self, article_id: str) -> str | None:
        return self._published.get(article_id)


class LexicalStore:
    """The folder of saved snapshots, one per generation: built once, by one process, and loaded by the rest.

    A snapshot is built in a private temporary folder and renamed into place, under a build lock, so
    processes that need the same generation at the same time never read or write each other's half.
    """

    KEEP = 2  # generations kept on disk: the newest, and the one a slower process may still be loading

    def __init__(self, root: Path, analyzer: Analyzer | None = None) -> None:
        self.root = root
        self.analyzer = analyzer or Analyzer()

    def get(self, generation: str, load_chunks, build_lock) -> LexicalIndex:
        """The snapshot for ``generation``: from disk when saved, else built from ``load_chunks()`` and saved.

        ``build_lock`` is a context manager held while building, so only one process builds a generation."""
        final = self.root / _safe_name(generation)
        found = LexicalIndex.load(final, self.analyzer)
        if found is not None and found.generation == generation:
            return found
        with build_lock():
            found = LexicalIndex.load(final, self.analyzer)  # another process may have built it meanwhile
            if found is not None and found.generation == generation:
                return found
            index = LexicalIndex.build(list(load_chunks()), generation, self.analyzer)
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
            shutil.rmtree(tmp)
            index.save(tmp)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._prune(keep=final)
        return index

    def _prune(self, keep: Path) -> None:
        now = time.time()
        saved = []
        for p in self.root.iterdir():
            try:
                age = now - p.stat().st_mtime
            except OSError:
                continue
            # Another process's unfinished build is left alone unless it was abandoned long ago.
            if p.is_dir() and p != keep and (not p.name.startswith(".build-") or age > 3600):
                saved.append((age, p))
        for _, old in sorted(saved)[self.KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)


def _safe_name(generation: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", generation) or "empty"
