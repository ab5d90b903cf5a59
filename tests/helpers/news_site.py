"""A news site on loopback, for the fetching tests: real articles rendered as pages with the furniture of a real
site around them (navigation, a cookie banner, a byline, a dateline, share buttons, related stories, a
newsletter box, a footer, scripts and styles), RSS 2.0 and Atom feeds that list them, robots.txt, and pages
that misbehave on purpose. It answers conditional requests (ETag, Last-Modified) and logs every request."""

from __future__ import annotations

import contextlib
import hashlib
import html
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Lines a reader of the page sees that are not the article: extraction must drop them.
FURNITURE = [
    "Home",
    "World",
    "Business",
    "Politics",
    "Sign in to your account",
    "We use cookies to improve your experience. Accept all cookies or manage your preferences.",
    "Share this story on Facebook",
    "Share this story on X",
    "Most read this week",
    "Sign up for the Morning Briefing newsletter and get the day's top stories in your inbox.",
    "Advertisement",
    "Copyright 2026 The Loopback Ledger. All rights reserved.",
    "Terms of use and privacy policy",
]


@dataclass
class Page:
    slug: str
    title: str
    text: str
    published: str  # YYYY-MM-DD
    updated: float = field(default_factory=time.time)
    related: list[str] = field(default_factory=list)  # other articles' titles, in the sidebar


