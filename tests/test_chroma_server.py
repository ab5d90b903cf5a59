"""Server mode: a real `chroma run` on loopback, reached through RAG_CHROMA_URL."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.pipeline import Pipeline

from .conftest import BUNDLED, SEED_ID, free_port, make_settings

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    log = open(tmp_path / "chroma.log", "w")
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}: {(tmp_path / 'chroma.log').read_text()}")
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("chroma server did not answer within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_ingest_and_ask_through_a_chroma_server(chroma_server, tmp_path, embedder):
    settings = make_settings(tmp_path / "local", chroma_url=chroma_server)
    p = Pipeline(settings, embedder=embedder)
    r = p.index_paths([BUNDLED])
    assert r.added == 1 and r.chunks > 0
    assert p.stats()["store"] == "server"
    # Nothing was written to the embedded store's folder: the vectors live on the server.
    assert not (tmp_path / "local" / "chroma").exists()
    a = p.ask("How much aid was announced?")
    assert a.short_answer == "$310 million"
    assert p.get_article(SEED_ID).text[a.citations[0].start:a.citations[0].end] == a.citations[0].quote
    # A second client (another process's view) sees the same index and skips unchanged content.
    p2 = Pipeline(make_settings(tmp_path / "other-local", chroma_url=chroma_server), embedder=embedder)
    assert p2.index_paths([BUNDLED]).unchanged == 1
    assert p2.ask("How much aid was announced?").short_answer == "$310 million"


def test_cli_against_server(chroma_server, tmp_path):
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_INDEX_DIR": str(tmp_path / "ix")}
    rag = [sys.executable, "-m", "rag.cli"]
    out = subprocess.run(rag + ["ingest", str(BUNDLED), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(rag + ["ask", "How much aid was announced?"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Short answer: $310 million" in out.stdout


def test_unreachable_server_is_a_clear_error(tmp_path, embedder):
    from rag.errors import StoreError

    p = Pipeline(make_settings(tmp_path / "ix", chroma_url=f"http://127.0.0.1:{free_port()}"), embedder=embedder)
    with pytest.raises(StoreError, match="The vector store at http://127.0.0.1:[0-9]+ failed to open"):
        p.stats()
