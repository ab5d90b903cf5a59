"""One thread that runs every model in the process: the encoder, and an extractive-QA reader if there is one.

On two cores, requests that each ran torch on their own threads oversubscribed the CPU and slowed 5x under
contention. Here every model call from every thread is a job for one owner thread, so torch's pool is the only
one computing. A small job (a question) runs on one thread: measured here with another process busy on both
cores, a question took 29 ms on one thread and 129 ms (p95 500 ms) on two, and on a quiet machine the second
thread saves about a millisecond. A large job (an ingest's batches) runs on every core it may use. Jobs run one at
a time and are never merged, so a result never depends on what else was asked at the same moment.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class ModelWorker:
    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self._jobs: queue.Queue[tuple[Callable, tuple, Future, bool]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], *args: Any, large: bool = False) -> Any:
        """Run ``fn(*args)`` on the owner thread and wait; its exception is raised here. A ``large`` job gets
        every core; a small one, one thread."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        done: Future = Future()
        self._jobs.put((fn, args, done, large))
        self._start()
        return done.result()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="model-worker", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        import torch

        current = 0
        while True:
            fn, args, done, large = self._jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            wanted = self.threads if large else 1
            if wanted != current:
                torch.set_num_threads(wanted)
                current = wanted
            try:
                done.set_result(fn(*args))
            except BaseException as e:  # handed to the caller, who raises it
                done.set_exception(e)


_shared: dict[int, ModelWorker] = {}
_shared_lock = threading.Lock()


def shared_worker(threads: int | None = None) -> ModelWorker:
    """The process's model worker (one per thread count asked for; in practice, one)."""
    n = threads or os.cpu_count() or 1
    with _shared_lock:
        return _shared.setdefault(n, ModelWorker(n))
