"""The persisted index as one consistent whole: the vector store, its BM25 snapshot, and who may write.

Readers see a committed generation. A writer holds the writer lock for its whole session, marks the
store "writing" before its first change, and commits a new generation last, in one metadata write. A
process that finds a "writing" mark while no writer holds the lock knows the writer died: it sweeps the
half-written articles and commits a new generation, so no crash point leaves a stale BM25 index or a
vector view that misses what was written.

Each process reopens its embedded store when another process has committed since it opened it, because
an open embedded Chroma keeps its vectors in memory and never sees another process's writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.index.chroma import ChromaStore, EmbeddedArticle
from rag.index.lexical import LexicalIndex
from rag.index.locks import IndexLocks
from rag.index.snapshot import Changes, Snapshot, SnapshotStore
from rag.index.stories import Member, StoryAssigner
from rag.types import Article

# Each step of a write is logged by name at debug level: a trace for an operator, and the points a fault test stops at.
log = logging.getLogger(__name__)


class StateStamp:
    """A copy of the embedded store's state in a small file beside it, rewritten (atomically) after each change
    to that state. A reader that finds the file as it was at its last look at the store knows nothing was
    committed since, without asking the store: reading it takes microseconds, the store's metadata about
    0.6 ms of a question, most of it holding the GIL, and behind a lock every question takes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except OSError:
            return None

    def write(self, text: str) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, self.path)
        except OSError:  # a reader then asks the store every time, as it would without the file
            tmp.unlink(missing_ok=True)


STATE_RECHECK = 1.0  # seconds: the store itself is asked at least this often, whatever the stamp says


@dataclass(frozen=True)
class View:
    """What a question reads: the store, and the snapshot (chunks, articles, BM25, sentence vectors) of one
    committed generation."""

    store: ChromaStore
    snapshot: Snapshot

    def articles(self, ids: Sequence[str]) -> dict[str, Article]:
        """The committed articles with these ids, as of this view's generation."""
        return self.snapshot.articles.get_many(ids)

    @property
    def lexical(self) -> LexicalIndex:
        return self.snapshot.lexical

    @property
    def generation(self) -> str:
        return self.snapshot.generation


@dataclass
class CheckReport:
    """Disagreements between the store, the BM25 snapshot and the index state."""

    generation: str = ""
    articles: int = 0
    chunks: int = 0
    dead_writer: bool = False
    orphan_articles: list[str] = field(default_factory=list)  # chunks without an article record
    incomplete_articles: list[str] = field(default_factory=list)  # record says n chunks, store holds another number
    unreadable_vectors: list[str] = field(default_factory=list)  # chunk ids whose vector Chroma cannot read
    unreadable_articles: list[str] = field(default_factory=list)  # the articles those chunks belong to
    lexical_stale: bool = False
    snapshot_damaged: str | None = None  # a saved snapshot file that does not match its recorded sha256
    repaired: list[str] = field(default_factory=list)
    read_only: bool = False  # this process cannot write the index, so it cannot repair it

    @property
    def ok(self) -> bool:
        return not (
            self.dead_writer
            or self.orphan_articles
            or self.incomplete_articles
            or self.unreadable_vectors
            or self.lexical_stale
            or self.snapshot_damaged
        )


