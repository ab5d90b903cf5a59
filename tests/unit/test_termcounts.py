"""Term counts, and BM25 weights made from them, against bm25s's own index; the row plans that grow a snapshot.
Pure logic."""

import os

import numpy as np
import pytest

from rag.index import arrays
from rag.index.chunktable import RowPlan, ragged_rows
from rag.index.lexical import Analyzer
from rag.index.termcounts import TermCounts
from tests.conftest import BUNDLED, SEED_FILE


def documents() -> list[str]:
    text = (BUNDLED / SEED_FILE).read_text()
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if s.strip()]
    return sentences + ["", "the of and", "Harris Harris Harris aid aid"]


def test_weights_equal_bm25s_bit_for_bit():
    import bm25s
    from bm25s.tokenization import Tokenized

    ids, vocab = Analyzer().token_ids(documents())
    counts = TermCounts.from_token_ids(ids, dict(vocab))
    assert counts.terms == sorted(counts.terms) and counts.n_docs == len(ids)
    blank = dict(vocab).setdefault("_", len(vocab))
    reference = bm25s.BM25()
    reference.index(Tokenized(ids=[d or [blank] for d in ids], vocab={**vocab, "_": blank}), show_progress=False)
    weights = counts.weights()
    scores = reference.scores
    assert len(weights) == len(scores["data"]) > 100
    for t, term in enumerate(counts.terms):
        j = reference.vocab_dict[term]
        theirs = slice(scores["indptr"][j], scores["indptr"][j + 1])
        ours = slice(counts.indptr[t], counts.indptr[t + 1])
        assert np.array_equal(counts.docs[ours], scores["indices"][theirs]), term
        assert np.array_equal(weights[ours], scores["data"][theirs]), term  # exact, not close
    empty = [i for i, d in enumerate(ids) if not d]
    assert empty and all(counts.docs[counts.indptr[counts.terms.index("_")] :][: len(empty)] == empty)


def test_combined_counts_equal_counts_built_at_once():
    docs = documents()
    analyse = Analyzer().token_ids
    whole = TermCounts.from_token_ids(*analyse(docs))
    # Keep the even documents, in reverse order, and put three new ones between them.
    kept = list(range(0, len(docs), 2))[::-1]
    new = ["Dock workers in Rotterdam ended their strike", "Zorvik opened seven bridges", ""]
    order = [("old", i) for i in kept[:2]] + [("new", 0)] + [("old", i) for i in kept[2:]] + [("new", 1), ("new", 2)]
    position_old = np.full(len(docs), -1)
    position_new = np.full(len(new), -1)
    for at, (kind, i) in enumerate(order):
        (position_old if kind == "old" else position_new)[i] = at
    combined = TermCounts.combine(
        [(whole, position_old), (TermCounts.from_token_ids(*analyse(new)), position_new)], len(order)
    )
    direct = TermCounts.from_token_ids(*analyse([docs[i] if kind == "old" else new[i] for kind, i in order]))
    assert combined.terms == direct.terms and "zorvik" in combined.terms
    for name in ("indptr", "docs", "counts"):
        assert np.array_equal(getattr(combined, name), getattr(direct, name)), name
    assert np.array_equal(combined.weights(), direct.weights())
    # A term whose every document is gone leaves the vocabulary.
    gone = [t for t in whole.terms if t not in direct.terms]
    assert gone and not set(gone) & set(combined.terms)


