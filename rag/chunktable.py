"""One generation's chunks and articles as a few flat arrays and byte strings, memory-mapped from the snapshot's
folder.

64,570 chunks held as Python objects took about 180 MB of each process's heap, and parsing them from JSON was
most of a snapshot's load. Mapped, they cost no heap: their pages sit in the page cache, shared by every
process that serves the generation, and read only where a question looks. A `Chunk` or an `Article` is made
when it is asked for, from its row.
"""

from __future__ import annotations

import bisect
import json
import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .types import Article, Chunk

# Per row: its entry in the article table, ordinal, start, end.
_ARTICLE, _ORDINAL, _START, _END = range(4)


class _Strings:
    """Many strings as one UTF-8 byte string (in memory, or a mapped file) and each one's byte range in it."""

    def __init__(self, data: bytes | mmap.mmap, offsets: np.ndarray) -> None:
        self.data, self.offsets = data, offsets

    @classmethod
    def pack(cls, texts: Sequence[str]) -> _Strings:
        encoded = [t.encode("utf-8") for t in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in encoded])
        return cls(b"".join(encoded), offsets)

    def __getitem__(self, i: int) -> str:
        return self.encoded(i).decode("utf-8")

    def encoded(self, i: int) -> bytes:
        a, b = self.offsets[i:i + 2].tolist()
        return self.data[a:b]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def save(self, directory: Path, name: str) -> None:
        (directory / f"{name}.bin").write_bytes(self.data)
        np.save(directory / f"{name}-offsets.npy", self.offsets)

    @classmethod
    def load(cls, directory: Path, name: str) -> _Strings:
        # A plain array over the mapped pages: np.memmap's own indexing costs microseconds a call.
        offsets = np.asarray(np.load(directory / f"{name}-offsets.npy", mmap_mode="r"))
        path = directory / f"{name}.bin"
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != int(offsets[-1]):
                raise ValueError(f"{path} holds {size} bytes, its offsets say {int(offsets[-1])}")
            # An mmap slice is bytes, made without numpy's overhead; an empty file cannot be mapped.
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return cls(data, offsets)


class ChunkTable(Sequence[Chunk]):
    """Chunks by row, in the order of the snapshot's BM25 index, vectors and sentence table.

    Titles and dates are stored once per article: ``articles`` holds each distinct (article id, title,
    published) and each row points at one."""

    FILES = ("chunks-text.bin", "chunks-text-offsets.npy", "chunks-ids.bin", "chunks-ids-offsets.npy",
             "chunks-id-order.npy", "chunks-fields.npy", "chunks-articles.json")

    def __init__(self, texts: _Strings, ids: _Strings, id_order: np.ndarray, fields: np.ndarray,
                 articles: list[tuple[str, str, str | None]]) -> None:
        self._texts, self._ids, self._id_order, self._fields = texts, ids, id_order, fields
        self.articles = articles

    @classmethod
    def from_chunks(cls, chunks: Sequence[Chunk]) -> ChunkTable:
        entries: dict[tuple[str, str, str | None], int] = {}
        fields = np.zeros((len(chunks), 4), dtype=np.int64)
        for i, c in enumerate(chunks):
            fields[i] = (entries.setdefault((c.article_id, c.title, c.published), len(entries)), c.ordinal, c.start,
                         c.end)
        ids = [c.id for c in chunks]
        # Sorted by the ids' UTF-8 bytes, the order `position` searches in.
        order = np.asarray(sorted(range(len(ids)), key=lambda i: ids[i].encode("utf-8")), dtype=np.int64)
        return cls(_Strings.pack([c.text for c in chunks]), _Strings.pack(ids), order, fields, list(entries))

    def save(self, directory: Path) -> None:
        self._texts.save(directory, "chunks-text")
        self._ids.save(directory, "chunks-ids")
        np.save(directory / "chunks-id-order.npy", self._id_order)
        np.save(directory / "chunks-fields.npy", self._fields)
        (directory / "chunks-articles.json").write_text(json.dumps(self.articles))

    @classmethod
    def load(cls, directory: Path) -> ChunkTable:
        """Raises OSError or ValueError when a file is missing or does not fit the others."""
        texts, ids = _Strings.load(directory, "chunks-text"), _Strings.load(directory, "chunks-ids")
        order = np.asarray(np.load(directory / "chunks-id-order.npy", mmap_mode="r"))
        fields = np.asarray(np.load(directory / "chunks-fields.npy", mmap_mode="r"))
        articles = [tuple(a) for a in json.loads((directory / "chunks-articles.json").read_text())]
        rows = len(fields)
        consistent = len(texts) == len(ids) == len(order) == rows
        if not consistent or (rows and int(fields[:, _ARTICLE].max()) >= len(articles)):
            raise ValueError(f"the chunk table in {directory} is inconsistent")
        return cls(texts, ids, order, fields, articles)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, i):  # Sequence's signature: an int or a slice
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"chunk row {i} is outside 0..{len(self) - 1}")
        article, ordinal, start, end = self._fields[i].tolist()
        article_id, title, published = self.articles[article]
        return Chunk(id=self._ids[i], article_id=article_id, ordinal=ordinal, start=start, end=end,
                     text=self._texts[i], title=title, published=published)

    def __iter__(self) -> Iterator[Chunk]:
        return (self[i] for i in range(len(self)))

    def id(self, i: int) -> str:
        return self._ids[i]

    def ids(self) -> list[str]:
        return [self._ids[i] for i in range(len(self))]

    def article_id(self, i: int) -> str:
        return self.articles[int(self._fields[i, _ARTICLE])][0]

    def published(self, i: int) -> str | None:
        return self.articles[int(self._fields[i, _ARTICLE])][2]

    def article_rows(self) -> np.ndarray:
        """Each row's entry in ``articles``."""
        return np.asarray(self._fields[:, _ARTICLE])

    def position(self, chunk_id: str) -> int | None:
        """The row of the chunk with this id, or None."""
        key = chunk_id.encode("utf-8")
        order = self._id_order
        at = bisect.bisect_left(range(len(order)), key, key=lambda k: self._ids.encoded(int(order[k])))
        if at < len(order) and self._ids.encoded(int(order[at])) == key:
            return int(order[at])
        return None


