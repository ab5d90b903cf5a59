"""A slot for one costly object: opened on first use, dropped after a while unused, and never under a user.

The ingest encoder lives in one (rag.encoders.embedder): it holds about 0.25 GB between ingests and opens again in about
0.6 s, so a server that takes an upload now and then need not keep it between uploads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class IdleSlot(Generic[T]):
    """``open_fn`` gives the object, or None when there is none to be had (it is not asked again until a drop).

    `hold` and `let_go` bracket each use; a user keeps its own reference, so a drop only frees the object when
    the last user is done with it. ``idle_seconds`` 0 keeps the object for good."""

    def __init__(self, open_fn: Callable[[], T | None], idle_seconds: float = 0, name: str = "object") -> None:
        self._open = open_fn
        self.name = name
        self.idle_seconds = idle_seconds
        self._value: T | None = None
        self._opened = False  # open_fn has answered, with the object or None
        self._lock = threading.Lock()  # the state below; never held while open_fn runs, which can take seconds
        self._opening = threading.Lock()  # one open at a time
        self._users = 0
        self._last_use = 0.0  # time.monotonic() of the last hold or let_go
        self._timer: threading.Timer | None = None

    @property
    def value(self) -> T | None:
        """The object if it is open now, else None (it may never have been, or have been dropped)."""
        return self._value

    def get(self) -> T | None:
        """The object, opened first if need be."""
        with self._lock:
            if self._opened:
                return self._value
        with self._opening:
            with self._lock:
                if self._opened:
                    return self._value
            value = self._open()
            with self._lock:
                self._value, self._opened = value, True
                return value

    def hold(self) -> T | None:
        """`get`, counted as in use until `let_go` (only when there is an object)."""
        value = self.get()
        if value is not None:
            with self._lock:
                self._users += 1
                self._last_use = time.monotonic()
        return value

    def let_go(self) -> None:
        with self._lock:
            self._users -= 1
            self._last_use = time.monotonic()
            if self.idle_seconds > 0 and self._timer is None:
                self._arm(self.idle_seconds)

    def _arm(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._drop_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _drop_if_idle(self) -> None:
        with self._lock:
            self._timer = None
            if self._value is None or self._users:  # nothing to drop, or the last user to let go arms it again
                return
            waited = time.monotonic() - self._last_use
            if waited < self.idle_seconds:
                self._arm(self.idle_seconds - waited)
                return
            self._value, self._opened = None, False
        log.info("Dropped the %s after %.0f s unused; it opens again when next needed.", self.name, waited)
