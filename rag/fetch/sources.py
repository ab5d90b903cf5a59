"""Articles from URLs, and the feeds an index follows: fetched politely, extracted, and ingested like files.

An article from the web is named by its canonical URL (`rag.fetch.urls.url_article_id`): the page's own
<link rel=canonical> when it is on the page's site, else the URL it was fetched from. So the same story reached
through two feeds, or with tracking parameters, is one article, and a changed page is re-embedded in place.

A refresh is one pass over the feeds, safe to repeat (cron can run it): a feed is asked with its validators, so
an unchanged one answers 304 and nothing is written; an entry whose stamp has not changed is not fetched again.
A feed that fails keeps its reason and backs off (5 minutes, doubling to a day); the others go on. One process
refreshes at a time.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from rag.config import Settings
from rag.documents.ingester import Ingester
from rag.documents.parse import PAGE_TYPES, article_from_page, make_article
from rag.documents.sources import URL_ORIGIN
from rag.errors import BadInput
from rag.fetch.client import FetchFailed, PoliteClient
from rag.fetch.feeds import FEED_TYPES, parse_feed
from rag.fetch.registry import FeedRecord, PageRecord, RegistryFile, now_text
from rag.fetch.urls import FetchRefused, normalize, parse_url, same_site, url_article_id
from rag.index.locks import IndexLocks
from rag.types import Article, IngestReport, Skipped

FETCH_ERRORS = (FetchFailed, FetchRefused)


@dataclass
class FeedOutcome:
    """What one refresh did with one feed."""

    name: str
    url: str
    status: str  # "updated", "unchanged" (nothing new), "not modified" (304), "failed", "backing off", "skipped"
    entries: int = 0
    fetched: int = 0  # article pages requested
    report: IngestReport = field(default_factory=IngestReport)
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "url": self.url,
            "status": self.status,
            "entries": self.entries,
            "fetched": self.fetched,
            "error": self.error,
            **{k: v for k, v in self.report.to_dict().items() if k != "seconds"},
        }


class WebSources:
    def __init__(
        self,
        settings: Settings,
        ingester: Ingester,
        locks: IndexLocks,
        client: Callable[[], PoliteClient] | None = None,
    ) -> None:
        self.settings = settings
        self.ingester = ingester
        self.locks = locks
        self.registry = RegistryFile(settings.index_dir / "feeds.json", locks.feeds)
        s = settings
        self._client = client or (
            lambda: PoliteClient(
                allow_private=s.fetch_allow_private,
                timeout=s.fetch_timeout,
                max_bytes=s.fetch_max_bytes,
                host_delay=s.fetch_host_delay,
            )
        )

    # -- single articles -----------------------------------------------------------------------------
    def ingest_urls(
        self, urls: Sequence[str], report: IngestReport | None = None, timeout: float | None = None
    ) -> IngestReport:
        """Fetch each URL, extract its article and ingest them in one write, adding to ``report``. A URL that
        cannot be fetched or holds no text is skipped with its reason; none usable at all is a BadInput."""
        self.locks.refuse_writes()
        started = time.perf_counter()
        report = report or IngestReport()
        articles: list[Article] = []
        with self._client() as client:
            for url in urls:
                try:
                    _, article = self.fetch_article(client, url)
                except FETCH_ERRORS as e:
                    report.skipped.append(Skipped(url, _reason(e, url)))
                    continue
                if article is None:
                    report.skipped.append(Skipped(url, "the page holds no article text"))
                else:
                    articles.append(article)
        if not articles:
            raise BadInput("No usable article: " + "; ".join(f"{s.path}: {s.reason}" for s in report.skipped))
        self.ingester.ingest_articles(_one_per_id(articles), report, timeout=timeout)
        report.seconds += time.perf_counter() - started
        return report

    def fetch_article(
        self, client: PoliteClient, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> tuple[object, Article | None]:
        """(the response, its article): None for a 304, or a page without text."""
        fetched = client.get(url, accept=PAGE_TYPES, etag=etag, last_modified=last_modified)
        if fetched.status == 304:
            return fetched, None
        page = article_from_page(fetched.content, fetched.media_type, fetched.charset, fetched.url)
        if page is None:
            return fetched, None
        canonical = page.url if page.url and _is_web_url(page.url) and same_site(page.url, fetched.url) else None
        name = normalize(canonical or fetched.url)
        article = make_article(
            url_article_id(name),
            page.title,
            page.text,
            source=page.source or (urlsplit(fetched.url).hostname or "").removeprefix("www."),
            url=name,
            published=page.published,
        )
        return fetched, replace(article, origin=URL_ORIGIN)

    # -- feeds ---------------------------------------------------------------------------------------
    def list_feeds(self) -> list[FeedRecord]:
        return sorted(self.registry.read().feeds.values(), key=lambda f: f.name.lower())

    def add_feed(self, url: str, name: str | None = None) -> FeedRecord:
        """Follow the feed at ``url``: fetched once now, to check it is RSS or Atom; its articles come with the
        next refresh."""
        url = parse_url(url)[0]
        if name is not None and not name.strip():
            raise BadInput("A feed's name cannot be empty.")
        with self._client() as client:
            fetched = client.get(url, accept=FEED_TYPES)
            feed = parse_feed(fetched.content, fetched.url)
        with self.registry.changing() as registry:
            if url in registry.feeds:
                raise BadInput(f"The feed at {url} is already followed, as '{registry.feeds[url].name}'.")
            wanted = (name or feed.title or urlsplit(url).hostname or url).strip()[:80]
            taken = {f.name for f in registry.feeds.values()}
            chosen = (
                wanted
                if wanted not in taken
                else next(f"{wanted} ({i})" for i in range(2, 10_000) if f"{wanted} ({i})" not in taken)
            )
            if name is not None and chosen != wanted:
                raise BadInput(f"A feed named '{wanted}' is already followed; choose another name.")
            record = FeedRecord(url=url, name=chosen, since=now_text(), title=feed.title)
            registry.feeds[url] = record
        return record

    def remove_feed(self, key: str) -> FeedRecord:
        """Stop following a feed (by name or URL). The articles it brought stay in the index."""
        with self.registry.changing() as registry:
            record = registry.find(key)
            del registry.feeds[record.url]
            for page in registry.pages.values():
                page.stamps.pop(record.url, None)
            registry.forget_old_pages()
        return record

    def refresh(self, keys: Iterable[str] = (), force: bool = False) -> list[FeedOutcome]:
        """One pass over the feeds (or those named): new and changed articles are fetched and ingested.
        ``force`` ignores a failing feed's back-off. Another process refreshing now makes this pass a no-op."""
        with self.locks.refreshing() as free:
            registry = self.registry.read()
            chosen = [registry.find(k) for k in keys] if keys else list(registry.feeds.values())
            if not free:
                reason = "another process is refreshing the feeds now"
                return [FeedOutcome(f.name, f.url, "skipped", error=reason) for f in chosen]
            with self._client() as client:
                return [self._refresh_one(client, feed.url, force) for feed in chosen]

    def _refresh_one(self, client: PoliteClient, url: str, force: bool) -> FeedOutcome:
        feed = self.registry.read().feeds.get(url)
        if feed is None:  # removed meanwhile
            return FeedOutcome(url, url, "skipped", error="no longer followed")
        outcome = FeedOutcome(feed.name, url, "unchanged")
        if feed.backing_off() and not force:
            outcome.status, outcome.error = "backing off", feed.last_error
            return outcome
        try:
            fetched = client.get(url, accept=FEED_TYPES, etag=feed.etag, last_modified=feed.last_modified)
            parsed = None if fetched.status == 304 else parse_feed(fetched.content, fetched.url)
        except FETCH_ERRORS as e:
            with self._feed(url) as (record, _):
                record.last_refresh = now_text()
                record.failed(str(e))
            outcome.status, outcome.error = "failed", str(e)
            return outcome
        if parsed is None:
            outcome.status = "not modified"
            with self._feed(url) as (record, _):
                record.last_refresh = now_text()
                record.succeeded()
            return outcome

        outcome.entries = len(parsed.entries)
        known = self.registry.read().pages
        fresh: list[tuple[str, PageRecord, Article | None]] = []
        for entry in parsed.entries:
            key = normalize(entry.link)  # links with tracking parameters, or from another feed, are one page
            page = known.get(key)
            if page is not None and page.stamps.get(url) == entry.stamp and page.article_id:
                fresh.append((key, page, None))  # this feed's entry is unchanged: not fetched
                continue
            page = replace(page, stamps=dict(page.stamps)) if page else PageRecord()
            outcome.fetched += 1
            try:
                response, article = self.fetch_article(client, entry.link, page.etag, page.last_modified)
            except FETCH_ERRORS as e:
                outcome.report.skipped.append(Skipped(entry.link, _reason(e, entry.link)))
                continue
            if article is None and response.status != 304:
                outcome.report.skipped.append(Skipped(entry.link, "the page holds no article text"))
                continue
            page.stamps[url] = entry.stamp
            if response.status == 304:
                outcome.report.unchanged += 1
            else:
                page.etag, page.last_modified = response.etag, response.last_modified
            if article is not None:
                if not article.published and entry.published:
                    article = replace(article, published=entry.published)
                page.article_id = article.id
            fresh.append((key, page, article))

        articles = _one_per_id([a for _, _, a in fresh if a is not None])
        if articles:
            self.ingester.ingest_articles(articles, outcome.report)
        outcome.status = "updated" if outcome.report.added + outcome.report.updated else "unchanged"
        with self._feed(url) as (record, registry):
            record.last_refresh = now_text()
            record.etag, record.last_modified = fetched.etag, fetched.last_modified
            record.title = parsed.title or record.title
            record.succeeded()
            for key, page, _ in fresh:
                held = registry.pages.get(key)  # another feed's refresh may have added its stamp meanwhile
                page.stamps = {**(held.stamps if held else {}), url: page.stamps.get(url, "")}
                page.seen = time.time()
                registry.pages[key] = page
            registry.forget_old_pages()
        return outcome

    @contextlib.contextmanager
    def _feed(self, url: str) -> Iterator[tuple[FeedRecord, object]]:
        with self.registry.changing() as registry:
            record = registry.feeds.get(url) or FeedRecord(url=url, name=url)
            yield record, registry
            if url in registry.feeds:
                registry.feeds[url] = record


def _reason(error: Exception, url: str) -> str:
    """The error's message without the URL it is listed under (a redirect's target stays)."""
    return str(error).removeprefix(f"{url}: ")


def _is_web_url(url: str) -> bool:
    try:
        parse_url(url)
    except FetchRefused:
        return False
    return True


def _one_per_id(articles: Iterable[Article]) -> list[Article]:
    """The last article for each id: two links to one canonical URL make one article."""
    return list({a.id: a for a in articles}.values())


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def split_locations(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """(URLs, paths) among what a user gave `rag ingest`: anything that starts with a scheme is a URL (and only
    http and https are then fetched)."""
    urls, paths = [], []
    for item in items:
        (urls if _SCHEME.match(str(item)) else paths).append(str(item))
    return urls, paths
