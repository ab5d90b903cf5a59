"""Builds everything from Settings; the only place that picks concrete classes.

The CLI, the web app and the eval scripts all go through one Pipeline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

from . import background
from .answer import ExtractiveAnswerer, to_passages
from .config import Settings
from .embed import Embedder
from .errors import BadInput, EmptyIndex, NotFound
from .index import CheckReport, Index, View
from .ingestion import Ingester, Progress
from .lexical import Analyzer, LexicalIndex
from .retrieve import HybridRetriever, Query
from .store import ChromaStore
from .types import Answer, Article, IngestReport

MAX_HISTORY = 20
# Words that point back at an earlier question: "When did she land?", "How much did it cost?"
REFERS_BACK = re.compile(r"\b(?:he|she|it|they|him|her|them|his|hers|its|their|this|that|these|those|there|then|"
                         r"the same|also|too)\b", re.I)


def parse_iso_date(value: str | None, name: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise BadInput(f"{name} '{value}' is not a date; use YYYY-MM-DD, e.g. 2023-05-31.") from None


def follow_up_context(question: str, earlier: list[str]) -> str:
    """The latest earlier question when ``question`` refers back to it, else ""."""
    if earlier and REFERS_BACK.search(question):
        return earlier[-1]
    return ""


class Pipeline:
    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        """``embedder`` lets several pipelines share one loaded model (tests, scratch eval indexes)."""
        self.settings = settings or Settings()
        s = self.settings
        self.embedder = embedder or Embedder(s.embedding_model, dtype=s.embedding_dtype, batch_size=s.embed_batch_size)
        self.index = Index(s, self.manifest)
        self.ingester = Ingester(s, self.index, self.embedder)
        # Answering matches word forms more loosely than search does: "won" is "win" there.
        self._answer_analyzer = Analyzer(base_forms=True)
        self._llm = None

    # -- parts ----------------------------------------------------------------------------------------
    @property
    def store(self) -> ChromaStore:
        self.index.sync()
        return self.index.store

    @property
    def lexical(self) -> LexicalIndex:
        with self.index.reading() as view:
            return view.lexical

    def manifest(self) -> dict[str, Any]:
        return {
            "model_id": self.embedder.model_id,
            "weights_hash": self.embedder.weights_hash,
            "dimension": self.embedder.dimension,
            "chunk_size": self.settings.chunk_size,
            "chunk_overlap": self.settings.chunk_overlap,
        }

    def warm_up(self) -> None:
        """Load the model and the lexical index now, so the first question is as fast as the rest."""
        self.embedder.warm_up()
        background.stem_frequencies(self._answer_analyzer.stem_words)
        self.index.sync()

    def retriever(self, view: View) -> HybridRetriever:
        s = self.settings
        return HybridRetriever(view.store, view.lexical, self.embedder, s.candidates, s.max_per_article)

    def answerer(self, lexical: LexicalIndex) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(self.embedder, self._answer_analyzer, lexical.idf, self.settings.abstain_threshold)

    # -- indexing -------------------------------------------------------------------------------------
    def index_paths(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IngestReport:
        """Add or update articles from files and folders. Unchanged articles are skipped by content hash."""
        return self.ingester.ingest_paths(paths, progress)

    def index_articles(self, articles: list[Article], report: IngestReport | None = None,
                       progress: Progress | None = None) -> IngestReport:
        return self.ingester.ingest_articles(articles, report, progress)

    def delete(self, article_id: str) -> None:
        self.ingester.delete(article_id)

    # -- reading ------------------------------------------------------------------------------------
    def list_articles(self) -> list[dict[str, Any]]:
        with self.index.reading() as view:
            return view.store.list_articles()

    def get_article(self, article_id: str) -> Article:
        with self.index.reading() as view:
            art = view.store.get_article(article_id)
        if art is None:
            raise NotFound(f"No article with id '{article_id}'; `rag list` shows the ids in the index.")
        return art

    def stats(self) -> dict[str, Any]:
        with self.index.reading() as view:
            store = view.store
            return {
                "articles": store.count_articles(),
                "chunks": store.count_chunks(),
                "generation": view.generation,
                "store": "server" if self.settings.chroma_url else "embedded",
                "location": store.location,
                "manifest": store.manifest(),
            }

    def check(self, repair: bool = False) -> CheckReport:
        """Compare the store, the BM25 index and the index state; with ``repair``, fix what disagrees."""
        report = self.index.check()
        if repair and not report.ok:
            with self.index.writing("repairing") as writer:
                report.repaired += [f"removed the chunks of {len(report.orphan_articles)} half-written article(s)"
                                    ] if report.orphan_articles else []
                writer.index._sweep()
            rebuild = Index.articles_to_rebuild(report)
            if rebuild:
                self.ingester.rebuild(rebuild)
                report.repaired.append(f"re-embedded {len(rebuild)} article(s) from their stored text")
            if report.lexical_stale or report.dead_writer:
                report.repaired.append("committed a new generation and rebuilt the BM25 index")
        return report

    # -- asking -------------------------------------------------------------------------------------
    def validate_question(self, question: object) -> str:
        if not isinstance(question, str) or not question.strip():
            raise BadInput("The question is empty; type a question about the articles.")
        q = re.sub(r"\s+", " ", question).strip()
        limit = self.settings.max_question_chars
        if len(q) > limit:
            raise BadInput(f"The question is {len(q):,} characters long; the limit is {limit:,}. Shorten it.")
        return q

    def make_query(self, question: object, k: int | None = None, since: str | None = None,
                   until: str | None = None, as_of: str | None = None, history: object = None) -> Query:
        q = self.validate_question(question)
        context = follow_up_context(q, self.validate_history(history))
        k = self.settings.top_k if k is None else k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
            raise BadInput(f"k={k!r} is out of range; use a whole number from 1 to 50.")
        since, until = parse_iso_date(since, "since"), parse_iso_date(until, "until")
        as_of = parse_iso_date(as_of, "as_of")
        if since and until and since > until:
            raise BadInput(f"since {since} is after until {until}; swap them.")
        return Query(q, k, since, until, as_of, context)

    def validate_history(self, history: object) -> list[str]:
        """Earlier questions of the conversation, oldest first: strings or {"question": ...} turns."""
        if history in (None, ""):
            return []
        if not isinstance(history, list) or len(history) > MAX_HISTORY:
            raise BadInput(f"history must be a list of at most {MAX_HISTORY} earlier questions.")
        out = []
        for turn in history:
            text = turn.get("question") if isinstance(turn, dict) else turn
            if not isinstance(text, str):
                raise BadInput("each history turn must be a question string or an object with a 'question'.")
            if text.strip():
                out.append(self.validate_question(text))
        return out

    def retrieve(self, query: Query):
        """(question vector, fused ranking of every candidate, lexical snapshot) for a validated query.

        A follow-up is searched together with the question it refers back to, but answered on its own
        words, so the vector returned is the question's own."""
        with self.index.reading() as view:
            if view.store.count_articles() == 0:
                raise EmptyIndex(
                    "The index has no articles yet. Add some with `rag ingest index/articles` "
                    "(or POST /api/articles), then ask again."
                )
            if query.context:
                search_vec, qvec = self.embedder.embed_batch([query.search_text, query.text])
            else:
                qvec = search_vec = self.embedder.embed_query(query.text)
            return qvec, self.retriever(view).rank(query, search_vec), view.lexical

    @property
    def llm(self):
        """The LLM client when RAG_LLM_BASE_URL and RAG_LLM_MODEL are set, else None (extractive only)."""
        s = self.settings
        if not (s.llm_base_url and s.llm_model):
            return None
        if self._llm is None:
            from .llm import ChatCompletionsLLM

            self._llm = ChatCompletionsLLM(s.llm_base_url, s.llm_model, s.llm_api_key, timeout=s.llm_timeout)
        return self._llm

    def ask_stream(self, question: object, k: int | None = None, since: str | None = None,
                   until: str | None = None, as_of: str | None = None,
                   history: object = None) -> Iterator[tuple[str, Any]]:
        """Events for a streamed answer: ("passages", [...]), then ("token", text)..., then ("answer", {...}).

        The final answer is the same object `ask` returns. A bad request raises before the first event,
        so callers can still answer with a plain error status.
        """
        t0 = time.perf_counter()
        query = self.make_query(question, k, since, until, as_of, history)
        qvec, ranking, lexical = self.retrieve(query)
        hits = HybridRetriever.cap(ranking.hits, query.k, self.settings.max_per_article)
        yield "passages", [asdict(p) for p in to_passages(hits)]
        answer = yield from self._answer_events(query, qvec, hits, lexical, t0)
        yield "answer", answer.to_dict()

    def ask(self, question: object, k: int | None = None, since: str | None = None, until: str | None = None,
            as_of: str | None = None, history: object = None) -> Answer:
        return self.ask_ranked(question, k, since, until, as_of, history)[0]

    def ask_ranked(self, question: object, k: int | None = None, since: str | None = None,
                   until: str | None = None, as_of: str | None = None,
                   history: object = None) -> tuple[Answer, list[str]]:
        """The answer, and the ranking of every article retrieval found (for evaluation)."""
        t0 = time.perf_counter()
        query = self.make_query(question, k, since, until, as_of, history)
        qvec, ranking, lexical = self.retrieve(query)
        hits = HybridRetriever.cap(ranking.hits, query.k, self.settings.max_per_article)
        events = self._answer_events(query, qvec, hits, lexical, t0)
        while True:
            try:
                next(events)
            except StopIteration as done:
                return done.value, ranking.articles

    def _answer_events(self, query: Query, qvec, hits, lexical: LexicalIndex, t0: float):
        """Yields ("token", text) events; returns the final Answer."""
        t1 = time.perf_counter()
        with self.index.reading() as view:
            articles = view.store.get_articles([h.chunk.article_id for h in hits])
        answerer = self.answerer(lexical)
        extractive = answerer.answer(query.text, qvec, hits, articles)
        if not hits and (query.since or query.until):
            span = " ".join(f"{name} {value}" for name, value in (("from", query.since), ("to", query.until)) if value)
            extractive = replace(extractive, notice=f"No dated article in the index was published {span}. "
                                                    "Widen or clear the dates to search everything.")
        llm = self.llm if hits else None
        if llm is None:
            # The extractive answer is complete at once; it is sent in word-sized pieces so every
            # backend streams the same way and the page renders progressively.
            for piece in re.findall(r"\S+\s*", extractive.answer):
                yield "token", piece
            return self._timed(extractive, t0, t1)
        from .llm import NOT_IN_SOURCES, LLMUnavailable, build_messages
        from .verify import verify

        published = {a.id: a.published for a in articles.values()}
        messages = build_messages(query.text, to_passages(hits), published)
        draft = []
        try:
            for piece in llm.stream(messages):
                draft.append(piece)
                yield "token", piece
        except LLMUnavailable as e:
            notice = f"The LLM was unavailable ({e}); this is the extractive answer, quoted from the sources."
            return self._timed(replace(extractive, notice=notice), t0, t1)
        text = "".join(draft).strip()
        backend = f"llm:{llm.model}"
        if not text or text.strip(" .") == NOT_IN_SOURCES or text.startswith(NOT_IN_SOURCES):
            answer = replace(answerer.abstain(query.text, extractive.passages, 0.0), backend=backend,
                             extractive=extractive.to_dict(), sentences=[])
            return self._timed(answer, t0, t1)
        v = verify(text, hits, articles, lexical.analyzer)
        stats = {"sentences": len(v.sentences), "supported": v.supported, "invalid_markers": v.invalid_markers,
                 "facts_checked": v.facts_checked, "facts_supported": v.facts_supported}
        if not v.supported:
            answer = replace(answerer.abstain(query.text, extractive.passages, 0.0), backend=backend,
                             extractive=extractive.to_dict(), sentences=v.sentences, verification=stats)
            return self._timed(answer, t0, t1)
        shorts = [extractive.short_answer] if extractive.short_answer else []
        short = next((s for s in shorts if s in v.answer), None)
        answer = Answer(question=query.text, answer=v.answer, short_answer=short, abstained=False,
                        citations=v.citations, passages=extractive.passages, backend=backend,
                        confidence=round(v.supported / len(v.sentences), 4), sentences=v.sentences,
                        extractive=extractive.to_dict(), verification=stats)
        return self._timed(answer, t0, t1)

    @staticmethod
    def _timed(answer: Answer, t0: float, t1: float) -> Answer:
        t2 = time.perf_counter()
        timings = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        return replace(answer, timings_ms={k: round(v, 1) for k, v in timings.items()})
