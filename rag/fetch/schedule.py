"""Feed refreshes on a schedule, inside a server (`rag serve --refresh-feeds 30m`): a background thread runs
one refresh pass, then waits the interval. Only one process refreshes at a time (`IndexLocks.refreshing`), so
several workers, or a cron job beside them, never fetch and write the same feeds together."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from rag.errors import BadInput, RagError

log = logging.getLogger(__name__)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_interval(text: str) -> float:
    """'30m' -> 1800.0; a plain number is seconds. At least a minute: feeds are not polled harder."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not match:
        raise BadInput(f"'{text}' is not an interval: write e.g. 90s, 30m, 2h or 1d.")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds < 60:
        raise BadInput(f"'{text}' is under a minute; feeds are refreshed at most once a minute.")
    return seconds


class FeedSchedule:
    def __init__(self, refresh: Callable[[], list], interval: float, ready: Callable[[], bool] = lambda: True) -> None:
        self.refresh = refresh
        self.interval = interval
        self.ready = ready  # the first pass waits for this (the server's warm-up), so it never slows the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-refresh", daemon=True)
        self.passes = 0

    def start(self) -> FeedSchedule:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self.ready() and not self._stop.wait(0.5):
            pass
        while not self._stop.is_set():
            try:
                outcomes = self.refresh()
                for o in outcomes:
                    r = o.report
                    log.info(
                        "feed %s: %s (added %d, updated %d, skipped %d)%s",
                        o.name,
                        o.status,
                        r.added,
                        r.updated,
                        len(r.skipped),
                        f": {o.error}" if o.error else "",
                    )
            except RagError as e:  # a read-only index, a busy writer: said in one line, and tried again next time
                log.warning("feed refresh skipped: %s", e)
            except Exception:  # a refresh must never end the schedule; each feed's error is also in its record
                log.exception("feed refresh failed")
            self.passes += 1
            self._stop.wait(self.interval)
