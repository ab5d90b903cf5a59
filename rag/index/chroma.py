"""The one module that imports chromadb: chunks with vectors, and articles with text, in Chroma.

Two collections: `<prefix>-chunks` (one row per chunk: vector, text, offsets) and `<prefix>-articles`
(one row per article: full text, metadata, and the mean of its chunk vectors). The chunk collection's
metadata holds the manifest (model, weights hash, dimension, chunking, schema) and the index state
(committed generation, open write session), so every process and every worker sees the same.

An article's record is written after all its chunks, so an interrupted write leaves chunks without a
record, never a record with missing chunks; readers ignore such chunks and the next writer sweeps them.

Only `rag.index.index` decides when to open, reopen and write; this module just talks to Chroma, and turns
every failure of Chroma's into a StoreError (HTTP 503) that names the store.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag.errors import IndexMismatch, SettingsError, StoreError
from rag.index import scratch
from rag.index.locks import ReadWriteLock
from rag.types import Article, Chunk

MANIFEST_KEYS = ("model_id", "weights_hash", "dimension", "chunk_size", "chunk_overlap", "schema")
# 3: article ids from the path relative to the ingested folder plus a hash, and each article's origin.
# 4: each chunk stores its sentences' vectors; chunk vectors are pooled from them.
SCHEMA_VERSION = 4


@dataclass(frozen=True)
class IndexState:
    """What the store says about its own consistency.

    ``generation`` changes at every commit: derived data (the BM25 index, a process's open view) compares
    it to know it is stale. ``writing`` names an open write session; when no writer holds the lock, it is the
    trace of a writer that died, and the next writer repairs the index before anything else.
    """

    generation: str
    writing: str
    chunks: int


class Connection:
    """The Chroma client for one store, with what every user of it in this process must agree on.

    Chroma caches one embedded client per folder per process: a second PersistentClient on the same folder is
    the same client, stale view included. So every ChromaStore on one folder shares one Connection, and a
    reopen (close, then connect again) is seen by all of them.
    """

    def __init__(self) -> None:
        self.client = None
        self.version = 0  # bumped at every (re)connect: collection handles from an older one are dropped
        self.opened_at: str | None = None  # the committed generation the client was opened at
        self.rw = ReadWriteLock()  # questions read; a reopen writes
        self.sync = threading.RLock()  # one thread at a time decides whether to reopen
        self.breaker: Breaker | None = None  # a server's; an embedded store has no network to fail
        self.copy: Path | None = None  # the private copy opened in place of a store this process cannot write

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if self.copy is not None:
            scratch.remove(self.copy)
            self.copy = None

    def connect(self, path: Path | None, url: str | None, timeout: float, location: str) -> None:
        """Close the client and connect again: an embedded store loads what is on disk now."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.close()
        settings = ChromaSettings(anonymized_telemetry=False)
        with guarded(location, "open", self.breaker):
            if url:
                u = urlparse(url)
                client = chromadb.HttpClient(
                    host=u.hostname,
                    port=u.port or (443 if u.scheme == "https" else 8000),
                    ssl=u.scheme == "https",
                    settings=settings,
                )
                _limit_http_wait(client, timeout)
                client.heartbeat()
            else:
                if path.is_dir() and not scratch.writable(path):
                    # Chroma writes to its database even to read it: read a copy, taken under the caller's lock.
                    self.copy = path = scratch.copy(path, "chroma")
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=settings)
        self.client = client
        self.version += 1


