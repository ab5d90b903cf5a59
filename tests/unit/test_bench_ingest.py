"""`rag bench`'s ingest section: how the repeated runs are summarised. Pure logic."""

from rag.bench.ingest import _median_run


def test_the_median_run_is_kept_and_a_figure_measured_apart_is_its_own_median():
    runs = [
        {"seconds": 3.0, "raw_encode_seconds": 1.0, "chunks": 7},
        {"seconds": 1.0, "raw_encode_seconds": 5.0, "chunks": 7},
        {"seconds": 2.0, "raw_encode_seconds": 9.0, "chunks": 7},
    ]
    assert _median_run(runs) == {"seconds": 2.0, "raw_encode_seconds": 9.0, "chunks": 7}
    assert _median_run(runs, ("raw_encode_seconds",)) == {"seconds": 2.0, "raw_encode_seconds": 5.0, "chunks": 7}
    assert runs[2]["raw_encode_seconds"] == 9.0, "the runs themselves are not changed"


def test_a_failed_side_is_reported_as_it_failed():
    failed = [{"error": "LangChain is not installed (langchain_chroma)."}]
    assert _median_run(failed, ("raw_encode_seconds",)) == failed[0]
