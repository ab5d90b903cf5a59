"""Web latency: time from `rag serve` start to the first answer, then /api/ask over N requests.

    python eval/web_bench.py [--requests 50] [--index-dir DIR]

Uses the index in --index-dir (default: a scratch copy with the bundled articles ingested).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--index-dir")
    args = ap.parse_args()
    rag = [sys.executable, "-m", "rag.cli"]
    with tempfile.TemporaryDirectory() as d:
        index = Path(args.index_dir or Path(d) / "index")
        env = {**os.environ, "RAG_INDEX_DIR": str(index)}
        if not args.index_dir:
            subprocess.run(rag + ["ingest", str(ROOT / "index" / "articles"), "--quiet"], env=env, check=True,
                           capture_output=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = subprocess.Popen(rag + ["serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    r = httpx.post(f"{url}/api/ask", json={"question": "How much aid was announced?"}, timeout=60)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - started > 120 or server.poll() is not None:
                    raise SystemExit("the server did not answer within 120 s")
                time.sleep(0.05)
            first = time.perf_counter() - started
            questions = ["How much aid was announced?", "Who is the president of the Migration Policy Institute?",
                         "When did Harris land in Guatemala?", "What is the capital of France?",
                         "Which countries make up the Northern Triangle?"]
            times = []
            with httpx.Client(timeout=60) as client:
                for i in range(args.requests):
                    t = time.perf_counter()
                    client.post(f"{url}/api/ask", json={"question": questions[i % len(questions)]}).raise_for_status()
                    times.append((time.perf_counter() - t) * 1000)
        finally:
            server.terminate()
            server.wait(10)
    times.sort()
    print(f"serve_start_to_first_answer_s   {first:.2f}")
    print(f"api_ask_requests                {len(times)}")
    print(f"api_ask_median_ms               {statistics.median(times):.1f}")
    print(f"api_ask_p95_ms                  {times[int(0.95 * (len(times) - 1))]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
