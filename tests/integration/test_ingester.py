"""Ingest and delete through the Pipeline, with the fake encoder and a real embedded Chroma: what is written,
replaced, refused and swept. Fast: nothing here depends on what the text means."""

from pathlib import Path

import pytest

from rag.documents.sources import file_article_id
from rag.errors import EmptyIndex, IndexMismatch, NotFound
from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, SEED_FILE, SEED_ID, make_settings


def test_reingest_is_idempotent(fake_pipeline):
    before = fake_pipeline.stats()
    r = fake_pipeline.index_paths([BUNDLED])
    assert (r.added, r.updated, r.unchanged, r.chunks) == (0, 0, 1, 0)
    after = fake_pipeline.stats()
    assert (after["chunks"], after["articles"]) == (before["chunks"], before["articles"])
    # Nothing changed, so no new generation: readers keep their snapshot instead of rebuilding it.
    assert after["generation"] == before["generation"]
    assert not fake_pipeline.index.store.state().writing


def test_a_write_that_changes_something_commits_a_new_generation(fake_pipeline, tmp_path):
    first = fake_pipeline.stats()["generation"]
    (tmp_path / "new.md").write_text("# Port strike\n\nDock workers ended their strike on Tuesday.\n")
    assert fake_pipeline.index_paths([tmp_path / "new.md"]).added == 1
    second = fake_pipeline.stats()["generation"]
    assert second != first
    fake_pipeline.delete(file_article_id("new.md"))
    assert fake_pipeline.stats()["generation"] not in (first, second)


def test_every_chunk_has_its_sentences_with_exact_offsets(fake_pipeline):
    with fake_pipeline.index.reading() as view:
        text = view.store.get_articles([SEED_ID])[SEED_ID].text
        for chunk in view.snapshot.chunks:
            sentences = view.snapshot.sentences_of(chunk.id)
            assert len(sentences) > 0
            for a, b in zip(sentences.starts.tolist(), sentences.ends.tolist()):
                assert chunk.start <= a < b <= chunk.end and text[a:b].strip() == text[a:b]


def test_a_changed_article_leaves_no_stale_chunks(tmp_path, fake_embedder):
    p = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    src = tmp_path / "src"
    src.mkdir()
    original = (BUNDLED / SEED_FILE).read_text()
    (src / SEED_FILE).write_text(original)
    assert p.index_paths([src]).added == 1
    (src / SEED_FILE).write_text(original.replace("$310 million", "$275 million"))
    r = p.index_paths([src])
    assert (r.added, r.updated, r.articles) == (0, 1, [SEED_ID])
    chunks = list(p.store.iter_chunks())
    assert chunks and all("$310 million" not in c.text for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks) == p.stats()["chunks"]
    assert all("$310 million" not in c.text for c, _ in p.lexical.search("310 million aid", 50))


def test_questions_and_article_pages_read_articles_from_the_snapshot(tmp_path, fake_embedder, monkeypatch):
    """Each committed article is in its generation's snapshot: neither a question nor an article page asks the
    store for one (a round trip each to a Chroma server), and a changed article is read as changed."""
    p = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    src = tmp_path / "src"
    src.mkdir()
    original = (BUNDLED / SEED_FILE).read_text()
    (src / SEED_FILE).write_text(original)
    p.index_paths([src])
    (src / SEED_FILE).write_text(original.replace("$310 million", "$275 million"))
    assert p.index_paths([src]).updated == 1

    def refuse(*args, **kwargs):
        raise AssertionError("an article was read from the store")

    monkeypatch.setattr(p.index.store, "get_articles", refuse)
    text = p.get_article(SEED_ID).text
    assert "$275 million" in text and "$310 million" not in text
    answer = p.ask("How much additional aid did Harris announce for the region?")
    assert answer.citations and all(text[c.start : c.end] == c.quote for c in answer.citations)
    assert any("$275 million" in c.quote for c in answer.citations)


