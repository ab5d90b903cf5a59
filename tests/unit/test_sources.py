"""Which files an ingest reads and the ids they get: pure path logic, no model."""

import os
from pathlib import Path

from rag.documents.parse import read_paths
from rag.documents.sources import Source, file_article_id, iter_sources, record_article_id
from rag.types import Article, Skipped, Warned


def reasons(items) -> dict[str, str]:
    return {Path(i.path).name: i.reason for i in items if isinstance(i, Skipped)}


def test_ids_keep_a_readable_slug_and_differ_for_different_paths():
    ids = {file_article_id(k) for k in ("a/index.html", "b/index.html", "c/index.html", "index.html")}
    assert len(ids) == 4 and all(i.startswith(("a-index-", "b-index-", "c-index-", "index-")) for i in ids)
    assert file_article_id("记事1.txt") != file_article_id("記事1.txt")
    assert file_article_id("记事1.txt").startswith("记事1-")
    assert file_article_id("2022/report.txt") != file_article_id("2023/report.txt") != file_article_id("report.md")
    assert len(file_article_id("x" * 500 + ".txt")) <= 71


def test_record_ids_are_kept_when_plain():
    assert record_article_id("rtqa-cf8dcb23df1f") == "rtqa-cf8dcb23df1f"
    assert record_article_id("记事1") == "记事1"
    odd = record_article_id("a/b c?")
    assert odd.startswith("a-b-c-") and odd != record_article_id("a b/c?")
    assert record_article_id("..") != ".."


def test_walk_reports_links_fifos_and_unreadable_folders(tmp_path, monkeypatch):
    root = tmp_path / "news"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.txt").write_text("Headline\n\nBody text.")
    (root / "good.txt").write_text("Headline\n\nBody text.")
    (root / ".hidden.txt").write_text("secret")
    os.symlink(tmp_path / "missing.txt", root / "broken.txt")
    os.symlink("/etc/passwd", root / "passwd.txt")
    os.symlink(root / "good.txt", root / "alias.txt")
    os.symlink(tmp_path, root / "up")
    os.mkfifo(root / "pipe.txt")
    (root / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # root reads every folder, so a permission error is simulated
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = list(iter_sources([root]))
    sources = {s.key for s in items if isinstance(s, Source)}
    assert sources == {"alias.txt", "good.txt", "sub/ok.txt"}
    why = reasons(items)
    assert "broken link" in why["broken.txt"]
    assert "outside the ingested folder" in why["passwd.txt"]
    assert "not a regular file (a FIFO)" in why["pipe.txt"]
    assert "link to a folder" in why["up"]
    assert "cannot read folder: Permission denied" in why["locked"]
    assert ".hidden.txt" not in why


def test_an_unreadable_file_does_not_stop_the_batch(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("First\n\nThe first story.")
    (tmp_path / "b.txt").write_text("Second\n\nThe second story.")
    (tmp_path / "c.txt").write_text("Third\n\nThe third story.")
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if str(file).endswith("b.txt"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    items = list(read_paths([tmp_path]))
    assert [i.title for i in items if isinstance(i, Article)] == ["First", "Third"]
    assert reasons(items) == {"b.txt": "cannot read: Permission denied"}


def test_a_named_link_is_read_and_an_unreadable_date_is_reported(tmp_path):
    (tmp_path / "story.md").write_text("---\ntitle: Dam opens\npublished: the 5th of Maybe\n---\nThe dam opened.")
    os.symlink(tmp_path / "story.md", tmp_path / "link.md")
    items = list(read_paths([tmp_path / "link.md"]))
    art = next(i for i in items if isinstance(i, Article))
    assert art.published is None and art.id == file_article_id("link.md")
    (warning,) = [i for i in items if isinstance(i, Warned)]
    assert "'the 5th of Maybe' is not a date" in warning.reason
    rec = tmp_path / "r.jsonl"
    rec.write_text('{"id": "x1", "text": "Body.", "published": "31/31/2022"}\n')
    (warning,) = [i for i in read_paths([rec]) if isinstance(i, Warned)]
    assert "'31/31/2022' is not a date" in warning.reason
