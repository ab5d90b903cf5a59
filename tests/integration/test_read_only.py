"""A read-only index (a read-only mount, or another user's folder) answers questions and serves articles, through
the CLI and the web app; writes get one clear line; and nothing in the index folder changes."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ANSWER_FIELDS, ROOT, SEED_ID, in_ci
from tests.helpers.ports import free_port
from tests.helpers.read_only import read_only_command, why_unavailable

pytestmark = pytest.mark.slow
TOKEN = "read-only-token"
MESSAGE = "is read-only for this process"


@pytest.fixture
def mounted(tmp_path, bundled_index):
    """(source, mountpoint, env): a copy of the bundled index, and where commands see it read-only."""
    reason = why_unavailable(tmp_path)
    if reason:
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    source = tmp_path / "index"
    shutil.copytree(bundled_index, source)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(TMPDIR=str(scratch), RAG_API_TOKEN=TOKEN, RAG_RATE_LIMIT="0", PYTHONPATH=str(ROOT))
    return source, tmp_path / "ro", env


def contents(folder):
    """Every file under ``folder`` with its sha256: what a read-only reader must leave as it was."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rag(mounted, *args):
    source, mountpoint, env = mounted
    command = read_only_command(source, mountpoint, [sys.executable, "-m", "rag.cli", "--index-dir", str(mountpoint)])
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, env=env)


def one_line_error(done):
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1 and MESSAGE in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("snapshot", ["saved", "missing"])
def test_the_cli_reads_a_read_only_index_and_refuses_writes(mounted, snapshot):
    source = mounted[0]
    if snapshot == "missing":  # a snapshot the reader must build for itself, with nowhere to save it
        shutil.rmtree(source / "lexical")
    before = contents(source)

    done = rag(mounted, "ask", "How much aid was announced?", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert set(answer) >= ANSWER_FIELDS and not answer["abstained"]
    assert answer["citations"][0]["article_id"] == SEED_ID and "$310 million" in answer["citations"][0]["quote"]

    done = rag(mounted, "list")
    assert done.returncode == 0 and SEED_ID in done.stdout and "1 article\n" in done.stdout, done.stderr

    done = rag(mounted, "check")
    if snapshot == "saved":
        assert done.returncode == 0 and "ok: the store" in done.stdout, done.stdout + done.stderr
    else:  # found, and said honestly: this process cannot repair it
        assert done.returncode == 3 and "the saved snapshot is damaged" in done.stdout
        assert "read-only for this process: a process that can write it fixes these" in done.stdout

    one_line_error(rag(mounted, "ingest", str(ROOT / "index" / "articles")))
    one_line_error(rag(mounted, "delete", SEED_ID))
    if snapshot == "missing":
        one_line_error(rag(mounted, "check", "--repair"))

    assert contents(source) == before, "a read-only reader changed the index"
    assert not list((source.parent / "tmp").iterdir()), "scratch folders were left behind"


def test_the_web_app_serves_a_read_only_index_and_refuses_writes(mounted):
    source, mountpoint, env = mounted
    before = contents(source)
    port = free_port()
    command = read_only_command(
        source,
        mountpoint,
        [sys.executable, "-m", "rag.cli", "--index-dir", str(mountpoint), "serve", "--port", str(port)],
    )
    log = open(source.parent / "serve.log", "w")  # noqa: SIM115 -- the child keeps writing to it
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        health = None
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"{url}/healthz", timeout=5)
                if health.json().get("model") == "ready" and health.json().get("index", "").startswith("ok"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        assert health is not None and health.status_code == 200, (source.parent / "serve.log").read_text()[-2000:]
        assert health.json()["index"] == "ok, read-only: questions only" and health.json()["status"] == "ok"

        asked = httpx.post(f"{url}/api/ask", json={"question": "How much aid was announced?"}, timeout=60)
        assert asked.status_code == 200 and "$310 million" in asked.json()["citations"][0]["quote"]
        page = httpx.get(f"{url}/articles/{SEED_ID}", timeout=30)
        assert page.status_code == 200 and "$310 million" in page.text
        assert httpx.get(url + "/", timeout=30).status_code == 200

        auth = {"Authorization": f"Bearer {TOKEN}"}
        record = {"title": "A new article", "text": "The council approved a budget of $12 million on Monday."}
        for response in (
            httpx.post(f"{url}/api/articles", json=record, headers=auth, timeout=30),
            httpx.post(f"{url}/api/articles", files={"file": ("a.txt", b"Some text.")}, headers=auth, timeout=30),
            httpx.delete(f"{url}/api/articles/{SEED_ID}", headers=auth, timeout=30),
        ):
            assert response.status_code == 403 and MESSAGE in response.json()["error"], response.text
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert contents(source) == before, "a read-only server changed the index"
    assert "Traceback" not in (source.parent / "serve.log").read_text()
