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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index import arrays
from rag.types import Article, Chunk

# Per row: its entry in the article table, ordinal, start, end.
_ARTICLE, _ORDINAL, _START, _END = range(4)


@dataclass(frozen=True)
class RowPlan:
    """Where each row of a table being built comes from: row ``base[i]`` of the previous generation's table, or
    item ``new[i]`` of what was added since (the other is -1).

    Rows are in the order of their keys, whichever way they arrive, so a table grown from the previous one
    equals a table built from everything at once."""

    base: np.ndarray
    new: np.ndarray

    @classmethod
    def merge(cls, base_keys: Sequence, kept: Sequence[bool], new_keys: Sequence) -> RowPlan:
        """Rows for the kept base rows and every new item, by key; a key must not occur twice."""
        rows = [(k, i, -1) for i, (k, keep) in enumerate(zip(base_keys, kept)) if keep]
        rows += [(k, -1, i) for i, k in enumerate(new_keys)]
        rows.sort(key=lambda r: r[0])
        return cls(np.asarray([r[1] for r in rows], dtype=np.int64), np.asarray([r[2] for r in rows], dtype=np.int64))

    @classmethod
    def fresh(cls, n: int) -> RowPlan:
        """Rows for ``n`` new items, in the order given: a table of these alone."""
        return cls(np.full(n, -1, dtype=np.int64), np.arange(n, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.base)

    def positions(self, n_base: int, n_new: int) -> tuple[np.ndarray, np.ndarray]:
        """Each base row's position in the table (-1 when it is left out), and each new item's."""
        return _inverse(self.base, n_base), _inverse(self.new, n_new)

    def fill(self, base: np.ndarray | None, new: np.ndarray) -> np.ndarray:
        """The planned table in memory, rows from ``base``'s and ``new``'s (of ``new``'s dtype and row shape)."""
        return arrays.assemble(self.pieces(base, new), (len(self), *new.shape[1:]), new.dtype)

    def pieces(
        self,
        base: np.ndarray | None,
        new: np.ndarray,
        base_bounds: np.ndarray | None = None,
        new_bounds: np.ndarray | None = None,
        base_file: tuple[Path, int] | None = None,
    ) -> list[arrays.Piece]:
        """The planned table's elements, in order, as pieces of ``base`` and of ``new`` (for `arrays.assemble`).
        Row r of each spans elements bounds[r]..bounds[r+1]; without bounds, rows are the first axis. A base
        mapped from a file is copied from that file (``base_file``, when the mapping does not say)."""
        base_bounds = _row_bounds(base) if base_bounds is None else base_bounds
        new_bounds = _row_bounds(new) if new_bounds is None else new_bounds
        base_file = base_file or arrays.mapped_file(base)
        from_base = self.base >= 0
        source = np.where(from_base, self.base, self.new)
        # A run: consecutive rows of the table from consecutive rows of the same side.
        breaks = np.flatnonzero((np.diff(from_base) != 0) | (np.diff(source) != 1)) + 1
        starts = np.concatenate([[0], breaks]).astype(np.int64)
        ends = np.concatenate([breaks, [len(self)]]).astype(np.int64)
        out = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            if a == b:
                continue
            first, last = int(source[a]), int(source[b - 1]) + 1
            if from_base[a]:
                out.append(arrays.Piece(base, int(base_bounds[first]), int(base_bounds[last]), base_file))
            else:
                out.append(arrays.Piece(new, int(new_bounds[first]), int(new_bounds[last])))
        return out

    def sizes(self, base_offsets: np.ndarray, new_offsets: np.ndarray) -> np.ndarray:
        """The offsets of a ragged array planned from two, given theirs."""
        sizes = self.fill(np.diff(base_offsets), np.diff(new_offsets))
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return offsets


def _row_bounds(a: np.ndarray | None) -> np.ndarray:
    """Where each row of ``a`` starts among its flattened elements, and where the last ends."""
    if a is None:
        return np.zeros(1, dtype=np.int64)
    width = int(np.prod(a.shape[1:], dtype=np.int64))
    return np.arange(len(a) + 1, dtype=np.int64) * width


def _inverse(source: np.ndarray, n: int) -> np.ndarray:
    position = np.full(n, -1, dtype=np.int64)
    taken = source >= 0
    position[source[taken]] = np.flatnonzero(taken)
    return position


def ragged_rows(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The element indices of ``rows`` in a ragged array whose row r holds elements offsets[r]..offsets[r+1],
    concatenated in the order of ``rows``."""
    starts = np.asarray(offsets[rows], dtype=np.int64)
    lengths = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    # Each element's index is its row's start plus its place in the row.
    before = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total, dtype=np.int64) - before)


class _Strings:
    """Many strings as one UTF-8 byte string (in memory, or a mapped file) and each one's byte range in it."""

    def __init__(self, data: bytes | mmap.mmap, offsets: np.ndarray, path: Path | None = None) -> None:
        self.data, self.offsets, self.path = data, offsets, path  # path: the file ``data`` is mapped from

    @classmethod
    def join(cls, encoded: Sequence[bytes]) -> _Strings:
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in encoded])
        return cls(b"".join(encoded), offsets)

    @classmethod
    def merged(
        cls, base: _Strings | None, plan: RowPlan, new: Sequence[str], directory: Path | None = None, name: str = ""
    ) -> _Strings:
        """The rows ``plan`` names; with ``directory``, written there as ``name`` (as `save` would) and mapped."""
        fresh = cls.join([t.encode("utf-8") for t in new])
        base = base if base is not None else cls(b"", np.zeros(1, dtype=np.int64))
        offsets = plan.sizes(base.offsets, fresh.offsets)
        pieces = plan.pieces(
            np.frombuffer(base.data, dtype=np.uint8) if len(base.data) else None,
            np.frombuffer(fresh.data, dtype=np.uint8),
            base.offsets,
            fresh.offsets,
            (base.path, 0) if base.path is not None else None,
        )
        if directory is None:
            return cls(arrays.assemble(pieces, (int(offsets[-1]),), np.uint8).tobytes(), offsets)
        arrays.write(directory / f"{name}.bin", pieces, 1)
        np.save(directory / f"{name}-offsets.npy", offsets)
        return cls.load(directory, name)

    def __getitem__(self, i: int) -> str:
        return self.encoded(i).decode("utf-8")

    def encoded(self, i: int) -> bytes:
        a, b = self.offsets[i : i + 2].tolist()
        return self.data[a:b]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def save(self, directory: Path, name: str) -> None:
        path = directory / f"{name}.bin"
        if self.path is None or self.path.resolve() != path.resolve():  # never over the file it is mapped from
            path.write_bytes(self.data)
        arrays.save(directory / f"{name}-offsets.npy", self.offsets)

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
        return cls(data, offsets, path if size else None)


