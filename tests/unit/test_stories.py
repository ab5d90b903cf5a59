"""Story placement: near-copies by MinHash, same-event articles by vector and date. Pure logic, over a small
in-memory vector search."""

import numpy as np
import pytest

from rag.index import stories
from rag.index.stories import Member, StoryAssigner

WIRE = (
    "The Federal Reserve raised its benchmark interest rate by a quarter point on Wednesday, its tenth increase "
    "in a row, and signalled that it may pause as bank failures and slowing inflation cloud the outlook for the "
    "economy. Chair Jerome Powell told reporters that officials would watch the data closely before deciding."
)


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


class Vectors:
    """A flat vector search with date bounds, as the snapshot's is."""

    def __init__(self):
        self.rows = []

    def add(self, article_id, vector, published):
        self.rows.append((article_id, unit(vector), stories.date_key(published)))

    def __call__(self, vector, n, low, high):
        found = [(a, float(v @ vector)) for a, v, d in self.rows if low <= d <= high]
        return sorted(found, key=lambda f: -f[1])[:n]


def test_signature_round_trips_and_estimates_jaccard():
    a = stories.signature(WIRE)
    assert len(a) == len(stories.signature("other words")) and stories.similarity(a, a) == 1.0
    edited = WIRE.replace("Wednesday", "Thursday") + " Markets rose."
    assert stories.similarity(a, stories.signature(edited)) >= stories.NEAR_COPY
    assert stories.similarity(a, stories.signature("A storm hit the coast of Maine overnight.")) < 0.1
    assert stories.similarity(a, "not a signature") == 0.0


def test_a_near_copy_joins_the_story_within_its_window_but_not_a_year_later():
    search = Vectors()
    assigner = StoryAssigner([], search)
    first = assigner.place("cnn-1", WIRE, "2023-03-22", unit([1, 0, 0]))
    assert (first.story, first.why) == ("cnn-1", "new")
    copy = assigner.place("usat-1", WIRE + " (AP)", "2023-03-23", unit([0, 1, 0]))
    assert (copy.story, copy.match, copy.why) == ("cnn-1", "cnn-1", "near-copy")
    again = assigner.place("usat-2", WIRE, "2024-03-22", unit([0, 0, 1]))  # the same boilerplate a year on
    assert again.story == "usat-2"


def test_same_event_needs_close_vectors_and_close_dates():
    search = Vectors()
    members = [Member("a", "a", "2023-05-01", stories.signature("alpha beta gamma delta epsilon zeta"))]
    search.add("a", [1, 0.1, 0], "2023-05-01")
    assigner = StoryAssigner(members, search)
    near = assigner.place("b", "completely different words about the same event", "2023-05-03", unit([1, 0.12, 0]))
    assert (near.story, near.why) == ("a", "same event")
    late = assigner.place("c", "yet other words here for a later piece", "2023-05-20", unit([1, 0.1, 0]))
    assert late.story == "c"  # too many days apart
    far = assigner.place("d", "words on another subject entirely", "2023-05-01", unit([0, 0, 1]))
    assert far.story == "d"
    undated = assigner.place("e", "words without any date at all", None, unit([1, 0.1, 0]))
    assert undated.story == "e"  # "the same days" cannot be told


def test_articles_of_one_batch_find_each_other_and_an_update_keeps_its_story():
    search = Vectors()  # the store holds nothing committed yet
    assigner = StoryAssigner([], search)
    assigner.place("a", "first report of the flood in the valley town", "2023-07-01", unit([0.2, 1, 0]))
    b = assigner.place("b", "second report on the valley flood from another outlet", "2023-07-02", unit([0.21, 1, 0]))
    assert b.story == "a"
    rewritten = assigner.place("a", "first report of the flood, updated with the toll", "2023-07-01", unit([0.2, 1, 0]))
    assert rewritten.story == "a" and rewritten.match == "b"


@pytest.mark.parametrize("iso, key", [("2023-05-01", 20230501), (None, 0), ("not a date", 0)])
def test_date_key(iso, key):
    assert stories.date_key(iso) == key
