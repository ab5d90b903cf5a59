"""Nothing lost: concurrent writers, a server beside a separate ingest, colliding ids, and crash points.

Real `rag` processes on a real embedded Chroma; each fault here lost or hid articles before the fix.
"""

import json
import shutil

import httpx
import numpy as np
import pytest

from rag.documents.sources import file_article_id
from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, make_settings, run_rag
from tests.helpers.crash_at import CRASH_EXIT_CODE
from tests.helpers.damage import add_orphan_chunk
from tests.helpers.servers import LiveServer
from web.app import create_app

pytestmark = pytest.mark.slow

TOWNS = [
    "Zorvik",
    "Quellmar",
    "Brantoft",
    "Ysolde",
    "Kavrin",
    "Oduna",
    "Pellamor",
    "Trussex",
    "Vandrel",
    "Wexhaven",
    "Ilmira",
    "Corvane",
    "Habsted",
    "Mirrow",
    "Glenvar",
    "Eskaro",
]


def write_articles(folder, prefix, towns):
    folder.mkdir(parents=True, exist_ok=True)
    for i, town in enumerate(towns):
        (folder / f"{prefix}{i:02d}.md").write_text(
            f"---\ntitle: {town} opens {i + 3} bridges\npublished: 2023-04-{i + 1:02d}\n---\n"
            f"The town of {town} opened {i + 3} new bridges on Monday, the mayor said. "
            f"Officials in {town} said the bridges cost ${i + 11} million."
        )


def cites(citations, words: str) -> bool:
    """Whether a cited sentence says ``words``: the answer is the evidence, whether or not a short answer leads."""
    return any(words in (c["quote"] if isinstance(c, dict) else c.quote) for c in citations)


def vectors_findable(pipeline):
    """Every stored chunk vector is readable and is its own nearest neighbour."""
    store = pipeline.store
    chunks = list(store.iter_chunks())
    vectors = store.chunk_vectors([c.id for c in chunks])
    assert all(v is not None for v in vectors.values()), "some chunk vectors cannot be read"
    for c in chunks:
        ((found, _),) = store.dense_query(np.asarray(vectors[c.id]), 1)
        assert found == c.id
    return len(chunks)


def test_two_concurrent_ingests_keep_every_vector(tmp_path, embedder):
    ix = tmp_path / "ix"
    assert run_rag("ingest", str(BUNDLED), index_dir=ix).returncode == 0
    write_articles(tmp_path / "one", "a", TOWNS[:8])
    write_articles(tmp_path / "two", "b", TOWNS[8:])
    first = run_rag("ingest", str(tmp_path / "one"), index_dir=ix, wait=False)
    second = run_rag("ingest", str(tmp_path / "two"), index_dir=ix, wait=False)
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "added 8" in out
    p = Pipeline(make_settings(ix), embedder=embedder)
    assert p.stats()["articles"] == 17
    assert vectors_findable(p) == p.stats()["chunks"]
    for i, town in enumerate(TOWNS):
        a = p.ask(f"How many bridges did {town} open?")
        assert not a.abstained and cites(a.citations, f"{town} opened {i % 8 + 3} new bridges"), (town, a.answer)
    assert run_rag("check", index_dir=ix).returncode == 0


def test_a_running_server_finds_articles_another_process_added(tmp_path, embedder):
    ix = tmp_path / "ix"
    assert run_rag("ingest", str(BUNDLED), index_dir=ix).returncode == 0
    app = create_app(pipeline=Pipeline(make_settings(ix), embedder=embedder))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        assert client.post("/api/ask", json={"question": "How much aid was announced?"}).status_code == 200
        write_articles(tmp_path / "new", "n", TOWNS[:4])
        assert run_rag("ingest", str(tmp_path / "new"), index_dir=ix).returncode == 0
        for i, town in enumerate(TOWNS[:4]):
            a = client.post("/api/ask", json={"question": f"How many bridges did {town} open?"}).json()
            assert cites(a["citations"], f"{town} opened {i + 3} new bridges"), (town, a)
            assert a["citations"][0]["article_id"] == file_article_id(f"n{i:02d}.md")
        assert client.get("/healthz").json()["articles"] == 5


