"""Exact dense search over a snapshot's vectors: against brute force, with date masks, ties and files."""

import numpy as np
import pytest

from rag.index.dense import FlatVectors
from rag.pipeline import Pipeline
from rag.retrieve import HybridRetriever, Query
from tests.conftest import make_settings


def unit_rows(rng, n, d=8):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def flat():
    rng = np.random.default_rng(7)
    dates = [0] + [20220101 + i for i in range(199)]  # row 0 undated
    return FlatVectors.build(unit_rows(rng, 200), dates, 8), unit_rows(rng, 1)[0]


def test_the_top_rows_are_exactly_the_brute_force_ranking(flat):
    vectors, query = flat
    scores = vectors.vectors @ query
    expected = sorted(range(len(scores)), key=lambda i: -scores[i])[:10]
    got = vectors.nearest(query, 10)
    assert [i for i, _ in got] == expected
    assert [s for _, s in got] == pytest.approx([float(scores[i]) for i in expected])
    assert [i for i, _ in vectors.nearest(query, 500)] == sorted(range(200), key=lambda i: -scores[i])


def test_date_bounds_admit_only_rows_dated_within_them(flat):
    vectors, query = flat
    got = vectors.nearest(query, 50, 20220110, 20220120)
    assert len(got) == 11 and {vectors.dates[i] for i, _ in got} == set(range(20220110, 20220121))
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    assert all(vectors.dates[i] >= 1 for i, _ in vectors.nearest(query, 300, 1, None))  # the undated row is out
    assert len(vectors.nearest(query, 300, 1, None)) == 199
    assert vectors.nearest(query, 5, 20300101, None) == []


def test_ties_are_broken_by_row_whatever_the_partition():
    same = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (6, 1))
    vectors = FlatVectors.build(same, [20220101] * 6, 2)
    assert [i for i, _ in vectors.nearest(np.array([1.0, 0.0]), 3)] == [0, 1, 2]


def test_empty_and_zero_requests():
    empty = FlatVectors.build(np.zeros((0, 4)), [], 4)
    assert len(empty) == 0 and empty.nearest(np.ones(4), 5) == []
    one = FlatVectors.build(np.ones((1, 4)) / 2, [0], 4)
    assert one.nearest(np.ones(4) / 2, 0) == []
    assert one.nearest(np.ones(4) / 2, 3) == [(0, pytest.approx(1.0))]


def test_a_mismatch_of_vectors_and_dates_is_refused():
    with pytest.raises(ValueError, match="3 vectors but 2 dates"):
        FlatVectors(np.zeros((3, 4), dtype=np.float32), np.zeros(2, dtype=np.int32))


def test_saved_vectors_are_mapped_back_unchanged(flat, tmp_path):
    vectors, query = flat
    vectors.save(tmp_path, "chunks")
    back = FlatVectors.load(tmp_path, "chunks")
    assert isinstance(back.vectors, np.memmap)
    assert np.array_equal(back.vectors, vectors.vectors) and np.array_equal(back.dates, vectors.dates)
    assert back.nearest(query, 7, 20220105, None) == vectors.nearest(query, 7, 20220105, None)


WORDS = [
    "flood",
    "river",
    "dam",
    "levee",
    "budget",
    "council",
    "mayor",
    "storm",
    "rescue",
    "bridge",
    "school",
    "vote",
    "election",
    "court",
    "judge",
    "strike",
    "union",
    "wages",
    "hospital",
    "vaccine",
    "drought",
    "harvest",
    "market",
    "shares",
    "bank",
    "rates",
]