class ChunkTable(Sequence[Chunk]):
    """Chunks by row, in the order of the snapshot's BM25 index, vectors and sentence table.

    Titles and dates are stored once per article: ``articles`` holds each distinct (article id, title,
    published) and each row points at one."""

    FILES = (
        "chunks-text.bin",
        "chunks-text-offsets.npy",
        "chunks-ids.bin",
        "chunks-ids-offsets.npy",
        "chunks-id-order.npy",
        "chunks-fields.npy",
        "chunks-articles.json",
    )

    def __init__(
        self,
        texts: _Strings,
        ids: _Strings,
        id_order: np.ndarray,
        fields: np.ndarray,
        articles: list[tuple[str, str, str | None]],
    ) -> None:
        self._texts, self._ids, self._id_order, self._fields = texts, ids, id_order, fields
        self.articles = articles
        self._entries: dict[str, int] | None = None  # article id -> entry, made on first use

    @classmethod
    def merged(
        cls, base: ChunkTable | None, plan: RowPlan, new: Sequence[Chunk], directory: Path | None = None
    ) -> ChunkTable:
        """The rows ``plan`` names, from ``base`` and from ``new``; base rows are copied, not made into Chunks.
        With ``directory``, the texts and ids are written there as `save` would, and mapped."""
        fresh_entries: dict[tuple[str, str, str | None], int] = {}
        fresh = np.asarray(
            [
                (
                    fresh_entries.setdefault((c.article_id, c.title, c.published), len(fresh_entries)),
                    c.ordinal,
                    c.start,
                    c.end,
                )
                for c in new
            ],
            dtype=np.int64,
        ).reshape(len(new), 4)
        base_entries = base.articles if base is not None else []
        fresh[:, _ARTICLE] += len(base_entries)  # one numbering for the entries of both
        fields = plan.fill(base._fields if base else None, fresh)
        # Entries in the order rows first use them; a removed article's entry is used by none.
        used, first = np.unique(fields[:, _ARTICLE], return_index=True)
        order = used[np.argsort(first)]
        renumber = np.zeros(len(base_entries) + len(fresh_entries), dtype=np.int64)
        renumber[order] = np.arange(len(order))
        fields[:, _ARTICLE] = renumber[fields[:, _ARTICLE]]
        every = list(base_entries) + list(fresh_entries)
        texts = _Strings.merged(base._texts if base else None, plan, [c.text for c in new], directory, "chunks-text")
        ids = _Strings.merged(base._ids if base else None, plan, [c.id for c in new], directory, "chunks-ids")
        # Sorted by the ids' UTF-8 bytes, the order `position` searches in.
        encoded = [ids.encoded(i) for i in range(len(ids))]
        id_order = np.asarray(sorted(range(len(encoded)), key=encoded.__getitem__), dtype=np.int64)
        return cls(texts, ids, id_order, fields, [every[k] for k in order.tolist()])

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
        return Chunk(
            id=self._ids[i],
            article_id=article_id,
            ordinal=ordinal,
            start=start,
            end=end,
            text=self._texts[i],
            title=title,
            published=published,
        )

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

    def keys(self) -> list[tuple[str, int]]:
        """Each row's (article id, ordinal): the order of a snapshot's rows."""
        ids = [a for a, _, _ in self.articles]
        return list(zip((ids[e] for e in self._fields[:, _ARTICLE].tolist()), self._fields[:, _ORDINAL].tolist()))

    def article_entry(self, article_id: str) -> int | None:
        """The article's entry in ``articles``, or None."""
        if self._entries is None:
            self._entries = {a: e for e, (a, _, _) in enumerate(self.articles)}
        return self._entries.get(article_id)

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
    date, content hash, story and signature, and the version the store gave its last write) in a small JSON
    list. What a question reads of its passages' articles, and the article page shows, without a round trip to
    the store (1-2 ms a question embedded, more from a Chroma server)."""

    FILES = ("articles-text.bin", "articles-text-offsets.npy", "articles.json")
    _RECORD = ("id", "title", "source", "url", "published", "content_hash", "story", "signature")

    def __init__(self, texts: _Strings, records: list[list]) -> None:
        if len(texts) != len(records):
            raise ValueError(f"{len(texts)} article texts but {len(records)} article records")
        self._texts, self._records = texts, records
        self._rows = {r[0]: i for i, r in enumerate(records)}
        self._by_story: dict[str, list[str]] | None = None  # made on first use

    @classmethod
    def merged(
        cls,
        base: ArticleTable | None,
        plan: RowPlan,
        new: Sequence[Article],
        versions: dict[str, str],
        directory: Path | None = None,
    ) -> ArticleTable:
        """The rows ``plan`` names, from ``base`` and from ``new``; ``versions`` are the new articles'. With
        ``directory``, the texts are written there as `save` would, and mapped."""
        records = [
            base._records[b]
            if b >= 0
            else [getattr(new[n], name) for name in cls._RECORD] + [versions.get(new[n].id, "")]
            for b, n in zip(plan.base.tolist(), plan.new.tolist())
        ]
        return cls(
            _Strings.merged(base._texts if base else None, plan, [a.text for a in new], directory, "articles-text"),
            records,
        )

    def ids(self) -> list[str]:
        return [r[0] for r in self._records]

    def stories(self) -> Iterator[tuple[str, str | None, str | None, str]]:
        """Each article's (id, story, date, signature)."""
        at = {name: k for k, name in enumerate(self._RECORD)}
        for r in self._records:
            yield r[0], r[at["story"]], r[at["published"]], r[at["signature"]]

    def story_members(self, story: str) -> list[str]:
        """The ids of the articles in a story."""
        if self._by_story is None:
            by_story: dict[str, list[str]] = {}
            for article_id, s, _, _ in self.stories():
                by_story.setdefault(s or article_id, []).append(article_id)
            self._by_story = by_story
        return self._by_story.get(story, [])

    def record(self, article_id: str) -> dict | None:
        """The article's id, title, source, url and date, without its text."""
        i = self._rows.get(article_id)
        if i is None:
            return None
        r = dict(zip(self._RECORD, self._records[i]))
        return {k: r[k] for k in ("title", "source", "url", "published")} | {"article_id": article_id}

    def story_of(self, article_id: str) -> str | None:
        """The article's story (its own id when it was stored before stories were kept); None when it is unknown."""
        i = self._rows.get(article_id)
        if i is None:
            return None
        return self._records[i][self._RECORD.index("story")] or article_id

    def versions(self) -> dict[str, str]:
        """id -> the version of the article this table holds."""
        return {r[0]: r[-1] for r in self._records}

    def save(self, directory: Path) -> None:
        self._texts.save(directory, "articles-text")
        (directory / "articles.json").write_text(json.dumps(self._records))

    @classmethod
    def load(cls, directory: Path) -> ArticleTable:
        """Raises OSError or ValueError when a file is missing or does not fit the others."""
        records = json.loads((directory / "articles.json").read_text())
        if not isinstance(records, list) or any(len(r) != len(cls._RECORD) + 1 for r in records):
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
        return Article(text=self._texts[i], **dict(zip(self._RECORD, self._records[i][: len(self._RECORD)])))

    def get_many(self, ids: Sequence[str]) -> dict[str, Article]:
        """The articles with these ids, once each, in the order asked; unknown ids are left out."""
        found = {}
        for i in dict.fromkeys(ids):
            if (a := self.get(i)) is not None:
                found[i] = a
        return found
