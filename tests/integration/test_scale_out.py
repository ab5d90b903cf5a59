"""Scale-out on a real engine: two `rag serve` workers on one `chroma run`, as the README deploys them.

Each worker is its own process with its own local folder, as on two machines: the Chroma server is the one
source of truth, and each worker rebuilds its BM25 and sentence tables from it when the generation moves.
"""

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import BUNDLED
from tests.helpers.ports import free_port
from tests.helpers.servers import ChromaServer

pytestmark = [pytest.mark.slow, pytest.mark.server]
TOKEN = "scale-token"


def start_worker(tmp_path, name, chroma_url):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_INDEX_DIR": str(tmp_path / name),
            "RAG_CHROMA_URL": chroma_url,
            "RAG_API_TOKEN": TOKEN,
            "RAG_RATE_LIMIT": "0",
        }
    )
    with open(tmp_path / f"{name}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json().get("model") == "ready":
                return proc, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker {name} did not start: {(tmp_path / f'{name}.log').read_text()[-2000:]}")


def test_an_article_ingested_through_one_worker_is_answered_by_the_other(tmp_path):
    chroma = ChromaServer(tmp_path / "chroma-data").start()
    workers = []
    try:
        workers = [start_worker(tmp_path, name, chroma.url) for name in ("one", "two")]
        (_, one), (_, two) = workers
        auth = {"Authorization": f"Bearer {TOKEN}"}
        seed = (BUNDLED / "000_be7ffad3bbd357e7.txt").read_bytes()
        r = httpx.post(
            f"{one}/api/articles", files={"file": ("seed.txt", seed, "text/plain")}, headers=auth, timeout=120
        )
        assert r.status_code == 201, r.text
        a = httpx.post(f"{two}/api/ask", json={"question": "How much aid was announced?"}, timeout=120).json()
        assert "$310 million" in a["answer"] and a["citations"][0]["article_id"] == r.json()["articles"][0]
        # A second article, and a delete, through the other worker: the first sees both at once.
        dam = {
            "title": "Oakfield dam reopens",
            "text": "The Oakfield dam reopened on Friday after a $4 million repair.",
        }
        added = httpx.post(f"{two}/api/articles", json=dam, headers=auth, timeout=120).json()["articles"][0]
        a = httpx.post(
            f"{one}/api/ask", json={"question": "How much did the Oakfield dam repair cost?"}, timeout=120
        ).json()
        assert "$4 million" in a["answer"] and a["citations"][0]["article_id"] == added
        assert httpx.delete(f"{one}/api/articles/{added}", headers=auth, timeout=120).status_code == 200
        assert httpx.get(f"{two}/healthz", timeout=30).json()["articles"] == 1
        gone = httpx.post(
            f"{two}/api/ask", json={"question": "How much did the Oakfield dam repair cost?"}, timeout=120
        )
        assert all(c["article_id"] != added for c in gone.json()["citations"])
    finally:
        for proc, _ in workers:
            proc.terminate()
            proc.wait(15)
        chroma.stop()


def test_rag_serve_with_two_worker_processes_on_one_embedded_index(tmp_path):
    """`rag serve --workers 2`: two processes share the index folder; an upload through either is answered by both."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    ix = tmp_path / "ix"
    assert (
        subprocess.run(
            [sys.executable, "-m", "rag.cli", "ingest", str(BUNDLED)],
            timeout=300,
            env={**os.environ, "RAG_INDEX_DIR": str(ix)},
            capture_output=True,
        ).returncode
        == 0
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_INDEX_DIR": str(ix), "RAG_API_TOKEN": TOKEN, "RAG_RATE_LIMIT": "0"})
    with open(tmp_path / "serve.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if (
                    httpx.post(
                        f"{url}/api/ask", json={"question": "How much aid was announced?"}, timeout=60
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        dam = {
            "title": "Oakfield dam reopens",
            "text": "The Oakfield dam reopened on Friday after a $4 million repair.",
        }
        r = httpx.post(f"{url}/api/articles", json=dam, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        assert r.status_code == 201, r.text
        with ThreadPoolExecutor(8) as pool:  # spread over both processes
            answers = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{url}/api/ask", timeout=120, json={"question": "How much did the Oakfield dam repair cost?"}
                    ).json(),
                    range(16),
                )
            )
        assert all("$4 million" in a["answer"] for a in answers), [a["answer"] for a in answers]
        import re

        started = set(re.findall(r"Started server process \[(\d+)\]", (tmp_path / "serve.log").read_text()))
        assert len(started) == 2, "two worker processes serve the index"
    finally:
        proc.terminate()
        proc.wait(30)
    shutil.rmtree(ix, ignore_errors=True)
    bad = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1 and "--workers 0" in bad.stderr
