"""A generation's chunks in mapped arrays: what goes in comes back, by row and by id. Pure logic and files."""

import pytest

from rag.chunktable import ChunkTable
from rag.types import Chunk


def sample() -> list[Chunk]:
    return [Chunk("b:9f", "b", 0, 0, 21, "Streik im Hafen: café", "Hafen – Bericht", "2022-01-02"),
            Chunk("a:01", "a", 0, 0, 30, "Dock workers ended their strike.", "Port", None),
            Chunk("a:02", "a", 1, 25, 60, "Talks resume on Monday 🙂", "Port", None),
            Chunk("c:x", "c", 0, 5, 9, "", "", "2023-05-06")]


def test_rows_ids_and_articles_come_back_unchanged(tmp_path):
    chunks = sample()
    built = ChunkTable.from_chunks(chunks)
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
    ChunkTable.from_chunks([]).save(tmp_path)
    table = ChunkTable.load(tmp_path)
    assert len(table) == 0 and list(table) == [] and table.position("a:01") is None


def test_files_that_do_not_fit_together_are_refused(tmp_path):
    ChunkTable.from_chunks(sample()).save(tmp_path)
    (tmp_path / "chunks-text.bin").write_bytes((tmp_path / "chunks-text.bin").read_bytes()[:-3])
    with pytest.raises(ValueError, match="holds .* bytes, its offsets say"):
        ChunkTable.load(tmp_path)
    ChunkTable.from_chunks(sample()).save(tmp_path)
    (tmp_path / "chunks-ids.bin").unlink()
    with pytest.raises(OSError):
        ChunkTable.load(tmp_path)
