"""A generation's chunks and articles in mapped arrays: what goes in comes back, by row and by id. Pure logic and
files."""

import pytest

from rag.index.chunktable import ArticleTable, ChunkTable, RowPlan
from rag.types import Article, Chunk


def chunk_table(chunks) -> ChunkTable:
    return ChunkTable.merged(None, RowPlan.fresh(len(chunks)), chunks)


def article_table(articles) -> ArticleTable:
    return ArticleTable.merged(None, RowPlan.fresh(len(articles)), articles, {})


def sample() -> list[Chunk]:
    return [
        Chunk("b:9f", "b", 0, 0, 21, "Streik im Hafen: café", "Hafen – Bericht", "2022-01-02"),
        Chunk("a:01", "a", 0, 0, 30, "Dock workers ended their strike.", "Port", None),
        Chunk("a:02", "a", 1, 25, 60, "Talks resume on Monday 🙂", "Port", None),
        Chunk("c:x", "c", 0, 5, 9, "", "", "2023-05-06"),
    ]


def test_rows_ids_and_articles_come_back_unchanged(tmp_path):
    chunks = sample()
    built = chunk_table(chunks)
    built.save(tmp_path)
    for table in (built, ChunkTable.load(tmp_path)):
        assert list(table) == chunks and len(table) == 4
        assert table[-1] == chunks[-1] and table[1:3] == chunks[1:3]
        assert [table.position(c.id) for c in chunks] == [0, 1, 2, 3]
        assert table.position("a:03") is None and table.position("") is None and table.position("zzz") is None
        assert (table.article_id(2), table.published(2), table.published(0)) == ("a", None, "2022-01-02")
        assert table.ids() == [c.id for c in chunks]
        assert [table.articles[e][0] for e in table.article_rows().tolist()] == ["b", "a", "a", "c"]
    assert len(built.articles) == 3  # titles and dates once per article
    with pytest.raises(IndexError, match="row 4 is outside 0..3"):
        built[4]


def test_an_empty_table_saves_and_loads(tmp_path):
    chunk_table([]).save(tmp_path)
    table = ChunkTable.load(tmp_path)
    assert len(table) == 0 and list(table) == [] and table.position("a:01") is None


def test_files_that_do_not_fit_together_are_refused(tmp_path):
    chunk_table(sample()).save(tmp_path)
    (tmp_path / "chunks-text.bin").write_bytes((tmp_path / "chunks-text.bin").read_bytes()[:-3])
    with pytest.raises(ValueError, match="holds .* bytes, its offsets say"):
        ChunkTable.load(tmp_path)
    chunk_table(sample()).save(tmp_path)
    (tmp_path / "chunks-ids.bin").unlink()
    with pytest.raises(OSError):
        ChunkTable.load(tmp_path)


def articles() -> list[Article]:
    return [
        Article(
            "b",
            "Hafen – Bericht",
            "Streik im Hafen: café. 🙂",
            source="dpa",
            url="https://x.test/b",
            published="2022-01-02",
            content_hash="h1",
        ),
        Article("a", "Port", "Dock workers ended their strike.", content_hash="h2"),
        Article("empty", "", "", content_hash="h3"),
    ]


def test_articles_come_back_unchanged_by_id(tmp_path):
    given = articles()
    built = article_table(given)
    built.save(tmp_path)
    for table in (built, ArticleTable.load(tmp_path)):
        assert len(table) == 3 and "a" in table and "c" not in table
        assert [table.get(a.id) for a in given] == given
        assert table.get("c") is None
        assert list(table.get_many(["a", "c", "b", "a"])) == ["a", "b"]
        assert table.get_many(["b"])["b"].text == "Streik im Hafen: café. 🙂"


def test_article_files_that_do_not_fit_together_are_refused(tmp_path):
    article_table(articles()).save(tmp_path)
    (tmp_path / "articles.json").write_text('[["a", "Port", null, null, null, "h2", "a", "", "v1"]]')
    with pytest.raises(ValueError, match="3 article texts but 1 article records"):
        ArticleTable.load(tmp_path)
    (tmp_path / "articles.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a list of article records"):
        ArticleTable.load(tmp_path)
    (tmp_path / "articles-text.bin").unlink()
    article_table([]).save(tmp_path)
    assert len(ArticleTable.load(tmp_path)) == 0
