"""`python -m tests.helpers.crash_at STEP ARGS...`: the `rag` command, killed at one named step of an index write.

The index logs each write step by name at debug level; a handler on that logger ends the process there at once,
with no cleanup and no flush, as a SIGKILL would, so a test can check what the next process finds.
"""

from __future__ import annotations

import logging
import os
import sys

CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


class CrashAt(logging.Handler):
    def __init__(self, step: str):
        super().__init__(logging.DEBUG)
        self.step = step

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "write step %s" and record.args == (self.step,):
            os._exit(CRASH_EXIT_CODE)


def main(argv: list[str]) -> int:
    step, *args = argv
    logger = logging.getLogger("rag.index.index")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(CrashAt(step))
    from rag.cli import main as rag_main

    return rag_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
