"""The HTTP API through a real uvicorn server and the real pipeline."""

import contextlib
import json

import httpx
import pytest

from rag.encoders.embedder import cpu_has_bf16
from rag.pipeline import Pipeline
from tests.conftest import SEED_ID, make_settings
from tests.helpers.servers import LiveServer
from web.app import create_app

pytestmark = pytest.mark.slow  # the real model, and real servers where a test starts one

TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def live(bundled_index, embedder, tmp_path_factory):
    import shutil

    d = tmp_path_factory.mktemp("web") / "index"
    shutil.copytree(bundled_index, d)
    app = create_app(pipeline=Pipeline(make_settings(d, api_token=TOKEN), embedder=embedder))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def read_sse(client, payload):
    events = []
    with client.stream("POST", "/api/ask/stream", json=payload) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        buf = ""
        for text in r.iter_text():
            buf += text
        for block in buf.strip().split("\n\n"):
            lines = block.split("\n")
            event = lines[0].removeprefix("event: ")
            data = json.loads("\n".join(line.removeprefix("data: ") for line in lines[1:]))
            events.append((event, data))
    return events


def test_ask_returns_the_answer_object(live):
    r = live.post("/api/ask", json={"question": "How much aid was announced?"})
    assert r.status_code == 200
    a = r.json()
    assert a["abstained"] is False and a["backend"] == "extractive"
    c = a["citations"][0]
    # Evidence first: the sentence leads; a short answer only where it is likely right.
    assert "$310 million" in c["quote"] and a["answer"].startswith(c["quote"])
    assert a["short_answer"] in (None, "$310 million") and "short_answer_confidence" in a
    assert set(c) >= {"n", "article_id", "title", "url", "published", "chunk_id", "start", "end", "quote"}
    article = live.get(f"/api/articles/{c['article_id']}").json()
    assert article["text"][c["start"] : c["end"]] == c["quote"]
    assert set(a["timings_ms"]) == {"retrieve", "answer", "total"}
    assert all(set(p) >= {"n", "article_id", "chunk_id", "score", "text"} for p in a["passages"])


def test_a_when_answer_gives_the_days_its_relative_dates_name(live):
    """'Harris landed in Guatemala on Sunday', in an article of Wednesday 2023-05-31: Sunday is 2023-05-28."""
    a = live.post("/api/ask", json={"question": "When did Harris land in Guatemala?"}).json()
    landed = next(c for c in a["citations"] if "landed in Guatemala on Sunday" in c["quote"])
    sunday = next(d for d in landed["dates"] if d["text"] == "Sunday")
    assert sunday["date"] == "2023-05-28" and landed["quote"][sunday["start"] : sunday["end"]] == "Sunday"
    page = live.post("/", data={"question": "When did Harris land in Guatemala?"})
    assert "“Sunday” [" in page.text and '<time datetime="2023-05-28">2023-05-28</time>' in page.text
    other = live.post("/api/ask", json={"question": "How much aid was announced?"}).json()
    assert all(c["dates"] == [] for c in other["citations"]), "dates are resolved for when-questions only"


def test_article_page_highlights_the_range(live):
    a = live.post("/api/ask", json={"question": "How much aid was announced?"}).json()
    c = a["citations"][0]
    r = live.get(f"/articles/{c['article_id']}", params={"hl": f"{c['start']}-{c['end']}"})
    assert r.status_code == 200
    assert f'<mark id="hl" tabindex="-1">{c["quote"]}</mark>' in r.text
    assert live.get(f"/articles/{SEED_ID}", params={"hl": "50-10"}).status_code == 400
    assert live.get(f"/articles/{SEED_ID}", params={"hl": "0-999999"}).status_code == 400


