"""Nearest-neighbour search over one generation's vectors, exact in its results: memory-mapped matrices.

The one module that imports simsimd.

Chroma stays the store of record; each snapshot copies its vectors into one float32 matrix, so a question's
dense search is a matrix-vector product instead of a call into Chroma. A date bound is a mask over the rows, not
an over-fetch that may miss what the bound admits. Files are mapped, not read: every process serving the same
generation shares one copy in the page cache.

From INT8_FROM rows on, the product is first taken over int8 copies of the rows, with simsimd's int8 dot-product
kernels on one thread, read straight from the mapped file: the float32 product is bound by memory, and the int8
rows are a quarter of it. The best rows of that shortlist are then scored exactly in float32. The result is the
exact search's unless int8 rounding moved some score by more than MARGIN, which is checked on every search and
answered with the full float32 product.
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
    large matrix the rows' int8 codes (rows x dimension) with a scale per row."""

    def __init__(
        self,
        vectors: np.ndarray,
        dates: np.ndarray,
        codes: np.ndarray | None = None,
        scales: np.ndarray | None = None,
    ) -> None:
        if len(vectors) != len(dates):
            raise ValueError(f"{len(vectors)} vectors but {len(dates)} dates")
        self.vectors, self.dates = vectors, dates
        self.codes, self.scales = codes, scales
        self.fallbacks = 0  # searches whose shortlist could not be trusted (for tests and the bench)

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def build(cls, vectors: np.ndarray | list, dates: list[int], dimension: int) -> FlatVectors:
        matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(dates), dimension))
        codes, scales = quantize(matrix) if len(matrix) >= INT8_FROM else (None, None)
        return cls(matrix, np.asarray(dates, dtype=np.int32), codes, scales)

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
        if base is None or base.codes is None:
            codes, scales = quantize(matrix)
        else:
            new_codes, new_scales = quantize(new)
            codes = arrays.assemble(plan.pieces(base.codes, new_codes), (len(plan), dimension), np.int8, path("int8"))
            scales = arrays.assemble(plan.pieces(np.asarray(base.scales), new_scales), (len(plan),), np.float32)
        return cls(matrix, dates, codes, scales)

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
        if self.codes is not None:
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
        approx = int8_scores(self.codes, self.scales, vector)
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

    def save(self, directory: Path, name: str) -> None:
        arrays.save(directory / f"{name}-vectors.npy", self.vectors)
        np.save(directory / f"{name}-dates.npy", self.dates)
        if self.codes is not None:
            arrays.save(directory / f"{name}-int8.npy", self.codes)
            np.save(directory / f"{name}-scales.npy", self.scales)

    @classmethod
    def load(cls, directory: Path, name: str) -> FlatVectors:
        vectors = np.load(directory / f"{name}-vectors.npy", mmap_mode="r")
        codes = scales = None
        if (directory / f"{name}-int8.npy").is_file():
            codes = np.load(directory / f"{name}-int8.npy", mmap_mode="r")
            scales = np.load(directory / f"{name}-scales.npy")
        elif len(vectors) >= INT8_FROM:  # saved without int8 codes: made here, in memory
            codes, scales = quantize(vectors)
        return cls(vectors, np.load(directory / f"{name}-dates.npy"), codes, scales)


def quantize(vectors: np.ndarray, block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``vectors`` as int8 codes and a float32 scale per row (row ~ codes * scale); a block of rows
    at a time, so a memory-mapped matrix is never read whole."""
    codes = np.empty(vectors.shape, dtype=np.int8)
    scales = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), block):
        part = np.asarray(vectors[start : start + block], dtype=np.float32)
        step = np.maximum(np.abs(part).max(axis=1), 1e-12) / 127.0
        codes[start : start + block] = np.clip(np.rint(part / step[:, None]), -127, 127)
        scales[start : start + block] = step
    return codes, scales


def int8_scores(codes: np.ndarray, scales: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Approximate dot products of ``vector`` with every row, from the rows' int8 codes, on one thread; simsimd
    releases the GIL while it computes."""
    import simsimd

    vector = np.asarray(vector, dtype=np.float32)
    step = max(float(np.abs(vector).max()), 1e-12) / 127.0
    query = np.clip(np.rint(vector / step), -127, 127).astype(np.int8)
    raw = np.asarray(simsimd.cdist(query[None, :], codes, metric="dot", threads=1), dtype=np.float32).reshape(-1)
    return raw * scales * np.float32(step)
