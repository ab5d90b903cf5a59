"""A snapshot's largest arrays made in their files: saved without being written over themselves, and the same
snapshot as one made in memory. Pure logic and files."""

import numpy as np

from rag.encoders.vectors import SentenceVectors, unit
from rag.index import arrays
from rag.index.snapshot import Changes, Snapshot
from rag.types import Article, Chunk

DIMENSION = 8


def test_an_array_made_in_its_file_is_not_saved_over_itself(tmp_path):
    codes = np.arange(12, dtype=np.int8).reshape(4, 3)
    made = arrays.assemble([arrays.Piece(codes, 0, 12)], (4, 3), np.int8, tmp_path / "codes.npy")
    arrays.save(tmp_path / "codes.npy", np.asarray(made))  # a view of the mapping, as FlatVectors holds it
    assert np.array_equal(np.load(tmp_path / "codes.npy"), np.arange(12).reshape(4, 3))
    arrays.save(tmp_path / "copy.npy", made)  # another file: saved
    assert np.array_equal(np.load(tmp_path / "copy.npy"), np.load(tmp_path / "codes.npy"))
    arrays.save(tmp_path / "plain.npy", np.ones(3))
    assert np.load(tmp_path / "plain.npy").tolist() == [1.0, 1.0, 1.0]


def changes() -> Changes:
    rng = np.random.default_rng(7)
    texts = {"b": "Dock workers ended their strike on Tuesday. Pay rose 6%.", "a": "The council approved the budget."}
    rows, articles = [], []
    for aid, text in texts.items():
        articles.append(Article(aid, f"Title {aid}", text, published="2023-04-01", content_hash=aid))
        vectors = np.stack([unit(rng.normal(size=DIMENSION)) for _ in range(2)])
        codes = np.round(vectors * 100).astype(np.int8)
        sentences = SentenceVectors(
            np.array([0, 10], np.int32), np.array([10, len(text)], np.int32), codes, np.full(2, 0.01, np.float32)
        )
        rows.append(
            (
                Chunk(f"{aid}:0", aid, 0, 0, len(text), text, f"Title {aid}", "2023-04-01"),
                sentences.pack(),
                unit(rng.normal(size=DIMENSION)).astype(np.float32),
            )
        )
    return Changes(frozenset(), articles, {a.id: f"v-{a.id}" for a in articles}, rows, True)


def test_a_snapshot_made_in_its_folder_equals_one_made_in_memory(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "folder").mkdir()
    Snapshot.build(changes(), "g1", DIMENSION).save(tmp_path / "memory")
    in_folder = Snapshot.build(changes(), "g1", DIMENSION, directory=tmp_path / "folder")
    assert isinstance(in_folder.sentences.codes, np.memmap)
    in_folder.save(tmp_path / "folder")
    files = sorted(p.relative_to(tmp_path / "memory") for p in (tmp_path / "memory").rglob("*") if p.is_file())
    assert files and files == sorted(
        p.relative_to(tmp_path / "folder") for p in (tmp_path / "folder").rglob("*") if p.is_file()
    )
    for f in files:
        assert (tmp_path / "memory" / f).read_bytes() == (tmp_path / "folder" / f).read_bytes(), f
    loaded = Snapshot.load(tmp_path / "folder")
    assert [c.id for c in loaded.chunks] == ["a:0", "b:0"] and len(loaded.sentences.of(1)) == 2


def test_an_article_given_twice_is_kept_once_and_the_last_copy_wins():
    given = changes()
    rewritten = Article("a", "Title a", "The council approved the budget.", published="2023-04-01", content_hash="a2")
    twice = Changes(given.removed, [*given.articles, rewritten], given.versions, given.rows, True)
    articles = Snapshot.build(twice, "g1", DIMENSION).articles
    assert len(articles) == 2 and articles.get("a") == rewritten
