"""Shared fixtures: one loaded embedding model per session; every test builds its own settings and index.

`fake_embedder` stands in for the model where a test checks logic or a contract, not meaning (the fast tier);
tests that use the real model, Chroma server, uvicorn or a browser are marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.documents.sources import file_article_id
from rag.encoders.embedder import Embedder
from rag.pipeline import Pipeline
from tests.helpers.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "index" / "articles"
SEED_FILE = "000_be7ffad3bbd357e7.txt"
SEED_ID = file_article_id(SEED_FILE)
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    e = Embedder()
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_pipeline(tmp_path, fake_embedder) -> Pipeline:
    """A pipeline with the fake encoder over the bundled articles, in a private index (real embedded Chroma)."""
    p = Pipeline(make_settings(tmp_path / "index"), embedder=fake_embedder)
    assert p.index_paths([BUNDLED]).added == 1
    return p


def make_settings(index_dir: Path, **kw) -> Settings:
    # Built explicitly so a developer's RAG_* environment or .env cannot leak into tests.
    return Settings(_env_file=None, index_dir=index_dir, **kw)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path / "index")


@pytest.fixture
def pipeline(settings, embedder) -> Pipeline:
    return Pipeline(settings, embedder=embedder)


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory, embedder) -> Path:
    """An index of the bundled articles, built once; tests that read it copy nothing and write nothing."""
    d = tmp_path_factory.mktemp("bundled") / "index"
    p = Pipeline(make_settings(d), embedder=embedder)
    report = p.index_paths([BUNDLED])
    assert report.added >= 1 and not report.skipped
    return d


@pytest.fixture
def bundled(bundled_index, embedder) -> Pipeline:
    return Pipeline(make_settings(bundled_index), embedder=embedder)


@pytest.fixture
def writable_bundled(bundled_index, tmp_path, embedder) -> Pipeline:
    """A private copy of the bundled index, for tests that change it."""
    d = tmp_path / "index"
    shutil.copytree(bundled_index, d)
    return Pipeline(make_settings(d), embedder=embedder)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def dataset_or_skip(name: str) -> Path:
    """The shared dataset folder ``name``. A fresh clone has no ../shared, so the test skips there; in CI
    (CI=true) the datasets must be present and a missing one fails the run."""
    path = DATASETS / name
    if not (path / "corpus.jsonl").is_file():
        message = f"{path} is missing: the shared datasets are not beside this checkout (../shared/datasets)."
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


# What every answer object carries, through the CLI's --json and the HTTP API alike.
ANSWER_FIELDS = {
    "question",
    "answer",
    "short_answer",
    "short_answer_confidence",
    "abstained",
    "citations",
    "passages",
    "backend",
    "timings_ms",
    "confidence",
    "segments",
}


def run_rag(
    *args,
    index_dir: Path,
    env: dict | None = None,
    timeout: float = 300,
    wait: bool = True,
    crash_at: str | None = None,
):
    """The `rag` command in a process of its own, with no RAG_* setting from the developer's environment;
    with ``crash_at``, killed at that step of an index write (tests/helpers/crash_at.py)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    full.update({"RAG_INDEX_DIR": str(index_dir), **(env or {})})
    command = [sys.executable, "-m", "rag.cli", *args]
    if crash_at:
        command = [sys.executable, "-m", "tests.helpers.crash_at", crash_at, *args]
        full["PYTHONPATH"] = str(ROOT)
    if not wait:
        return subprocess.Popen(command, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=timeout)


def run_in_own_home(script: str, home: Path, encoder_cache: Path, timeout: float = 180) -> str:
    """``script`` run by Python in a process whose home folder is ``home`` (empty), so that anything a library
    writes there is seen; the encoder export is found in ``encoder_cache``. Returns its stdout; fails on an error.
    Telemetry switches some libraries honour under CI are off, as on a user's machine."""
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HOME=str(home), RAG_ENCODER_CACHE=str(encoder_cache), CI="false")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def wait_until(condition, seconds: float = 10) -> bool:
    """Poll ``condition`` every 20 ms until it holds or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()
