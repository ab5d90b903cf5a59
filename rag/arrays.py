"""Large arrays made in the files they are saved as, so that building a snapshot does not hold them in its heap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Allocate = Callable[[str, tuple, "np.dtype | type"], np.ndarray]  # (file name, shape, dtype) -> an empty array


def in_memory(name: str, shape: tuple, dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype)


def in_folder(directory: Path) -> Allocate:
    """Arrays made as ``.npy`` files in ``directory``, mapped: their pages are the page cache's, written back by
    the kernel, not the process's own memory (the 200 MB of a large index's sentence vectors, for one)."""

    def allocate(name: str, shape: tuple, dtype) -> np.ndarray:
        return np.lib.format.open_memmap(directory / name, mode="w+", dtype=dtype, shape=shape)

    return allocate


def save(path: Path, array: np.ndarray) -> None:
    """`np.save`, unless ``array`` is (a view of) the file at ``path`` already: saving it over itself would
    truncate the file it is read from. Such a file is not flushed either: a shared mapping's pages are the page
    cache's, which every reader of the file sees at once, and `np.save` does not wait for the disk; a flush
    (msync) would, about 2 s for a large index's snapshot."""
    a = array
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap) and a.filename and Path(a.filename).resolve() == path.resolve():
            return
        a = a.base
    np.save(path, array)
