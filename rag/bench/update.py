"""Updating a large index: one article added and removed again, as `rag ingest` and in a warm process, against
building the same generation's snapshot from the whole store.

The article is a copy of one already indexed, under a new id, so the bench index ends as it began.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..types import Article


def run(index_dir: Path, article: Article, repeats: int = 3) -> dict:
    from ..config import Settings
    from ..pipeline import Pipeline

    pipeline = Pipeline(Settings(index_dir=index_dir))
    pipeline.warm_up()
    out = {"cli_ingest_one": _cli_ingest(index_dir, _copy(article, "bench-update-cli"))}
    pipeline.delete("bench-update-cli")
    adds, deletes = [], []
    for i in range(repeats):
        copy = _copy(article, f"bench-update-{i}")
        started = time.perf_counter()
        pipeline.index_articles([copy])
        adds.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.delete(copy.id)
        deletes.append(time.perf_counter() - started)
    out["warm_add_one_s"] = round(statistics.median(adds), 2)
    out["warm_delete_one_s"] = round(statistics.median(deletes), 2)
    started = time.perf_counter()
    snapshot = pipeline.index.build_snapshot()
    out["snapshot_from_whole_store_s"] = round(time.perf_counter() - started, 1)
    out["chunks"] = len(snapshot.chunks)
    out["whole_store_vs_warm_add"] = round(out["snapshot_from_whole_store_s"] / out["warm_add_one_s"], 1)
    return out


def _copy(article: Article, new_id: str) -> Article:
    return Article(id=new_id, title=f"{article.title} (bench copy)", text=article.text, published=article.published)


def _cli_ingest(index_dir: Path, article: Article) -> dict:
    """`rag ingest` of one article in a new process: wall time, model load included, and its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.jsonl"
        path.write_text(json.dumps({"id": article.id, "title": article.title, "text": article.text,
                                    "published": article.published}) + "\n")
        errors = Path(tmp) / "stderr"
        started = time.perf_counter()
        with errors.open("wb") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "rag.cli", "--index-dir", str(index_dir), "ingest",
                                      str(path)], stdout=subprocess.DEVNULL, stderr=stderr)
            # wait4, not wait: the peak RSS of this child alone, not of every child the bench has had.
            _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code:
            raise RuntimeError(f"rag ingest exited with {code}: {errors.read_text(errors='replace')[-500:]}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}
