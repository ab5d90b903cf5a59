"""Which URLs may be fetched, and what an article fetched from one is called.

No server-side request forgery: only `http` and `https`, no credentials in the URL, and every address a host
name resolves to must be a public one: never loopback, private, link-local (cloud metadata services live at
169.254.169.254), shared (100.64/10), multicast or reserved, unless `RAG_FETCH_ALLOW_PRIVATE` allows them. The
address that was checked is the one connected to (`Target.address`), so a name that resolves differently a
moment later cannot slip past the check. Redirects are checked the same way, hop by hop, by the client.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.documents.sources import slug
from rag.errors import BadInput

SCHEMES = ("http", "https")
MAX_URL_CHARS = 2048
# Query parameters that only say where a reader came from: one article, whatever the campaign.
TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid", "smid", "ref_src")


class FetchRefused(BadInput):
    """A URL this process will not fetch: its scheme, its form, or an address it resolves to."""


@dataclass(frozen=True)
class Target:
    """A URL cleared for fetching: the host it names, and the address checked for it (None when private
    addresses are allowed and the system resolver is left to choose)."""

    url: str
    host: str
    port: int
    address: str | None


def parse_url(url: object) -> tuple[str, str, int]:
    """(url, host, port) for an absolute http(s) URL without credentials; FetchRefused otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise FetchRefused("Give an absolute http:// or https:// URL.")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise FetchRefused(f"The URL is {len(url):,} characters long; the limit is {MAX_URL_CHARS:,}.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise FetchRefused(f"'{url[:200]}' is not a valid URL ({e}).") from None
    if parts.scheme.lower() not in SCHEMES:
        raise FetchRefused(f"'{url[:200]}': only http:// and https:// URLs are fetched.")
    if not parts.hostname:
        raise FetchRefused(f"'{url[:200]}' names no host.")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(f"'{parts.hostname}': URLs with a user name or password are not fetched.")
    return url, parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def check_url(url: object, allow_private: bool = False) -> Target:
    """The URL cleared for fetching, with the public address to connect to; FetchRefused says why not."""
    url, host, port = parse_url(url)
    if allow_private:
        return Target(url, host, port, None)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise FetchRefused(f"'{host}' could not be resolved ({e}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        problem = private_reason(address)
        if problem:
            raise FetchRefused(
                f"'{host}' resolves to {address}, {problem}: not fetched, to keep requests inside the public "
                "internet. Set RAG_FETCH_ALLOW_PRIVATE=true to fetch from your own network."
            )
    if not addresses:
        raise FetchRefused(f"'{host}' resolves to no address.")
    return Target(url, host, port, addresses[0])


def private_reason(address: str) -> str | None:
    """Why ``address`` is not a public internet address (None when it is)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, test in (
        ("an unspecified address", ip.is_unspecified),
        ("a loopback address", ip.is_loopback),
        ("a link-local address (where cloud metadata services answer)", ip.is_link_local),
        ("a private address", ip.is_private),
        ("a multicast address", ip.is_multicast),
        ("a reserved address", ip.is_reserved),
    ):
        if test:
            return kind
    return None if ip.is_global else "not a public address"


def normalize(url: str) -> str:
    """The form an article's URL is compared and named in: lower-case scheme and host, no default port, no
    fragment, and no tracking parameters."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, 80 if scheme == "http" else 443) else f"{host}:{port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(TRACKING)]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def url_article_id(url: str) -> str:
    """`https://www.example.com/2023/06/01/story.html` -> `example.com-2023-06-01-story-<10 hex>`: readable,
    stable for the article's canonical URL, and distinct for distinct URLs."""
    clean = normalize(url)
    parts = urlsplit(clean)
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path.strip("/")
    path = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    digest = hashlib.sha256(clean.encode("utf-8")).hexdigest()[:10]
    return f"{slug(host + '-' + path.replace('/', '-'))}-{digest}"


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site: the same host, or one a subdomain of the other. A page may name its
    canonical URL only on its own site, so a page elsewhere cannot take over another site's article."""
    ha, hb = (urlsplit(u).hostname or "" for u in (a, b))
    ha, hb = ha.removeprefix("www."), hb.removeprefix("www.")
    return bool(ha) and (ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha))
