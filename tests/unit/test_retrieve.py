"""Fusion, per-article caps, recency and date bounds of retrieval. Pure logic."""

import pytest

from rag.retrieve import HybridRetriever, follow_up_context, in_range, nearest_in_range, recency_weight, rrf
from rag.types import Chunk, Hit


def chunk(cid, aid, published=None):
    return Chunk(cid, aid, 0, 0, 5, "text.", "T", published)


def test_reciprocal_rank_fusion_sums_each_list_and_lifts_whole_articles():
    a1, a2, b1 = chunk("a:1", "a"), chunk("a:2", "a"), chunk("b:1", "b")
    ranking = HybridRetriever.fuse(
        dense=[(b1, 0.9), (a1, 0.8)],
        lexical=[(a1, 5.0), (a2, 4.0)],
        dense_articles=[("a", 0.7)],
        lexical_articles=[("a", 3.0), ("b", 1.0)],
    )
    assert [h.chunk.id for h in ranking.hits] == ["a:1", "a:2", "b:1"]
    assert ranking.articles == ["a", "b"]
    top = ranking.hits[0].score
    assert top == pytest.approx(rrf(["b:1", "a:1"])["a:1"] + rrf(["a:1"])["a:1"] + rrf(["a"])["a"] * 2)


def test_the_time_of_asking_favours_recent_articles():
    old, new = chunk("o:1", "o", "2022-01-01"), chunk("n:1", "n", "2022-03-01")
    plain = HybridRetriever.fuse([(old, 0.9), (new, 0.8)], [])
    asked = HybridRetriever.fuse([(old, 0.9), (new, 0.8)], [], as_of="2022-03-02")
    assert [h.chunk.id for h in plain.hits] == ["o:1", "n:1"]
    assert [h.chunk.id for h in asked.hits] == ["n:1", "o:1"]


def test_recency_weight_halves_every_half_life():
    assert recency_weight("2022-03-01", "2022-03-01") == 1.0
    assert recency_weight("2022-01-30", "2022-03-01") == pytest.approx(0.5)
    assert recency_weight("2022-04-01", "2022-03-01") == 1.0  # never more than on the day
    assert recency_weight(None, "2022-03-01") == 0.0 and recency_weight("bad", "2022-03-01") == 0.0


def test_cap_limits_passages_per_article_and_in_all():
    hits = [Hit(chunk(f"a:{i}", "a"), 1.0 - i / 10) for i in range(4)] + [Hit(chunk("b:1", "b"), 0.1)]
    assert [h.chunk.id for h in HybridRetriever.cap(hits, 5, 2)] == ["a:0", "a:1", "b:1"]
    assert [h.chunk.id for h in HybridRetriever.cap(hits, 2, 2)] == ["a:0", "a:1"]


def test_cap_takes_one_article_per_story_first_and_copies_only_when_nothing_else_is_left():
    story = {"a": "s1", "b": "s1", "c": "s2", "d": "s3"}.get
    hits = [
        Hit(chunk("a:0", "a"), 0.9),
        Hit(chunk("b:0", "b"), 0.8),  # another report of a's story
        Hit(chunk("c:0", "c"), 0.5),
        Hit(chunk("d:0", "d"), 0.4),
    ]
    assert [h.chunk.id for h in HybridRetriever.cap(hits, 3, 2, story)] == ["a:0", "c:0", "d:0"]
    # With room to spare, the waiting copy comes back, in score order.
    assert [h.chunk.id for h in HybridRetriever.cap(hits, 4, 2, story)] == ["a:0", "b:0", "c:0", "d:0"]
    # Without stories, the ranking is only capped per article.
    assert [h.chunk.id for h in HybridRetriever.cap(hits, 3, 2)] == ["a:0", "b:0", "c:0"]


def test_date_ranges_and_undated_articles():
    assert in_range("2022-03-01", "2022-03-01", "2022-03-01")
    assert not in_range("2022-03-02", None, "2022-03-01")
    assert not in_range("2022-02-28", "2022-03-01", None)
    assert in_range(None, None, None)
    assert not in_range(None, None, "2022-03-01") and not in_range(None, "2022-03-01", None)
    assert in_range(None, None, "2022-03-01", keep_undated=True)


def test_a_narrow_date_range_falls_back_to_the_stores_filter():
    dates = {f"a{i}": f"2022-01-{i + 1:02d}" for i in range(30)}
    calls = []

    def search(vector, n, low, high):
        calls.append((n, low, high))
        ranked = sorted(dates)  # a0 is nearest
        if low is not None:
            ranked = [a for a in ranked if low <= int(dates[a].replace("-", "")) <= high]
        return [(a, 1.0) for a in ranked[:n]]

    wide = nearest_in_range(search, None, 3, None, "2022-01-20", False, dates.get)
    assert [a for a, _ in wide] == ["a0", "a1", "a10"] and calls == [(12, None, None)]
    calls.clear()
    narrow = nearest_in_range(search, None, 3, "2022-01-25", "2022-01-27", False, dates.get)
    assert [a for a, _ in narrow] == ["a24", "a25", "a26"]
    assert calls[-1] == (3, 20220125, 20220127)  # the plain top 12 held none of them: Chroma filtered
    assert nearest_in_range(search, None, 3, None, None, False, lambda a: False) == []  # unknown ids dropped


def test_a_follow_up_is_searched_with_the_question_it_refers_back_to():
    assert follow_up_context("When did she land?", ["Who is Kamala Harris?"]) == "Who is Kamala Harris?"
    assert follow_up_context("When did Harris land?", ["Who is Kamala Harris?"]) == ""
    assert follow_up_context("When did she land?", []) == ""
