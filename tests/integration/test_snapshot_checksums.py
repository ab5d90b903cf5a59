"""A damaged snapshot file is never read as if it were sound: each file's sha256 is recorded when it is saved and
checked when it is opened and by `rag check`; a mismatch rebuilds the snapshot from the store, and says so.
Every file of the snapshot is tried, with a same-size byte flip, a truncation and shuffled records.
Real embedded Chroma; the fake encoder, since what the text means does not matter here."""

import json

import numpy as np
import pytest

from rag.index.snapshot import INFO
from rag.pipeline import Pipeline
from tests.conftest import SEED_ID, make_settings, run_rag

QUESTION = "How much aid was announced?"


def snapshot_folder(pipeline):
    with pipeline.index.reading() as view:
        return pipeline.index.snapshots.root / view.generation


def files_of(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != INFO)


def flip(path):
    """Change one byte in the middle of the file, keeping its size."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2
    data[i] = (data[i] + 1) % 256
    path.write_bytes(bytes(data))


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def shuffle(path):
    """Reverse the records of an array file (its header untouched), or the lines of any other file."""
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r")
        if len(array) > 1 and not np.array_equal(array[::-1], array):
            np.save(path, np.ascontiguousarray(array[::-1]))
            return True
        return False
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) > 1 and lines[::-1] != lines:
        path.write_bytes(b"".join(lines[::-1]))
        return True
    return False


def test_every_saved_file_is_recorded_with_its_sha256(fake_pipeline):
    folder = snapshot_folder(fake_pipeline)
    info = json.loads((folder / INFO).read_text())
    assert sorted(info["files"]) == sorted(p.relative_to(folder).as_posix() for p in files_of(folder))
    assert fake_pipeline.check().ok


@pytest.mark.parametrize("damage", [flip, truncate, shuffle])
def test_each_damaged_file_is_found_by_check_and_rebuilt_on_opening(fake_pipeline, fake_embedder, damage):
    folder = snapshot_folder(fake_pipeline)
    pristine = {p: p.read_bytes() for p in files_of(folder)}
    good = fake_pipeline.ask(QUESTION).to_dict()
    tried = 0
    for path in pristine:
        if damage(path) is False:
            continue  # one record: nothing to shuffle
        tried += 1
        report = fake_pipeline.check()
        assert not report.ok and report.snapshot_damaged and path.name in report.snapshot_damaged, path
        # A new process opening the index rebuilds it from the store, logs it and says so.
        fresh = Pipeline(fake_pipeline.settings, embedder=fake_embedder)
        answer = fresh.ask(QUESTION).to_dict()
        assert answer["answer"] == good["answer"] and answer["citations"] == good["citations"]
        assert fresh.snapshot_repairs and path.name in fresh.snapshot_repairs[-1]
        assert fresh.check().ok
        assert {p: p.read_bytes() for p in files_of(folder)} == pristine
    assert tried >= 5


def test_check_repair_rebuilds_a_snapshot_damaged_under_a_running_process(fake_pipeline):
    folder = snapshot_folder(fake_pipeline)
    text = next(p for p in files_of(folder) if "text" in p.name)
    flip(text)
    report = fake_pipeline.check(repair=True)
    assert report.snapshot_damaged and any("rebuilt the damaged snapshot" in r for r in report.repaired)
    assert fake_pipeline.check().ok
    article = fake_pipeline.get_article(SEED_ID)
    assert "$310 million" in article.text


@pytest.mark.slow
def test_rag_check_says_what_it_found_and_rebuilt(writable_bundled):
    folder = snapshot_folder(writable_bundled)
    flip(next(p for p in files_of(folder) if p.suffix == ".npy"))
    out = run_rag("check", index_dir=writable_bundled.settings.index_dir)
    assert out.returncode == 0, out.stderr
    assert "repaired: " in out.stdout and "rebuilt" in out.stdout and "Traceback" not in out.stderr


def test_a_snapshot_of_an_older_format_without_checksums_is_rebuilt(fake_pipeline, fake_embedder):
    folder = snapshot_folder(fake_pipeline)
    info = json.loads((folder / INFO).read_text())
    del info["files"]
    (folder / INFO).write_text(json.dumps(info))
    fresh = Pipeline(make_settings(fake_pipeline.settings.index_dir), embedder=fake_embedder)
    assert fresh.ask(QUESTION).citations
    assert "files" in json.loads((snapshot_folder(fresh) / INFO).read_text())