def test_ids_never_collide(tmp_path, pipeline):
    page = (
        "<html><head><title>{t}</title></head><body><article><p>"
        + "{t} reported that {n} people attended. " * 3
        + "</p></article></body></html>"
    )
    for folder, title, n in (("a", "Fair opens", 120), ("b", "Market closes", 45), ("c", "Race ends", 300)):
        (tmp_path / "site" / folder).mkdir(parents=True)
        (tmp_path / "site" / folder / "index.html").write_text(page.format(t=title, n=n))
    r = pipeline.index_paths([tmp_path / "site"])
    assert r.added == 3 and not r.skipped
    for name in ("记事1.txt", "記事1.txt"):
        (tmp_path / "cjk").mkdir(exist_ok=True)
        (tmp_path / "cjk" / name).write_text(f"Headline {name}\n\nThe story in file {name} is its own.")
    assert pipeline.index_paths([tmp_path / "cjk"]).added == 2
    assert pipeline.stats()["articles"] == 5

    # The same relative path from two folders, in separate runs: the second is refused, never written over.
    for year, amount in (("2022", 5), ("2023", 9)):
        (tmp_path / year).mkdir()
        (tmp_path / year / "report.txt").write_text(f"Budget report\n\nThe budget grew by ${amount} million.")
    assert pipeline.index_paths([tmp_path / "2022"]).added == 1
    r = pipeline.index_paths([tmp_path / "2023"])
    assert (r.added, r.updated) == (0, 0)
    (refused,) = r.skipped
    assert "already held by" in refused.reason and str(tmp_path / "2022" / "report.txt") in refused.reason
    assert cites(pipeline.ask("How much did the budget grow?").citations, "The budget grew by $5 million.")
    (tmp_path / "report.md").write_text("# Budget report\n\nThe budget grew by $7 million.")
    assert pipeline.index_paths([tmp_path / "report.md"]).added == 1
    assert pipeline.stats()["articles"] == 7


@pytest.mark.parametrize("crash_at", ["after-mark-writing", "after-write-batch", "before-commit", "after-commit"])
def test_a_crash_at_any_point_leaves_an_index_the_next_process_repairs(tmp_path, embedder, crash_at):
    ix = tmp_path / "ix"
    assert run_rag("ingest", str(BUNDLED), index_dir=ix).returncode == 0
    write_articles(tmp_path / "new", "n", TOWNS[:6])
    crashed = run_rag("ingest", str(tmp_path / "new"), index_dir=ix, crash_at=crash_at)
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
    # A reader in a new process sees a consistent index: every article it lists is whole and searchable.
    p = Pipeline(make_settings(ix), embedder=embedder)
    listed = {a["id"] for a in p.list_articles()}
    for i, town in enumerate(TOWNS[:6]):
        if file_article_id(f"n{i:02d}.md") in listed:
            assert cites(p.ask(f"How many bridges did {town} open?").citations, f"{town} opened {i + 3} new bridges")
    assert vectors_findable(p) == p.stats()["chunks"]
    report = p.check()
    assert report.ok, report
    # A rerun finishes the job, and BM25 knows every article (it was stale after a crash before the fix).
    again = run_rag("ingest", str(tmp_path / "new"), "--json", index_dir=ix)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["added"] + len(listed) - 1 == 6
    p = Pipeline(make_settings(ix), embedder=embedder)
    for town in TOWNS[:6]:
        assert any(town in c.text for c, _ in p.lexical.search(f"{town} bridges", 5)), town
    assert p.check().ok


def test_parallel_readers_rebuild_a_missing_bm25_index_once(tmp_path):
    ix = tmp_path / "ix"
    assert run_rag("ingest", str(BUNDLED), index_dir=ix).returncode == 0
    shutil.rmtree(ix / "lexical")
    procs = [run_rag("ask", "How much aid was announced?", "--json", index_dir=ix, wait=False) for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "$310 million" in json.loads(out)["citations"][0]["quote"]
    saved = [d for d in (ix / "lexical" / "news").iterdir() if not d.name.startswith(".")]
    assert len(saved) == 1


def test_check_reports_and_repairs_disagreements(tmp_path, pipeline):
    write_articles(tmp_path / "src", "r", TOWNS[:3])
    pipeline.index_paths([tmp_path / "src"])
    store = pipeline.store
    damaged = file_article_id("r01.md")
    # A half-written article (chunks, no record) and an article that lost its chunks.
    chunk = next(c for c in store.iter_chunks() if c.article_id == damaged)
    add_orphan_chunk(store, "ghost:1", np.ones(384, dtype=np.float32) / np.sqrt(384))
    store.chunks.delete(ids=[chunk.id])
    report = pipeline.check()
    assert not report.ok
    assert report.orphan_articles == ["ghost"] and report.incomplete_articles == [damaged]
    fixed = pipeline.check(repair=True)
    assert fixed.repaired
    assert pipeline.check().ok
    assert cites(pipeline.ask("How many bridges did Quellmar open?").citations, "Quellmar opened 4 new bridges")