class Breaker:
    """A circuit breaker for a Chroma server. Once a call could not reach it or timed out, the calls that follow
    fail at once for RETRY seconds instead of each waiting out its own timeout in turn behind the store's locks;
    then one call goes through as a probe, and its success closes the breaker."""

    RETRY = 5.0

    def __init__(self) -> None:
        self._until = 0.0  # monotonic time before which calls fail at once; 0 when closed
        self._why = ""
        self._prober: int | None = None  # the thread whose calls probe the server (a reconnect nests several)
        self._lock = threading.Lock()

    def check(self, location: str) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._until or self._prober == threading.get_ident():
                return
            if now >= self._until:  # this thread probes; the others fail fast until it has its verdict
                self._until, self._prober = now + self.RETRY, threading.get_ident()
                return
            wait = self._until - now
        raise StoreError(
            f"The vector store at {location} is not answering ({self._why}); trying again in {math.ceil(wait)} s.",
            retry_after=max(1, math.ceil(wait)),
        )

    def trip(self, error: BaseException) -> None:
        with self._lock:
            self._until, self._prober = time.monotonic() + self.RETRY, None
            self._why = f"{type(error).__name__}: {error}"[:200]

    def reset(self) -> None:
        with self._lock:
            self._until, self._why, self._prober = 0.0, "", None


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the server could not be reached or did not answer in time (not that it refused)."""
    import httpx

    return isinstance(error, httpx.TransportError | TimeoutError | ConnectionError)


@contextlib.contextmanager
def guarded(location: str, action: str, breaker: Breaker | None = None):
    """Any failure of Chroma's, as a StoreError (HTTP 503) that names the store and what failed; with a
    ``breaker``, a server that could not be reached fails the calls that follow at once, for a while."""
    if breaker is not None:
        breaker.check(location)
    try:
        yield
    except (StoreError, IndexMismatch, SettingsError):
        raise
    except Exception as e:
        if breaker is not None and _unreachable(e):
            breaker.trip(e)
        raise StoreError(f"The vector store at {location} failed to {action}: {type(e).__name__}: {e}") from e
    if breaker is not None:
        breaker.reset()


def manifest_problem(stored: dict[str, Any], expected: dict[str, Any], location: str) -> IndexMismatch | None:
    """Why an index built with ``stored`` cannot be read with ``expected``, or None."""
    if str(stored.get("schema")) != str(expected["schema"]):
        return IndexMismatch(
            f"The index at {location} was built by an older version (schema {stored.get('schema')}, "
            f"this one reads {expected['schema']}): its article ids could collide. Re-index: delete the index folder "
            "(or the Chroma collections) and run `rag ingest` on your articles again."
        )
    diffs = [
        f"{k}: index has {stored.get(k)!r}, settings ask for {expected[k]!r}"
        for k in MANIFEST_KEYS
        if str(stored.get(k)) != str(expected[k])
    ]
    if diffs:
        return IndexMismatch(
            f"The index at {location} was built differently ({'; '.join(diffs)}). Re-index: delete "
            "the index folder (or the collection) and run `rag ingest` again, or change the settings back."
        )
    return None


_EMBEDDED: dict[str, Connection] = {}
_EMBEDDED_LOCK = threading.Lock()


def _embedded_connection(path: Path) -> Connection:
    key = str(path.resolve())
    with _EMBEDDED_LOCK:
        return _EMBEDDED.setdefault(key, Connection())


@dataclass(frozen=True)
class EmbeddedArticle:
    """What the store writes for one article: its chunks, one vector per chunk, and each chunk's packed
    sentence vectors (see rag.encoders.vectors)."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    sentences: Sequence[str]


@dataclass(frozen=True)
class ArticleStamp:
    content_hash: str
    origin: str


def date_ord(iso: str | None) -> int:
    """YYYY-MM-DD -> YYYYMMDD as an int; undated is 0, below every real date."""
    return int(iso.replace("-", "")) if iso else 0


