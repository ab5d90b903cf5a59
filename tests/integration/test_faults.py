"""Nothing hung: a Chroma server killed or frozen, hostile HTTP input, and uploads beside questions.

Real uvicorn, a real `chroma run` on loopback, real HTTP. The encoder is the fake one: these faults do not
depend on what the text means, and the real model would only make each case slower.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rag.encoders.protocol import EncoderStatus
from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, make_settings, wait_until
from tests.helpers.servers import ChromaServer, LiveServer
from web.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.server]
TOKEN = "fault-token"


@pytest.fixture
def chroma(tmp_path):
    server = ChromaServer(tmp_path / "chroma-data").start()
    yield server
    server.stop()


@pytest.fixture
def served(chroma, tmp_path, fake_embedder):
    settings = make_settings(tmp_path / "ix", chroma_url=chroma.url, store_timeout=3.0, api_token=TOKEN, rate_limit=0)
    pipeline = Pipeline(settings, embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_a_killed_store_is_a_503_with_retry_after_and_recovers(served, chroma):
    assert served.post("/api/ask", json={"question": "How much aid was announced?"}).status_code == 200
    chroma.kill()
    r = served.post("/api/ask", json={"question": "How much aid was announced?"})
    assert r.status_code == 503 and r.headers["retry-after"] and "vector store" in r.json()["error"]
    health = served.get("/healthz")
    assert health.status_code == 503 and health.json()["index"].startswith("unavailable")
    assert served.get("/api/articles").status_code == 503
    chroma.start()
    # The breaker lets a probe through a few seconds later; from then on, questions are answered again.
    assert wait_until(
        lambda: served.post("/api/ask", json={"question": "How much aid was announced?"}).status_code == 200, 20
    )
    assert served.get("/healthz").json()["status"] == "ok"


def test_a_frozen_store_fails_requests_together_and_healthz_within_a_second(served, chroma):
    """RAG_STORE_TIMEOUT=3 here. Six questions at once must not take 3, 6, ... 18 s in turn: once one call has
    timed out, the rest fail at once (a circuit breaker), and /healthz never waits for the store."""
    chroma.freeze()
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(6) as pool:
            asks = list(pool.map(lambda _: served.post("/api/ask", json={"question": "How much aid?"}), range(6)))
        took = time.perf_counter() - started
        assert [r.status_code for r in asks] == [503] * 6 and took < 9, took
        assert all(r.headers["retry-after"] for r in asks)
        for _ in range(3):
            started = time.perf_counter()
            health = served.get("/healthz")
            assert health.status_code == 503 and time.perf_counter() - started < 1.5
            assert health.json()["index"].startswith("unavailable")
    finally:
        chroma.resume()
    # The breaker lets a probe through a few seconds later; from then on, questions are answered again.
    assert wait_until(
        lambda: served.post("/api/ask", json={"question": "How much aid was announced?"}).status_code == 200, 20
    )


@pytest.fixture
def app_client(tmp_path, fake_embedder):
    pipeline = Pipeline(
        make_settings(tmp_path / "ix", api_token=TOKEN, max_file_bytes=5_000, rate_limit=0), embedder=fake_embedder
    )
    pipeline.index_paths([BUNDLED])
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"question": "Who won?", "k": 1e999}', "k"),
        ('{"question": "Who won?", "k": -Infinity}', "k"),
        ('{"question": "Who won?", "k": 2.9}', "k"),
        ('{"question": "Who won?", "k": true}', "k"),
        ('{"question": "bad \\ud800 text"}', "question"),
    ],
)
def test_hostile_json_is_a_400_naming_the_field_on_a_kept_connection(app_client, raw, field):
    r = app_client.post("/api/ask", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith(f"Bad request: {field}=")
    assert app_client.get("/healthz").status_code == 200  # the keep-alive connection still works


def test_a_huge_highlight_range_is_a_400(app_client):
    article_id = app_client.get("/api/articles").json()["articles"][0]["id"]
    r = app_client.get(f"/articles/{article_id}?hl=1-{'9' * 5000}")
    assert r.status_code == 400 and "is not a range" in r.text


def test_bodies_are_limited_as_they_stream_whatever_the_encoding(app_client):
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def chunks(size):
        piece = b"x" * 1024
        for _ in range(size // 1024):
            yield piece

    upload = app_client.post(
        "/api/articles",
        content=chunks(105 * 1024),
        headers={**auth, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert upload.status_code == 413 and "RAG_MAX_FILE_BYTES" in upload.json()["error"]
    ask = app_client.post(
        "/api/ask",
        content=chunks(2 * 1024 * 1024),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert ask.status_code == 413 and "RAG_MAX_REQUEST_BYTES" in ask.json()["error"]
    declared = app_client.post("/api/ask", content=b"x" * 300_000, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413


def test_an_upload_does_not_hold_up_other_requests(tmp_path, fake_embedder, monkeypatch):
    pipeline = Pipeline(make_settings(tmp_path / "ix", api_token=TOKEN, rate_limit=0), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    slow = threading.Event()
    real = fake_embedder.embed_with_spans

    def slow_embed(texts, spans):
        slow.set()
        time.sleep(3)  # an encoder busy with a big upload
        return real(texts, spans)

    monkeypatch.setattr(fake_embedder, "embed_with_spans", slow_embed)
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        result = {}

        def upload():
            result["r"] = client.post(
                "/api/articles",
                json={"title": "Dam", "text": "The dam opened on Friday."},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )

        t = threading.Thread(target=upload)
        t.start()
        assert slow.wait(10)
        started = time.perf_counter()
        with httpx.Client(base_url=server.url, timeout=60) as other:
            assert other.get("/healthz").status_code == 200
        assert time.perf_counter() - started < 1.5, "the event loop was blocked by the upload"
        t.join(30)
        assert result["r"].status_code == 201


def test_security_headers_and_no_public_docs(app_client):
    r = app_client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert app_client.get("/api/docs").status_code == 404
    assert app_client.get("/api/openapi.json").status_code == 404
    assert app_client.get("/healthz").headers["x-frame-options"] == "DENY"


def test_questions_are_rate_limited_per_client(tmp_path, fake_embedder):
    pipeline = Pipeline(make_settings(tmp_path / "ix", rate_limit=12), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        codes = [client.post("/api/ask", json={"question": "How much aid?"}).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        r = client.post("/api/ask", json={"question": "How much aid?"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "RAG_RATE_LIMIT" in r.json()["error"]
        assert client.get("/healthz").status_code == 200  # only questions are limited


def test_healthz_answers_while_the_index_loads(tmp_path, fake_embedder):
    Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder).index_paths([BUNDLED])
    pipeline = Pipeline(make_settings(tmp_path / "ix"), embedder=fake_embedder)  # a new process's view: not loaded
    loading, load = threading.Event(), pipeline.index._load_snapshot

    def slow_load(generation):
        loading.set()
        time.sleep(3)
        return load(generation)

    pipeline.index._load_snapshot = slow_load
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert loading.wait(10)
        started = time.perf_counter()
        body = client.get("/healthz").json()
        assert time.perf_counter() - started < 1.0
        assert body == {
            "status": "starting",
            "model": "ready",
            "question_encoder": "fake",
            "reader": "span, in this process",
            "index": "loading",
        }
        assert client.post("/api/ask", json={"question": "How much aid was announced?"}).status_code == 200
        body = client.get("/healthz").json()
        assert body["status"] == "ok" and body["index"] == "ok" and body["articles"] == 1


def test_healthz_answers_while_the_model_loads(tmp_path, fake_embedder):
    loading = threading.Event()

    class SlowModel(type(fake_embedder)):
        status = EncoderStatus(loaded=False, questions="", documents="")

        def warm_up(self):
            loading.set()
            time.sleep(3)
            self.status = EncoderStatus(loaded=True, questions="fake", documents="")

    pipeline = Pipeline(make_settings(tmp_path / "ix"), embedder=SlowModel())
    pipeline.index_paths([BUNDLED])
    with LiveServer(create_app(pipeline=pipeline)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert loading.wait(10)
        started = time.perf_counter()
        body = client.get("/healthz").json()
        assert time.perf_counter() - started < 1.0 and body["model"] == "loading" and body["status"] == "starting"
        answer = client.post("/api/ask", json={"question": "How much aid was announced?"})
        assert answer.status_code == 200 and json.loads(answer.text)["question"]


def test_questions_beyond_the_thread_limit_wait_their_turn(tmp_path, fake_embedder):
    """RAG_QUESTION_THREADS=2: eight clients at once, at most two questions answered at a time, none refused;
    an article page is not held up behind them."""
    pipeline = Pipeline(make_settings(tmp_path / "ix", question_threads=2, rate_limit=0), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    ask, running, most = pipeline.ask, [0], [0]
    lock = threading.Lock()

    def slow_ask(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)
            return ask(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    pipeline.ask = slow_ask
    with LiveServer(create_app(pipeline=pipeline)) as server:
        results: list[int] = []

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                results.append(c.post("/api/ask", json={"question": "How much aid was announced?"}).status_code)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            started = time.perf_counter()
            assert c.get("/healthz").status_code == 200
            assert time.perf_counter() - started < 0.3, "a page waited behind the questions"
        for t in threads:
            t.join()
    assert results == [200] * 8
    assert most[0] == 2