def test_token_protected_ingest_ask_delete(live):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    rec = {
        "id": "volcano-1",
        "title": "Volcano erupts in Iceland",
        "published": "2024-03-17",
        "text": "A volcano on the Reykjanes peninsula erupted on Saturday. Authorities evacuated 3,700 people "
        "from the town of Grindavik and the Blue Lagoon spa.",
    }
    r = live.post("/api/articles", json=rec, headers=auth)
    assert r.status_code == 201 and r.json()["added"] == 1
    assert live.get("/healthz").json()["ingest_encoder"] == f"openvino ({'bf16' if cpu_has_bf16() else 'f32'})"
    a = live.post("/api/ask", json={"question": "How many people were evacuated after the volcano erupted?"}).json()
    assert "3,700 people" in a["citations"][0]["quote"] and a["citations"][0]["article_id"] == "volcano-1"
    r = live.delete("/api/articles/volcano-1", headers=auth)
    assert r.status_code == 200
    assert live.get("/api/articles/volcano-1").status_code == 404
    a = live.post("/api/ask", json={"question": "How many people were evacuated after the volcano erupted?"}).json()
    assert all(c["article_id"] != "volcano-1" for c in a["citations"])
    assert all(p["article_id"] != "volcano-1" for p in a["passages"])


def test_upload_a_file(live):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    html = (
        b"<html><head><title>Port strike ends</title></head><body><article><p>"
        + b"Dock workers ended their strike on Monday after 12 days. " * 3
        + b"</p></article></body></html>"
    )
    r = live.post("/api/articles", files={"file": ("port.html", html, "text/html")}, headers=auth)
    assert r.status_code == 201, r.text
    (article_id,) = r.json()["articles"]
    assert article_id.startswith("port-")
    assert live.get(f"/api/articles/{article_id}").json()["title"] == "Port strike ends"
    assert live.delete(f"/api/articles/{article_id}", headers=auth).status_code == 200
    r = live.post("/api/articles", files={"file": ("x.exe", b"MZ", "application/octet-stream")}, headers=auth)
    assert r.status_code == 400 and "unsupported extension" in r.json()["error"]


@contextlib.contextmanager
def added(live, rec: dict):
    """``rec`` ingested through the API for the length of the block, then deleted."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert live.post("/api/articles", json=rec, headers=auth).status_code == 201
    try:
        yield
    finally:
        live.delete(f"/api/articles/{rec['id']}", headers=auth)


def test_hostile_article_and_question_are_escaped(live):
    rec = {
        "id": "hostile",
        "title": "<script>alert('t')</script>Evil title",
        "url": "javascript:alert(document.cookie)",
        "text": "The mayor said <script>alert('x')</script> the budget grew by $5 million this year. "
        "<img src=x onerror=alert(1)> More text follows here.",
    }
    with added(live, rec):
        page = live.get("/articles/hostile").text
        assert "<script>alert('x')</script>" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
        assert "<img src=x" not in page and "<script>alert('t')" not in page
        assert "javascript:" not in page, "a non-http article URL is never made a link"
        r = live.post("/", data={"question": "<script>alert('q')</script> How much did the budget grow?"})
        assert r.status_code == 200
        assert "<script>alert('q')</script>" not in r.text and "&lt;script&gt;alert(&#39;q&#39;)" in r.text
        listing = live.get("/").text
        assert "<script>alert('t')</script>" not in listing


def test_an_upload_of_several_files_ingests_each_or_says_why_not(live):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    files = [
        ("file", ("dam.txt", b"Dam opens\n\nThe Itaipu dam opened on Friday after nine years.", "text/plain")),
        ("file", ("bridge.md", b"# Bridge opens\n\nThe new bridge opened on Monday to traffic.", "text/markdown")),
        ("file", ("tool.exe", b"MZ", "application/octet-stream")),
    ]
    r = live.post("/api/articles", files=files, headers=auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["added"] == 2 and len(body["articles"]) == 2
    assert [s["path"] for s in body["skipped"]] == ["tool.exe"] and "unsupported" in body["skipped"][0]["reason"]
    for article_id in body["articles"]:
        assert live.delete(f"/api/articles/{article_id}", headers=auth).status_code == 200
    many = [("file", (f"n{i}.txt", b"Title\n\nSome text.", "text/plain")) for i in range(101)]
    r = live.post("/api/articles", files=many, headers=auth)
    assert r.status_code == 400 and "Too many files" in r.json()["error"], r.text


def test_a_body_nested_too_deeply_is_a_400(live):
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    r = live.post("/api/articles", content=b"[" * 100_000 + b"]" * 100_000, headers=auth)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]


def test_article_text_cannot_forge_a_citation(live):
    """A footnote marker in an article ("[2]") is quoted as text: only the answer's own markers are links."""
    rec = {
        "id": "footnoted",
        "title": "Dam report",
        "text": "The Itaipu dam cost $19.6 billion to build.[2] It opened in 1984.[3]",
    }
    with added(live, rec):
        a = live.post("/api/ask", json={"question": "How much did the Itaipu dam cost to build?"}).json()
        (c,) = [c for c in a["citations"] if c["article_id"] == "footnoted"][:1]
        assert "[2]" in c["quote"], c
        assert [s["n"] for s in a["segments"] if s["n"]] == [x["n"] for x in a["citations"]]
        assert "".join(s["text"] for s in a["segments"]) == a["answer"]
        page = live.post("/", data={"question": "How much did the Itaipu dam cost to build?"}).text
        assert page.count('class="marker"') == len(a["citations"])
        assert "$19.6 billion to build.[2]" in page, "the footnote stays, as plain text"


