"""The `rag` command as a user runs it: real processes, exit codes and output."""

import json

import pytest

from tests.conftest import ANSWER_FIELDS, BUNDLED, SEED_FILE, SEED_ID, run_rag

pytestmark = pytest.mark.slow


def rag(*args, index_dir, timeout=300):
    return run_rag(*args, index_dir=index_dir, timeout=timeout)


def test_ingest_ask_list_delete(tmp_path):
    ix = tmp_path / "ix"
    src = tmp_path / "src"
    src.mkdir()
    (src / SEED_FILE).write_text((BUNDLED / SEED_FILE).read_text())
    (src / "junk.bin").write_bytes(b"\x00\x01")
    r = rag("ingest", str(src), index_dir=ix)
    assert r.returncode == 0, r.stderr
    assert "added 1, updated 0, unchanged 0, skipped 1" in r.stdout
    assert "junk.bin: unsupported extension" in r.stdout

    r = rag("ask", "How much aid was announced?", "--json", index_dir=ix)
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert a["short_answer"] in (None, "$310 million") and not a["abstained"]
    assert a["citations"][0]["article_id"] == SEED_ID and "$310 million" in a["citations"][0]["quote"]
    assert set(a) >= ANSWER_FIELDS

    r = rag("list", index_dir=ix)
    assert SEED_ID in r.stdout and "1 article\n" in r.stdout, 'one article, not "1 articles"'
    r = rag("delete", SEED_ID, index_dir=ix)
    assert r.returncode == 0
    r = rag("ask", "How much aid was announced?", index_dir=ix)
    assert r.returncode == 1
    assert r.stderr.startswith("error: The index has no articles yet") and "Traceback" not in r.stderr


def test_user_error_and_usage_exit_codes(tmp_path):
    r = rag("ask", "", index_dir=tmp_path / "ix")
    assert r.returncode == 1 and "error: The question is empty" in r.stderr and "Traceback" not in r.stderr
    r = rag("ask", index_dir=tmp_path / "ix")
    assert r.returncode == 2
    r = rag("delete", "nope", index_dir=tmp_path / "ix")
    assert r.returncode == 1 and "No article with id 'nope'" in r.stderr


def test_bench_passes_settings_to_the_measured_server_only_in_rag_form():
    from rag.bench.command import _serve_env
    from rag.errors import BadInput

    assert _serve_env(["RAG_READER_PROCESS=false", "RAG_QUESTION_THREADS=3"]) == {
        "RAG_READER_PROCESS": "false",
        "RAG_QUESTION_THREADS": "3",
    }
    assert _serve_env([]) == {}
    for bad in ("READER_PROCESS=false", "RAG_READER_PROCESS", "PATH=/tmp"):
        with pytest.raises(BadInput, match="give RAG_NAME=VALUE"):
            _serve_env([bad])