class ChromaStore:
    """Construction is cheap; `open()` connects. ``url`` selects a Chroma server, else ``path`` is embedded."""

    def __init__(
        self, path: Path | None = None, url: str | None = None, prefix: str = "news", timeout: float = 30.0
    ) -> None:
        if url:
            u = urlparse(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise SettingsError(f"RAG_CHROMA_URL '{url}' is not an http(s)://host:port URL.")
        self.path, self.url, self.prefix, self.timeout = path, url, prefix, timeout
        self.location = url or str(path)
        self.conn = Connection() if url else _embedded_connection(path)
        if url:
            self.conn.breaker = Breaker()
        self._collections: dict[str, Any] = {}
        self._version = -1
        self._batch: int | None = None

    @property
    def client(self):
        return self.conn.client

    @property
    def embedded(self) -> bool:
        return not self.url

    # -- connection --------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect (again): an embedded store loads what is on disk now."""
        with self.conn.sync:
            self.conn.connect(self.path, self.url, self.timeout, self.location)
            # Loading both collections now, under the caller's lock, is what makes the open safe.
            with self._guard("open"):
                self.chunks.count()
                self.articles.count()

    def close(self) -> None:
        with self.conn.sync:
            self.conn.close()

    def _guard(self, action: str):
        return guarded(self.location, action, self.conn.breaker)

    def _collection(self, name: str, metadata: dict[str, Any] | None = None):
        if self.client is None:
            self.open()
        if self._version != self.conn.version:
            self._collections, self._version = {}, self.conn.version
        col = self._collections.get(name)
        if col is None:
            with self._guard(f"open collection '{name}'"):
                col = self.client.get_or_create_collection(
                    name, embedding_function=None, metadata=metadata, configuration={"hnsw": {"space": "cosine"}}
                )
            self._collections[name] = col
        return col

    @property
    def chunks(self):
        return self._collection(f"{self.prefix}-chunks", {"generation": "new"})

    @property
    def articles(self):
        return self._collection(f"{self.prefix}-articles", {"kind": "articles"})

    @property
    def max_batch(self) -> int:
        if self._batch is None:
            try:
                self._batch = max(1, min(int(self.client.get_max_batch_size()), 2000))
            except Exception:
                self._batch = 500
        return self._batch

    # -- manifest and state ------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        """The chunk collection's metadata, read fresh: another process may have changed it since."""
        name = self.chunks.name
        with self._guard("read the index metadata"):
            return dict(self.client.get_collection(name).metadata or {})

    def _set_metadata(self, **values: Any) -> None:
        meta = self._metadata()
        meta.update(values)
        meta.pop("hnsw:space", None)
        with self._guard("update the index metadata"):
            self.chunks.modify(metadata=meta)

    def manifest(self) -> dict[str, Any]:
        meta = self._metadata()
        return {k: meta[k] for k in MANIFEST_KEYS if k in meta}

    def check_manifest(self, expected: dict[str, Any]) -> None:
        """Adopt ``expected`` on an empty index; otherwise fail unless the stored manifest matches it."""
        expected = {**expected, "schema": SCHEMA_VERSION}
        stored = self.manifest()
        if not stored or self.count_chunks() == 0 and self.count_articles() == 0:
            self._set_metadata(**expected)
        elif problem := manifest_problem(stored, expected, self.location):
            raise problem

    def state(self) -> IndexState:
        meta = self._metadata()
        return IndexState(
            str(meta.get("generation", "")), str(meta.get("writing", "")), int(meta.get("chunk_count", 0))
        )

    def mark_writing(self, session: str) -> None:
        self._set_metadata(writing=session)

    def commit(self, generation: str) -> None:
        """Close the write session and publish ``generation``: one metadata write, so it is all or nothing."""
        self._set_metadata(generation=generation, writing="", chunk_count=self.count_chunks())

    # -- articles ----------------------------------------------------------------------------------
    def count_chunks(self) -> int:
        with self._guard("count chunks"):
            return self.chunks.count()

    def count_articles(self) -> int:
        with self._guard("count articles"):
            return self.articles.count()

    def article_stamps(self) -> dict[str, ArticleStamp]:
        """id -> (content hash, origin) of every stored article."""
        out = {}
        for ids, metas, _, _ in self._scan(self.articles, ["metadatas"]):
            out.update({i: ArticleStamp(m.get("content_hash", ""), m.get("origin", "")) for i, m in zip(ids, metas)})
        return out

    def article_versions(self) -> dict[str, str]:
        """id -> version of every stored article: a new version for every write of it."""
        out = {}
        for ids, metas, _, _ in self._scan(self.articles, ["metadatas"]):
            out.update({i: _version(m) for i, m in zip(ids, metas)})
        return out

    def list_articles(self) -> list[dict[str, Any]]:
        rows = []
        for ids, metas, _, _ in self._scan(self.articles, ["metadatas"]):
            for i, m in zip(ids, metas):
                row = {"id": i, **_article_meta(m)}
                row.pop("signature")  # internal, and 684 characters of it
                row["story"] = row["story"] or i
                rows.append(row)
        rows.sort(key=lambda r: (r.get("published") or "", r["id"]), reverse=True)
        return rows

    def get_articles(self, ids: Sequence[str]) -> dict[str, Article]:
        if not ids:
            return {}
        with self._guard("read articles"):
            got = self.articles.get(ids=list(dict.fromkeys(ids)), include=["metadatas", "documents"])
        return {i: _article_from(i, m, doc) for i, m, doc in zip(got["ids"], got["metadatas"], got["documents"])}

    def iter_articles(self) -> Iterator[Article]:
        """Every stored article, text included."""
        for ids, metas, docs, _ in self._scan(self.articles, ["metadatas", "documents"]):
            yield from (_article_from(i, m, d) for i, m, d in zip(ids, metas, docs))

    def write_articles(
        self, items: Sequence[EmbeddedArticle], replacing: set[str], origins: dict[str, str] | None = None
    ) -> None:
        """Make each article and exactly its chunks the stored state for its id.

        ``replacing`` names the ids already stored; only those need their old records removed first.
        Each article's record carries the mean of its chunk vectors, so the articles collection is an
        article-level vector index too, and a new version, by which a snapshot tells what changed since it.
        """
        old = [e.article.id for e in items if e.article.id in replacing]
        ids = ", ".join(e.article.id for e in items[:3]) + (" ..." if len(items) > 3 else "")
        with self._guard(f"write articles ({ids})"):
            if old:
                self.articles.delete(ids=old)
                for aid in old:
                    self.chunks.delete(where={"article_id": aid})
            rows = [(c, v, blob) for e in items for c, v, blob in zip(e.chunks, e.vectors, e.sentences)]
            for a in range(0, len(rows), self.max_batch):
                part = rows[a : a + self.max_batch]
                self.chunks.add(
                    ids=[c.id for c, _, _ in part],
                    embeddings=np.stack([v for _, v, _ in part]),
                    documents=[c.text for c, _, _ in part],
                    metadatas=[{**_chunk_meta(c), "sentences": blob} for c, _, blob in part],
                )
            # Written after all their chunks: an article record means its chunks are complete.
            for a in range(0, len(items), self.max_batch):
                part = items[a : a + self.max_batch]
                self.articles.add(
                    ids=[e.article.id for e in part],
                    embeddings=np.stack([_mean_vector(e.vectors) for e in part]),
                    documents=[e.article.text for e in part],
                    metadatas=[
                        _article_record(e.article, len(e.chunks), (origins or {}).get(e.article.id, e.article.origin))
                        | {"version": uuid.uuid4().hex}
                        for e in part
                    ],
                )

    def set_stories(self, placed: dict[str, tuple[str, str]]) -> None:
        """Record each article's (story, signature), with a new version so the next snapshot reads it again."""
        ids = list(placed)
        with self._guard("record the articles' stories"):
            for a in range(0, len(ids), self.max_batch):
                part = ids[a : a + self.max_batch]
                self.articles.update(
                    ids=part,
                    metadatas=[
                        {"story": placed[i][0], "signature": placed[i][1], "version": uuid.uuid4().hex} for i in part
                    ],
                )

    def article_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored articles' vectors (the mean of their chunk vectors), by id."""
        out = {}
        with self._guard("read article vectors"):
            for a in range(0, len(ids), self.max_batch):
                got = self.articles.get(ids=list(ids[a : a + self.max_batch]), include=["embeddings"])
                out.update({i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])})
        return out

    def delete_article(self, article_id: str) -> bool:
        with self._guard(f"delete article '{article_id}'"):
            existed = bool(self.articles.get(ids=[article_id], include=[])["ids"])
            self.articles.delete(ids=[article_id])
            self.chunks.delete(where={"article_id": article_id})
        return existed

    def orphan_articles(self) -> list[str]:
        """Article ids that have chunks but no record: the trace of an interrupted write."""
        known = set(self.article_stamps())
        return sorted(
            {m["article_id"] for _, metas, _, _ in self._scan(self.chunks, ["metadatas"]) for m in metas} - known
        )

    def remove_chunks_of(self, article_ids: Sequence[str]) -> None:
        with self._guard("remove chunks"):
            for aid in article_ids:
                self.chunks.delete(where={"article_id": aid})

    # -- chunks ------------------------------------------------------------------------------------
    def iter_chunks(self) -> Iterator[Chunk]:
        for chunk, _, _ in self.iter_chunk_rows():
            yield chunk

    def iter_chunk_rows(self, vectors: bool = False) -> Iterator[tuple[Chunk, str, np.ndarray | None]]:
        """Every chunk with its packed sentence vectors and, if ``vectors``, its own vector (else None)."""
        include = ["metadatas", "documents"] + (["embeddings"] if vectors else [])
        for ids, metas, docs, embeddings in self._scan(self.chunks, include):
            for k, (i, m, d) in enumerate(zip(ids, metas, docs)):
                yield _chunk_from(i, m, d), m.get("sentences", ""), None if embeddings is None else embeddings[k]

    def chunk_rows_of(
        self, article_ids: Sequence[str], vectors: bool = False
    ) -> list[tuple[Chunk, str, np.ndarray | None]]:
        """`iter_chunk_rows`, for the chunks of these articles only."""
        include = ["metadatas", "documents"] + (["embeddings"] if vectors else [])
        rows = []
        for a in range(0, len(article_ids), 100):
            with self._guard("read chunks"):
                got = self.chunks.get(where={"article_id": {"$in": list(article_ids[a : a + 100])}}, include=include)
            embeddings = got.get("embeddings") if vectors else None
            for k, (i, m, d) in enumerate(zip(got["ids"], got["metadatas"], got["documents"])):
                vector = None if embeddings is None else np.asarray(embeddings[k], dtype=np.float32)
                rows.append((_chunk_from(i, m, d), m.get("sentences", ""), vector))
        return rows

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray | None]:
        """Stored vectors by chunk id; None for an id whose vector cannot be read (a damaged index)."""
        out: dict[str, np.ndarray | None] = {}
        try:
            got = self.chunks.get(ids=list(ids), include=["embeddings"])
            out.update({i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])})
        except Exception:
            if len(ids) == 1:
                return {ids[0]: None}
            half = len(ids) // 2
            return {**self.chunk_vectors(ids[:half]), **self.chunk_vectors(ids[half:])}
        return out

    def dense_query(
        self, vector: np.ndarray, n: int, low: int | None = None, high: int | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunks: (chunk id, cosine similarity), best first, optionally only those published
        between ``low`` and ``high`` (YYYYMMDD; undated chunks count as 0)."""
        return self._nearest(self.chunks, vector, n, low, high)

    def dense_article_query(
        self, vector: np.ndarray, n: int, low: int | None = None, high: int | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest articles by the mean of their chunk vectors: (article id, cosine similarity)."""
        return self._nearest(self.articles, vector, n, low, high)

    def _nearest(self, collection, vector, n: int, low: int | None, high: int | None) -> list[tuple[str, float]]:
        with self._guard("count"):
            total = collection.count()
        if total == 0 or n <= 0:
            return []
        clauses = ([{"published_ord": {"$gte": low}}] if low is not None else []) + (
            [{"published_ord": {"$lte": high}}] if high is not None else []
        )
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        res = self._search(collection, vector, min(n, total), where, ["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"], res["distances"])]

    def _search(self, collection, vector, n: int, where: dict | None, include: list[str]):
        with self._guard("search vectors"):
            res = collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=n, where=where, include=include
            )
        return {k: (res.get(k) or [[]])[0] for k in ("ids", "metadatas", "documents", "distances")}

    def _scan(self, collection, include: list[str], page: int = 1000):
        """Pages of (ids, metadatas, documents, embeddings); embeddings is None unless included."""
        offset = 0
        while True:
            with self._guard("read the index"):
                got = collection.get(include=include, limit=page, offset=offset)
            if not got["ids"]:
                return
            n = len(got["ids"])
            embeddings = got.get("embeddings")
            yield (
                got["ids"],
                got.get("metadatas") or [{}] * n,
                got.get("documents") or [None] * n,
                None if embeddings is None else np.asarray(embeddings, dtype=np.float32),
            )
            offset += n