class ArticleTable:
    """The committed articles, by id: each one's text in a mapped byte file, its record (title, source, url,
    date, content hash) in a small JSON list. What a question reads of its passages' articles, and the article
    page shows, without a round trip to the store (1-2 ms a question embedded, more from a Chroma server)."""

    FILES = ("articles-text.bin", "articles-text-offsets.npy", "articles.json")
    _RECORD = ("id", "title", "source", "url", "published", "content_hash")

    def __init__(self, texts: _Strings, records: list[list]) -> None:
        if len(texts) != len(records):
            raise ValueError(f"{len(texts)} article texts but {len(records)} article records")
        self._texts, self._records = texts, records
        self._rows = {r[0]: i for i, r in enumerate(records)}

    @classmethod
    def from_articles(cls, articles: Sequence[Article]) -> ArticleTable:
        unique = list({a.id: a for a in articles}.values())
        return cls(_Strings.pack([a.text for a in unique]),
                   [[getattr(a, name) for name in cls._RECORD] for a in unique])

    def save(self, directory: Path) -> None:
        self._texts.save(directory, "articles-text")
        (directory / "articles.json").write_text(json.dumps(self._records))

    @classmethod
    def load(cls, directory: Path) -> ArticleTable:
        """Raises OSError or ValueError when a file is missing or does not fit the others."""
        records = json.loads((directory / "articles.json").read_text())
        if not isinstance(records, list) or any(len(r) != len(cls._RECORD) for r in records):
            raise ValueError(f"{directory / 'articles.json'} is not a list of article records")
        return cls(_Strings.load(directory, "articles-text"), records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._rows

    def get(self, article_id: str) -> Article | None:
        i = self._rows.get(article_id)
        if i is None:
            return None
        return Article(text=self._texts[i], **dict(zip(self._RECORD, self._records[i])))

    def get_many(self, ids: Sequence[str]) -> dict[str, Article]:
        """The articles with these ids, once each, in the order asked; unknown ids are left out."""
        found = {}
        for i in dict.fromkeys(ids):
            if (a := self.get(i)) is not None:
                found[i] = a
        return found
