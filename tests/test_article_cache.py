"""The per-generation cache of articles a question reads. Pure logic."""

from rag.index import ArticleCache
from rag.types import Article


def store(texts):
    calls = []

    def fetch(ids):
        calls.append(list(ids))
        return {i: Article(i, i.upper(), texts[i]) for i in ids if i in texts}

    return fetch, calls


def test_only_what_is_missing_is_read_and_a_new_generation_reads_again():
    texts = {"a": "one", "b": "two", "c": "three"}
    fetch, calls = store(texts)
    cache = ArticleCache()
    assert {i: a.text for i, a in cache.get("g1", ["a", "b", "a"], fetch).items()} == {"a": "one", "b": "two"}
    assert list(cache.get("g1", ["b", "c", "gone"], fetch)) == ["b", "c"]
    assert calls == [["a", "b"], ["c", "gone"]]
    texts["a"] = "changed"
    assert cache.get("g1", ["a"], fetch)["a"].text == "one"  # the same generation never changes
    assert cache.get("g2", ["a"], fetch)["a"].text == "changed" and calls[-1] == ["a"]


def test_the_least_recently_read_article_leaves_first():
    fetch, calls = store({i: i for i in "abcd"})
    cache = ArticleCache(size=2)
    cache.get("g", ["a", "b"], fetch)
    cache.get("g", ["a"], fetch)  # a is now the most recent
    cache.get("g", ["c"], fetch)  # b leaves
    calls.clear()
    cache.get("g", ["a", "b", "c"], fetch)
    assert calls == [["b"]]
