"""Word analysis and BM25 snapshots. Pure logic (BM25 is built in memory)."""

from concurrent.futures import ThreadPoolExecutor

from rag.index.chunktable import RowPlan
from rag.index.lexical import Analyzer, LexicalIndex, article_documents
from rag.language.rules import disabled
from rag.types import Chunk


def build(chunks, generation) -> LexicalIndex:
    return LexicalIndex.merged(None, RowPlan.fresh(len(chunks)), chunks, generation)


def test_words_are_lowercased_stemmed_and_stopwords_dropped():
    assert Analyzer()("Which team won? The Teams' winning runs.") == ["team", "won", "team", "win", "run"]


def test_a_whole_index_is_analysed_as_each_text_is_on_its_own():
    texts = [
        "Dock workers ended the strike; the workers' union's leaders said it's over.",
        "",
        "the a an",
        "Running runners ran 3,000 km in São Paulo’s 2023 marathon — RUNNING again!",
        "Guatemala GUATEMALA",
    ]
    analyzer = Analyzer()
    ids, vocab = analyzer.token_ids(texts)
    words = list(vocab)
    assert [vocab[w] for w in words] == list(range(len(vocab)))  # ids in order of the vocabulary
    assert [[words[i] for i in d] for d in ids] == [analyzer(t) for t in texts]
    assert [words[i] for i in ids[0][:3]] == ["dock", "worker", "end"] and ids[1] == ids[2] == []


def test_one_analyzer_serves_many_threads():
    # A Snowball stemmer must not be called concurrently; the web app answers from a thread pool.
    texts = [f"Leaders announced the running elections they won, number {i}" for i in range(500)]
    for shared in (Analyzer(), Analyzer(cache=100)):
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(shared, texts * 2)) == [Analyzer()(t) for t in texts * 2]


def test_a_cached_analysis_cannot_be_changed_by_its_caller():
    cached = Analyzer(cache=10)
    first = cached("Dock workers ended their strike")
    first.append("extra")
    assert cached("Dock workers ended their strike") == ["dock", "worker", "end", "strike"]


def test_article_documents_count_overlap_once():
    text = "One. Two. Three."
    chunks = [Chunk("c1", "a", 0, 0, 9, text[0:9], "T"), Chunk("c2", "a", 1, 5, 16, text[5:16], "T")]
    assert article_documents(chunks) == {"a": "T\nOne. Two.\n Three."}


def test_small_index_weights_names_above_common_words():
    """One article puts "Guatemala" in every chunk, like "trip"; general English still tells them apart."""
    text = "Harris will visit Guatemala on her trip. The trip to Guatemala is long."
    index = build([Chunk(f"c{i}", "a", i, 0, len(text), text, "T") for i in range(3)], "g1")
    stem = index.analyzer
    assert index.idf(stem("Guatemala")[0]) > index.idf(stem("trip")[0]) > index.idf(stem("long")[0])
    with disabled("general-english"):
        assert index.idf(stem("Guatemala")[0]) == index.idf(stem("trip")[0])


def test_bm25_snapshot_round_trip(tmp_path):
    chunks = [
        Chunk("a:1", "a", 0, 0, 30, "Dock workers ended their strike.", "Port", "2022-01-02"),
        Chunk("b:1", "b", 0, 0, 30, "The council approved the budget.", "Council", None),
    ]
    built = build(chunks, "g7")
    built.save(tmp_path / "snap")
    loaded = LexicalIndex.load(tmp_path / "snap")
    assert loaded.generation == "g7" and list(loaded.chunks) == chunks
    assert [c.id for c, _ in loaded.search("strike workers", 5)] == ["a:1"]
    assert [a for a, _ in loaded.search_articles("council budget", 5)] == ["b"]
    assert loaded.published("a") == "2022-01-02"
    assert LexicalIndex.load(tmp_path / "missing") is None


def test_search_ranks_as_bm25_scores_them_ties_by_position():
    chunks = [
        Chunk(f"c{i}", f"a{i}", 0, 0, 40, text, "")
        for i, text in enumerate(
            [
                "Dock strike ends",
                "Budget vote",
                "Dock strike ends",
                "Strike at the dock",
                "Council meets",
                "Dock workers strike again over pay",
            ]
        )
    ]
    index = build(chunks, "g1")
    found = index.search("dock strike", 10)
    scores = index._bm25.get_scores(index.analyzer("dock strike"))
    ids = [c.id for c, _ in found]
    assert ids == [f"c{i}" for i in sorted(range(6), key=lambda i: (-scores[i], i)) if scores[i] > 0]
    assert ids[:3] == ["c3", "c0", "c2"]  # c0 and c2 hold the same text: the earlier chunk first
    assert "c1" not in ids and "c4" not in ids
    assert [c.id for c, _ in index.search("dock strike", 2)] == ["c3", "c0"]
