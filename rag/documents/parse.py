"""Files and records -> Articles: cleaning, title, date and source metadata.

Every reader returns Articles or Skipped entries with a one-line reason (and Warned entries for what was
ingested with a caveat); nothing here raises on bad input, so one bad file never aborts a batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from rag.documents.sources import RECORD_ORIGIN, Source, iter_sources, record_article_id
from rag.language.grammar import parse_date
from rag.language.lexicon import CHROME_LINES
from rag.types import Article, Skipped, Warned

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl"}


def content_hash(*parts: str | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update((p or "").encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def normalize_text(text: str) -> str:
    """Unicode NFC, Unix newlines, no trailing spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\ufeff", "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _is_chrome(line: str) -> bool:
    return line.strip().lower().rstrip(".:!") in CHROME_LINES


def article_from_plain_text(raw: str, article_id: str, source: str | None = None) -> Article | None:
    """A plain-text news page: optional dateline, headline line, body. Site chrome is dropped."""
    lines = normalize_text(raw).split("\n")
    published = None
    title = ""
    body: list[str] = []
    for line in lines:
        if not line.strip():
            body.append("")
            continue
        if _is_chrome(line):
            continue
        if not title and published is None and (d := parse_date(line)):
            published = d
            continue
        if not title:
            title = line.strip().lstrip("#").strip()
            continue
        body.append(line)
    text = normalize_text("\n".join(body))
    if not text and title:
        text, title = title, title[:80]
    if not text:
        return None
    return make_article(article_id, title, text, source=source, published=published)


def make_article(
    article_id: str,
    title: str,
    text: str,
    source: str | None = None,
    url: str | None = None,
    published: str | None = None,
) -> Article:
    title = normalize_text(title or "").replace("\n", " ")
    text = normalize_text(text)
    return Article(
        id=article_id,
        title=title or text[:80],
        text=text,
        source=source or None,
        url=url or None,
        published=published,
        content_hash=content_hash(title, text, source, url, published),
    )


FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def article_from_markdown(raw: str, article_id: str) -> tuple[Article | None, str | None]:
    """The article, and the date its front matter gave (to report one that could not be read)."""
    raw = normalize_text(raw)
    meta: dict[str, str] = {}
    m = FRONT_MATTER.match(raw + "\n")
    if m:
        for line in m[1].split("\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                meta[k.strip().lower()] = v.strip().strip("'\"")
        raw = raw[m.end() :]
    title = meta.get("title", "")
    out: list[str] = []
    for line in raw.split("\n"):
        h = re.match(r"^#{1,6}\s+(.*)$", line)
        if h and not title:
            title = h[1].strip()
            continue
        line = h[1] if h else line
        line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)  # images carry no text
        line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # keep link text, drop the target
        line = re.sub(r"(\*\*|__|`)", "", line)
        if _is_chrome(line):
            continue
        out.append(line)
    text = normalize_text("\n".join(out))
    given = meta.get("published") or meta.get("date")
    if not text:
        return None, given
    return make_article(
        article_id, title, text, source=meta.get("source"), url=meta.get("url"), published=parse_date(given)
    ), given


class _TextOnly(HTMLParser):
    """Fallback HTML to text: drops script, style and navigation; keeps block structure."""

    SKIP = {"script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg", "template", "iframe"}
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "tr", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self.depth:
            self.parts.append(data)


def article_from_html(raw: str, article_id: str, url: str | None = None) -> Article | None:
    """The main text of a page and its metadata (title, date, site name, canonical URL), by trafilatura; the
    page's ``url``, when it was fetched, helps it."""
    import trafilatura  # imported here: it is slow to import and only HTML needs it

    text = trafilatura.extract(raw, url=url, include_comments=False, include_tables=False, favor_precision=True)
    meta = trafilatura.extract_metadata(raw, default_url=url)
    title = (meta.title if meta else None) or ""
    published = parse_date(meta.date) if meta and meta.date else None
    url = meta.url if meta else None
    source = (meta.sitename if meta else None) or None
    if not text or len(text.strip()) < 40:
        parser = _TextOnly()
        parser.feed(raw)
        text = "".join(parser.parts)
        title = title or parser.title
    text = normalize_text(html.unescape(text or ""))
    text = "\n".join(line for line in text.split("\n") if not _is_chrome(line))
    if not normalize_text(text):
        return None
    return make_article(article_id, title, text, source=source, url=url, published=published)


PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


def article_from_page(content: bytes, media_type: str, charset: str | None, url: str) -> Article | None:
    """A fetched page as an article (its id still to be given), or None when it holds no text. The charset the
    server named wins; then a byte-order mark or UTF-8; then the page's own <meta charset>; then Windows-1252,
    which decodes any bytes."""
    raw = None
    if charset:
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            raw = content.decode(charset)
    raw = raw if raw is not None else _decode(content)
    if raw is None:
        declared = _META_CHARSET.search(content[:4096])
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            raw = content.decode(declared.group(1).decode("ascii")) if declared else None
    if raw is None:
        raw = content.decode("cp1252", "replace")
    if media_type == "text/plain":
        return article_from_plain_text(raw, "")
    return article_from_html(raw, "", url=url)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]{1,40})""", re.I)


def article_from_record(rec: object, fallback_id: str) -> Article | str:
    """A JSON record {id, title, text, source, url, published} -> Article, or the reason it is unusable."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    for field in ("id", "title", "text", "source", "url", "published"):
        value = rec.get(field)
        if isinstance(value, str) and not _is_unicode(value):
            return f"field '{field}' holds an unpaired surrogate (a \\ud800-style escape), which is not text"
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        return "record has no non-empty 'text' field"
    rid = rec.get("id")
    article_id = record_article_id(str(rid)) if rid not in (None, "") else fallback_id
    title = rec.get("title") if isinstance(rec.get("title"), str) else ""
    published = parse_date(rec.get("published"))
    return make_article(
        article_id,
        title or "",
        text,
        source=_opt_str(rec.get("source")),
        url=_opt_str(rec.get("url")),
        published=published,
    )