def test_delete_removes_everything(fake_pipeline):
    fake_pipeline.delete(SEED_ID)
    assert fake_pipeline.stats()["articles"] == 0 and fake_pipeline.stats()["chunks"] == 0
    assert fake_pipeline.lexical.search("Harris Guatemala aid", 10) == []
    with pytest.raises(NotFound):
        fake_pipeline.get_article(SEED_ID)
    with pytest.raises(NotFound, match="No article with id"):
        fake_pipeline.delete(SEED_ID)
    with pytest.raises(EmptyIndex, match="rag ingest"):
        fake_pipeline.ask("How much aid was announced?")


def test_a_manifest_mismatch_is_a_clear_error(fake_pipeline, fake_embedder):
    p = Pipeline(fake_pipeline.settings.model_copy(update={"chunk_size": 600}), embedder=fake_embedder)
    with pytest.raises(IndexMismatch, match=r"chunk_size: index has 1000, settings ask for 600.*Re-index"):
        p.ask("How much aid was announced?")


def test_bad_files_do_not_abort_a_batch(tmp_path, fake_embedder):
    p = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    src = tmp_path / "mixed"
    src.mkdir()
    (src / SEED_FILE).write_text((BUNDLED / SEED_FILE).read_text())
    (src / "empty.txt").write_bytes(b"")
    (src / "image.txt").write_bytes(b"\x00\x01\x02binary")
    (src / "notes.docx").write_bytes(b"PK")
    (src / "bad.jsonl").write_text('{"id": "ok1", "title": "Fine", "text": "A fine record about rain."}\n{oops\n')
    r = p.index_paths([src])
    assert r.added == 2
    reasons = {Path(s.path.split(":")[0]).name: s.reason for s in r.skipped}
    assert set(reasons) == {"empty.txt", "image.txt", "notes.docx", "bad.jsonl"}
    assert p.stats()["articles"] == 2


def test_duplicate_text_under_another_path_is_skipped_and_the_index_is_never_ingested(tmp_path, fake_embedder):
    p = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "story.txt").write_text("Headline\n\nThe same story, word for word.")
    assert p.index_paths([tmp_path / "a"]).added == 1
    r = p.index_paths([tmp_path])  # the same file again, now at a/story.txt under the new root; and ix/ inside
    reasons = {Path(s.path).name: s.reason for s in r.skipped}
    assert "same text as article" in reasons["story.txt"] and r.added == 0
    assert reasons["ix"] == "the index folder itself; not ingested"


def test_an_interrupted_ingest_leaves_a_consistent_index(fake_pipeline, tmp_path, monkeypatch):
    """A crash between writing chunks and the article record leaves orphans; the session sweeps them."""
    src = tmp_path / "new"
    src.mkdir()
    (src / "flood.md").write_text("---\ntitle: River flood\npublished: 2023-06-02\n---\nThe river rose 4 meters.")
    store = fake_pipeline.store
    real_add = store.articles.add

    def die(*a, **k):
        raise KeyboardInterrupt("killed mid-ingest")

    monkeypatch.setattr(store.articles, "add", die)
    with pytest.raises(KeyboardInterrupt):
        fake_pipeline.index_paths([src])
    monkeypatch.setattr(store.articles, "add", real_add)
    flood = file_article_id("flood.md")
    assert flood not in {a["id"] for a in fake_pipeline.list_articles()}
    assert flood not in {c.article_id for c in fake_pipeline.store.iter_chunks()}
    assert fake_pipeline.index_paths([src]).added == 1
    assert [c.article_id for c in fake_pipeline.store.iter_chunks()].count(flood) == 1
    assert fake_pipeline.check().ok


def _three_articles(folder: Path) -> Path:
    folder.mkdir()
    for name, event in (
        ("a", "The river rose 4 meters."),
        ("b", "The port closed on Monday."),
        ("c", "The mayor resigned on Friday."),
    ):
        (folder / f"{name}.md").write_text(f"# Story {name}\n\n{event} Officials said more would follow.\n")
    return folder