def test_the_snapshots_exact_search_ranks_as_chromas_search(tmp_path, fake_embedder):
    """Same index, two paths: the snapshot's flat vectors, and Chroma's (flat_search_limit=0)."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "articles"
    folder.mkdir()
    for i in range(40):
        dated = f"published: 2022-{1 + i % 12:02d}-{1 + i % 27:02d}\n" if i % 5 else ""
        body = " ".join(" ".join(rng.choice(WORDS, 12)) + "." for _ in range(30 + i % 20))
        (folder / f"a{i:02d}.md").write_text(f"---\ntitle: Story {i}\n{dated}---\n{body}")
    flat = Pipeline(make_settings(tmp_path / "index"), embedder=fake_embedder)
    flat.index_paths([folder])
    chroma = Pipeline(make_settings(tmp_path / "index", flat_search_limit=0), embedder=fake_embedder)
    queries = [
        Query("flood at the dam"),
        Query("union strike over wages", since="2022-03-01"),
        Query("vaccine hospital", until="2022-06-30"),
        Query("bank rates", as_of="2022-05-01"),
        Query("court judge vote", since="2022-02-01", until="2022-04-30"),
    ]
    for query in queries:
        vector = fake_embedder.embed_query(query.search_text)
        rankings = []
        for pipeline in (flat, chroma):
            with pipeline.index.reading() as view:
                rankings.append(HybridRetriever(view, 60, 2).rank(query, vector))
        assert flat.index._snapshot.chunk_vectors is not None and chroma.index._snapshot.chunk_vectors is None
        (by_flat, by_chroma) = rankings
        assert [h.chunk.id for h in by_flat.hits] == [h.chunk.id for h in by_chroma.hits], query
        assert [h.score for h in by_flat.hits] == pytest.approx([h.score for h in by_chroma.hits], abs=1e-5)
        assert by_flat.articles == by_chroma.articles


@pytest.fixture(scope="module")
def large():
    """A matrix past INT8_FROM rows, so search goes through the int8 shortlist, with clustered rows (as news
    chunks are: many near neighbours), some undated."""
    from rag.index import dense

    rng = np.random.default_rng(11)
    rows, d = dense.INT8_FROM + 5000, 64
    centres = unit_rows(rng, 50, d)
    v = centres[rng.integers(0, 50, rows)] + 0.35 * rng.normal(size=(rows, d)).astype(np.float32) / np.sqrt(d)
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    dates = [0 if i % 9 == 0 else 20200101 + (i % 1000) for i in range(rows)]
    queries = centres[:20] + 0.2 * rng.normal(size=(20, d)).astype(np.float32) / np.sqrt(d)
    return FlatVectors.build(v, dates, d), queries / np.linalg.norm(queries, axis=1, keepdims=True)


def brute_force(vectors, query, n, low=None, high=None):
    scores = vectors.vectors @ query
    ok = [
        i
        for i in range(len(scores))
        if (low is None or vectors.dates[i] >= low) and (high is None or vectors.dates[i] <= high)
    ]
    return sorted(ok, key=lambda i: (-scores[i], i))[:n]


def test_the_int8_shortlist_finds_exactly_the_brute_force_top_rows(large):
    vectors, queries = large
    assert vectors.codes is not None and vectors.codes.dtype == np.int8
    before = vectors.fallbacks
    for q in queries:
        for n, low, high in (
            (60, None, None),
            (5, None, None),
            (60, 20200101, None),
            (60, 1, 20200400),
            (60, 20200990, 20201010),
        ):
            got = vectors.nearest(q, n, low, high)
            assert [i for i, _ in got] == brute_force(vectors, q, n, low, high)
            assert [s for _, s in got] == pytest.approx([float(vectors.vectors[i] @ q) for i, _ in got])
    assert vectors.fallbacks == before, "int8 rounding never came near the margin here"


def test_an_untrustworthy_shortlist_falls_back_to_the_full_product(large, monkeypatch):
    from rag.index import dense

    vectors, queries = large
    monkeypatch.setattr(dense, "MARGIN", 10.0)  # no shortlist can clear this
    before = vectors.fallbacks
    got = vectors.nearest(queries[0], 60)
    assert [i for i, _ in got] == brute_force(vectors, queries[0], 60)
    assert vectors.fallbacks == before + 1


def test_int8_codes_are_saved_and_made_for_older_snapshots(large, tmp_path):
    vectors, queries = large
    vectors.save(tmp_path, "chunks")
    back = FlatVectors.load(tmp_path, "chunks")
    assert isinstance(back.codes, np.memmap) and np.array_equal(back.codes, vectors.codes)
    assert back.nearest(queries[3], 60, 1, None) == vectors.nearest(queries[3], 60, 1, None)
    for name in ("chunks-int8.npy", "chunks-scales.npy"):  # a snapshot saved before the codes existed
        (tmp_path / name).unlink()
    older = FlatVectors.load(tmp_path, "chunks")
    assert np.array_equal(older.codes, vectors.codes) and np.array_equal(older.scales, vectors.scales)
    assert older.nearest(queries[3], 60) == vectors.nearest(queries[3], 60)


def test_the_int8_product_over_the_mapped_codes_is_the_exact_integer_product(large, tmp_path):
    from rag.index.dense import int8_scores

    vectors, queries = large
    vectors.save(tmp_path, "chunks")
    mapped = FlatVectors.load(tmp_path, "chunks")
    assert isinstance(mapped.codes, np.memmap) and mapped.codes.shape == (len(vectors), vectors.vectors.shape[1])
    for q in queries[:3]:
        step = float(np.abs(q).max()) / 127.0
        codes = np.clip(np.rint(q / step), -127, 127).astype(np.int64)
        exact = (np.asarray(mapped.codes, dtype=np.int64) @ codes).astype(np.float32) * mapped.scales * np.float32(step)
        assert np.allclose(int8_scores(mapped.codes, mapped.scales, q), exact, rtol=1e-6, atol=1e-6)
        # and the int8 scores are near the float32 ones: the shortlist's margin holds with room to spare
        assert np.abs(int8_scores(mapped.codes, mapped.scales, q) - vectors.vectors @ q).max() < 0.005
