"""One Pipeline, built from Settings, that the CLI, the web app and the eval all go through.

It orchestrates and nothing else: the parts are built by `factory`, requests are validated by `requests`,
writes are ingestion's, and answers are the answerer's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rag.answer.agreement import Comparison, sources_differ
from rag.answer.extractive import to_passages
from rag.answer.question import QuestionAnalysis, analyse
from rag.answer.reading import Evidence
from rag.config import Settings
from rag.documents.ingester import Progress
from rag.encoders.protocol import Encoder
from rag.encoders.worker import one_blas_thread
from rag.errors import EmptyIndex, NotFound
from rag.fetch.sources import WebSources
from rag.index import background
from rag.index.index import CheckReport, Index
from rag.index.stories import StoryView
from rag.question_request import AskRequest
from rag.retrieve import HybridRetriever, Query, Ranking, follow_up_context
from rag.types import Answer, Article, IngestReport
from rag.wiring import Parts, build_parts


@dataclass(frozen=True)
class Prepared:
    """A question after retrieval: what answering needs, and the ranking (for evaluation)."""

    query: Query
    analysis: QuestionAnalysis
    evidence: Evidence
    ranking: Ranking
    started: float
    retrieved: float
    stories: StoryView | None = None


class Pipeline:
    def __init__(
        self, settings: Settings | None = None, embedder: Encoder | None = None, parts: Parts | None = None
    ) -> None:
        """``embedder`` lets several pipelines share one loaded model (tests, scratch eval indexes)."""
        self.settings = settings or Settings()
        self.parts = parts or build_parts(self.settings, embedder)
        self.embedder = self.parts.embedder
        self.index: Index = self.parts.index
        self.ingester = self.parts.ingester
        self.web = WebSources(self.settings, self.ingester, self.index.locks)  # URLs and feeds

    def warm_up(self) -> None:
        """Load the model, the reader and the index now, so the first question is as fast as the rest, and
        compute with numpy on one thread (`rag.encoders.worker.one_blas_thread` says why): a warmed pipeline is one
        that answers many questions, often at once.

        The question encoder and the index load side by side."""
        one_blas_thread()
        with ThreadPoolExecutor(2, thread_name_prefix="warm-up") as pool:
            jobs = [pool.submit(self._warm_model), pool.submit(self._warm_index)]
        for job in jobs:
            job.result()

    def _warm_model(self) -> None:
        self.embedder.warm_up()
        self.parts.reader.warm_up()

    def _warm_index(self) -> None:
        background.stem_frequencies(self.parts.analyzer.stem_words)
        self.index.sync()

    @property
    def ready(self) -> bool:
        return self.embedder.status.loaded

    @property
    def question_encoder(self) -> str:
        """What encodes questions here: "openvino (bf16)" or "(f32)", or "torch (why)"."""
        return self.embedder.status.questions

    @property
    def ingest_encoder(self) -> str:
        """What encodes documents here, in the same words; "" before the first ingest."""
        return self.embedder.status.documents

    @property
    def reader(self) -> str:
        """What reads the evidence, and where: "fitted, in a child process", or "fitted, in this process"."""
        reader = self.parts.reader
        return f"{reader.name}, {getattr(reader, 'where', 'in this process')}"

    @property
    def reader_stuck(self) -> bool:
        """Whether the reader's child process has held a question past its deadline (it is being replaced)."""
        return bool(getattr(self.parts.reader, "stuck", False))

    @property
    def snapshot_repairs(self) -> list[str]:
        """Damaged snapshots this process found on opening and rebuilt from the store."""
        return list(self.index.snapshots.repairs)

    @property
    def index_loaded(self) -> bool:
        """Whether this process has opened the index and loaded a snapshot (at startup, in the background)."""
        return self.index.loaded

    # -- indexing -----------------------------------------------------------------------------------------
    def index_paths(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IngestReport:
        """Add or update articles from files and folders. Unchanged articles are skipped by content hash."""
        return self.ingester.ingest_paths(paths, progress)

    def index_articles(
        self, articles: list[Article], report: IngestReport | None = None, progress: Progress | None = None
    ) -> IngestReport:
        return self.ingester.ingest_articles(articles, report, progress)

    def index_urls(
        self, urls: list[str], report: IngestReport | None = None, wait: float | None = None
    ) -> IngestReport:
        """Fetch web pages and ingest their articles, named by their canonical URLs (`rag.fetch.sources`)."""
        return self.web.ingest_urls(urls, report, wait)

    def index_uploads(self, files: list[tuple[str, bytes]], wait: float | None = None) -> IngestReport:
        """Uploaded files (name, bytes), in one write; ``wait`` is how long to wait for another writer before a
        busy error."""
        return self.ingester.ingest_uploads(files, wait)

    def index_records(self, payload: Any, wait: float | None = None) -> IngestReport:
        """JSON article records, one or a list."""
        return self.ingester.ingest_records(payload, wait)

    def delete(self, article_id: str, wait: float | None = None) -> None:
        self.ingester.delete(article_id, wait)

    @property
    def read_only(self) -> bool:
        """Whether this process cannot write the index (a read-only mount, another user's folder)."""
        return self.index.locks.read_only

    def refuse_writes(self) -> None:
        """A clear ReadOnlyIndex now, before an upload is read, rather than when its write begins."""
        self.index.locks.refuse_writes()

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def store(self):
        self.index.sync()
        return self.index.store

    @property
    def lexical(self):
        with self.index.reading() as view:
            return view.lexical

    def list_articles(self) -> list[dict[str, Any]]:
        with self.index.reading() as view:
            return view.store.list_articles()

    def get_article(self, article_id: str) -> Article:
        with self.index.reading() as view:
            article = view.snapshot.articles.get(article_id)
        if article is None:
            raise NotFound(f"No article with id '{article_id}'; `rag list` shows the ids in the index.")
        return article

    def also_reported_by(self, article_id: str) -> tuple[dict, ...]:
        """The other reports of the article's story, oldest first (see rag.index.stories)."""
        with self.index.reading() as view:
            return StoryView(view.snapshot).also_reported_by(article_id)

    def stats(self) -> dict[str, Any]:
        with self.index.reading() as view:
            return {
                "articles": view.store.count_articles(),
                "chunks": view.store.count_chunks(),
                "generation": view.generation,
                "store": "server" if self.settings.chroma_url else "embedded",
                "read_only": self.read_only,
                "location": view.store.location,
                "manifest": view.store.manifest(),
            }

    def check(self, repair: bool = False) -> CheckReport:
        """Compare the store, the BM25 index and the index state; with ``repair``, fix what disagrees."""
        report = self.index.check()
        if repair and not report.ok:
            with self.index.writing("repairing", renew=True):
                if self.index.sweep():
                    report.repaired.append(
                        f"removed the chunks of {len(report.orphan_articles)} half-written article(s)"
                    )
            rebuild = Index.articles_to_rebuild(report)
            if rebuild:
                self.ingester.rebuild(rebuild)
                report.repaired.append(f"re-embedded {len(rebuild)} article(s) from their stored text")
            if report.lexical_stale or report.dead_writer:
                report.repaired.append("committed a new generation and rebuilt the BM25 index")
        if repair and report.snapshot_damaged:
            self.index.rebuild_snapshot()
            report.repaired.append(f"rebuilt the damaged snapshot from the store ({report.snapshot_damaged})")
        return report

    # -- asking -------------------------------------------------------------------------------------------
    def request(self, question: object = None, **fields: Any) -> AskRequest:
        """A validated request from loose fields (the CLI's, a form's, a test's)."""
        req = question if isinstance(question, AskRequest) else AskRequest.parse(question=question, **fields)
        return req.check(self.settings.max_question_chars)

    def ask(self, question: object = None, **fields: Any) -> Answer:
        return self.ask_ranked(question, **fields)[0]

    def ask_ranked(self, question: object = None, **fields: Any) -> tuple[Answer, list[str]]:
        """The answer, and every article retrieval found, best first (for evaluation)."""
        request = self.request(question, **fields)
        with self.parts.in_flight.held():
            prepared = self.prepare(request)
            answer = None
            for event, data in self.parts.answerer.stream(prepared.analysis, prepared.evidence):
                if event == "answer":
                    answer = data
        return self._finish(answer, prepared), prepared.ranking.articles

    def ask_stream(self, question: object = None, **fields: Any) -> Iterator[tuple[str, Any]]:
        """Events for a streamed answer: ("passages", [...]), then ("token", text)..., then ("answer", {...}).

        The final answer is the object `ask` returns. A bad request, an empty index or a store that is down
        raises before the first event, so callers can still answer with a plain error status."""
        request = self.request(question, **fields)
        with self.parts.in_flight.held():
            prepared = self.prepare(request)
        return self._events(prepared)

    def _events(self, prepared: Prepared) -> Iterator[tuple[str, Any]]:
        yield "passages", [asdict(p) for p in to_passages(prepared.evidence.hits)]
        answering = self.parts.answerer.stream(prepared.analysis, prepared.evidence)
        while True:
            with self.parts.in_flight.held():  # counted while it computes, not while a client reads the stream
                event, data = next(answering, (None, None))
            if event is None:
                return
            yield (event, self._finish(data, prepared).to_dict()) if event == "answer" else (event, data)

    def prepare(self, request: AskRequest) -> Prepared:
        """Search, then gather what answering reads: the passages, their articles and their sentences."""
        started = time.perf_counter()
        iso = {
            k: (getattr(request, k).isoformat() if getattr(request, k) else None) for k in ("since", "until", "as_of")
        }
        query = Query(
            request.question,
            request.k or self.settings.top_k,
            iso["since"],
            iso["until"],
            iso["as_of"],
            follow_up_context(request.question, list(request.history)),
        )
        # The question is encoded on the model worker (off the GIL) while this thread searches BM25.
        texts = [query.search_text, query.text] if query.context else [query.text]
        encoding = self.embedder.submit_batch(texts)
        try:
            return self._search(query, encoding, started)
        finally:
            # A question that failed (an empty index, a store that is down) must not leave the model worker
            # computing for it: a process that exits meanwhile aborts inside the runtime.
            if not encoding.cancel():
                wait([encoding])

    def _search(self, query: Query, encoding: Future, started: float) -> Prepared:
        with self.index.reading() as view:
            if not view.snapshot.chunks:  # the committed generation has no article
                raise EmptyIndex(
                    "The index has no articles yet. Add some with `rag ingest index/articles` "
                    "(or POST /api/articles), then ask again."
                )
            retriever = HybridRetriever(view, self.settings.candidates, self.settings.max_per_article)
            lexical = retriever.lexical(query)
            vectors = encoding.result()
            search_vector, question_vector = vectors[0], vectors[-1]
            ranking = retriever.rank(query, search_vector, lexical)
            hits = HybridRetriever.cap(
                ranking.hits, query.k, self.settings.max_per_article, view.snapshot.articles.story_of
            )
            articles = view.articles([h.chunk.article_id for h in hits])
            snapshot = view.snapshot
        sentences = {h.chunk.id: s for h in hits if (s := snapshot.sentences_of(h.chunk.id)) is not None}
        analysis = analyse(
            query.text,
            self.parts.analyzer,
            snapshot.lexical.idf,
            context=" ".join(h.chunk.text for h in hits),
            earlier=query.context,
        )
        evidence = Evidence(hits, articles, sentences, question_vector)
        return Prepared(query, analysis, evidence, ranking, started, time.perf_counter(), StoryView(snapshot))

    def _finish(self, answer: Answer, prepared: Prepared) -> Answer:
        query = prepared.query
        stories = prepared.stories
        if stories is not None and not answer.abstained:
            answer = sources_differ(answer, Comparison(prepared.analysis, self.parts.analyzer, stories))
            cited = [replace(c, also_reported_by=stories.also_reported_by(c.article_id)) for c in answer.citations]
            answer = replace(answer, citations=cited)
        if not prepared.evidence.hits and (query.since or query.until) and answer.notice is None:
            span = " ".join(f"{name} {value}" for name, value in (("from", query.since), ("to", query.until)) if value)
            answer = replace(
                answer,
                notice=f"No dated article in the index was published {span}. "
                "Widen or clear the dates to search everything.",
            )
        done = time.perf_counter()
        timings = {
            "retrieve": prepared.retrieved - prepared.started,
            "answer": done - prepared.retrieved,
            "total": done - prepared.started,
        }
        return replace(answer, timings_ms={k: round(v * 1000, 1) for k, v in timings.items()})
