"""Indexing and query benchmarks, each against a baseline run side by side on the same machine.

    python eval/bench.py [--articles 150] [--queries 50]

Indexing: the first N articles of realtimeqa-cnn-2022, embedded and written to Chroma
  - baseline: LangChain's defaults emulated (1,000-character windows with 200 overlap, float32 encoder,
    batch 32, every chunk written to Chroma);
  - ours: `Pipeline.index_articles` (sentence windows, bf16 encoder where the CPU has it, batched writes,
    BM25 built too).
Query latency: median and p95 over the questions, ours (hybrid retrieval + extractive answer) against
dense-only top-5 retrieval on the same index.
Prints a table; `--json` prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunk import chunk_id  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embed import Embedder  # noqa: E402
from rag.ingest import read_path  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.store import ChromaStore  # noqa: E402
from rag.types import Chunk  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "realtimeqa-cnn-2022"


def char_windows(text: str, size: int = 1000, overlap: int = 200) -> list[tuple[int, int]]:
    """LangChain's RecursiveCharacterTextSplitter at its defaults, approximately: windows cut at spaces."""
    spans, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        spans.append((start, end))
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return spans


def baseline_index(articles, work: Path) -> dict:
    t0 = time.perf_counter()
    embedder = Embedder(dtype="float32", batch_size=32)
    embedder.warm_up()
    load = time.perf_counter() - t0
    store = ChromaStore(path=work / "baseline")
    t1 = time.perf_counter()
    items, n = [], 0
    for a in articles:
        chunks = [Chunk(chunk_id(a.id, s, e, a.text[s:e]), a.id, i, s, e, a.text[s:e], "", a.published)
                  for i, (s, e) in enumerate(char_windows(a.text))]
        vectors = embedder.embed_batch([c.text for c in chunks])
        items.append((a, chunks, vectors))
        n += len(chunks)
    store.write_articles(items, replacing=set())
    return {"seconds": time.perf_counter() - t1, "chunks": n, "model_load_s": load}


def ours_index(articles, work: Path) -> tuple[dict, Pipeline]:
    t0 = time.perf_counter()
    p = Pipeline(Settings(_env_file=None, index_dir=work / "ours"))
    p.embedder.warm_up()
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = p.index_articles(articles)
    return {"seconds": time.perf_counter() - t1, "chunks": report.chunks, "model_load_s": load}, p


def query_latency(p: Pipeline, questions: list[str]) -> dict:
    ours, dense = [], []
    p.ask(questions[0])  # warm the lexical index and caches
    for q in questions:
        t = time.perf_counter()
        p.ask(q)
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        p.store.dense_query(p.embedder.embed_query(q), 5)
        dense.append((time.perf_counter() - t) * 1000)
    pct = lambda v: float(np.percentile(v, 95))  # noqa: E731
    return {"ours_median_ms": statistics.median(ours), "ours_p95_ms": pct(ours),
            "dense_only_median_ms": statistics.median(dense), "dense_only_p95_ms": pct(dense)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=150)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    articles = [a for a in read_path(DATASET / "corpus.jsonl", max_bytes=1 << 31) if hasattr(a, "text")][: args.articles]
    questions = [json.loads(line)["question"] for line in (DATASET / "questions.jsonl").read_text().splitlines()]
    questions = questions[: args.queries]
    chars = sum(len(a.text) for a in articles)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        base = baseline_index(articles, work)
        ours, pipeline = ours_index(articles, work)
        latency = query_latency(pipeline, questions)
    result = {
        "articles": len(articles), "characters": chars,
        "baseline_index_s": round(base["seconds"], 1), "baseline_chunks": base["chunks"],
        "ours_index_s": round(ours["seconds"], 1), "ours_chunks": ours["chunks"],
        "index_speedup": round(base["seconds"] / ours["seconds"], 2),
        "baseline_chunks_per_s": round(base["chunks"] / base["seconds"], 1),
        "ours_chunks_per_s": round(ours["chunks"] / ours["seconds"], 1),
        "model_load_s": round(ours["model_load_s"], 2),
        **{k: round(v, 1) for k, v in latency.items()},
        "query_overhead_vs_dense_only": round(latency["ours_median_ms"] / latency["dense_only_median_ms"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
