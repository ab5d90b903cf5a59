"""Nearest-neighbour search over one generation's vectors, exact in its results: memory-mapped matrices.

Chroma stays the store of record; each snapshot copies its vectors into one float32 matrix, so a question's
dense search is a matrix-vector product instead of a call into Chroma. A date bound is a mask over the rows, not
an over-fetch that may miss what the bound admits. Files are mapped, not read: every process serving the same
generation shares one copy in the page cache.

From INT8_FROM rows on, the product is first taken over int8 copies of the rows (rag.encoders.onnx: 1-2 ms
instead of 8.4 ms on one thread at 64,570 chunks, and a quarter of the memory touched); the best rows of that
shortlist are then scored exactly in float32. The result is the exact search's unless int8 rounding moved some
score by more than MARGIN, which is checked on every search and answered with the full float32 product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.index import arrays
from rag.index.topk import best, shortlist

INT8_FROM = 20_000  # rows: below this the float32 product is cheap enough on its own
SHORTLIST = 4  # rows scored exactly, per row wanted (at least SHORTLIST_MIN)
SHORTLIST_MIN = 200
# The most an int8 score may differ from the float32 one for the shortlist to be trusted. Measured on the
# bench index (64,570 unit rows of 384 dimensions, 200 queries), the largest difference was 0.0026.
MARGIN = 0.01


class FlatVectors:
    """Unit vectors, one row per item, with each row's publication date (YYYYMMDD, 0 when undated), and for a
    large matrix the rows' int8 codes (transposed: dimension x rows) with a scale per row."""

    def __init__(
        self,
        vectors: np.ndarray,
        dates: np.ndarray,
        columns: np.ndarray | None = None,
        scales: np.ndarray | None = None,
    ) -> None:
        if len(vectors) != len(dates):
            raise ValueError(f"{len(vectors)} vectors but {len(dates)} dates")
        self.vectors, self.dates = vectors, dates
        self.columns, self.scales = columns, scales
        self._int8 = None
        self.fallbacks = 0  # searches whose shortlist could not be trusted (for tests and the bench)

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def build(cls, vectors: np.ndarray | list, dates: list[int], dimension: int) -> FlatVectors:
        from rag.encoders.onnx import quantize_columns

        matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(dates), dimension))
        columns, scales = quantize_columns(matrix) if len(matrix) >= INT8_FROM else (None, None)
        return cls(matrix, np.asarray(dates, dtype=np.int32), columns, scales)

    @classmethod
    def merged(
        cls,
        base: FlatVectors | None,
        plan,
        new: np.ndarray,
        dates: np.ndarray,
        dimension: int,
        directory: Path | None = None,
        name: str = "",
    ) -> FlatVectors:
        """The rows ``plan`` (a `RowPlan`) names, from ``base`` and from ``new`` (float32, one row each), with
        ``dates`` for every row; equal to `build` over all of them. With ``directory``, the vectors and int8 codes
        are written there as `save` would, the base's copied file to file, and mapped; only the new rows are
        quantised."""

        def path(kind: str) -> Path | None:
            return directory / f"{name}-{kind}.npy" if directory is not None else None

        matrix = arrays.assemble(
            plan.pieces(base.vectors if base is not None else None, new),
            (len(plan), dimension),
            np.float32,
            path("vectors"),
        )
        if len(plan) < INT8_FROM:
            return cls(np.asarray(matrix), dates)
        from rag.encoders.onnx import quantize_columns

        if base is None or base.columns is None:
            columns, scales = quantize_columns(matrix)
        else:
            new_columns, new_scales = quantize_columns(new)
            # The codes are stored a dimension at a time, so each dimension's row is planned like the rows.
            pieces = [p for d in range(dimension) for p in plan.pieces(base.columns[d], new_columns[d])]
            columns = arrays.assemble(pieces, (dimension, len(plan)), np.int8, path("int8"))
            scales = arrays.assemble(plan.pieces(np.asarray(base.scales), new_scales), (len(plan),), np.float32)
        return cls(matrix, dates, columns, scales)

    def nearest(
        self, vector: np.ndarray, n: int, low: int | None = None, high: int | None = None
    ) -> list[tuple[int, float]]:
        """The ``n`` rows most similar to ``vector``: (row, cosine similarity), best first; ties by row.

        With ``low``/``high``, only rows dated within them (inclusive) are candidates."""
        if n <= 0 or not len(self):
            return []
        vector = np.asarray(vector, dtype=np.float32)
        allowed = None
        if low is not None or high is not None:
            allowed = np.ones(len(self), dtype=bool)
            if low is not None:
                allowed &= self.dates >= low
            if high is not None:
                allowed &= self.dates <= high
        available = len(self) if allowed is None else int(allowed.sum())
        n = min(n, available)
        if n == 0:
            return []
        if self.columns is not None:
            found = self._shortlisted(vector, n, allowed, available)
            if found is not None:
                return found
            self.fallbacks += 1
        scores = self.vectors @ vector
        rows = np.flatnonzero(allowed) if allowed is not None else np.arange(len(scores))
        return best(rows, scores[rows], n)

    def _shortlisted(
        self, vector: np.ndarray, n: int, allowed: np.ndarray | None, available: int
    ) -> list[tuple[int, float]] | None:
        """The exact top ``n`` found through the int8 scores, or None when the shortlist cannot be trusted."""
        approx = self._dot().scores(vector)
        candidates = np.flatnonzero(allowed) if allowed is not None else np.arange(len(approx))
        size = min(available, max(SHORTLIST * n, SHORTLIST_MIN))
        rows = shortlist(candidates, approx[candidates], size)  # in row order: mapped rows are read in order
        found = best(rows, self.vectors[rows] @ vector, n)
        if size >= available:
            return found
        # A row left out scored at most `cutoff` in int8, so at most cutoff + MARGIN exactly: the n-th best
        # found must beat that for nothing left out to belong in the top n.
        cutoff = float(approx[rows].min())
        return found if found[-1][1] > cutoff + MARGIN else None

    def _dot(self):
        if self._int8 is None:
            from rag.encoders.onnx import Int8DotProduct

            self._int8 = Int8DotProduct(self.columns, self.scales)
        return self._int8

    def save(self, directory: Path, name: str) -> None:
        arrays.save(directory / f"{name}-vectors.npy", self.vectors)
        np.save(directory / f"{name}-dates.npy", self.dates)
        if self.columns is not None:
            arrays.save(directory / f"{name}-int8.npy", self.columns)
            np.save(directory / f"{name}-scales.npy", self.scales)

    @classmethod
    def load(cls, directory: Path, name: str) -> FlatVectors:
        vectors = np.load(directory / f"{name}-vectors.npy", mmap_mode="r")
        columns = scales = None
        if (directory / f"{name}-int8.npy").is_file():
            columns = np.load(directory / f"{name}-int8.npy", mmap_mode="r")
            scales = np.load(directory / f"{name}-scales.npy")
        elif len(vectors) >= INT8_FROM:  # saved before int8 codes were: made here, in memory
            from rag.encoders.onnx import quantize_columns

            columns, scales = quantize_columns(vectors)
        return cls(vectors, np.load(directory / f"{name}-dates.npy"), columns, scales)
