"""A new generation's snapshot grows from the previous one: the store is read only for what changed, and the
result equals a snapshot built from the whole store, file for file. Real encoder, real embedded Chroma."""

import json
import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.documents.sources import file_article_id
from rag.index.chroma import ChromaStore
from rag.index.lexical import Analyzer
from rag.index.snapshot import SnapshotStore
from rag.pipeline import Pipeline
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

TOWNS = ["Zorvik", "Quellmar", "Brantoft", "Ysolde", "Kavrin", "Oduna", "Pellamor", "Trussex"]


def write(folder, i, town, bridges):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"t{i:02d}.md"
    path.write_text(
        f"---\ntitle: {town} opens {bridges} bridges\npublished: 2023-04-{i + 1:02d}\n---\n"
        f"The town of {town} opened {bridges} new bridges on Monday, the mayor said. "
        f"Officials in {town} said the bridges cost ${i + 11} million. " + "Traffic was light. " * i
    )
    return path


def snapshot_folder(pipeline):
    with pipeline.index.reading() as view:
        return pipeline.index.snapshots.root / view.generation


def snapshot_files(pipeline) -> dict[str, bytes]:
    folder = snapshot_folder(pipeline)
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert "bm25/counts.npy" in files and "sentences-codes.npy" in files
    return files


def from_whole_store(pipeline, embedder) -> dict[str, bytes]:
    """The same generation's snapshot, built by a new process-like pipeline with no snapshot to start from."""
    shutil.rmtree(pipeline.index.snapshots.root)
    fresh = Pipeline(pipeline.settings, embedder=embedder)
    fresh.index.sync()
    return snapshot_files(fresh)


def test_a_grown_snapshot_equals_one_built_from_the_whole_store(tmp_path, embedder, monkeypatch):
    p = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    src = tmp_path / "src"
    for i, town in enumerate(TOWNS[:6]):
        write(src, i, town, i + 3)
    assert p.index_paths([src]).added == 6

    def refuse(*args, **kwargs):
        raise AssertionError("the whole store was read to grow a snapshot")

    monkeypatch.setattr(p.index.store, "iter_chunk_rows", refuse)
    monkeypatch.setattr(p.index.store, "iter_articles", refuse)
    # One generation each: two articles added, one rewritten, one deleted.
    assert p.index_paths([write(src, 6, TOWNS[6], 9), write(src, 7, TOWNS[7], 10)]).added == 2
    assert p.index_paths([write(src, 2, "Brantoft", 41)]).updated == 1
    p.delete(file_article_id("t04.md"))
    monkeypatch.undo()

    grown = snapshot_files(p)
    lexical = p.lexical
    assert len(lexical.article_ids) == len(p.list_articles()) == 7
    assert not [c for c, _ in lexical.search("Kavrin bridges", 10) if "Kavrin" in c.text]
    assert any("41 new bridges" in c.text for c, _ in lexical.search("Brantoft bridges", 5))
    assert not any("5 new bridges" in c.text for c, _ in lexical.search("Brantoft bridges", 5))
    answer = p.ask("How much did the bridges in Trussex cost?")
    assert any("$18 million" in c.quote for c in answer.citations)

    assert from_whole_store(p, embedder) == grown


def test_a_damaged_snapshot_is_not_grown_on(tmp_path, embedder, caplog):
    p = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    src = tmp_path / "src"
    for i, town in enumerate(TOWNS[:3]):
        write(src, i, town, i + 3)
    p.index_paths([src])
    folder = snapshot_folder(p)
    (folder / "bm25" / "counts.npy").unlink()
    with caplog.at_level(logging.WARNING, logger="rag.index.snapshot"):
        p.index_paths([write(src, 3, TOWNS[3], 6)])
    assert "missing bm25/counts.npy is damaged; it is rebuilt from the store" in caplog.text
    grown = snapshot_files(p)
    assert from_whole_store(p, embedder) == grown
    assert any("Ysolde" in c.text for c, _ in p.lexical.search("Ysolde bridges", 3))


def test_a_snapshot_of_another_analysis_is_not_grown_on(tmp_path, embedder, monkeypatch):
    p = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    src = tmp_path / "src"
    p.index_paths([write(src, 0, TOWNS[0], 3)])
    # As if the stopwords or the stemmer changed with an upgrade: the saved term counts no longer fit.
    monkeypatch.setattr(Analyzer, "signature", staticmethod(lambda: "another analysis"))
    whole_store_reads = []
    read_all = ChromaStore.iter_chunk_rows
    monkeypatch.setattr(
        ChromaStore, "iter_chunk_rows", lambda self, *a, **kw: whole_store_reads.append(1) or read_all(self, *a, **kw)
    )
    p.index_paths([write(src, 1, TOWNS[1], 4)])
    assert whole_store_reads
    assert json.loads((snapshot_folder(p) / "snapshot.json").read_text())["analyzer"] == "another analysis"
    assert any("Zorvik" in c.text for c, _ in p.lexical.search("Zorvik bridges", 3))


def test_questions_read_the_previous_generation_while_the_next_snapshot_is_made(tmp_path, embedder, monkeypatch):
    """The writer makes the snapshot before it commits: a question asked meanwhile is answered at once, from the
    generation before, and the next question sees the new article."""
    p = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    src = tmp_path / "src"
    p.index_paths([write(src, 0, TOWNS[0], 3)])
    p.ask("How many bridges did Zorvik open?")
    building, release = threading.Event(), threading.Event()
    build = SnapshotStore._build

    def slow_build(self, *args, **kwargs):
        building.set()
        assert release.wait(60)
        return build(self, *args, **kwargs)

    monkeypatch.setattr(SnapshotStore, "_build", slow_build)
    with ThreadPoolExecutor(1) as pool:
        ingest = pool.submit(p.index_paths, [write(src, 1, TOWNS[1], 4)])
        try:
            assert building.wait(60)
            answer = pool_free_ask(p, "How many bridges did Quellmar open?")
            assert not ingest.done()  # answered while the snapshot was still being made
            assert not any("Quellmar" in c.quote for c in answer.citations)
        finally:
            release.set()
        assert ingest.result(60).added == 1
    assert any("Quellmar" in c.quote for c in p.ask("How many bridges did Quellmar open?").citations)


def pool_free_ask(pipeline, question):
    """Ask on a thread of its own, failing rather than hanging if the question waits for the writer."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(pipeline.ask, question).result(30)


def test_a_build_a_killed_process_left_is_removed_by_the_next_build(fake_pipeline):
    from rag.types import Article

    root = fake_pipeline.index.snapshots.root
    abandoned = root / ".build-killed"
    abandoned.mkdir()
    (abandoned / "chunks-vectors.npy").write_bytes(b"half written")
    fake_pipeline.index_articles([Article(id="dam", title="Dam", text="The Itaipu dam opened on Friday.")])
    assert not abandoned.exists(), "swept under the build lock, however young it is"
    assert not [p for p in root.iterdir() if p.name.startswith(".build-")]


def test_a_build_a_killed_process_left_is_removed_when_the_next_process_opens_the_index(fake_pipeline, fake_embedder):
    from rag.pipeline import Pipeline
    from tests.conftest import make_settings

    root = fake_pipeline.index.snapshots.root
    abandoned = root / ".build-killed"
    abandoned.mkdir()
    reader = Pipeline(make_settings(fake_pipeline.settings.index_dir), embedder=fake_embedder)
    assert reader.ask("How much aid was announced?").citations
    assert not abandoned.exists()
