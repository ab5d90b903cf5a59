"""RSS 2.0 and Atom feeds, read with feedparser (the one module that imports it): the entries' links, resolved
against the feed's own URL, with what tells a changed entry from one already read."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urljoin

from rag.fetch.client import FetchFailed

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/x-rss+xml",
)


@dataclass(frozen=True)
class FeedEntry:
    link: str  # absolute
    title: str
    stamp: str  # the entry's updated (else published) time and id: a new stamp means the article may have changed
    published: str | None  # YYYY-MM-DD


@dataclass(frozen=True)
class Feed:
    title: str
    entries: list[FeedEntry]


def parse_feed(content: bytes, url: str) -> Feed:
    """The feed in ``content`` (fetched from ``url``); FetchFailed when it is not RSS or Atom."""
    import feedparser

    parsed = feedparser.parse(content, response_headers={"content-location": url})
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise FetchFailed(f"{url}: not an RSS or Atom feed" + (f" ({problem})." if problem else "."))
    entries = []
    for e in parsed.entries:
        link = e.get("link") or next((x.get("href") for x in e.get("links", []) if x.get("href")), None)
        if not link:
            continue
        when = e.get("updated_parsed") or e.get("published_parsed")
        published = e.get("published_parsed") or e.get("updated_parsed")
        entries.append(
            FeedEntry(
                link=urljoin(url, link.strip()),
                title=str(e.get("title") or "").strip(),
                stamp=f"{time.strftime('%Y-%m-%dT%H:%M:%S', when) if when else ''} {e.get('id') or ''}".strip(),
                published=time.strftime("%Y-%m-%d", published) if published else None,
            )
        )
    return Feed(title=str(parsed.feed.get("title") or "").strip(), entries=entries)
