"""`rag bench`: writes bench.json and prints a table. Every ratio in it comes from this one run.

    rag bench [--index-dir DIR] [--ingest-articles 100] [--queries 940] [--only ingest,query,update,http,load,uploads]
    rag bench --docs docs/measurements     # docs/MEASUREMENTS.md from the measurement files there

The question and HTTP figures use an index of both RealTime QA corpora (about 6,700 articles); if DIR holds
none it is built first, which takes about an hour on two cores.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from rag.bench import http, ingest, query, report, update
from rag.config import Settings
from rag.errors import BadInput

SECTIONS = ("ingest", "query", "update", "http", "load", "uploads")


def datasets_dir() -> Path:
    return Path.cwd().parent / "shared" / "datasets"


def run_cli(args) -> int:
    if args.docs:
        folder = Path(args.docs)
        if not folder.is_dir():
            raise BadInput(f"--docs {folder}: no such folder of measurement files.")
        print(f"wrote {report.write_docs(folder)}")
        return 0
    data = Path(args.datasets) if args.datasets else datasets_dir()
    if not (data / "realtimeqa-news-scale" / "corpus.jsonl").is_file():
        raise BadInput(f"{data} does not hold the RealTime QA datasets; give --datasets DIR.")
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    serve_env = _serve_env(args.serve_env or [])
    if only - set(SECTIONS):
        raise BadInput(f"--only takes {', '.join(SECTIONS)}.")
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "commit": _commit()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        # What differs from the defaults: the RAG_* settings of this run, and those of the measured server.
        "settings": {**{k: v for k, v in os.environ.items() if k.startswith("RAG_")}, **serve_env},
    }
    if "ingest" in only:
        articles, questions = ingest.load_dataset(data / "realtimeqa-cnn-2022")
        result["ingest"] = ingest.run(_spread(articles, questions, args.ingest_articles), questions, args.repeats)
        _show("ingest", result["ingest"])
    index_dir = Path(args.index_dir)
    queries = [
        json.loads(line)
        for line in (data / "realtimeqa-news-scale" / "queries_unlabeled.jsonl").read_text().splitlines()
    ][: args.queries]
    if only & {"query", "update", "http", "load", "uploads"}:
        result["index"] = _ensure_index(index_dir, data)
    if "query" in only:
        from rag.pipeline import Pipeline

        result["query"] = query.run(Pipeline(Settings(index_dir=index_dir)), queries)
        _show("query", result["query"])
    if "update" in only:
        articles, _ = ingest.load_dataset(data / "realtimeqa-cnn-2022")
        result["update"] = update.run(index_dir, articles[0])
        _show("update", result["update"])
    texts = [q["question"] for q in queries]
    if "http" in only:
        result["http"] = http.concurrency(index_dir, texts, workers=args.serve_workers, env=serve_env)
        _show("http", result["http"])
    if "load" in only:
        ids = [
            json.loads(line)["id"] for line in (data / "realtimeqa-cnn-2022" / "corpus.jsonl").read_text().splitlines()
        ]
        result["load"] = http.mixed_load(index_dir, texts, ids[:500], workers=args.serve_workers, env=serve_env)
        _show("load", result["load"])
    if "uploads" in only:
        articles, _ = ingest.load_dataset(data / "realtimeqa-cnn-2022")
        records = [{"title": a.title, "text": a.text, "published": a.published} for a in articles[:3]]
        result["uploads"] = http.uploads(index_dir, texts, records, workers=args.serve_workers, env=serve_env)
        _show("uploads", result["uploads"])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _serve_env(pairs: list[str]) -> dict[str, str]:
    """``--serve-env RAG_X=1`` pairs: settings for the measured server only (``RAG_READER_PROCESS=false`` measures
    one process without its reader process)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("RAG_"):
            raise BadInput(f"--serve-env {pair!r}: give RAG_NAME=VALUE, e.g. RAG_READER_PROCESS=false.")
        env[name] = value
    return env


def _spread(articles, questions, n: int):
    """``n`` articles: the gold articles of the dev questions first (so retrieval can be scored), then others."""
    gold = {d for q in questions for d in q.get("doc_ids", [])}
    first = [a for a in articles if a.id in gold]
    return (first + [a for a in articles if a.id not in gold])[:n]


def _ensure_index(index_dir: Path, data: Path) -> dict:
    from rag.pipeline import Pipeline

    # The corpora are one JSON-lines file each, larger than the default limit on one input file.
    p = Pipeline(Settings(index_dir=index_dir, max_file_bytes=1 << 31))
    started = time.perf_counter()
    report = p.index_paths(
        [data / "realtimeqa-cnn-2022" / "corpus.jsonl", data / "realtimeqa-news-scale" / "corpus.jsonl"]
    )
    if report.skipped:
        raise BadInput(f"Building the bench index skipped {len(report.skipped)} input(s), first: {report.skipped[0]}")
    stats = p.stats()
    return {
        "articles": stats["articles"],
        "chunks": stats["chunks"],
        "added_now": report.added,
        "seconds_now": round(time.perf_counter() - started, 1),
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except OSError:
        return ""


def _show(title: str, section: dict, prefix: str = "") -> None:
    if not prefix:
        print(f"== {title}")
    for k, v in section.items():
        if isinstance(v, dict):
            _show(title, v, f"{prefix}{k}.")
        else:
            print(f"  {prefix}{k:40} {v}")