def _limit_http_wait(client, seconds: float) -> None:
    """Give the HTTP client a timeout. chromadb's client waits forever by default (`httpx.Client(timeout=None)`
    in chromadb/api/fastapi.py), so a frozen server would hang every request; chromadb has no setting for
    it, so the timeout is set on the httpx session it holds."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(seconds, connect=min(seconds, 5.0))


def _mean_vector(vectors: np.ndarray) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


def _article_record(a: Article, chunk_count: int, origin: str) -> dict[str, Any]:
    return {
        "title": a.title,
        "source": a.source or "",
        "url": a.url or "",
        "published": a.published or "",
        "published_ord": date_ord(a.published),
        "content_hash": a.content_hash,
        "chunks": chunk_count,
        "origin": origin,
        "story": a.story or "",
        "signature": a.signature,
    }


def _version(m: dict[str, Any]) -> str:
    # An article written before versions were stored is told apart by its content and chunk count.
    return m.get("version") or f"{m.get('content_hash', '')}/{m.get('chunks', 0)}"


def _chunk_meta(c: Chunk) -> dict[str, Any]:
    return {
        "article_id": c.article_id,
        "ordinal": c.ordinal,
        "start": c.start,
        "end": c.end,
        "title": c.title,
        "published": c.published or "",
        "published_ord": date_ord(c.published),
    }


def _chunk_from(chunk_id: str, m: dict[str, Any], doc: str | None) -> Chunk:
    return Chunk(
        id=chunk_id,
        article_id=m["article_id"],
        ordinal=int(m.get("ordinal", 0)),
        start=int(m["start"]),
        end=int(m["end"]),
        text=doc or "",
        title=m.get("title", ""),
        published=m.get("published") or None,
    )


def _article_from(article_id: str, m: dict[str, Any], doc: str | None) -> Article:
    return Article(
        id=article_id, text=doc or "", **{k: v for k, v in _article_meta(m).items() if k not in ("chunks", "origin")}
    )


def _article_meta(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": m.get("title", ""),
        "source": m.get("source") or None,
        "url": m.get("url") or None,
        "published": m.get("published") or None,
        "content_hash": m.get("content_hash", ""),
        "chunks": int(m.get("chunks", 0)),
        "origin": m.get("origin") or None,
        "story": m.get("story") or None,
        "signature": m.get("signature") or "",
    }