class Index:
    def __init__(self, settings: Settings, manifest: Callable[[], dict]) -> None:
        s = settings
        self.store = ChromaStore(path=s.chroma_dir, url=s.chroma_url, prefix=s.collection, timeout=s.store_timeout)
        self.locks = IndexLocks(s.index_dir, writer_timeout=s.lock_timeout)
        self.snapshots = SnapshotStore(s.lexical_dir / s.collection, lambda: int(manifest()["dimension"]))
        self._manifest = manifest
        self.flat_search_limit = s.flat_search_limit
        self._checked = False  # whether this Index's manifest was checked against the store
        self._snapshot: Snapshot | None = None
        # A Chroma server may serve processes on other machines, which share no folder: ask it every time.
        self._stamp = StateStamp(s.index_dir / ".generation") if not s.chroma_url else None
        self._stamp_seen: str | None = None  # the stamp at the last look at the store, if that state was clean
        self._looked_at = 0.0
        self.recovered: list[str] = []  # dead writers' sessions this Index finished, oldest first
        self._swept = False  # whether this Index has looked for builds a killed process left

    # The store's connection is shared by every Index on the same folder in this process, and so are the
    # generation it was opened at and the locks that guard reopening it.
    @property
    def _rw(self):
        return self.store.conn.rw

    @property
    def _sync_lock(self):
        return self.store.conn.sync

    @property
    def _opened_at(self) -> str | None:
        return self.store.conn.opened_at

    @_opened_at.setter
    def _opened_at(self, generation: str | None) -> None:
        self.store.conn.opened_at = generation

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    # -- reading ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[View]:
        """The committed view, brought up to date first; the store is not reopened while the body runs."""
        self.sync()
        with self._rw.read():
            yield View(self.store, self._snapshot)

    def sync(self) -> None:
        """Open, or reopen after another process committed; recover a dead writer; load BM25 for the generation."""
        if self._unchanged():
            return
        with self._sync_lock:
            stamp = self._stamp.read() if self._stamp else None  # read before the store: a later commit changes it
            self._stamp_seen = None
            if self._opened_at is None or self.store.client is None:
                self._reopen()
            elif not self._checked:
                with self._rw.read():
                    self.store.check_manifest(self._manifest())
                self._checked = True
            state = self.store.state()
            if state.writing and not self.locks.writer_is_running():
                self._recover()
                state = self.store.state()
            if self.store.embedded and state.generation != self._opened_at:
                self._reopen()
            self._opened_at = state.generation
            if self._snapshot is None or self._snapshot.generation != state.generation:
                self._snapshot = self._load_snapshot(state.generation)
            # While a write is open, keep asking the store: its writer may die, and the next question recovers.
            self._stamp_seen = stamp if stamp is not None and not state.writing else None
            self._looked_at = time.monotonic()

    def _unchanged(self) -> bool:
        """Whether the stamp shows that nothing was marked or committed since this Index last asked the store
        (then at most STATE_RECHECK seconds ago), and the state it found then was clean."""
        if self._stamp_seen is None or self._snapshot is None or time.monotonic() - self._looked_at > STATE_RECHECK:
            return False
        return self._stamp.read() == self._stamp_seen

    def _reopen(self) -> None:
        with self._store_lock(), self._rw.write():
            self.store.open()
            self.store.check_manifest(self._manifest())
            self._checked = True
            self._opened_at = self.store.state().generation

    def _store_lock(self):
        # A Chroma server serialises its clients itself; only the embedded store needs the file lock.
        return self.locks.store() if self.store.embedded else contextlib.nullcontext()

    def _load_snapshot(self, generation: str) -> Snapshot:
        if not self._swept:
            # Builds a killed process left go when the next process opens the index, if no one is building now.
            self._swept = True
            with self.locks.lexical_build_if_free() as free:
                if free:
                    self.snapshots.sweep_builds()
        snapshot = self.snapshots.get(generation, self._changes_since, self.locks.lexical_build)
        if snapshot.chunk_vectors is not None and len(snapshot.chunks) > self.flat_search_limit:
            # Built by a process with a higher limit: this one's setting wins, and Chroma searches.
            snapshot = replace(snapshot, chunk_vectors=None, article_vectors=None)
        return snapshot

    def rebuild_snapshot(self) -> None:
        """Throw away the committed generation's saved snapshot and build it again from the store."""
        with self._sync_lock:
            generation = self.store.state().generation
            self.snapshots.discard(generation)
            self._snapshot = self._load_snapshot(generation)

    def build_snapshot(self) -> Snapshot:
        """The committed generation's snapshot built from the whole store, and not saved: what a first start, or a
        damaged snapshot, costs (`rag bench`)."""
        self.sync()
        with self._rw.read():
            return Snapshot.build(
                self._changes_since(None),
                self._opened_at,
                int(self._manifest()["dimension"]),
                None,
                self.snapshots.analyzer,
            )

    def _changes_since(self, base: Snapshot | None) -> Changes:
        """What the store holds beyond ``base`` (everything, without one): the articles with a record whose
        version ``base`` lacks, and their chunks. A half-written article's chunks are never searched. The chunks
        carry their vectors while the index is within the flat-search limit.

        An article rewritten while this runs may be read half old, half new; its version changed with the
        rewrite, so the next generation reads it again."""
        with_vectors = self.store.count_chunks() <= self.flat_search_limit
        versions = self.store.article_versions()
        held = base.articles.versions() if base is not None else {}
        changed = sorted(a for a, v in versions.items() if held.get(a) != v)
        removed = frozenset(a for a in held if versions.get(a) != held[a])
        wanted = set(changed)
        if base is None or len(changed) > len(versions) // 2:
            articles = [a for a in self.store.iter_articles() if a.id in wanted]
            rows = (r for r in self.store.iter_chunk_rows(with_vectors) if r[0].article_id in wanted)
        else:
            rows = self.store.chunk_rows_of(changed, with_vectors)
            articles = list(self.store.get_articles(changed).values())
        return Changes(removed, articles, {a: versions[a] for a in changed}, rows, with_vectors)

    # -- stories ---------------------------------------------------------------------------------
    def story_assigner(self) -> tuple[StoryAssigner, list[str]]:
        """Story placement over the committed articles that have been placed, for one write; and the
        committed articles that were stored before stories were kept, oldest first, for it to place."""
        self.sync()
        snapshot = self._snapshot
        placed, unplaced = [], []
        for article_id, story, published, signature in snapshot.articles.stories():
            if signature:
                placed.append(Member(article_id, story or article_id, published, signature))
            else:
                unplaced.append((published or "", article_id))
        if snapshot.article_vectors is not None:
            ids, vectors = snapshot.lexical.article_ids, snapshot.article_vectors

            def search(vector, n, low, high):
                return [(ids[row], score) for row, score in vectors.nearest(vector, n, low, high)]

        else:

            def search(vector, n, low, high):
                with self._rw.read():
                    return self.store.dense_article_query(vector, n, low, high)

        return StoryAssigner(placed, search), [a for _, a in sorted(unplaced)]

    def article_vectors(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The committed articles' vectors: the snapshot's, or the store's when it holds none."""
        snapshot = self._snapshot
        if snapshot is not None and snapshot.article_vectors is not None:
            row = {a: i for i, a in enumerate(snapshot.lexical.article_ids)}
            return {a: np.asarray(snapshot.article_vectors.vectors[row[a]]) for a in article_ids if a in row}
        with self._rw.read():
            return self.store.article_vectors(article_ids)

    # -- writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, purpose: str = "writing", timeout: float | None = None, renew: bool = False) -> Iterator[Writer]:
        """A write session: one at a time across processes. Commits a new generation at the end if it changed
        anything (or ``renew``); a session that changed nothing commits the generation it started from, so
        re-ingesting unchanged files does not make every reader rebuild its snapshot."""
        with self.locks.writer(timeout, purpose):
            with self._sync_lock:
                if (
                    self._opened_at is None
                    or self.store.state().generation != self._opened_at
                    or self.store.state().writing
                ):
                    self._reopen()  # what another process wrote must be in memory before we write on top
                started_at = self.store.state().generation
                if self.store.state().writing:
                    self.sweep()  # a writer died before us
                    renew = True
                session = uuid.uuid4().hex
                with self._store_lock():
                    self.store.mark_writing(session)
                    self._stamp_write(f"{started_at}\nwriting {session}")
            log.debug("write step %s", "after-mark-writing")
            writer = Writer(self, session)
            try:
                yield writer
            except BaseException:
                with contextlib.suppress(Exception):
                    self.sweep()
                    self._commit()
                raise
            log.debug("write step %s", "before-commit")
            self._commit(None if writer.changed or renew or not started_at else started_at)

    def _commit(self, generation: str | None = None) -> None:
        generation = generation or uuid.uuid4().hex
        # The snapshot is made before the commit, from what this session wrote (no other writer can change the
        # store meanwhile). Questions go on reading the previous generation while it is made, instead of waiting
        # for it (2-3 s at 64,570 chunks), and another process finds it saved when it sees the commit.
        with self._rw.read():
            snapshot = self._load_snapshot(generation)
        with self._sync_lock:
            with self._store_lock():
                self.store.commit(generation)
                self._stamp_write(generation)
                self._opened_at = generation
            log.debug("write step %s", "after-commit")
            self._snapshot = snapshot

    def _stamp_write(self, text: str) -> None:
        if self._stamp is not None:
            self._stamp.write(text)

    def sweep(self) -> list[str]:
        """Remove chunks that have no article record: what an interrupted write leaves behind."""
        with self._store_lock():
            orphans = self.store.orphan_articles()
            self.store.remove_chunks_of(orphans)
        return orphans

    def _recover(self) -> None:
        """Finish a dead writer's session: sweep its half-written articles and commit a new generation."""
        with contextlib.suppress(Exception), self.locks.writer(timeout=0, purpose="recovering"):
            if not self.store.state().writing:
                return
            self._reopen()
            swept = self.sweep()
            self._commit()
            self.recovered.append(
                f"finished a dead writer's session: removed {len(swept)} half-written article(s) and committed"
            )

    # -- checking --------------------------------------------------------------------------------
    def check(self, deep: bool = True) -> CheckReport:
        """Compare the store, the BM25 snapshot and the state, without changing anything."""
        seen = len(self.snapshots.repairs), len(self.recovered)
        self.sync()
        store = self.store
        state = store.state()
        report = CheckReport(generation=state.generation, read_only=self.locks.read_only)
        # Opening the index may itself have finished a dead writer's session or rebuilt a damaged snapshot: say so.
        report.repaired += self.recovered[seen[1] :] + self.snapshots.repairs[seen[0] :]
        report.snapshot_damaged = self.snapshots.damage(state.generation)
        with self._rw.read():
            stamps_meta = {r["id"]: r["chunks"] for r in store.list_articles()}
            report.articles = len(stamps_meta)
            per_article: dict[str, list[str]] = {}
            for c in store.iter_chunks():
                per_article.setdefault(c.article_id, []).append(c.id)
            report.chunks = sum(map(len, per_article.values()))
            report.dead_writer = bool(state.writing) and not self.locks.writer_is_running()
            report.orphan_articles = sorted(set(per_article) - set(stamps_meta))
            report.incomplete_articles = sorted(a for a, n in stamps_meta.items() if len(per_article.get(a, [])) != n)
            if deep:
                owner = {i: a for a, ids in per_article.items() for i in ids}
                ids = list(owner)
                for start in range(0, len(ids), 500):
                    got = store.chunk_vectors(ids[start : start + 500])
                    report.unreadable_vectors += [i for i, v in got.items() if v is None]
                report.unreadable_articles = sorted({owner[i] for i in report.unreadable_vectors})
            committed = {i for a, ids in per_article.items() if a in stamps_meta for i in ids}
            report.lexical_stale = set(self._snapshot.chunks.ids()) != committed
        return report

    @staticmethod
    def articles_to_rebuild(report: CheckReport) -> list[str]:
        return sorted(set(report.incomplete_articles) | set(report.unreadable_articles))


class Writer:
    """Writes inside a session; every batch goes to the store under the store lock."""

    def __init__(self, index: Index, session: str) -> None:
        self.index = index
        self.session = session
        self.changed = False  # whether anything was written or removed: only then is a new generation committed

    def write(self, items: Sequence[EmbeddedArticle], replacing: set[str], origins: dict[str, str]) -> None:
        self.changed = self.changed or bool(items) or bool(replacing)
        with self.index._store_lock(), self.index._rw.read():
            self.index.store.write_articles(items, replacing, origins)
        log.debug("write step %s", "after-write-batch")

    def set_stories(self, placed: dict[str, tuple[str, str]]) -> None:
        """Record stored articles' (story, signature)."""
        if not placed:
            return
        self.changed = True
        with self.index._store_lock(), self.index._rw.read():
            self.index.store.set_stories(placed)

    def delete(self, article_ids: Sequence[str]) -> int:
        removed = 0
        with self.index._store_lock(), self.index._rw.read():
            for aid in article_ids:
                removed += self.index.store.delete_article(aid)
        self.changed = self.changed or removed > 0
        return removed
