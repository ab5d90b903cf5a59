"""Private scratch folders for an index this process may read but not write (a read-only mount, another user's
folder): Chroma cannot open a store it may not write, and a snapshot it has to build cannot be saved beside it.

Each folder is under the system's temporary directory (``TMPDIR``), named for this process, and removed when it
exits; one left by a killed process is removed by the next process that makes one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "rag-scratch-"


def writable(path: Path) -> bool:
    """Whether this process may create and change files in ``path`` (or, if it does not exist yet, its nearest
    existing parent), and change the files already in it."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return False
    if probe.is_dir():
        with contextlib.suppress(OSError):
            return all(os.access(p, os.W_OK) for p in probe.iterdir() if p.is_file())
    return True


def folder(purpose: str) -> Path:
    """A new empty folder, removed when this process exits."""
    _sweep()
    made = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{purpose}-"))
    atexit.register(shutil.rmtree, made, True)
    return made


def copy(source: Path, purpose: str) -> Path:
    """A private copy of the folder ``source``, removed when this process exits."""
    target = folder(purpose) / source.name
    shutil.copytree(source, target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    log.warning(
        "%s cannot be written by this process, so it is read from a private copy in %s (%.1f MB)",
        source,
        target,
        size / 1e6,
    )
    return target


def remove(path: Path) -> None:
    """Remove a scratch folder (or the folder holding a copy) now, rather than at exit."""
    root = Path(tempfile.gettempdir())
    for p in (path, *path.parents):
        if p.parent == root and p.name.startswith(PREFIX):
            shutil.rmtree(p, ignore_errors=True)
            return


def _sweep() -> None:
    """Remove the scratch folders of processes that no longer run."""
    for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            pid = int(p.name[len(PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
