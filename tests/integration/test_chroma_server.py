"""Server mode: a real `chroma run` on loopback, reached through RAG_CHROMA_URL."""

import os
import subprocess
import sys

import pytest

from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, SEED_ID, make_settings
from tests.helpers.ports import free_port
from tests.helpers.servers import ChromaServer

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "server-data").start()
    yield server.url
    server.stop()


def test_ingest_and_ask_through_a_chroma_server(chroma_server, tmp_path, embedder):
    settings = make_settings(tmp_path / "local", chroma_url=chroma_server)
    p = Pipeline(settings, embedder=embedder)
    r = p.index_paths([BUNDLED])
    assert r.added == 1 and r.chunks > 0
    assert p.stats()["store"] == "server"
    # Nothing was written to the embedded store's folder: the vectors live on the server.
    assert not (tmp_path / "local" / "chroma").exists()
    a = p.ask("How much aid was announced?")
    assert "$310 million" in a.citations[0].quote
    assert p.get_article(SEED_ID).text[a.citations[0].start : a.citations[0].end] == a.citations[0].quote
    # A second client (another process's view) sees the same index and skips unchanged content.
    p2 = Pipeline(make_settings(tmp_path / "other-local", chroma_url=chroma_server), embedder=embedder)
    assert p2.index_paths([BUNDLED]).unchanged == 1
    assert "$310 million" in p2.ask("How much aid was announced?").citations[0].quote


def test_cli_against_server(chroma_server, tmp_path):
    env = {**os.environ, "RAG_CHROMA_URL": chroma_server, "RAG_INDEX_DIR": str(tmp_path / "ix")}
    rag = [sys.executable, "-m", "rag.cli"]
    out = subprocess.run(rag + ["ingest", str(BUNDLED), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        rag + ["ask", "How much aid was announced?"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "announced additional aid of $310 million" in out.stdout and "[1]" in out.stdout


def test_unreachable_server_is_a_clear_error(tmp_path, embedder):
    from rag.errors import StoreError

    p = Pipeline(make_settings(tmp_path / "ix", chroma_url=f"http://127.0.0.1:{free_port()}"), embedder=embedder)
    with pytest.raises(StoreError, match="The vector store at http://127.0.0.1:[0-9]+ failed to open"):
        p.stats()
