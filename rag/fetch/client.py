"""A polite, bounded HTTP client for articles and feeds: the one module that fetches from the web (with httpx).

- Bounded: a connect and a read timeout, a deadline for the whole response (a server that trickles bytes is cut
  off), a size limit, and at most `MAX_REDIRECTS` redirects, each checked like the first URL (`rag.fetch.urls`).
- Polite: a User-Agent that names the project; robots.txt honoured (RFC 9309: a 4xx robots.txt allows
  everything, a 5xx or unreachable one nothing), with its Crawl-delay; and a delay between two requests to one
  host. Conditional requests (ETag, Last-Modified) make an unchanged page or feed cost a 304.
- The address checked is the address connected to; TLS still verifies the certificate for the host's name.
"""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

import httpx

from rag.errors import RagError
from rag.fetch.urls import FetchRefused, Target, check_url

USER_AGENT = "rag-news/0.1 (grounded question answering over news; respects robots.txt)"
ROBOTS_AGENT = "rag-news"  # the token robots.txt rules name
MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 512_000
ROBOTS_TTL = 3600.0  # seconds a host's robots.txt is trusted before it is fetched again
MAX_CRAWL_DELAY = 30.0  # seconds: a longer Crawl-delay is honoured as this, so one site cannot stall a refresh


class FetchFailed(RagError):
    """A URL that was allowed but could not be fetched as asked: an HTTP error, a timeout, too large, too many
    redirects, robots.txt, or not the kind of content asked for. The message names the URL and the reason."""

    status_code = 502


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int  # 200, or 304 when the conditional request found it unchanged
    content: bytes
    media_type: str  # "text/html", lower case, without parameters
    charset: str | None
    etag: str | None
    last_modified: str | None


class PoliteClient:
    def __init__(
        self,
        allow_private: bool = False,
        timeout: float = 20.0,
        max_bytes: int = 5_000_000,
        host_delay: float = 1.0,
        user_agent: str = USER_AGENT,
        robots: bool = True,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.host_delay = host_delay
        self.robots = robots
        # No proxies or .netrc from the environment: the address checked must be the one connected to.
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": user_agent},
        )
        self._last: dict[str, float] = {}  # host -> monotonic time of its last request
        self._rules: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(
        self,
        url: str,
        accept: tuple[str, ...] = (),
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """GET ``url``, following redirects; FetchRefused (a URL not allowed) or FetchFailed say why not.
        ``accept``: the media types wanted (others fail); the validators make a conditional request."""
        for _ in range(MAX_REDIRECTS + 1):
            target = check_url(url, self.allow_private)
            delay = self._check_robots(target) if self.robots else 0.0
            response, content = self._send(target, etag, last_modified, self.max_bytes, delay)
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            return self._result(url, response, content, accept)
        raise FetchFailed(f"{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?).")

    # -- one request ---------------------------------------------------------------------------------
    def _send(
        self, target: Target, etag: str | None, last_modified: str | None, limit: int, delay: float = 0.0
    ) -> tuple[httpx.Response, bytes]:
        self._wait_turn(target.host, delay)
        url = httpx.URL(target.url)
        headers = {"Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        extensions = {}
        if target.address:  # connect to the checked address; Host and TLS keep the name
            headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = target.host
            url = url.copy_with(host=target.address)
        request = self._http.build_request("GET", url, headers=headers, extensions=extensions)
        deadline = time.monotonic() + 2 * self.timeout
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise FetchFailed(f"{target.url}: no answer within {self.timeout:g} s.") from None
        except httpx.HTTPError as e:
            raise FetchFailed(f"{target.url}: could not connect ({type(e).__name__}: {e}).") from None
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchFailed(
                    f"{target.url}: {int(declared):,} bytes; the limit is {limit:,} (RAG_FETCH_MAX_BYTES)."
                )
            body = bytearray()
            for piece in response.iter_bytes():
                body += piece
                if len(body) > limit:
                    raise FetchFailed(f"{target.url}: more than {limit:,} bytes (RAG_FETCH_MAX_BYTES).")
                if time.monotonic() > deadline:
                    raise FetchFailed(f"{target.url}: still sending after {2 * self.timeout:g} s.")
        except httpx.TimeoutException:
            raise FetchFailed(f"{target.url}: stopped answering for {self.timeout:g} s.") from None
        except httpx.HTTPError as e:
            raise FetchFailed(f"{target.url}: the response broke off ({type(e).__name__}: {e}).") from None
        finally:
            response.close()
        return response, bytes(body)

    def _result(self, url: str, response: httpx.Response, content: bytes, accept: tuple[str, ...]) -> Fetched:
        status = response.status_code
        header = Message()
        header["content-type"] = response.headers.get("content-type", "")
        media_type = header.get_content_type() if response.headers.get("content-type") else ""
        fetched = Fetched(
            url=url,
            status=status,
            content=content,
            media_type=media_type,
            charset=header.get_param("charset") if isinstance(header.get_param("charset"), str) else None,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )
        if status == 304:
            return fetched
        if not 200 <= status < 300:
            reason = response.reason_phrase or ""
            raise FetchFailed(f"{url}: the server answered HTTP {status} {reason}".rstrip() + ".")
        if accept and media_type not in accept:
            raise FetchFailed(f"{url}: the server sent {media_type or 'no content type'}, not {' or '.join(accept)}.")
        return fetched

    # -- politeness ----------------------------------------------------------------------------------
    def _wait_turn(self, host: str, delay: float = 0.0) -> None:
        """Wait until this host's last request is ``host_delay`` (or its Crawl-delay) seconds old."""
        with self._lock:
            gap = max(self.host_delay, delay)
            now = time.monotonic()
            start = max(now, self._last.get(host, -1e9) + gap)
            self._last[host] = start
        if start > now:
            time.sleep(start - now)

    def _check_robots(self, target: Target) -> float:
        """FetchFailed unless the site's robots.txt allows ``target``; its Crawl-delay for us, or 0."""
        parts = urlsplit(target.url)
        key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._lock:
            cached = self._rules.get(key)
        if cached is None or time.monotonic() - cached[0] > ROBOTS_TTL:
            cached = (time.monotonic(), *self._read_robots(key))
            with self._lock:
                self._rules[key] = cached
        _, rules, why = cached
        if rules is None:
            raise FetchFailed(f"{target.url}: {why}")
        if not rules.can_fetch(ROBOTS_AGENT, target.url):
            raise FetchFailed(f"{target.url}: the site's robots.txt does not allow fetching it.")
        return min(MAX_CRAWL_DELAY, float(rules.crawl_delay(ROBOTS_AGENT) or 0.0))

    def _read_robots(self, origin: str) -> tuple[urllib.robotparser.RobotFileParser | None, str]:
        rules = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            target = check_url(origin + "/robots.txt", self.allow_private)
            url = target.url
            for _ in range(MAX_REDIRECTS + 1):
                response, content = self._send(target, None, None, ROBOTS_MAX_BYTES)
                if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    target = check_url(url, self.allow_private)
                    continue
                break
        except (FetchFailed, FetchRefused) as e:
            return None, f"its site's robots.txt could not be read ({e}), so nothing there is fetched."
        if 400 <= response.status_code < 500:
            rules.allow_all = True
        elif response.status_code >= 500:
            return None, f"its site's robots.txt answered HTTP {response.status_code}, so nothing there is fetched."
        else:
            rules.parse(content.decode("utf-8", "replace").splitlines())
        return rules, ""
