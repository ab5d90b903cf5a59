"""Updating a large index: one article added and removed again, as `rag ingest` and in a warm process, against
building the same generation's snapshot from the whole store.

The article is a copy of one already indexed, under a new id, so the bench index ends as it began.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.types import Article


def run(index_dir: Path, article: Article, repeats: int = 3) -> dict:
    from rag.config import Settings
    from rag.pipeline import Pipeline

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


# Runs a command and prints its peak RSS (kB). A process that subprocess starts (by vfork) is charged its parent's
# peak RSS in ru_maxrss, since Linux records the parent's high-water mark when the child execs: started from the
# bench, `rag ingest` was reported at the bench's own peak (up to 3.2 GB). Started from this small process, it is
# charged about 10 MB at most.
_PEAK_RSS_OF = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _cli_ingest(index_dir: Path, article: Article) -> dict:
    """`rag ingest` of one article in a new process: wall time, model load included, and its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.jsonl"
        path.write_text(
            json.dumps({"id": article.id, "title": article.title, "text": article.text, "published": article.published})
            + "\n"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _PEAK_RSS_OF,
                sys.executable,
                "-m",
                "rag.cli",
                "--index-dir",
                str(index_dir),
                "ingest",
                str(path),
            ],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(f"rag ingest exited with {done.returncode}: {done.stderr[-500:]}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(int(done.stdout.split()[-1]) / 1024)}
