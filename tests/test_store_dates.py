"""Date-bounded vector search in a real Chroma store: the fast path (plain search, filtered here) and
the fallback (Chroma's own filter) must both return exactly the nearest articles within the dates."""

from datetime import date, timedelta

import numpy as np
import pytest

from rag.store import OVERFETCH, ChromaStore
from rag.types import Article, Chunk

DAYS = 60


@pytest.fixture(scope="module")
def dated_store(tmp_path_factory):
    store = ChromaStore(path=tmp_path_factory.mktemp("chroma"))
    rng = np.random.default_rng(3)
    items = []
    for i in range(DAYS + 4):
        published = (date(2022, 1, 1) + timedelta(days=i)).isoformat() if i < DAYS else None
        text = f"Story number {i}."
        art = Article(id=f"a{i:02d}", title=f"Story {i}", text=text, published=published, content_hash=str(i))
        chunk = Chunk(id=f"a{i:02d}:0", article_id=art.id, ordinal=0, start=0, end=len(text), text=text,
                      title=art.title, published=published)
        v = rng.normal(size=(1, 16)).astype(np.float32)
        items.append((art, [chunk], v / np.linalg.norm(v)))
    store.write_articles(items, replacing=set())
    vectors = {art.id: v[0] for art, _, v in items}
    dates = {art.id: art.published for art, _, _ in items}
    return store, vectors, dates


def nearest(vectors, dates, query, n, keep):
    ranked = sorted((a for a in vectors if keep(dates[a])), key=lambda a: -float(vectors[a] @ query))
    return ranked[:n]


@pytest.mark.parametrize("since, until, keep_undated", [
    (None, "2022-02-20", True),   # most of the index: answered by the plain search
    (None, "2022-02-20", False),
    ("2022-01-10", None, False),
    ("2022-01-05", "2022-01-07", False),  # three days of sixty: too few in the plain top 4n, so Chroma filters
    ("2023-01-01", None, False),  # nothing in range
])
def test_date_bounded_search_returns_the_nearest_articles_in_range(dated_store, since, until, keep_undated, monkeypatch):
    store, vectors, dates = dated_store
    filters = []
    search = store._search
    monkeypatch.setattr(store, "_search", lambda col, vec, k, where, include: filters.append(where) or search(col, vec, k, where, include))
    n = 5
    assert OVERFETCH * n < len(vectors)  # so the narrow range really takes the fallback

    def keep(published):
        if not published:
            return keep_undated and not since
        return not (since and published < since) and not (until and published > until)

    query = np.random.default_rng(11).normal(size=16).astype(np.float32)
    query /= np.linalg.norm(query)
    expected = nearest(vectors, dates, query, n, keep)
    got_articles = [a for a, _ in store.dense_article_query(query, n, since=since, until=until, keep_undated=keep_undated)]
    got_chunks = [c.article_id for c, _ in store.dense_query(query, n, since=since, until=until, keep_undated=keep_undated)]
    assert got_articles == expected
    assert got_chunks == expected
    narrow = since == "2022-01-05" or since == "2023-01-01"
    assert any(filters) == narrow  # only a range the plain top 4n cannot fill is left to Chroma's filter
    if since == "2022-01-05":
        assert len(expected) == 3