class NewsSite:
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[tuple[str, dict]] = []  # (path with query, headers), in order
        self.failures: dict[str, int] = {}  # path -> how many more requests answer 500
        self.robots = "User-agent: *\nDisallow: /private/\n"
        self.timeout_seconds = 3.0  # how long /slow.html stays silent
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 -- the http.server API
                with site._lock:
                    site.requests.append((self.path, dict(self.headers)))
                site.answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NewsSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content -------------------------------------------------------------------------------------
    def add(self, slug: str, title: str, text: str, published: str) -> str:
        others = [p.title for p in list(self.pages.values())[-3:]]
        self.pages[slug] = Page(slug, title, text, published, related=others)
        return f"{self.url}/news/{slug}.html"

    def update(self, slug: str, text: str) -> None:
        page = self.pages[slug]
        page.text, page.updated = text, time.time() + 1

    def requested(self, prefix: str) -> list[tuple[str, dict]]:
        with self._lock:
            return [(p, h) for p, h in self.requests if p.startswith(prefix)]

    def render(self, page: Page) -> str:
        paragraphs = "\n".join(f"<p>{html.escape(p)}</p>" for p in page.text.split("\n") if p.strip())
        nav = "".join(f'<li><a href="/section/{x.lower()}">{x}</a></li>' for x in FURNITURE[:4])
        related = "".join(
            f'<li><a href="/news/r{i}.html">{html.escape(t)}</a></li>' for i, t in enumerate(page.related)
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(page.title)} | The Loopback Ledger</title>
<link rel="canonical" href="{self.url}/news/{page.slug}.html">
<meta property="og:title" content="{html.escape(page.title)}">
<meta property="og:site_name" content="The Loopback Ledger">
<meta property="article:published_time" content="{page.published}T09:30:00Z">
<style>body {{ font-family: serif; }} .cookie {{ position: fixed; }}</style>
<script>window.dataLayer = window.dataLayer || []; function track() {{ return "analytics"; }}</script>
</head><body>
<div class="cookie-banner" id="cookie-consent"><p>{FURNITURE[5]}</p><button>Accept</button></div>
<header><nav><ul>{nav}</ul></nav><a href="/login">{FURNITURE[4]}</a></header>
<main><article>
<h1>{html.escape(page.title)}</h1>
<div class="byline">By Jordan Reyes, Staff Writer</div>
<time datetime="{page.published}">Published {page.published}</time>
<div class="share"><a href="#fb">{FURNITURE[6]}</a> <a href="#x">{FURNITURE[7]}</a></div>
{paragraphs}
<aside class="ad">{FURNITURE[10]}</aside>
</article>
<aside class="related"><h2>{FURNITURE[8]}</h2><ul>{related}</ul></aside>
<section class="newsletter"><p>{FURNITURE[9]}</p><form><input type="email"><button>Sign up</button></form></section>
</main>
<footer><p>{FURNITURE[11]}</p><a href="/terms">{FURNITURE[12]}</a></footer>
<script src="/static/app.js"></script>
</body></html>"""

    def rss(self, query: str = "") -> str:
        items = "".join(
            f"<item><title>{html.escape(p.title)}</title><link>{self.url}/news/{p.slug}.html{query}</link>"
            f"<guid>{p.slug}</guid><pubDate>{formatdate(p.updated, usegmt=True)}</pubDate></item>"
            for p in self.pages.values()
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>The Loopback Ledger</title>'
            f"<link>{self.url}/</link><description>Top stories</description>{items}</channel></rss>"
        )

    def atom(self) -> str:
        """Atom with relative links, resolved against the feed's own URL."""
        entries = "".join(
            f'<entry><title>{html.escape(p.title)}</title><link href="../news/{p.slug}.html?utm_source=atom"/>'
            f"<id>urn:ledger:{p.slug}</id><updated>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(p.updated))}"
            "</updated></entry>"
            for p in self.pages.values()
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>The Loopback Ledger (Atom)</title><id>urn:ledger</id><updated>2026-01-01T00:00:00Z</updated>"
            f"{entries}</feed>"
        )

    # -- answering -----------------------------------------------------------------------------------
    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        with self._lock:
            failing = self.failures.get(path, 0)
            if failing:
                self.failures[path] = failing - 1
        if failing:
            return self.send(h, 500, "text/plain", b"server error")
        if path == "/robots.txt":
            return self.send(h, 200, "text/plain", self.robots.encode())
        if path.startswith("/news/") and path.endswith(".html") and path[6:-5] in self.pages:
            page = self.pages[path[6:-5]]
            return self.send(h, 200, "text/html; charset=utf-8", self.render(page).encode(), page.updated)
        if path == "/feeds/main.rss":
            return self.send(h, 200, "application/rss+xml", self.rss().encode(), self.newest())
        if path == "/feeds/tracked.rss":  # the same items, reached with tracking parameters
            return self.send(h, 200, "application/rss+xml", self.rss("?utm_source=rss&utm_medium=feed").encode())
        if path == "/feeds/all.atom":
            return self.send(h, 200, "application/atom+xml", self.atom().encode(), self.newest())
        if path == "/private/secret.html":
            return self.send(h, 200, "text/html", b"<p>robots.txt forbids this page</p>")
        if path == "/slow.html":
            time.sleep(self.timeout_seconds)
            return self.send(h, 200, "text/html", b"<p>late</p>")
        if path in ("/loop/a", "/loop/b"):
            h.send_response(302)
            h.send_header("Location", "/loop/b" if path == "/loop/a" else "/loop/a")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if path == "/moved.html":
            h.send_response(301)
            h.send_header("Location", f"/news/{next(iter(self.pages))}.html")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if path == "/to-private":  # a redirect into another address of this machine
            h.send_response(302)
            h.send_header(
                "Location", f"http://127.0.0.2:{self.server.server_address[1]}/news/{next(iter(self.pages))}.html"
            )
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if path == "/huge.html":
            return self.send(h, 200, "text/html", b"<p>" + b"news " * 3_000_000 + b"</p>")
        if path == "/doc.pdf":
            return self.send(h, 200, "application/pdf", b"%PDF-1.7 not a web page")
        if path == "/not-a-feed.xml":
            return self.send(h, 200, "application/xml", b"<html><body>no feed here</body></html>")
        return self.send(h, 404, "text/plain", b"not found")

    def newest(self) -> float:
        return max((p.updated for p in self.pages.values()), default=0.0)

    @staticmethod
    def send(h, status: int, ctype: str, body: bytes, modified: float | None = None) -> None:
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if status == 200 and h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        if status == 200:
            h.send_header("ETag", etag)
            if modified:
                h.send_header("Last-Modified", formatdate(modified, usegmt=True))
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(body)
