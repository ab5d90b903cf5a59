"""One suite for the store, run against the embedded Chroma and against a real `chroma run` server.

Writes, reads, deletes, orphans, the index state, and date-bounded vector search: the fast path (plain search,
filtered here) and the fallback (Chroma's own filter) must both return exactly the nearest articles in range.
"""

from datetime import date, timedelta

import numpy as np
import pytest

from rag.errors import IndexMismatch
from rag.index.chroma import ChromaStore, EmbeddedArticle
from rag.retrieve import OVERFETCH, nearest_in_range
from rag.types import Article, Chunk
from tests.helpers.damage import add_orphan_chunk
from tests.helpers.servers import ChromaServer

DAYS = 60
KINDS = ["embedded", pytest.param("server", marks=[pytest.mark.server, pytest.mark.slow])]


@pytest.fixture(scope="module", params=KINDS)
def new_store(request, tmp_path_factory):
    """A factory of empty stores of one kind; each call gives a fresh collection prefix."""
    made = []
    server = None
    if request.param == "server":
        server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data").start()

    def make() -> ChromaStore:
        prefix = f"t{len(made)}x"
        store = (
            ChromaStore(url=server.url, prefix=prefix)
            if server
            else ChromaStore(path=tmp_path_factory.mktemp("chroma"), prefix=prefix)
        )
        made.append(store)
        return store

    yield make
    if server:
        server.stop()


def article(i: int, published: str | None = None, text: str | None = None):
    text = text or f"Story number {i}."
    art = Article(
        id=f"a{i:02d}", title=f"Story {i}", text=text, published=published, content_hash=str(i), origin=f"/src/{i}.txt"
    )
    chunk = Chunk(
        id=f"a{i:02d}:0",
        article_id=art.id,
        ordinal=0,
        start=0,
        end=len(text),
        text=text,
        title=art.title,
        published=published,
    )
    return art, chunk


@pytest.fixture(scope="module")
def dated_store(new_store):
    store = new_store()
    rng = np.random.default_rng(3)
    items = []
    for i in range(DAYS + 4):
        published = (date(2022, 1, 1) + timedelta(days=i)).isoformat() if i < DAYS else None
        art, chunk = article(i, published)
        v = rng.normal(size=(1, 16)).astype(np.float32)
        items.append(EmbeddedArticle(art, [chunk], v / np.linalg.norm(v), [""]))
    store.write_articles(items, replacing=set())
    vectors = {e.article.id: e.vectors[0] for e in items}
    dates = {e.article.id: e.article.published for e in items}
    return store, vectors, dates


def nearest(vectors, dates, query, n, keep):
    ranked = sorted((a for a in vectors if keep(dates[a])), key=lambda a: -float(vectors[a] @ query))
    return ranked[:n]


@pytest.mark.parametrize(
    "since, until, keep_undated",
    [
        (None, "2022-02-20", True),  # most of the index: answered by the plain search
        (None, "2022-02-20", False),
        ("2022-01-10", None, False),
        ("2022-01-05", "2022-01-07", False),  # three days of sixty: too few in the plain top 4n, so Chroma filters
        ("2023-01-01", None, False),  # nothing in range
    ],
)
def test_date_bounded_search_returns_the_nearest_articles_in_range(
    dated_store, since, until, keep_undated, monkeypatch
):
    store, vectors, dates = dated_store
    filters = []
    search = store._search
    monkeypatch.setattr(
        store,
        "_search",
        lambda col, vec, k, where, include: filters.append(where) or search(col, vec, k, where, include),
    )

    def published(aid):
        return dates.get(aid.split(":")[0], False)

    n = 5
    assert OVERFETCH * n < len(vectors)  # so the narrow range really takes the fallback

    def keep(published):
        if not published:
            return keep_undated and not since
        return not (since and published < since) and not (until and published > until)

    query = np.random.default_rng(11).normal(size=16).astype(np.float32)
    query /= np.linalg.norm(query)
    expected = nearest(vectors, dates, query, n, keep)
    got_articles = [
        a for a, _ in nearest_in_range(store.dense_article_query, query, n, since, until, keep_undated, published)
    ]
    got_chunks = [
        c.split(":")[0] for c, _ in nearest_in_range(store.dense_query, query, n, since, until, keep_undated, published)
    ]
    assert got_articles == expected
    assert got_chunks == expected
    narrow = since == "2022-01-05" or since == "2023-01-01"
    assert any(filters) == narrow  # only a range the plain top 4n cannot fill is left to Chroma's filter
    if since == "2022-01-05":
        assert len(expected) == 3


def unit(rng, n=1, d=16):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_write_read_replace_and_delete(new_store):
    store = new_store()
    rng = np.random.default_rng(1)
    a, c = article(1, "2023-05-31", "The river rose 4 meters.")
    vector = unit(rng)
    store.write_articles([EmbeddedArticle(a, [c], vector, ["s1:blob"])], replacing=set())
    assert store.count_articles() == 1 and store.count_chunks() == 1
    assert store.article_stamps()["a01"].origin == "/src/1.txt"
    got = store.get_articles(["a01", "missing"])["a01"]
    assert got.text == "The river rose 4 meters." and got.published == "2023-05-31" and got.origin == ""
    assert list(store.get_articles(["a01", "missing"])) == ["a01"] and list(store.iter_articles()) == [got]
    assert [r["id"] for r in store.list_articles()] == ["a01"]
    assert list(store.iter_chunk_rows()) == [(c, "s1:blob", None)]
    [(got_chunk, _, got_vector)] = store.iter_chunk_rows(vectors=True)
    assert got_chunk == c and np.allclose(got_vector, vector[0], atol=1e-6)
    changed, c2 = article(1, "2023-05-31", "The river rose 5 meters.")
    store.write_articles([EmbeddedArticle(changed, [c2], unit(rng), [""])], replacing={"a01"})
    assert [x.text for x in store.iter_chunks()] == ["The river rose 5 meters."]
    assert store.delete_article("a01") and not store.delete_article("a01")
    assert store.count_articles() == store.count_chunks() == 0


def test_orphans_and_unreadable_vectors_are_found(new_store):
    store = new_store()
    rng = np.random.default_rng(2)
    a, c = article(2)
    store.write_articles([EmbeddedArticle(a, [c], unit(rng), [""])], replacing=set())
    add_orphan_chunk(store, "ghost:0", unit(rng))
    assert store.orphan_articles() == ["ghost"]
    store.remove_chunks_of(["ghost"])
    assert store.orphan_articles() == [] and store.count_chunks() == 1
    assert store.chunk_vectors(["a02:0"])["a02:0"].shape == (16,)


def test_index_state_and_manifest(new_store):
    store = new_store()
    manifest = {"model_id": "m", "weights_hash": "h", "dimension": 16, "chunk_size": 1000, "chunk_overlap": 1}
    store.check_manifest(manifest)
    assert store.state().generation in ("new", "")
    store.mark_writing("session-1")
    assert store.state().writing == "session-1"
    store.commit("gen-2")
    assert store.state() == type(store.state())("gen-2", "", 0)
    a, c = article(3)
    store.write_articles([EmbeddedArticle(a, [c], unit(np.random.default_rng(3)), [""])], replacing=set())
    with pytest.raises(IndexMismatch, match="chunk_size: index has 1000, settings ask for 600"):
        store.check_manifest({**manifest, "chunk_size": 600})