def test_a_failed_write_fails_the_ingest_and_leaves_whole_articles(fake_pipeline, tmp_path, monkeypatch):
    import rag.documents.ingester

    monkeypatch.setattr(rag.documents.ingester, "EMBED_GROUP", 1)
    src = _three_articles(tmp_path / "new")
    store = fake_pipeline.index.store
    real_write, calls = store.write_articles, []

    def write(items, replacing, origins):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(items, replacing, origins)

    monkeypatch.setattr(store, "write_articles", write)
    with pytest.raises(OSError, match="disk full"):
        fake_pipeline.index_paths([src])
    assert len(calls) == 2  # nothing is written after the failed group
    monkeypatch.setattr(store, "write_articles", real_write)
    assert fake_pipeline.check().ok
    assert len(fake_pipeline.list_articles()) == 2  # the bundled article and the first group's
    assert fake_pipeline.index_paths([src]).added == 2


def test_an_ingest_gives_back_its_encoder_buffers_once_before_it_commits(fake_pipeline, tmp_path, monkeypatch):
    import rag.documents.ingester

    monkeypatch.setattr(rag.documents.ingester, "EMBED_GROUP", 1)
    events = []
    ingester, index = fake_pipeline.ingester, fake_pipeline.index
    real_embed, real_commit = ingester.embed, index._commit
    monkeypatch.setattr(ingester, "embed", lambda group: events.append("embed") or real_embed(group))
    monkeypatch.setattr(index, "_commit", lambda *args: events.append("commit") or real_commit(*args))
    monkeypatch.setattr(fake_pipeline.embedder, "release_ingest_buffers", lambda: events.append("release"))
    src = _three_articles(tmp_path / "new")
    assert fake_pipeline.index_paths([src]).added == 3
    assert events == ["embed"] * 3 + ["release", "commit"]
    events.clear()
    assert fake_pipeline.index_paths([src]).unchanged == 3
    assert events == ["commit"], "nothing was encoded, so there is nothing to give back"


def test_json_records_keep_their_ids_and_update_by_id(tmp_path, fake_embedder):
    p = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    (tmp_path / "one.jsonl").write_text('{"id": "rtqa-1", "title": "T", "text": "The first text."}\n')
    (tmp_path / "two.jsonl").write_text('{"id": "rtqa-1", "title": "T", "text": "The second text."}\n')
    assert p.index_paths([tmp_path / "one.jsonl"]).added == 1
    assert p.index_paths([tmp_path / "two.jsonl"]).updated == 1
    assert p.get_article("rtqa-1").text == "The second text."


def test_a_question_asks_the_store_only_when_the_state_stamp_moved(tmp_path, fake_embedder, monkeypatch):
    """The stamp beside an embedded index spares each question a read of the store's state; a commit by
    another writer moves it, so the next question still sees that commit."""
    import rag.index.index

    monkeypatch.setattr(rag.index.index, "STATE_RECHECK", 600.0)  # only the stamp may send a question to the store
    reader = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    writer = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)
    assert writer.index_paths([BUNDLED]).added == 1
    reads = []
    state = reader.index.store.state
    monkeypatch.setattr(reader.index.store, "state", lambda: reads.append(1) or state())
    reader.ask("How much aid was announced?")
    first = len(reads)
    for _ in range(3):
        reader.ask("How much aid was announced?")
    assert len(reads) == first, "the stamp did not move, so the store was not asked"
    (tmp_path / "new.md").write_text("# Port strike\n\nDock workers ended their strike on Tuesday in Rotterdam.\n")
    writer.index_paths([tmp_path / "new.md"])
    answer = reader.ask("Where did dock workers end their strike?")
    assert len(reads) > first and "Rotterdam" in answer.answer
