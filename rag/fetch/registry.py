"""The feeds an index follows, and what each refresh found, in `feeds.json` beside the index.

Per feed: its name and URL, the validators of its last response (for a conditional request), when it was last
refreshed and last succeeded, its last error, and how long to back off after failures. Per article page read from
a feed: the article it became, the entry's stamp and the page's validators, so an unchanged entry costs nothing
and a changed one a conditional request. Every change is a read-modify-write under a lock, written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rag.errors import BadInput, NotFound

BACKOFF_BASE = 300.0  # seconds after the first failure; doubled for each failure after it
BACKOFF_MAX = 86_400.0
PAGE_MEMORY = 60 * 86_400.0  # seconds a page no feed lists any more is remembered


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


@dataclass
class FeedRecord:
    url: str
    name: str
    since: str = ""  # when it was first followed
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    last_refresh: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0  # epoch seconds before which a refresh skips this feed
    articles: int = 0  # distinct articles it brought

    def backing_off(self) -> bool:
        return self.retry_at > time.time()

    def failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        self.retry_at = time.time() + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.last_error, self.retry_at = 0, None, 0.0
        self.last_success = now_text()

    def to_public(self) -> dict:
        """What a user sees (`rag feeds list`, the Sources page, the API): no validators."""
        d = {k: v for k, v in asdict(self).items() if k not in ("etag", "last_modified", "retry_at")}
        d["retry_after"] = (
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.retry_at)) if self.backing_off() else None
        )
        return d


@dataclass
class PageRecord:
    article_id: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    stamps: dict[str, str] = field(default_factory=dict)  # feed URL -> the stamp of its entry for this page
    seen: float = 0.0  # epoch seconds a feed last listed it


@dataclass
class Registry:
    feeds: dict[str, FeedRecord] = field(default_factory=dict)  # by URL
    pages: dict[str, PageRecord] = field(default_factory=dict)  # by normalized link

    def find(self, key: str) -> FeedRecord:
        """A feed by its name or URL."""
        for feed in self.feeds.values():
            if key in (feed.name, feed.url):
                return feed
        raise NotFound(f"No feed named or at '{key}'; `rag feeds list` shows them.")

    def count_articles(self) -> None:
        for feed in self.feeds.values():
            feed.articles = len({p.article_id for p in self.pages.values() if p.article_id and feed.url in p.stamps})

    def forget_old_pages(self) -> None:
        cutoff = time.time() - PAGE_MEMORY
        self.pages = {k: p for k, p in self.pages.items() if p.seen >= cutoff or any(f in self.feeds for f in p.stamps)}


class RegistryFile:
    def __init__(self, path: Path, lock: Callable[[], contextlib.AbstractContextManager]) -> None:
        self.path = path
        self._lock = lock

    def read(self) -> Registry:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Registry()
        except (OSError, ValueError) as e:
            raise BadInput(f"{self.path} cannot be read ({e}); move it aside to start the feed list afresh.") from None
        known_feed, known_page = {f.name for f in fields(FeedRecord)}, {f.name for f in fields(PageRecord)}
        return Registry(
            feeds={
                u: FeedRecord(**{k: v for k, v in f.items() if k in known_feed})
                for u, f in raw.get("feeds", {}).items()
            },
            pages={
                u: PageRecord(**{k: v for k, v in p.items() if k in known_page})
                for u, p in raw.get("pages", {}).items()
            },
        )

    @contextlib.contextmanager
    def changing(self) -> Iterator[Registry]:
        """The registry to change; written back, atomically, when the block ends without an error."""
        with self._lock():
            registry = self.read()
            yield registry
            registry.count_articles()
            body = {
                "feeds": {u: asdict(f) for u, f in registry.feeds.items()},
                "pages": {u: asdict(p) for u, p in registry.pages.items()},
            }
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
            try:
                tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
