"""Named crash points for the fault tests: the process dies there, as a SIGKILL would leave it.

`RAG_CRASH_AT=NAME` makes `point(NAME)` end the process at once, with no cleanup and no flush, so a test can
stop a real ingest at an exact step and check what the next process finds. Unset, a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def point(name: str) -> None:
    if os.environ.get("RAG_CRASH_AT") == name:
        os._exit(CRASH_EXIT_CODE)
