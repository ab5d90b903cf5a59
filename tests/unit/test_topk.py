"""Choosing the best n of a score array: pure logic."""

import numpy as np
import pytest

from rag.index.topk import best, best_positive, shortlist


def test_best_orders_by_score_then_row_and_skips_what_cannot_be_chosen():
    scores = np.array([0.2, 0.9, -np.inf, 0.9, np.nan, 0.5], dtype=np.float32)
    rows = np.arange(len(scores)) + 100
    assert best(rows, scores, 3) == [(101, pytest.approx(0.9)), (103, pytest.approx(0.9)), (105, pytest.approx(0.5))]
    assert [r for r, _ in best(rows, scores, 10)] == [101, 103, 105, 100]
    assert best(rows[:0], scores[:0], 3) == []


def test_a_tie_at_the_boundary_goes_to_the_lower_row():
    scores = np.array([0.1, 0.7, 0.7, 0.7, 0.7], dtype=np.float32)
    assert [r for r, _ in best(np.arange(5), scores, 2)] == [1, 2]


def test_best_positive_leaves_out_rows_that_share_nothing():
    scores = np.zeros(50_000, dtype=np.float32)
    scores[[7, 31_000, 49_999]] = [1.5, 3.0, 1.5]
    assert best_positive(scores, 10) == [(31_000, 3.0), (7, 1.5), (49_999, 1.5)]
    assert best_positive(np.zeros(10, dtype=np.float32), 3) == []


def test_a_shortlist_holds_the_best_rows_in_row_order():
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(10_000, 2_000, replace=False))
    scores = rng.random(2_000).astype(np.float32)
    got = shortlist(rows, scores, 50)
    assert list(got) == sorted(rows[np.argsort(-scores)[:50]])
    assert list(shortlist(rows[:5], scores[:5], 50)) == list(rows[:5])
