"""One thread that runs every model in the process: the encoder, and an extractive-QA reader if there is one.

On two cores, requests that each ran a model on their own threads oversubscribed the CPU and slowed several
times over under contention. Here every model call from every thread is a job for one owner thread, so only one
model computes at a time and its own thread count is the only pool. Each job sets the threads it computes with:
a question runs on one (`rag.encoders.embedder` says why), an ingest's batches on every core they may use. Jobs
run one at a time and are never merged, so a result never depends on what else was asked at the same moment.

Questions come first: a job submitted as BACKGROUND (an ingest's, cut into small jobs) runs only when no
question's job is waiting, so a question waits for at most one small ingest job, however large the upload.

Loading a model is not a job here: a server's questions, queued behind a load, would wait for it
(`rag.encoders.embedder` loads a model on the thread that needs it).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

URGENT = 0  # a question's job
BACKGROUND = 1  # an ingest's: runs when no question's job waits


class ModelWorker:
    def __init__(self) -> None:
        # (priority, order of arrival, fn, args, future): questions first, then first come, first served
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable, tuple, Future]] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], *args: Any, priority: int = URGENT) -> Any:
        """Run ``fn(*args)`` on the owner thread and wait; its exception is raised here."""
        return self.submit(fn, *args, priority=priority).result()

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = URGENT) -> Future:
        """Queue ``fn(*args)`` for the owner thread; the caller may work meanwhile and wait on the Future."""
        done: Future = Future()
        if threading.current_thread() is self._thread:  # a job's own call: run it now, never queue behind itself
            try:
                done.set_result(fn(*args))
            except BaseException as e:
                done.set_exception(e)
            return done
        self._jobs.put((priority, next(self._arrivals), fn, args, done))
        self._start()
        return done

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="model-worker", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            _, _, fn, args, done = self._jobs.get()
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn(*args))
                except BaseException as e:  # handed to the caller, who raises it
                    done.set_exception(e)
            # Held here until the next job arrives, a job's arguments would outlive it: an ingest encoder dropped
            # when idle stayed in memory until the next question.
            del fn, args, done


def use_torch_threads(n: int) -> None:
    """Let torch compute with ``n`` threads from now on; for jobs that run torch, on the worker."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def one_blas_thread() -> None:
    """Let numpy's BLAS compute on one thread from now on, in this process.

    A server's parallelism is its concurrent requests. With BLAS on both cores, its threads spin between the
    few large products a question makes (the dense search's): measured through `rag serve` on the bench index,
    58 ms of server CPU per question against 39 ms on one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def give_back_freed_heap() -> None:
    """Return to the system the heap this process has freed. glibc keeps freed blocks in each thread's arena for
    reuse, so memory a snapshot build or an encoder's buffers gave up still counts in the process's RSS until
    then. Elsewhere than glibc there is nothing to call."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


_shared: ModelWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> ModelWorker:
    """The process's model worker."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ModelWorker()
        return _shared
