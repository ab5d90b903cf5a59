"""A reader that reads in a child process of its own, so that a server's Python runs on two cores.

Answering a question holds the GIL for most of its time, and the fitted reader's features are about half of it;
with several clients on two cores, threads waited for the GIL while a core sat idle. A child has a GIL of its own.

The child is started with `spawn` (threads and the model runtime make `fork` unsafe) and builds the same reader from a
factory. A question's analysis and evidence go to it pickled, through a pipe, and its Reading comes back. The
child reads one question at a time, in the order asked, and nothing it keeps between questions changes a result,
so an answer is what the reader would give in the server's own process (a test compares them). The rules switched
off for the calling thread travel with each question.

A question that is alone in the process is read here all the same: with nothing else wanting the GIL, the trip
through the pipe would only cost time. Only while other questions are being answered (``busy``) does it go to
the child.

If the child dies or misses a deadline, the question it was reading is read in the server's own process, and the
next one starts a new child. A child that cannot start, or dies MAX_RESTARTS times, is given up on: the process
then reads every question itself, as it would without one, and says why in its log.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

from rag.answer.question import QuestionAnalysis
from rag.answer.reading import Evidence, Reader, Reading
from rag.language import rules

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # seconds for a child to import and build its reader before it counts as failed
MAX_RESTARTS = 3
READ_TIMEOUT = (
    10.0  # seconds: a reading takes milliseconds, so a child this late is stuck; every question waits behind it
)
PIPE_BUFFER = 65536  # bytes a pipe takes before a send waits for the reader (Linux's default)


class ReaderProcess:
    """A Reader whose `read` runs in a child process. ``factory``, a picklable top-level callable, builds the
    reader there; ``local`` is the same reader in this process: its thresholds are the child's, and it reads
    whatever the child cannot."""

    def __init__(self, factory: Callable[[], Reader], local: Reader, busy: Callable[[], bool] | None = None) -> None:
        """``busy()``: whether other questions are being answered in this process now; unset, always."""
        self.factory = factory
        self.local = local
        self.busy = busy
        self.name = local.name
        self._lock = threading.Lock()  # one question at a time on the pipe: the child reads them in turn
        self._holder_since: float | None = None  # when the question holding the pipe took it
        self._conn: Connection | None = None
        self._process = None
        self.sent = 0  # questions read in the child (for tests and the bench)
        self.deaths = 0  # children that died after they started
        self._started = 0
        self.given_up: str | None = None  # why every question is read here, when it is

    @property
    def restarts(self) -> int:
        """Children started after the first."""
        return max(0, self._started - 1)

    @property
    def where(self) -> str:
        """Where questions are read: in the child, or here and why."""
        return f"in this process ({self.given_up})" if self.given_up else "in a child process"

    @property
    def thresholds(self):
        return self.local.thresholds

    def warm_up(self) -> None:
        """Load the local reader and start the child, so the first question does not wait for either."""
        self.local.warm_up()
        with self._lock:
            if self.given_up is None:
                try:
                    self._connection()
                except ChildFailed as e:
                    self._give_up(str(e))

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading:
        if self.busy is not None and not self.busy():
            return self.local.read(question, evidence)
        request = pickle.dumps((rules.disabled_now(), question, evidence), protocol=pickle.HIGHEST_PROTOCOL)
        reply = None
        # Every wait has a deadline: for the pipe, for sending, for the reading. A question that cannot have
        # the child in time is read here; a child that misses a deadline is replaced.
        if self.given_up is None and self._lock.acquire(timeout=READ_TIMEOUT):
            self._holder_since = time.monotonic()
            try:
                if self.given_up is None:
                    conn = self._connection()
                    self._send(conn, request)
                    if not conn.poll(READ_TIMEOUT):
                        raise TimeoutError(f"no reading after {READ_TIMEOUT:.0f} s")
                    reply = conn.recv_bytes()
                    self.sent += 1
            except ChildFailed as e:
                if self.given_up is None:
                    self._give_up(str(e))
            except (OSError, EOFError) as e:
                self._died(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, "this question is read here")
            finally:
                self._holder_since = None
                self._lock.release()
        if reply is None:
            return self.local.read(question, evidence)
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        return value

    def _send(self, conn: Connection, data: bytes) -> None:
        """Send within READ_TIMEOUT. A pipe holds 64 KiB: a larger request waits for the child to read it, so it
        is sent from a thread of its own, and a child that does not take it in time is stopped, which ends the
        send with an error."""
        if len(data) < PIPE_BUFFER:
            conn.send_bytes(data)
            return
        failed: list[BaseException] = []

        def send() -> None:
            try:
                conn.send_bytes(data)
            except BaseException as e:  # raised below, in the asking thread
                failed.append(e)

        sender = threading.Thread(target=send, name="reader-send", daemon=True)
        sender.start()
        sender.join(READ_TIMEOUT)
        if sender.is_alive():
            if self._process is not None:
                self._process.kill()
            sender.join(READ_TIMEOUT)
            raise TimeoutError(f"the reader process did not take a question within {READ_TIMEOUT:.0f} s")
        if failed:
            raise failed[0]

    @property
    def stuck(self) -> bool:
        """Whether a question has held the child past its deadline: /healthz says the server is degraded."""
        since = self._holder_since
        return since is not None and time.monotonic() - since > READ_TIMEOUT

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _connection(self) -> Connection:
        if self._process is not None:
            if self._process.is_alive():
                return self._conn
            self._died(f"it exited with code {self._process.exitcode}", "a new one starts")
            if self.given_up is not None:
                raise ChildFailed(self.given_up)
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child, self.factory), name="reader", daemon=True)
        process.start()
        child.close()
        try:
            if not parent.poll(START_TIMEOUT):
                raise ChildFailed(f"the reader process did not start within {START_TIMEOUT:.0f} s")
            ok, problem = pickle.loads(parent.recv_bytes())
            if not ok:
                raise ChildFailed(f"the reader process could not build its reader: {problem}")
        except (OSError, EOFError) as e:
            process.kill()
            raise ChildFailed(f"the reader process exited while starting (code {process.exitcode})") from e
        except ChildFailed:
            process.kill()
            raise
        self._conn, self._process = parent, process
        self._started += 1
        return parent

    def _died(self, how: str, then: str) -> None:
        self._stop()
        self.deaths += 1
        if self.deaths >= MAX_RESTARTS:
            self._give_up(f"the reader process died {self.deaths} times, the last time: {how}")
        else:
            log.warning("the reader process died (%s); %s", how, then)

    def _give_up(self, why: str) -> None:
        self._stop()
        self.given_up = why
        log.warning("questions are read in the server's own process from now on: %s", why)

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child sees the end of its input and exits
        if self._process is not None:
            self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(2)
        self._conn = self._process = None


class InFlight:
    """How many questions a process is answering now: its pipeline counts them, its reader process asks."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def others(self) -> bool:
        """Whether a question other than the caller's is being answered."""
        return self._count > 1

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1


class ChildFailed(RuntimeError):
    pass


def serve(conn: Connection, factory: Callable[[], Reader]) -> None:
    """The child's loop: build the reader, say so, then read each question sent until the pipe closes."""
    try:
        from rag.encoders.worker import one_blas_thread

        one_blas_thread()
        reader = factory()
        reader.warm_up()
    except Exception as e:
        conn.send_bytes(pickle.dumps((False, f"{type(e).__name__}: {e}")))
        return
    conn.send_bytes(pickle.dumps((True, None)))
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        switched_off, question, evidence = pickle.loads(request)
        try:
            with rules.disabled(*switched_off):
                reply = (True, reader.read(question, evidence))
        except Exception as e:  # the caller raises it, as if it had read the question itself
            reply = (False, e)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            data = pickle.dumps((False, RuntimeError(f"the reader process could not send its result back: {e}")))
        conn.send_bytes(data)
