"""Adding, replacing and deleting articles: the policy of what gets written, inside one write session.

Unchanged articles are skipped by content hash. An id already held by another file is refused, never
overwritten; a file whose text is already indexed under another id is skipped as a duplicate. Chunks are
embedded in groups large enough for the encoder to sort by length, and each group is written as a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.documents.chunk import chunk_article, split_sentences
from rag.documents.parse import SUPPORTED, article_from_record, read_bytes, read_paths
from rag.documents.sources import RECORD_ORIGIN, URL_ORIGIN, file_article_id
from rag.encoders.vectors import SentenceVectors, unit
from rag.errors import BadInput, NotFound
from rag.index.chroma import ArticleStamp, EmbeddedArticle
from rag.index.index import Index, Writer
from rag.index.stories import StoryAssigner
from rag.types import Article, Chunk, IngestReport, Skipped, Warned

EMBED_GROUP = 1024  # chunks whose sentences are embedded per model call: enough to sort by length well
API_ORIGIN = "api"
STORY_BATCH = 256  # articles of an older index placed in stories per store read and write


@dataclass
class Progress:
    """Callbacks for a progress bar: the number of chunks to embed once known, then chunks done."""

    on_total: Callable[[int], None] | None = None
    advance: Callable[[int], None] | None = None


@dataclass
class _Plan:
    write: list[Article] = field(default_factory=list)
    replacing: set[str] = field(default_factory=set)


class Ingester:
    def __init__(self, settings: Settings, index: Index, embedder) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder

    # -- entry points ----------------------------------------------------------------------------
    def ingest_paths(
        self, paths: Iterable[str | Path], progress: Progress | None = None, timeout: float | None = None
    ) -> IngestReport:
        """Add or update articles from files and folders."""
        started = time.perf_counter()
        report = IngestReport()
        articles = self._collect(
            read_paths(paths, self.settings.max_file_bytes, exclude=[self.settings.index_dir]), report
        )
        self.ingest_articles(articles, report, progress, timeout)
        report.seconds = time.perf_counter() - started
        return report

    def ingest_uploads(self, files: Sequence[tuple[str, bytes]], timeout: float | None = None) -> IngestReport:
        """Uploaded files, in one write. Each id comes from the file's name, and uploading the same name again
        replaces it. A file that cannot be used is skipped with its reason; none usable is a BadInput."""
        report = IngestReport()
        articles: list[Article] = []
        for filename, data in files:
            name = Path(filename or "upload.txt").name
            ext = Path(name).suffix.lower()
            if ext not in SUPPORTED:
                reason = f"'{name}' has an unsupported extension; use one of {', '.join(sorted(SUPPORTED))}"
                report.skipped.append(Skipped(name, reason))
            elif len(data) > self.settings.max_file_bytes:
                limit = self.settings.max_file_bytes
                report.skipped.append(
                    Skipped(name, f"{len(data):,} bytes; the limit is {limit:,} (RAG_MAX_FILE_BYTES)")
                )
            else:
                articles += self._collect(read_bytes(data, name, ext, file_article_id(name), f"upload:{name}"), report)
        if not articles:
            raise BadInput("No usable article: " + "; ".join(f"{s.path}: {s.reason}" for s in report.skipped))
        return self.ingest_articles(articles, report, timeout=timeout)

    def ingest_records(self, payload: Any, timeout: float | None = None) -> IngestReport:
        """JSON record(s) {id?, title, text, source?, url?, published?}; without an id, one is made from the text."""
        records = payload if isinstance(payload, list) else [payload]
        report = IngestReport()
        articles: list[Article] = []
        for i, rec in enumerate(records):
            got = article_from_record(rec, "")
            if not isinstance(got, Article):
                report.skipped.append(Skipped(f"[{i}]", got))
                continue
            if isinstance(rec, dict) and rec.get("id") not in (None, ""):
                articles.append(Article(**{**got.to_dict(), "origin": RECORD_ORIGIN}))
            else:
                articles.append(
                    Article(**{**got.to_dict(), "id": f"api-{got.content_hash[:16]}", "origin": API_ORIGIN})
                )
        if not articles:
            raise BadInput("No usable article: " + "; ".join(f"{s.path} {s.reason}" for s in report.skipped))
        return self.ingest_articles(articles, report, timeout=timeout)

    def ingest_articles(
        self,
        articles: Sequence[Article],
        report: IngestReport | None = None,
        progress: Progress | None = None,
        timeout: float | None = None,
    ) -> IngestReport:
        report = report or IngestReport()
        progress = progress or Progress()
        with self.index.writing("ingesting", timeout) as writer:
            stories = self._stories(writer)
            plan = self._plan(articles, self.index.store.article_stamps(), report)
            work = [(a, chunk_article(a, self.settings.chunk_size, self.settings.chunk_overlap)) for a in plan.write]
            if progress.on_total:
                progress.on_total(sum(len(c) for _, c in work))
            group: list[tuple[Article, list[Chunk]]] = []
            for item in work:
                group.append(item)
                if sum(len(c) for _, c in group) >= EMBED_GROUP:
                    self._write_group(writer, group, plan.replacing, report, progress, stories=stories)
                    group = []
            if group:
                self._write_group(writer, group, plan.replacing, report, progress, stories=stories)
            if plan.write:
                self.embedder.release_ingest_buffers()
        return report

    def delete(self, article_id: str, timeout: float | None = None) -> None:
        with self.index.writing("deleting", timeout) as writer:
            if not writer.delete([article_id]):
                raise NotFound(f"No article with id '{article_id}'; `rag list` shows the ids in the index.")

    def rebuild(self, article_ids: Sequence[str]) -> int:
        """Re-embed articles from their stored text (a repair of missing or unreadable vectors)."""
        articles = list(self.index.store.get_articles(article_ids).values())
        stamps = self.index.store.article_stamps()
        with self.index.writing("repairing") as writer:
            report = IngestReport()
            work = [(a, chunk_article(a, self.settings.chunk_size, self.settings.chunk_overlap)) for a in articles]
            origins = {a.id: stamps[a.id].origin for a in articles if a.id in stamps}
            for start in range(0, len(work), 64):
                self._write_group(
                    writer, work[start : start + 64], {a.id for a in articles}, report, Progress(), origins
                )
            self.embedder.release_ingest_buffers()
        return len(articles)

    def _stories(self, writer: Writer) -> StoryAssigner:
        """Story placement for this write. Articles stored before stories were kept are placed first, oldest
        first, as if they were being ingested now: a one-time cost for an older index."""
        stories, unplaced = self.index.story_assigner()
        for start in range(0, len(unplaced), STORY_BATCH):
            ids = unplaced[start : start + STORY_BATCH]
            articles = self.index.store.get_articles(ids)
            vectors = self.index.article_vectors(ids)
            placed = {}
            for a in ids:
                if a in articles and a in vectors:
                    p = stories.place(a, articles[a].text, articles[a].published, unit(vectors[a]))
                    placed[a] = (p.story, p.signature)
            writer.set_stories(placed)
        return stories

    # -- policy ----------------------------------------------------------------------------------
    @staticmethod
    def _collect(items: Iterable[Article | Skipped | Warned], report: IngestReport) -> list[Article]:
        articles = []
        for item in items:
            if isinstance(item, Article):
                articles.append(item)
            elif isinstance(item, Warned):
                report.warnings.append(item)
            else:
                report.skipped.append(item)
        return articles

    @staticmethod
    def _plan(articles: Sequence[Article], stored: dict[str, ArticleStamp], report: IngestReport) -> _Plan:
        """Which articles to write, which of them replace a stored one, and what is skipped, with reasons."""
        plan = _Plan()
        by_hash = {s.content_hash: aid for aid, s in stored.items()}
        seen: dict[str, Article] = {}
        for a in articles:
            held = stored.get(a.id)
            if a.id in seen:
                report.skipped.append(
                    Skipped(_where(a), f"another input in this batch also has id '{a.id}'; the first was kept")
                )
            elif held and held.content_hash == a.content_hash:
                report.unchanged += 1
            elif held and held.origin and a.origin and held.origin != a.origin:
                report.skipped.append(
                    Skipped(
                        _where(a),
                        (
                            f"its id '{a.id}' is already held by {held.origin}; it was not overwritten. Ingest the "
                            f"folder that holds both so their paths differ, or `rag delete {a.id}` first to replace it."
                        ),
                    )
                )
            elif not held and a.origin not in (RECORD_ORIGIN, API_ORIGIN) and a.content_hash in by_hash:
                report.skipped.append(
                    Skipped(_where(a), f"same text as article '{by_hash[a.content_hash]}', which is already indexed")
                )
            else:
                seen[a.id] = a
                by_hash[a.content_hash] = a.id
                plan.write.append(a)
                if held:
                    plan.replacing.add(a.id)
        return plan

    def _write_group(
        self,
        writer: Writer,
        group: list[tuple[Article, list[Chunk]]],
        replacing: set[str],
        report: IngestReport,
        progress: Progress,
        origins: dict[str, str] | None = None,
        stories: StoryAssigner | None = None,
    ) -> None:
        """Embeds and writes ``group``; with ``stories``, each article is placed in its story first (a repair
        keeps the story its article has)."""
        items = self.embed(group)
        if stories is not None:
            items = [replace(e, article=_placed(e.article, e.vectors, stories)) for e in items]
        writer.write(items, replacing, origins or {a.id: a.origin for a, _ in group})
        for article, chunks in group:
            report.articles.append(article.id)
            if article.id in replacing:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += len(chunks)
        if progress.advance:
            progress.advance(sum(len(c) for _, c in group))

    def embed(self, group: list[tuple[Article, list[Chunk]]]) -> list[EmbeddedArticle]:
        """One encoder pass per chunk (title and text): the chunk's vector, and its sentences' vectors pooled
        from the same pass (see rag.encoders.vectors)."""
        chunks = [c for _, cs in group for c in cs]
        spans = []
        for c in chunks:
            lead = len(c.embedding_text()) - len(c.text)
            spans.append([(sp.start + lead, sp.end + lead) for sp in split_sentences(c.text)])
        vectors, sentence_vectors = self.embedder.embed_with_spans([c.embedding_text() for c in chunks], spans)
        out, k = [], 0
        for article, cs in group:
            blobs = []
            for c in cs:
                lead = len(c.embedding_text()) - len(c.text)
                offsets = [(a - lead + c.start, b - lead + c.start) for a, b in spans[k]]
                blobs.append(SentenceVectors.quantize(offsets, sentence_vectors[k]).pack())
                k += 1
            out.append(EmbeddedArticle(article, cs, vectors[k - len(cs) : k], blobs))
        return out


def _placed(article: Article, vectors, stories: StoryAssigner) -> Article:
    """The article with its story and signature."""
    p = stories.place(article.id, article.text, article.published, unit(np.asarray(vectors).mean(axis=0)))
    return replace(article, story=p.story, signature=p.signature)


def _where(a: Article) -> str:
    if a.origin == URL_ORIGIN and a.url:
        return a.url
    return a.origin if a.origin and a.origin not in (RECORD_ORIGIN, API_ORIGIN) else a.id
