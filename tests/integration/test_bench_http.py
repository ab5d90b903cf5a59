"""`rag bench`'s load generator against the real app over loopback: it must read every kind of response whole
(fixed length, chunked server-sent events, errors) and keep its connections alive, or its figures are wrong."""

import httpx
import pytest

from rag.bench.http import hammer
from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, SEED_ID, make_settings
from tests.helpers.servers import LiveServer
from web.app import create_app

pytestmark = pytest.mark.slow  # a real uvicorn server

REQUESTS = [
    ("GET", "/healthz", None),
    ("POST", "/api/ask", {"question": "How much aid was announced?"}),
    ("POST", "/api/ask/stream", {"question": "How much aid was announced?"}),
    ("POST", "/api/ask", {"question": ""}),
    ("POST", "/api/ask", {"question": "x", "k": "many"}),
    ("GET", f"/articles/{SEED_ID}?hl=0-20", None),
    ("GET", "/articles/no-such-article", None),
    ("GET", "/no/such/page", None),
]


def test_every_response_is_read_whole_and_counted_as_httpx_sees_it(tmp_path, fake_embedder):
    pipeline = Pipeline(make_settings(tmp_path / "index", rate_limit=0), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    with LiveServer(create_app(pipeline=pipeline)) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            expected = [client.request(m, p, json=b).status_code for m, p, b in REQUESTS]
        assert sorted(set(expected)) == [200, 400, 404]  # bad questions are 400s
        result = hammer(server.url, REQUESTS * 6, clients=3)
    want = {}
    for status in expected * 6:
        want[str(status)] = want.get(str(status), 0) + 1
    assert result["statuses"] == want
    assert result["server_errors"] == 0 and result["client_errors"] == []
    assert result["requests"] == len(latencies := result["latencies_ms"]) == 48 and min(latencies) > 0


def test_a_refused_connection_is_an_error_not_a_hang():
    from tests.helpers.ports import free_port

    result = hammer(f"http://127.0.0.1:{free_port()}", [("GET", "/healthz", None)] * 3, clients=2)
    assert result["statuses"] == {"0": 3} and result["server_errors"] == 3
    assert set(result["client_errors"]) == {"ConnectionRefusedError"}


def test_the_uploads_section_writes_through_the_api_while_a_client_asks(writable_bundled, embedder):
    """`rag bench --only uploads` on a real server over a small index: every write succeeds, questions keep being
    answered meanwhile, the peak is at least the resting memory, and the index is left as it was found."""
    from rag.bench.http import uploads

    index_dir = writable_bundled.settings.index_dir
    before = [a["id"] for a in writable_bundled.list_articles()]
    records = [
        {
            "title": "Port strike ends",
            "text": "Dock workers ended their strike on Tuesday. They won a 7% raise.",
            "published": "2023-06-02",
        },
        {"title": "Dam opens", "text": "The Itaipu dam opened on Friday. It cost $19.6 billion to build."},
    ]
    result = uploads(index_dir, ["How much aid was announced?"], records, pause=0.2)
    assert len(result["uploads_s"]) == len(result["deletes_s"]) == 2 and min(result["uploads_s"]) > 0
    assert result["questions"] > 0 and result["question_errors"] == {}
    assert result["rss_after_mb"]["peak_rss_mb"] >= result["rss_before_mb"]["rss_mb"] > 100
    after = Pipeline(make_settings(index_dir), embedder=embedder)
    assert [a["id"] for a in after.list_articles()] == before