def load_json(raw: str | bytes) -> tuple[object, str | None]:
    """Parsed JSON, or None and the reason it cannot be read: malformed, not UTF-8, or nested deeper than
    Python's parser recurses (a hostile body of 100,000 brackets)."""
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as e:
        return None, f"malformed JSON at line {e.lineno}: {e.msg}"
    except UnicodeDecodeError as e:
        return None, f"the JSON is not UTF-8 ({e.reason})"
    except RecursionError:
        return None, "the JSON is nested too deeply to read"


def _is_unicode(value: str) -> bool:
    """Whether ``value`` can be stored: JSON can escape lone UTF-16 surrogates, which no UTF-8 file holds."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _opt_str(v: object) -> str | None:
    return str(v) if v not in (None, "") else None


def _decode(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _looks_binary(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return b"\x00" in data[:8192]


def read_paths(
    paths: Iterable[str | Path], max_bytes: int = 20_000_000, exclude: Iterable[Path] = ()
) -> Iterator[Article | Skipped | Warned]:
    """Every file under ``paths`` -> Articles, with a Skipped entry for each file or record not ingested."""
    for src in iter_sources(paths, exclude):
        yield from (read_source(src, max_bytes) if isinstance(src, Source) else [src])


def read_path(path: str | Path, max_bytes: int = 20_000_000) -> Iterator[Article | Skipped | Warned]:
    yield from read_paths([path], max_bytes)


def read_source(src: Source, max_bytes: int = 20_000_000) -> Iterator[Article | Skipped | Warned]:
    """One file -> its Articles (a .jsonl gives many), or Skipped entries with reasons."""
    name, ext = str(src.path), src.path.suffix.lower()
    if ext not in SUPPORTED:
        yield Skipped(name, f"unsupported extension '{ext or '(none)'}'; use one of {', '.join(sorted(SUPPORTED))}")
        return
    try:
        size = src.path.stat().st_size
        if size > max_bytes:
            yield Skipped(name, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES)")
            return
        with open(src.path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        yield Skipped(name, f"cannot read: {e.strerror or e}")
        return
    if not data:
        yield Skipped(name, "empty file")
        return
    if len(data) > max_bytes:
        yield Skipped(name, f"file grew past the {max_bytes:,}-byte limit (RAG_MAX_FILE_BYTES) while being read")
        return
    yield from read_bytes(data, name, ext, src.article_id, src.origin)


def read_bytes(data: bytes, name: str, ext: str, file_id: str, origin: str) -> Iterator[Article | Skipped | Warned]:
    """The bytes of one file named ``name`` -> its Articles; ``file_id`` and ``origin`` identify the file."""
    if _looks_binary(data):
        yield Skipped(name, "binary file (contains NUL bytes), not text")
        return
    raw = _decode(data)
    if raw is None:
        yield Skipped(name, "not valid UTF-8 (or UTF-16 with a byte-order mark); convert it to UTF-8 and ingest again")
        return
    if not raw.strip():
        yield Skipped(name, "file has only whitespace")
        return
    if ext == ".jsonl":
        yield from _read_jsonl(raw, name, file_id, origin)
        return
    if ext == ".json":
        obj, problem = load_json(raw)
        if problem:
            yield Skipped(name, problem)
            return
        records = obj if isinstance(obj, list) else [obj]
        for i, rec in enumerate(records):
            where = f"{name}[{i}]"
            yield from _record(rec, f"{file_id}-{i}" if len(records) > 1 else file_id, where, f"{origin}[{i}]")
        return
    try:
        if ext in (".md", ".markdown"):
            art, given_date = article_from_markdown(raw, file_id)
        elif ext in (".html", ".htm"):
            art, given_date = article_from_html(raw, file_id), None
        else:
            art, given_date = article_from_plain_text(raw, file_id), None
    except Exception as e:  # a parser bug on one odd file must not stop the batch
        yield Skipped(name, f"could not parse: {type(e).__name__}: {e}")
        return
    if art is None:
        yield Skipped(name, "no article text found after cleaning")
        return
    yield replace(art, origin=origin)
    if given_date and not art.published:
        yield Warned(name, f"published date '{given_date}' is not a date this reads (use YYYY-MM-DD); stored undated")


def _record(rec: object, fallback_id: str, where: str, origin: str) -> Iterator[Article | Skipped | Warned]:
    got = article_from_record(rec, fallback_id)
    if not isinstance(got, Article):
        yield Skipped(where, got)
        return
    has_id = isinstance(rec, dict) and rec.get("id") not in (None, "")
    yield replace(got, origin=RECORD_ORIGIN if has_id else origin)
    given = rec.get("published") if isinstance(rec, dict) else None
    if given not in (None, "") and not got.published:
        yield Warned(where, f"published date {given!r} is not a date this reads (use YYYY-MM-DD); stored undated")


def _read_jsonl(raw: str, name: str, file_id: str, origin: str) -> Iterator[Article | Skipped | Warned]:
    for lineno, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        rec, problem = load_json(line)
        if problem:
            yield Skipped(f"{name}:{lineno}", problem)
            continue
        yield from _record(rec, f"{file_id}-{lineno}", f"{name}:{lineno}", f"{origin}:{lineno}")
