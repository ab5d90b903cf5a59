"""Large arrays assembled from pieces of others, in memory or straight into the file they are saved as.

Building a snapshot copies most of the previous one: hundreds of megabytes of sentence vectors, chunk vectors
and texts. Written into a mapped file, or read through the previous snapshot's mapping, every page copied
counts in the process's RSS until it is unmapped: at 64,570 chunks a server went from 0.9 to 2.6 GB during an
upload. A piece that comes from a mapped file is instead copied file to file by the kernel (`os.copy_file_range`
on Linux; read and written in blocks elsewhere), and new rows are written from memory, so neither snapshot's
pages enter the process.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

BLOCK = 8 << 20  # bytes read at a time where the kernel cannot copy


class Piece(NamedTuple):
    """Elements ``start``..``stop`` of ``source`` (flattened), which is mapped from ``file`` (path, byte offset
    of its first element) when that is known."""

    source: np.ndarray
    start: int
    stop: int
    file: tuple[Path, int] | None = None


def mapped_file(array: np.ndarray | None) -> tuple[Path, int] | None:
    """The file a C-contiguous ``array`` is a view of, through a `np.memmap`, and the byte offset of its first
    element there; None for an array in memory."""
    if array is None or not array.flags.c_contiguous:
        return None
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not isinstance(root, np.memmap) or not root.filename:
        return None
    # The root's first element is at root.offset in the file; a view's slices start later in the same mapping.
    return Path(root.filename), int(root.offset) + (array.ctypes.data - root.ctypes.data)


def assemble(pieces: Iterable[Piece], shape: tuple, dtype, path: Path | None = None) -> np.ndarray:
    """The pieces, concatenated, as an array of ``shape``: in memory, or written to ``path`` as a ``.npy`` file
    and returned mapped (read-only, none of its pages touched)."""
    dtype = np.dtype(dtype)
    if path is None:
        out = np.empty(shape, dtype=dtype)
        flat, at = out.reshape(-1), 0
        for p in pieces:
            flat[at : at + p.stop - p.start] = p.source.reshape(-1)[p.start : p.stop]
            at += p.stop - p.start
        if at != flat.size:
            raise ValueError(f"pieces of {at} elements for an array of shape {shape}")
        return out
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    )
    written = write(path, pieces, dtype.itemsize, header.getvalue())
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if written != expected:
        raise ValueError(f"pieces of {written} bytes for an array of shape {shape} ({expected} bytes)")
    return np.load(path, mmap_mode="r")


def write(path: Path, pieces: Iterable[Piece], itemsize: int, header: bytes = b"") -> int:
    """``header``, then the pieces' bytes, written to ``path``; the count of the pieces' bytes."""
    total = 0
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(path, "wb", buffering=0))
        sources: dict[Path, io.FileIO] = {}
        _write_all(out, header)
        for p in pieces:
            size = (p.stop - p.start) * itemsize
            if not size:
                continue
            if p.file is not None:
                where, offset = p.file
                if where not in sources:
                    sources[where] = files.enter_context(open(where, "rb", buffering=0))
                _copy(sources[where], out, offset + p.start * itemsize, size)
            else:
                _write_all(out, memoryview(np.ascontiguousarray(p.source.reshape(-1)[p.start : p.stop])).cast("B"))
            total += size
    return total


def _copy(source: io.FileIO, out: io.FileIO, offset: int, size: int) -> None:
    """``size`` bytes of ``source`` from ``offset``, appended to ``out``: in the kernel where it can (Linux)."""
    while size:
        n = 0
        if hasattr(os, "copy_file_range"):
            try:
                n = os.copy_file_range(source.fileno(), out.fileno(), size, offset)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                    raise
        if n == 0:  # no kernel copy here, or the source is shorter than its header says
            source.seek(offset)
            block = source.read(min(size, BLOCK))
            if not block:
                raise ValueError(f"{source.name} ends {size} bytes early: it was cut short")
            _write_all(out, block)
            n = len(block)
        offset += n
        size -= n


def _write_all(out: io.FileIO, data) -> None:
    view = memoryview(data)
    while len(view):
        view = view[out.write(view) :]


def save(path: Path, array: np.ndarray) -> None:
    """`np.save`, unless ``array`` is (a view of) the file at ``path`` already: saving it over itself would
    truncate the file it is read from. Such a file is not flushed either: its pages are the page cache's, which
    every reader of the file sees at once, and `np.save` does not wait for the disk; a flush (fsync) would,
    about 2 s for a large index's snapshot."""
    a = array
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap) and a.filename and Path(a.filename).resolve() == path.resolve():
            return
        a = a.base
    np.save(path, array)