def test_no_js_form_renders_the_answer_partial(live):
    r = live.post("/", data={"question": "How much aid was announced?"})
    assert r.status_code == 200
    assert "$310 million" in r.text and f"/articles/{SEED_ID}?hl=" in r.text
    assert ('class="evidence-label"' in r.text) != ('class="short-answer"' in r.text)
    r = live.post("/", data={"question": "What is the capital of France?"})
    assert 'class="answer abstained"' in r.text


def test_a_short_answer_is_rendered_with_its_confidence(bundled_index, embedder):
    """With the threshold at 0 every best candidate is shown: the headline, in bold, with its probability."""
    app = create_app(pipeline=Pipeline(make_settings(bundled_index, short_answer_threshold=0.0), embedder=embedder))
    with LiveServer(app) as server:
        r = httpx.post(f"{server.url}/", data={"question": "How much aid was announced?"}, timeout=120)
        assert '<p class="short-answer"><span class="label">Answer</span> <strong>$310 million</strong>' in r.text
        assert "% likely right" in r.text and 'class="evidence-label"' not in r.text


def test_no_js_form_applies_and_keeps_the_date_filters(live):
    """The bundled article is dated 2023-05-31: a range after it finds nothing, one around it answers."""
    q = "How much aid was announced?"
    r = live.post("/", data={"question": q, "since": "2024-01-01", "until": ""})
    assert 'class="answer abstained"' in r.text
    assert 'name="since" value="2024-01-01"' in r.text and '<details class="filters" open>' in r.text
    r = live.post("/", data={"question": q, "since": "2023-05-01", "until": "2023-06-30", "recent": "1"})
    assert "$310 million" in r.text and 'name="recent" value="1" checked' in r.text
    r = live.post("/", data={"question": q, "since": "May 2023"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text


def test_writes_disabled_without_a_token(bundled_index, embedder):
    app = create_app(pipeline=Pipeline(make_settings(bundled_index), embedder=embedder))
    with LiveServer(app) as server:
        r = httpx.post(f"{server.url}/api/articles", json={"text": "x"}, headers={"Authorization": "Bearer any"})
        assert r.status_code == 403 and "RAG_API_TOKEN" in r.json()["error"]


def test_history_is_accepted_and_validated(live):
    r = live.post(
        "/api/ask",
        json={"question": "How much aid did she announce?", "history": ["What did Kamala Harris do in the region?"]},
    )
    assert r.status_code == 200 and "$310 million" in r.json()["citations"][0]["quote"]
    r = live.post("/api/ask", json={"question": "How much?", "history": [{"no": "question"}]})
    assert r.status_code == 400 and "each turn must be" in r.json()["error"]
    r = live.post("/api/ask/stream", json={"question": "How much?", "history": ["q"] * 21})
    assert r.status_code == 400 and "at most 20" in r.json()["error"]


def test_healthz_says_what_encodes_questions(live):
    live.post("/api/ask", json={"question": "How much aid was announced?"})
    body = live.get("/healthz").json()
    assert body["status"] == "ok" and body["model"] == "ready"
    assert body["question_encoder"] == f"openvino ({'bf16' if cpu_has_bf16() else 'f32'})", body
