"""What a question reads, for one committed generation: every chunk and article, the BM25 indexes, the chunk
and article vectors (within the flat-search limit), and every sentence's vector. Built once from the store,
saved beside it, loaded by every process.

A new generation's snapshot is the previous one's, less the articles removed or rewritten since, plus what the
store holds of the articles added or rewritten: only those are read from the store and analysed. Rows are in a
fixed order (by article id, then chunk ordinal), so a snapshot grown this way equals one built from the whole
store at once, file for file.

A snapshot is never changed after it is built: a newer generation is a new Snapshot, swapped in whole, so
a question running in another thread never sees half of each. It is built in a private temporary folder
and renamed into place under a build lock, so processes that need the same generation at the same time
never read or write each other's half.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.encoders.vectors import SentenceVectors, unit
from rag.encoders.worker import give_back_freed_heap
from rag.hashing import file_sha256
from rag.index import arrays, scratch
from rag.index.chroma import date_ord
from rag.index.chunktable import ArticleTable, ChunkTable, RowPlan
from rag.index.dense import FlatVectors
from rag.index.lexical import Analyzer, LexicalIndex
from rag.types import Article, Chunk

log = logging.getLogger(__name__)

# 2: chunk and article vectors for exact dense search. 3: chunks in mapped arrays, not JSON. 4: article texts.
# 5: term counts and article versions, rows in key order. 6: each file's sha256 in snapshot.json.
# 7: int8 chunk codes stored row by row. 8: each article's story and signature.
FORMAT = 8
INFO = "snapshot.json"

Row = tuple[Chunk, str, "np.ndarray | None"]  # a chunk, its packed sentence vectors, its vector if asked for


@dataclass(frozen=True)
class Changes:
    """What the store holds that a base snapshot does not: the articles added or rewritten since it (with the
    version of each, and their chunks), and the base articles to leave out (removed or rewritten). ``rows`` is
    read once, as it is built on."""

    removed: frozenset[str]
    articles: list[Article]
    versions: dict[str, str]
    rows: Iterable[Row]
    with_vectors: bool


class SentenceTable:
    """Every stored sentence, grouped by chunk: one int8 matrix, and each chunk's row range in it."""

    FILES = ("offsets", "starts", "ends", "codes", "scales")

    def __init__(
        self, offsets: np.ndarray, starts: np.ndarray, ends: np.ndarray, codes: np.ndarray, scales: np.ndarray
    ) -> None:
        self.offsets, self.starts, self.ends, self.codes, self.scales = offsets, starts, ends, codes, scales

    @classmethod
    def build(cls, per_chunk: list[SentenceVectors | None], dimension: int) -> SentenceTable:
        present = [s for s in per_chunk if s is not None and len(s)]
        offsets = np.zeros(len(per_chunk) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) if s is not None else 0 for s in per_chunk])

        def stacked(name: str, dtype, shape=(0,)):
            return (
                np.concatenate([getattr(s, name) for s in present]).astype(dtype) if present else np.zeros(shape, dtype)
            )

        return cls(
            offsets,
            stacked("starts", np.int32),
            stacked("ends", np.int32),
            stacked("codes", np.int8, (0, dimension)),
            stacked("scales", np.float32),
        )

    @classmethod
    def merged(
        cls,
        base: SentenceTable | None,
        plan: RowPlan,
        new: list[SentenceVectors | None],
        dimension: int,
        directory: Path | None = None,
    ) -> SentenceTable:
        """The rows ``plan`` names, from ``base`` and from ``new``: in memory, or written into ``directory`` as
        `save` would and mapped."""
        fresh = cls.build(new, dimension)
        base = base if base is not None else cls.build([], dimension)
        offsets = plan.sizes(base.offsets, fresh.offsets)
        total = int(offsets[-1])
        shapes = {
            "starts": ((total,), np.int32),
            "ends": ((total,), np.int32),
            "codes": ((total, dimension), np.int8),
            "scales": ((total,), np.float32),
        }

        def made(name: str, shape: tuple, dtype) -> np.ndarray:
            width = int(np.prod(shape[1:], dtype=np.int64))  # elements a sentence takes
            pieces = plan.pieces(getattr(base, name), getattr(fresh, name), base.offsets * width, fresh.offsets * width)
            return arrays.assemble(pieces, shape, dtype, directory / f"sentences-{name}.npy" if directory else None)

        return cls(offsets, *(made(name, shape, dtype) for name, (shape, dtype) in shapes.items()))

    def of(self, position: int) -> SentenceVectors:
        a, b = int(self.offsets[position]), int(self.offsets[position + 1])
        return SentenceVectors(self.starts[a:b], self.ends[a:b], self.codes[a:b], self.scales[a:b])

    def save(self, directory: Path) -> None:
        for name in self.FILES:
            arrays.save(directory / f"sentences-{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: Path) -> SentenceTable:
        # Memory-mapped: the vectors stay in the page cache, shared by every process that reads them. Held as
        # plain arrays over the mapping, because np.memmap's own slicing costs microseconds a call.
        return cls(*(np.asarray(np.load(directory / f"sentences-{name}.npy", mmap_mode="r")) for name in cls.FILES))


@dataclass(frozen=True)
class Snapshot:
    """One generation's chunks (BM25 and, for an index within the flat-search limit, their vectors), its
    articles (texts and vectors), and every sentence's vector. Row i of ``chunk_vectors`` is
    ``lexical.chunks[i]``; row j of ``article_vectors`` is ``lexical.article_ids[j]``. Without vectors, dense
    search is the store's."""

    generation: str
    lexical: LexicalIndex
    sentences: SentenceTable
    articles: ArticleTable
    chunk_vectors: FlatVectors | None = None
    article_vectors: FlatVectors | None = None

    @property
    def chunks(self) -> ChunkTable:
        return self.lexical.chunks

    def chunk(self, chunk_id: str) -> Chunk | None:
        i = self.chunks.position(chunk_id)
        return None if i is None else self.chunks[i]

    def sentences_of(self, chunk_id: str) -> SentenceVectors | None:
        i = self.chunks.position(chunk_id)
        return None if i is None else self.sentences.of(i)

    def article_sentences(self, article_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored sentence of an article once, in order: starts, ends (article offsets) and unit vectors.
        Chunks overlap, so a sentence two chunks hold is taken from the first."""
        entry = self.chunks.article_entry(article_id)
        rows = np.flatnonzero(self.chunks.article_rows() == entry) if entry is not None else []
        parts = [self.sentences.of(int(r)) for r in rows]
        parts = [p for p in parts if len(p)]
        if not parts:
            width = self.sentences.codes.shape[1]
            return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, width), np.float32)
        starts = np.concatenate([p.starts for p in parts])
        ends = np.concatenate([p.ends for p in parts])
        vectors = np.concatenate([p.vectors() for p in parts])
        _, first = np.unique(np.stack([starts, ends], axis=1), axis=0, return_index=True)
        first = np.sort(first)
        vectors = vectors[first] / np.maximum(np.linalg.norm(vectors[first], axis=1, keepdims=True), 1e-12)
        return starts[first], ends[first], vectors

    @classmethod
    def build(
        cls,
        changes: Changes,
        generation: str,
        dimension: int,
        base: Snapshot | None = None,
        analyzer: Analyzer | None = None,
        directory: Path | None = None,
    ) -> Snapshot:
        """``base`` with ``changes`` applied: its rows for the articles it keeps, and ``changes.rows`` for the
        others (analysed here). Without a base, ``changes`` holds everything. With ``changes.with_vectors``,
        the base must hold vectors too.

        With ``directory``, the folder it is to be saved in, the large arrays are written into their files
        there, copying the base's unchanged rows file to file (rag.index.arrays), rather than made in memory."""
        if changes.with_vectors and base is not None and base.chunk_vectors is None:
            raise ValueError("a snapshot with vectors cannot be built on one without them; build from the store")
        # Unpacked as they come: the packed sentences of a whole index are a quarter of a gigabyte of text.
        new = sorted(
            ((c, SentenceVectors.unpack(b, dimension) if b else None, v) for c, b, v in changes.rows),
            key=lambda r: (r[0].article_id, r[0].ordinal),
        )
        chunks = [c for c, _, _ in new]
        base_keys = base.chunks.keys() if base is not None else []
        plan = RowPlan.merge(
            base_keys, [a not in changes.removed for a, _ in base_keys], [(c.article_id, c.ordinal) for c in chunks]
        )
        lexical = LexicalIndex.merged(base.lexical if base else None, plan, chunks, generation, analyzer, directory)
        sentences = SentenceTable.merged(
            base.sentences if base else None, plan, [s for _, s, _ in new], dimension, directory
        )
        chunk_vectors = article_vectors = None
        if changes.with_vectors:
            vectors = np.asarray([v for _, _, v in new], dtype=np.float32).reshape(len(new), dimension)
            dates = plan.fill(
                base.chunk_vectors.dates if base else None,
                np.asarray([date_ord(c.published) for c in chunks], dtype=np.int32),
            )
            chunk_vectors = FlatVectors.merged(
                base.chunk_vectors if base else None, plan, vectors, dates, dimension, directory, "chunks"
            )
            article_vectors = _article_vectors(lexical, chunks, vectors, base, dimension)
        added = sorted({a.id: a for a in changes.articles}.values(), key=lambda a: a.id)
        base_ids = base.articles.ids() if base is not None else []
        article_plan = RowPlan.merge(base_ids, [a not in changes.removed for a in base_ids], [a.id for a in added])
        articles = ArticleTable.merged(
            base.articles if base else None, article_plan, added, changes.versions, directory
        )
        return cls(generation, lexical, sentences, articles, chunk_vectors, article_vectors)

    def save(self, directory: Path) -> None:
        self.lexical.save(directory)
        self.sentences.save(directory)
        self.articles.save(directory)
        if self.chunk_vectors is not None:
            self.chunk_vectors.save(directory, "chunks")
            self.article_vectors.save(directory, "articles")
        # Written last: a folder without it is incomplete. Each file's sha256 lets an opener tell a damaged file
        # (a flipped byte gives wrong quotes, not an error) from a sound one.
        files = {name: file_sha256(directory / name) for name in _files(directory)}
        (directory / INFO).write_text(
            json.dumps(
                {
                    "generation": self.generation,
                    "format": FORMAT,
                    "analyzer": Analyzer.signature(),
                    "vectors": self.chunk_vectors is not None,
                    "files": files,
                }
            )
        )

    @classmethod
    def load(
        cls, directory: Path, analyzer: Analyzer | None = None, damaged: list[str] | None = None
    ) -> Snapshot | None:
        """The snapshot saved in ``directory``; None when it is missing, incomplete, of an older format, made by
        another analyzer, or damaged (a file's sha256 is not the one recorded; what is wrong is appended to
        ``damaged``)."""
        try:
            info = json.loads((directory / INFO).read_text())
            # Another analysis would make a question's terms miss the index's, and a grown snapshot mix the two.
            if info.get("format") != FORMAT or info.get("analyzer") != Analyzer.signature():
                return None
            problem = verify(directory, info.get("files"))
            if problem:
                if damaged is not None:
                    damaged.append(f"{directory.name}: {problem}")
                return None
            sentences = SentenceTable.load(directory)
            articles = ArticleTable.load(directory)
            chunk_vectors = article_vectors = None
            if info["vectors"]:
                chunk_vectors = FlatVectors.load(directory, "chunks")
                article_vectors = FlatVectors.load(directory, "articles")
        except (OSError, ValueError, KeyError):
            return None
        lexical = LexicalIndex.load(directory, analyzer)
        if lexical is None:
            return None
        return cls(info["generation"], lexical, sentences, articles, chunk_vectors, article_vectors)


def verify(directory: Path, files: dict[str, str] | None) -> str | None:
    """What is wrong with a saved snapshot's files against the sha256s it recorded, or None when nothing is."""
    if not isinstance(files, dict) or not files:
        return "no checksums recorded"
    present = set(_files(directory))
    missing = sorted(set(files) - present)
    if missing:
        return f"missing {', '.join(missing)}"
    for name, digest in sorted(files.items()):
        if file_sha256(directory / name) != digest:
            return f"{name} does not match its recorded sha256"
    return None


def _files(directory: Path) -> list[str]:
    """The files of a saved snapshot but its info file, by path relative to its folder."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.name != INFO)


def _article_vectors(
    lexical: LexicalIndex, chunks: list[Chunk], vectors: np.ndarray, base: Snapshot | None, dimension: int
) -> FlatVectors:
    """Each article's vector, the normalised mean of its chunks' (as the store's article records hold), in the
    order of ``lexical.article_ids``: the base's vector for an article it holds unchanged, else the mean of
    ``vectors``, the new ``chunks``' vectors. The chunk matrix is not read again."""
    rows: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        rows.setdefault(c.article_id, []).append(i)
    base_row = {a: i for i, a in enumerate(base.lexical.article_ids)} if base is not None else {}
    ids = lexical.article_ids
    matrix = np.empty((len(ids), dimension), dtype=np.float32)
    for j, a in enumerate(ids):
        matrix[j] = unit(vectors[rows[a]].mean(axis=0)) if a in rows else base.article_vectors.vectors[base_row[a]]
    return FlatVectors.build(matrix, [date_ord(lexical.published(a)) for a in ids], dimension)


class SnapshotStore:
    """The folder of saved snapshots, one per generation."""

    KEEP = 2  # generations kept on disk: the newest, and the one a slower process may still be loading

    def __init__(self, root: Path, dimension: Callable[[], int], analyzer: Analyzer | None = None) -> None:
        self.root = root
        self.dimension = dimension
        self.analyzer = analyzer or Analyzer()
        self.repairs: list[str] = []  # damaged snapshots found and rebuilt by this process, oldest first
        self._private: Path | None = None  # the scratch folder of the snapshot built for this process only

    def get(
        self,
        generation: str,
        changes_since: Callable[[Snapshot | None], Changes],
        build_lock: Callable[[], AbstractContextManager],
    ) -> Snapshot:
        """The snapshot for ``generation``: from disk when saved and sound, else built and saved.

        It is built on the newest sound snapshot saved here, from ``changes_since(that snapshot)``; on nothing,
        from ``changes_since(None)``, when there is none or it cannot serve as a base. ``build_lock`` is held while
        building, so only one process builds a generation. A damaged one is rebuilt, and `repairs` says so."""
        final = self.root / _safe_name(generation)
        found = self._load(final)
        if found is not None and found.generation == generation:
            return found
        if not scratch.writable(self.root):
            return self._build_private(generation, changes_since)
        with build_lock():
            found = self._load(final)  # another process may have built it meanwhile
            if found is not None and found.generation == generation:
                return found
            self.root.mkdir(parents=True, exist_ok=True)
            self.sweep_builds()
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
            try:
                snapshot = self._build(generation, changes_since, tmp)
                snapshot.save(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._prune(keep=final)
            # A build frees far more than it keeps: after one upload to the 64,570-chunk bench index a server
            # held 220 MB more than before it, all of it free.
            give_back_freed_heap()
        return Snapshot.load(final, self.analyzer) or snapshot

    def _build_private(self, generation: str, changes_since: Callable[[Snapshot | None], Changes]) -> Snapshot:
        """Build the snapshot in this process's scratch folder, when the index cannot be written: it serves this
        process, and goes when it exits or builds the next one."""
        log.warning(
            "%s cannot be written by this process: the snapshot of generation %s is built for this process only",
            self.root,
            generation,
        )
        directory = scratch.folder("snapshot")
        snapshot = Snapshot.build(changes_since(None), generation, self.dimension(), None, self.analyzer, directory)
        snapshot.save(directory)
        if self._private is not None:
            scratch.remove(self._private)
        self._private = directory
        return Snapshot.load(directory, self.analyzer) or snapshot

    def _load(self, directory: Path) -> Snapshot | None:
        damaged: list[str] = []
        found = Snapshot.load(directory, self.analyzer, damaged)
        for problem in damaged:
            log.warning("The saved snapshot %s is damaged; it is rebuilt from the store", problem)
            self.repairs.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} rebuilt {problem}")
        return found

    def damage(self, generation: str) -> str | None:
        """What is wrong with the saved snapshot of ``generation``, or None when it is sound (`rag check`)."""
        directory = self.root / _safe_name(generation)
        try:
            info = json.loads((directory / INFO).read_text())
        except (OSError, ValueError) as e:
            return f"{directory.name}: unreadable {INFO} ({e})"
        problem = verify(directory, info.get("files") if isinstance(info, dict) else None)
        return f"{directory.name}: {problem}" if problem else None

    def discard(self, generation: str) -> None:
        """Delete the saved snapshot of ``generation``, so that the next opener rebuilds it."""
        shutil.rmtree(self.root / _safe_name(generation), ignore_errors=True)

    def _build(self, generation: str, changes_since: Callable[[Snapshot | None], Changes], directory: Path) -> Snapshot:
        dimension = self.dimension()
        base = self._newest()
        if base is not None:
            changes = changes_since(base)
            if not (changes.with_vectors and base.chunk_vectors is None):
                try:
                    return Snapshot.build(changes, generation, dimension, base, self.analyzer, directory)
                except (OSError, ValueError) as e:  # a damaged base: the store has everything
                    log.warning(
                        "Building snapshot %s on %s failed (%s); building it from the whole store",
                        generation,
                        base.generation,
                        e,
                    )
        return Snapshot.build(changes_since(None), generation, dimension, None, self.analyzer, directory)

    def _newest(self) -> Snapshot | None:
        """The most recently saved snapshot that loads, if any."""
        if not self.root.is_dir():
            return None
        saved = []
        for p in self.root.iterdir():
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.name.startswith(".build-"):
                    saved.append((p.stat().st_mtime, p))
        for _, p in sorted(saved, reverse=True):
            found = self._load(p)
            if found is not None:
                return found
        return None

    def sweep_builds(self) -> None:
        """Delete unfinished builds. Call it under the build lock, which every builder holds while it builds:
        then any found is a dead process's."""
        if not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if p.name.startswith(".build-") and p.is_dir():
                log.info("Removing %s, a snapshot build its process did not finish", p.name)
                shutil.rmtree(p, ignore_errors=True)

    def _prune(self, keep: Path) -> None:
        now = time.time()
        saved = []
        for p in self.root.iterdir():
            try:
                age = now - p.stat().st_mtime
            except OSError:
                continue
            if p.is_dir() and p != keep and not p.name.startswith(".build-"):
                saved.append((age, p))
        for _, old in sorted(saved)[self.KEEP - 1 :]:
            shutil.rmtree(old, ignore_errors=True)


def _safe_name(generation: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", generation) or "empty"
