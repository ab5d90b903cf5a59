"""Cross-process locks on an index folder. The one module that imports `filelock`.

Two locks, both operating-system file locks (released by the kernel when a holder dies, even by SIGKILL):

- the **writer lock** is held for a whole write session (an ingest run, an upload, a delete), so writers take
  turns and a second one waits or is told who holds the index;
- the **store lock** is held only while a process opens the embedded Chroma store or writes one batch to it.
  Chroma's embedded store is not safe across processes: a process that loads it while another writes can crash
  (seen here: a segmentation fault in `count()`), and a writer whose view is stale overwrites the vectors
  another process added. Opening and writing under one lock rules out both.

An index this process cannot write (a read-only mount, another user's folder) is still read: the locks are
then taken shared on the existing lock files, which needs no write access, so a writer elsewhere is still
waited for; and a write session is refused with `ReadOnlyIndex`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import IndexBusy, ReadOnlyIndex

try:
    import fcntl
except ImportError:  # Windows: a read-only index is read without locks
    fcntl = None


class IndexLocks:
    def __init__(self, directory: Path, writer_timeout: float = 600.0, store_timeout: float = 120.0) -> None:
        self.directory = directory
        self.writer_timeout = writer_timeout
        self.store_timeout = store_timeout
        self._writer = FileLock(str(directory / ".writer.lock"))
        self._store = FileLock(str(directory / ".store.lock"))
        self._lexical = FileLock(str(directory / ".lexical.lock"))
        self._feeds = FileLock(str(directory / ".feeds.lock"))
        self._refresh = FileLock(str(directory / ".refresh.lock"))
        self._owner_file = directory / ".writer.owner"

    @property
    def read_only(self) -> bool:
        """Whether this process cannot write in the index folder (asked each time: a mount can change)."""
        return self.directory.is_dir() and not os.access(self.directory, os.W_OK)

    def refuse_writes(self) -> None:
        """Raise ReadOnlyIndex when the index folder is read-only for this process."""
        if self.read_only:
            raise ReadOnlyIndex(
                f"The index at {self.directory} is read-only for this process (a read-only mount, or another "
                "user's folder). Questions, `rag list` and `rag check` work; adding, removing or repairing "
                "articles needs write access to it."
            )

    @contextlib.contextmanager
    def writer(self, timeout: float | None = None, purpose: str = "writing") -> Iterator[None]:
        """Hold the writer lock for a write session; after ``timeout`` seconds, IndexBusy names the holder."""
        self.refuse_writes()
        self.directory.mkdir(parents=True, exist_ok=True)
        wait = self.writer_timeout if timeout is None else timeout
        try:
            self._writer.acquire(timeout=wait)
        except Timeout:
            raise IndexBusy(
                f"Another process is writing to the index at {self.directory} ({self._holder()}); waited {wait:g} s. "
                "Try again when it has finished, or raise RAG_LOCK_TIMEOUT to wait longer.",
                retry_after=30,
            ) from None
        try:
            with contextlib.suppress(OSError):
                self._owner_file.write_text(f"pid {os.getpid()}, {purpose} since {time.strftime('%H:%M:%S')}")
            yield
        finally:
            self._writer.release()

    def writer_is_running(self) -> bool:
        """Whether some process (this one included) holds the writer lock now."""
        if self.read_only:
            return _held_elsewhere(self.directory / ".writer.lock")
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._writer.is_locked:
            return True
        try:
            self._writer.acquire(timeout=0)
        except Timeout:
            return True
        self._writer.release()
        return False

    @contextlib.contextmanager
    def store(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the store lock while opening the embedded store or writing one batch to it."""
        wait = self.store_timeout if timeout is None else timeout
        if self.read_only:
            with _shared(self.directory / ".store.lock", wait, self._holder):
                yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._store.acquire(timeout=wait)
        except Timeout:
            raise IndexBusy(
                f"The index at {self.directory} stayed busy for {wait:g} s ({self._holder()}); try again shortly.",
                retry_after=10,
            ) from None
        try:
            yield
        finally:
            self._store.release()

    @contextlib.contextmanager
    def lexical_build(self) -> Iterator[None]:
        """Held while building a BM25 snapshot, so processes that need the same one build it once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lexical:
            yield

    @contextlib.contextmanager
    def lexical_build_if_free(self) -> Iterator[bool]:
        """The build lock if no process holds it now (True), else nothing (False); never waits."""
        if not self.directory.is_dir() or self.read_only:
            yield False
            return
        with _if_free(self._lexical) as free:
            yield free

    @contextlib.contextmanager
    def feeds(self) -> Iterator[None]:
        """Held for each read-modify-write of the feed list (short: no fetching under it)."""
        self.refuse_writes()
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._feeds:
            yield

    @contextlib.contextmanager
    def refreshing(self) -> Iterator[bool]:
        """The feed-refresh lock if no process holds it (True), else nothing (False): one refresh at a time, so a
        server's schedule and a cron job never fetch and write the same feeds together."""
        self.refuse_writes()
        self.directory.mkdir(parents=True, exist_ok=True)
        with _if_free(self._refresh) as free:
            yield free

    def _holder(self) -> str:
        try:
            return "held by " + self._owner_file.read_text().strip()
        except OSError:
            return "holder unknown"


@contextlib.contextmanager
def _if_free(lock: FileLock) -> Iterator[bool]:
    """``lock`` if no process holds it now (True), else nothing (False); never waits."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def _shared(path: Path, wait: float, holder) -> Iterator[None]:
    """A shared lock on an existing lock file, opened read-only; none when there is no file (nor any writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    try:
        deadline = time.monotonic() + wait
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    if e.errno in (errno.EAGAIN, errno.EACCES):
                        raise IndexBusy(
                            f"The index at {path.parent} stayed busy for {wait:g} s ({holder()}); try again shortly.",
                            retry_after=10,
                        ) from None
                    raise
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the file releases its lock


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds an exclusive lock on ``path`` (False when there is no such file)."""
    try:
        with _shared(path, 0.0, lambda: ""):
            return False
    except IndexBusy:
        return True


class ReadWriteLock:
    """Many readers or one writer, writers first: questions share the open store; a reopen waits for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
