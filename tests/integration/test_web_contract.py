"""The HTTP contract through FastAPI's TestClient: routes, status codes, error bodies, events and headers.

Fast: the fake encoder and an embedded Chroma. What the answers say is tested with the real model in
test_web_api.py and test_pipeline.py; here it is the shape of every response.
"""

import json

import pytest
from fastapi.testclient import TestClient

from rag.pipeline import Pipeline
from tests.conftest import ANSWER_FIELDS, BUNDLED, make_settings
from web.app import create_app

TOKEN = "contract-token"


@pytest.fixture
def client(tmp_path, fake_embedder):
    pipeline = Pipeline(make_settings(tmp_path / "ix", api_token=TOKEN, rate_limit=0), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])
    with TestClient(create_app(pipeline=pipeline)) as c:
        yield c


def events(response):
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = block.split("\n")
        out.append(
            (lines[0].removeprefix("event: "), json.loads("\n".join(x.removeprefix("data: ") for x in lines[1:])))
        )
    return out


def test_the_answer_object(client):
    a = client.post("/api/ask", json={"question": "How much aid was announced?"}).json()
    assert set(a) >= ANSWER_FIELDS
    assert set(a["timings_ms"]) == {"retrieve", "answer", "total"}
    for c in a["citations"]:
        article = client.get(f"/api/articles/{c['article_id']}").json()
        assert article["text"][c["start"] : c["end"]] == c["quote"] and "origin" not in article
    assert (a["short_answer"] is None) == (a["short_answer_confidence"] is None)


def test_the_stream_sends_passages_tokens_the_answer_and_its_rendering(client):
    r = client.post("/api/ask/stream", json={"question": "How much aid was announced?"})
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = events(r)
    names = [e for e, _ in evs]
    assert names[0] == "passages" and names[-2:] == ["answer", "html"] and set(names[1:-2]) <= {"token"}
    answer, html = evs[-2][1], evs[-1][1]
    assert "".join(d for e, d in evs if e == "token") == answer["answer"]
    assert html.lstrip().startswith('<article class="answer')
    direct = client.post("/api/ask", json={"question": "How much aid was announced?"}).json()
    answer.pop("timings_ms"), direct.pop("timings_ms")
    assert answer == direct


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"question": ""}, "The question is empty"),
        ({}, "The question is empty"),
        ({"question": "x" * 2001}, "the limit is 2,000"),
        ({"question": "aid?", "k": "lots"}, "k='lots': Input should be a valid integer"),
        ({"question": "aid?", "since": "yesterday"}, "YYYY-MM-DD"),
        ({"question": "aid?", "history": [{"no": "question"}]}, "history"),
    ],
)
def test_bad_requests_are_400_json_naming_the_problem(client, payload, message):
    for route in ("/api/ask", "/api/ask/stream"):
        r = client.post(route, json=payload)
        assert r.status_code == 400 and r.json()["status"] == 400 and message in r.json()["error"], (route, r.text)


def test_malformed_json_and_unknown_pages(client):
    r = client.post("/api/ask", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert client.get("/api/articles/nope").json() == {
        "error": "No article with id 'nope'; `rag list` shows the ids in the index.",
        "status": 404,
    }
    page = client.get("/articles/nope")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "There is no article &#39;nope&#39; here" in page.text and "rag list" not in page.text
    assert client.get("/no/such/page").status_code == 404


def test_pages_have_an_icon_and_plain_words(client):
    home = client.get("/").text
    assert 'rel="icon"' in home and client.get("/static/favicon.svg").status_code == 200
    answer = client.post("/", data={"question": "How much aid was announced?"}).text
    assert "Quoted from the articles ·" in answer and ">extractive" not in answer


def test_writes_need_the_right_token(client):
    rec = {"title": "Dam", "text": "The dam opened on Friday."}
    assert client.post("/api/articles", json=rec).status_code == 401
    assert client.post("/api/articles", json=rec, headers={"Authorization": "Bearer wrong"}).status_code == 403
    r = client.post("/api/articles", json=rec, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201 and r.json()["added"] == 1
    (article_id,) = r.json()["articles"]
    assert client.delete(f"/api/articles/{article_id}", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {
        "deleted": article_id
    }
    upload = client.post(
        "/api/articles",
        files={"file": ("x.exe", b"MZ", "application/octet-stream")},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert upload.status_code == 400 and "unsupported extension" in upload.json()["error"]


def test_healthz_and_listing(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "ready" and health["articles"] == 1
    (listed,) = client.get("/api/articles").json()["articles"]
    # Its story, and nothing internal: not where the file was on the server, nor its MinHash signature.
    assert listed["story"] == listed["id"] and not {"origin", "signature"} & set(listed)


def test_the_page_takes_its_limits_from_the_settings(client):
    page = client.get("/").text
    assert 'maxlength="2000"' in page and 'data-history="5"' in page and '/api/ask/stream"' in page
    assert "<script>" not in page and "style=" not in page  # nothing inline, so the CSP forbids it all


def test_an_empty_index_is_503_with_a_way_out(tmp_path, fake_embedder):
    with TestClient(create_app(pipeline=Pipeline(make_settings(tmp_path / "empty"), embedder=fake_embedder))) as c:
        r = c.post("/api/ask", json={"question": "Anything?"})
        assert r.status_code == 503 and "rag ingest" in r.json()["error"]


def test_an_unexpected_error_is_a_500_with_the_security_headers(tmp_path, fake_embedder, monkeypatch):
    pipeline = Pipeline(make_settings(tmp_path / "ix", rate_limit=0), embedder=fake_embedder)
    pipeline.index_paths([BUNDLED])

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "list_articles", broken)
    with TestClient(create_app(pipeline=pipeline), raise_server_exceptions=False) as c:
        for path, kind in (("/api/articles", "application/json"), ("/", "text/html")):
            r = c.get(path)
            assert r.status_code == 500 and r.headers["content-type"].startswith(kind), (path, r.text)
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
            assert "a bug" not in r.text, "the error is logged, never shown"
