"""The best n of a score array, in an order that never depends on how a partition fell.

numpy's introselect slows down sharply on many equal values: over 64,570 BM25 scores that are mostly 0, or
cosines masked to -inf outside a date range, one `argpartition` took 8.7 ms against 0.5 ms over distinct
values. So callers pass only the rows that can be chosen, and the partition never sees the filler.
"""

from __future__ import annotations

import numpy as np


def best(rows: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` best (row, score) of ``scores`` (one per entry of ``rows``), best score first, then the lower
    row. Non-finite scores are never chosen."""
    keep = np.isfinite(scores)
    if not keep.all():
        rows, scores = rows[keep], scores[keep]
    if n < len(scores):
        # Everything tied with the n-th best stays in, so the lower row wins a tie at the boundary too.
        nth = -np.partition(-scores, n - 1)[n - 1]
        keep = scores >= nth
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:n]
    return [(int(rows[i]), float(scores[i])) for i in order]


def best_positive(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` best rows scoring above 0, as `best` orders them."""
    rows = np.flatnonzero(scores > 0)
    return best(rows, scores[rows], n)


def shortlist(rows: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
    """Some ``size`` entries of ``rows`` whose scores are at least every other's, in row order. Ties at the
    boundary fall either way: this is a candidate set, to be scored again, not a result."""
    if size >= len(rows):
        return np.sort(rows)
    return np.sort(rows[np.argpartition(-scores, size - 1)[:size]])