@pytest.mark.parametrize(
    "new",
    [
        ["Dock workers in Rotterdam ended their strike", "Zorvik opened seven bridges", ""],
        [],
        ["Every word here is left out"],
    ],
    ids=["added and removed", "removed only", "added, then left out"],
)
def test_counts_grown_in_order_equal_counts_built_at_once(new):
    """A snapshot's case: the kept documents keep their order, so their entries are kept as they are and the new
    ones inserted among them (`TermCounts._grown`). The same arrays as analysing everything, and as the general
    merge."""
    docs = documents()
    analyse = Analyzer().token_ids
    whole = TermCounts.from_token_ids(*analyse(docs))
    kept = [i for i in range(len(docs)) if i % 3]  # in order, a third left out
    order = [("old", i) for i in kept]
    left_out = len(new) == 1  # a new part whose documents are all left out: no entries to insert
    for n in range(0 if left_out else len(new)):  # new documents at the start, between old ones and at the end
        order.insert([0, len(order) // 2, len(order)][n], ("new", n))
    position_old, position_new = np.full(len(docs), -1), np.full(len(new), -1)
    for at, (kind, i) in enumerate(order):
        (position_old if kind == "old" else position_new)[i] = at
    parts = [(TermCounts.from_token_ids(*analyse(new)), position_new), (whole, position_old)]
    grown = TermCounts.combine(parts, len(order))
    direct = TermCounts.from_token_ids(*analyse([docs[i] if kind == "old" else new[i] for kind, i in order]))
    merged = TermCounts._merged(parts, len(order))
    for other in (direct, merged):
        assert grown.terms == other.terms
        for name in ("indptr", "docs", "counts"):
            assert np.array_equal(getattr(grown, name), getattr(other, name)), name
            assert getattr(grown, name).dtype == getattr(other, name).dtype, name
    assert np.array_equal(grown.weights(), direct.weights())
    assert not set(whole.terms) <= set(grown.terms)  # terms only the removed documents held are gone


def test_counts_of_nothing():
    nothing = TermCounts.from_token_ids([], {})
    assert nothing.n_docs == 0 and nothing.terms == [] and len(nothing.weights()) == 0
    everything_removed = TermCounts.combine(
        [(TermCounts.from_token_ids(*Analyzer().token_ids(["a strike"])), np.array([-1]))], 0
    )
    assert everything_removed.terms == [] and list(everything_removed.indptr) == [0]


def test_a_row_plan_orders_by_key_and_copies_runs_of_base_rows():
    base_keys = [("a", 0), ("a", 1), ("c", 0), ("d", 0), ("d", 1)]
    plan = RowPlan.merge(base_keys, [True, True, False, True, True], [("b", 0), ("e", 0)])
    assert plan.base.tolist() == [0, 1, -1, 3, 4, -1] and plan.new.tolist() == [-1, -1, 0, -1, -1, 1]
    base_rows, new_rows = np.array([10, 11, 12, 13, 14]), np.array([20, 21])
    assert [(p.source is base_rows, p.start, p.stop) for p in plan.pieces(base_rows, new_rows)] == [
        (True, 0, 2),
        (False, 0, 1),
        (True, 3, 5),
        (False, 1, 2),
    ]  # runs of base rows are copied as slices
    base_position, new_position = plan.positions(5, 2)
    assert base_position.tolist() == [0, 1, -1, 3, 4] and new_position.tolist() == [2, 5]
    rows = plan.fill(base_rows, new_rows)
    assert rows.tolist() == [10, 11, 20, 13, 14, 21]
    # Ragged rows: base row r holds r + 1 elements, new row n holds 2.
    base_offsets = np.cumsum([0, 1, 2, 3, 4, 5])
    base_values = np.arange(base_offsets[-1])
    new_offsets, new_values = np.array([0, 2, 4]), np.array([100, 101, 102, 103])
    offsets = plan.sizes(base_offsets, new_offsets)
    assert np.diff(offsets).tolist() == [1, 2, 2, 4, 5, 2]
    pieces = plan.pieces(base_values, new_values, base_offsets, new_offsets)
    # Two runs of base rows, each new row on its own: four pieces, not six rows.
    assert [(p.source is base_values, p.start, p.stop) for p in pieces] == [
        (True, 0, 3),
        (False, 0, 2),
        (True, 6, 15),
        (False, 2, 4),
    ]
    out = arrays.assemble(pieces, (int(offsets[-1]),), np.int64)
    expected = [
        base_values[base_offsets[r] : base_offsets[r + 1]].tolist()
        if r >= 0
        else new_values[new_offsets[n] : new_offsets[n + 1]].tolist()
        for r, n in zip(plan.base, plan.new)
    ]
    assert out.tolist() == sum(expected, [])
    assert ragged_rows(base_offsets, np.array([4, 0])).tolist() == [10, 11, 12, 13, 14, 0]


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "blocks"])
def test_planned_rows_from_a_mapped_file_are_copied_from_the_file_into_the_same_bytes(
    tmp_path, monkeypatch, kernel_copy
):
    """The kernel's file-to-file copy (or, where the OS has none, blocks read and written), and the same table
    assembled in memory: one file, byte for byte."""
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    plan = RowPlan.merge([("a", 0), ("b", 0), ("c", 0), ("d", 0)], [True, False, True, True], [("bb", 0), ("e", 0)])
    np.save(tmp_path / "base.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    base = np.asarray(np.load(tmp_path / "base.npy", mmap_mode="r"))  # a plain view of the mapping, as loaded
    assert arrays.mapped_file(base) == (tmp_path / "base.npy", 128)
    assert arrays.mapped_file(base[2:]) == (tmp_path / "base.npy", 128 + 2 * 3 * 4)
    new = np.array([[100, 101, 102], [200, 201, 202]], dtype=np.float32)
    pieces = plan.pieces(base, new)
    assert [p.file is not None for p in pieces] == [True, False, True, False]
    made = arrays.assemble(pieces, (len(plan), 3), np.float32, tmp_path / "made.npy")
    assert isinstance(made, np.memmap)
    in_memory = arrays.assemble(pieces, (len(plan), 3), np.float32)
    assert in_memory[:, 0].tolist() == [0, 100, 6, 9, 200]
    np.save(tmp_path / "saved.npy", in_memory)
    assert (tmp_path / "made.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    (tmp_path / "base.npy").write_bytes((tmp_path / "base.npy").read_bytes()[:-8])  # cut short under the mapping
    with pytest.raises(ValueError, match="cut short"):
        arrays.assemble(plan.pieces(base, new), (len(plan), 3), np.float32, tmp_path / "again.npy")
