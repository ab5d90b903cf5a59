"""docs/MEASUREMENTS.md is generated from measurement files: every figure in it comes from them."""

import json

from rag.bench.report import render
from rag.cli import main

BENCH = {
    "machine": {"cpus": 2, "python": "3.11.7", "commit": "abc"},
    "started": "2026-12-06 20:00:00",
    "query": {
        "questions": 940,
        "bare_dense_lookup": {"p50_ms": 12.0, "p95_ms": 15.0},
        "retrieval": {"p50_ms": 11.0, "p95_ms": 14.0},
        "retrieve_and_answer": {"p50_ms": 18.0, "p95_ms": 23.5},
        "answer_step": {"p50_ms": 4.2, "p95_ms": 6.0},
    },
    "http": {
        "clients_1": {"requests_per_s": 50.0, "latencies_ms": [1.0, 2.0]},
        "clients_8": {"requests_per_s": 75.0, "throughput_vs_one_client": 1.5, "p95_ms": 130.0},
        "rss_after_load": {"rss_mb": 1040.0},
    },
}
EVAL = {"questions": 101, "retrieval_hit@5": 0.8812, "short_answer_precision": None, "latency_median_ms": 22.4}


def test_the_page_holds_each_figure_of_its_files_and_the_ratios_made_from_them():
    page = render(BENCH, {"realtimeqa-dev": EVAL})
    assert (
        "| retrieve + answer, p50 / p95 | 18.0 / 23.5 ms | "
        "span reader: p50 ≤ 80 ms, p95 ≤ 150 ms; fitted: p50 ≤ 40 ms, p95 ≤ 100 ms |" in page
    )
    assert "| the answer step, p50 | 4.2 ms |" in page
    assert "1.50x" in page, "retrieve + answer against the bare lookup: 18 / 12"
    assert "| gold article in the top 5 | 0.881 |" in page
    assert "| short answers right, of those shown | — |" in page, "a figure that does not exist is a dash"
    assert "None" not in page and "latencies_ms" not in page
    assert "| clients_8.requests_per_s | 75.0 |" in page


def test_rag_bench_docs_writes_the_page_beside_its_folder(tmp_path, capsys):
    folder = tmp_path / "measurements"
    folder.mkdir()
    (folder / "bench.json").write_text(json.dumps(BENCH))
    (folder / "eval-xquad.json").write_text(json.dumps(EVAL))
    assert main(["bench", "--docs", str(folder)]) == 0
    page = (tmp_path / "MEASUREMENTS.md").read_text()
    assert page == render(BENCH, {"xquad": EVAL})
    assert main(["bench", "--docs", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_a_run_under_other_settings_stands_beside_the_default_in_the_headline():
    span = {
        **BENCH,
        "settings": {"RAG_READER": "span"},
        "query": {**BENCH["query"], "retrieve_and_answer": {"p50_ms": 64.0, "p95_ms": 95.0}},
    }
    page = render(BENCH, {}, {"span": span})
    assert "| figure | default | span | target |" in page
    assert (
        "| retrieve + answer, p50 / p95 | 18.0 / 23.5 ms | 64.0 / 95.0 ms | "
        "span reader: p50 ≤ 80 ms, p95 ≤ 150 ms; fitted: p50 ≤ 40 ms, p95 ≤ 100 ms |" in page
    )
    assert "RAG_READER span" in page
