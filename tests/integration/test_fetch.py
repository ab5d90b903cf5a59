"""Articles from URLs and feeds, against a real news site on loopback (tests/helpers/news_site.py): the real
client, extraction, model and index. Loopback is a private address, so these tests allow private fetching."""

import json

import pytest

from rag.pipeline import Pipeline
from tests.conftest import BUNDLED, SEED_FILE, make_settings, run_rag
from tests.helpers.news_site import NewsSite

pytestmark = pytest.mark.slow

SEED_TEXT = (BUNDLED / SEED_FILE).read_text().split("\n", 3)[3]  # the body, without the file's date and menu lines
SEED_TITLE = "U.S. to unveil human trafficking steps; Harris visits Guatemala"
SECOND = (
    "The city council approved a budget of $48 million for flood defences on Tuesday.\n\n"
    "The mayor said work on the river walls would begin in the spring and take three years."
)


@pytest.fixture
def site():
    with NewsSite() as s:
        s.add("harris-guatemala", SEED_TITLE, SEED_TEXT, "2023-05-31")
        s.add("flood-budget", "Council approves flood defence budget", SECOND, "2023-06-02")
        yield s


@pytest.fixture
def web_pipeline(tmp_path, embedder):
    settings = make_settings(
        tmp_path / "index", fetch_allow_private=True, fetch_host_delay=0, fetch_timeout=1.0, fetch_max_bytes=1_000_000
    )
    return Pipeline(settings, embedder=embedder)


def test_an_article_url_is_fetched_extracted_answered_and_cited(site, web_pipeline):
    url = f"{site.url}/news/harris-guatemala.html"
    report = web_pipeline.index_urls([url + "?utm_source=newsletter"])
    assert (report.added, report.skipped) == (1, [])
    [stored] = web_pipeline.list_articles()
    article = web_pipeline.get_article(stored["id"])
    # named by the page's canonical URL, with the site's name and the page's date
    assert (article.url, article.source, article.published) == (url, "The Loopback Ledger", "2023-05-31")
    assert article.title == SEED_TITLE and "$310 million" in article.text
    assert "cookies" not in article.text and "newsletter" not in article.text

    answer = web_pipeline.ask("How much aid was announced?")
    assert answer.citations[0].url == url and "$310 million" in answer.citations[0].quote

    again = web_pipeline.index_urls([url, f"{site.url}/moved.html"])  # the same article, directly and redirected
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)


def test_urls_that_cannot_be_fetched_are_skipped_with_their_reason(site, web_pipeline):
    bad = {
        "/missing.html": "HTTP 404",
        "/slow.html": "no answer within 1 s",
        "/loop/a": "more than 5 redirects",
        "/huge.html": "the limit is 1,000,000",
        "/doc.pdf": "sent application/pdf, not text/html",
        "/private/secret.html": "robots.txt does not allow",
    }
    good = f"{site.url}/news/flood-budget.html"
    report = web_pipeline.index_urls([site.url + p for p in bad] + [good, "ftp://example.com/x"])
    assert report.added == 1
    reasons = {s.path.removeprefix(site.url): s.reason for s in report.skipped}
    for path, why in bad.items():
        assert why in reasons[path], (path, reasons[path])
    assert "only http:// and https://" in reasons["ftp://example.com/x"]
    assert not site.requested("/private/"), "robots.txt was not honoured"
    agents = {h.get("User-Agent") for _, h in site.requested("/news/")}
    assert agents == {"rag-news/0.1 (grounded question answering over news; respects robots.txt)"}


def test_loopback_is_refused_unless_allowed(site, tmp_path):
    done = run_rag("ingest", f"{site.url}/news/flood-budget.html", index_dir=tmp_path / "ix")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "a loopback address: not fetched" in done.stderr and "RAG_FETCH_ALLOW_PRIVATE=true" in done.stderr
    assert not site.requests, "a refused URL was requested"


def test_feeds_refresh_idempotently_and_conditionally(site, web_pipeline):
    web = web_pipeline.web
    rss = web.add_feed(f"{site.url}/feeds/main.rss", name="ledger")
    assert rss.name == "ledger" and [f.url for f in web.list_feeds()] == [rss.url]

    [first] = web.refresh()
    assert (first.status, first.entries, first.fetched, first.report.added) == ("updated", 2, 2, 2)
    generation = web_pipeline.stats()["generation"]
    assert web.list_feeds()[0].articles == 2 and web.list_feeds()[0].last_success

    site.requests.clear()
    [second] = web.refresh()
    assert second.status == "not modified" and second.fetched == 0
    # robots.txt (read once per refresh), then one conditional request, answered 304
    assert [p for p, _ in site.requests] == ["/robots.txt", "/feeds/main.rss"]
    path, headers = site.requests[1]
    assert path == "/feeds/main.rss" and headers.get("If-None-Match")
    assert web_pipeline.stats()["generation"] == generation, "an unchanged refresh wrote to the index"

    # The same stories through a second feed, with relative links and tracking parameters: nothing new.
    web.add_feed(f"{site.url}/feeds/all.atom")
    site.requests.clear()
    outcomes = {o.name: o for o in web.refresh()}
    atom = outcomes["The Loopback Ledger (Atom)"]
    assert (atom.status, atom.report.added, atom.report.unchanged) == ("unchanged", 0, 2)
    assert len(web_pipeline.list_articles()) == 2
    assert all(h.get("If-None-Match") for _, h in site.requested("/news/")), "pages were not asked conditionally"

    # An article changes: its feeds' stamps move, and it is re-embedded in place.
    site.update("flood-budget", SECOND.replace("$48 million", "$52 million"))
    outcomes = {o.name: o for o in web.refresh()}
    assert outcomes["ledger"].report.updated == 1 and outcomes["ledger"].status == "updated"
    assert len(web_pipeline.list_articles()) == 2
    answer = web_pipeline.ask("How much was approved for flood defences?")
    assert "$52 million" in answer.citations[0].quote

    removed = web.remove_feed("ledger")
    assert removed.articles == 2 and [f.name for f in web.list_feeds()] == ["The Loopback Ledger (Atom)"]
    assert len(web_pipeline.list_articles()) == 2, "removing a feed removed its articles"


def test_a_failing_feed_backs_off_with_its_reason_and_the_others_go_on(site, web_pipeline):
    web = web_pipeline.web
    web.add_feed(f"{site.url}/feeds/main.rss", name="main")
    web.add_feed(f"{site.url}/feeds/all.atom", name="atom")
    site.failures["/feeds/main.rss"] = 1
    outcomes = {o.name: o for o in web.refresh()}
    assert outcomes["main"].status == "failed" and "HTTP 500" in outcomes["main"].error
    assert outcomes["atom"].status == "updated" and outcomes["atom"].report.added == 2
    main = {f.name: f for f in web.list_feeds()}["main"]
    assert main.failures == 1 and "HTTP 500" in main.last_error and main.backing_off()

    assert {o.name: o.status for o in web.refresh()}["main"] == "backing off"
    assert {o.name: o.status for o in web.refresh(["main"], force=True)}["main"] == "unchanged"
    main = {f.name: f for f in web.list_feeds()}["main"]
    assert (main.failures, main.last_error, main.backing_off()) == (0, None, False)


def test_what_is_not_a_feed_is_refused_when_added(site, web_pipeline):
    from rag.errors import RagError

    for path, why in (("/not-a-feed.xml", "not an RSS or Atom feed"), ("/news/flood-budget.html", "sent text/html")):
        with pytest.raises(RagError, match=why):
            web_pipeline.web.add_feed(site.url + path)
    assert web_pipeline.web.list_feeds() == []


def test_the_feeds_commands(site, tmp_path):
    env = {"RAG_FETCH_ALLOW_PRIVATE": "true", "RAG_FETCH_HOST_DELAY": "0"}
    ix = tmp_path / "ix"
    done = run_rag("feeds", "add", f"{site.url}/feeds/main.rss", "--name", "ledger", "--refresh", index_dir=ix, env=env)
    assert done.returncode == 0, done.stderr
    assert "following 'ledger'" in done.stdout and "ledger: updated: 2 entries, 2 pages fetched; added 2" in done.stdout

    done = run_rag("feeds", "refresh", "--json", index_dir=ix, env=env)
    assert done.returncode == 0 and json.loads(done.stdout)[0]["status"] == "not modified"

    site.failures["/feeds/main.rss"] = 1
    done = run_rag("feeds", "refresh", "--force", index_dir=ix, env=env)
    assert done.returncode == 3 and "ledger: failed (" in done.stdout and "HTTP 500" in done.stdout

    done = run_rag("feeds", "list", index_dir=ix, env=env)
    assert "ledger\t" in done.stdout and "2 articles" in done.stdout and "last error: " in done.stdout
    assert "next try after" in done.stdout and done.stdout.endswith("1 feed\n")

    done = run_rag("feeds", "remove", "ledger", index_dir=ix, env=env)
    assert done.returncode == 0 and "its 2 articles stay in the index" in done.stdout
    done = run_rag("feeds", "remove", "ledger", index_dir=ix, env=env)
    assert done.returncode == 1 and "No feed named or at 'ledger'" in done.stderr and "Traceback" not in done.stderr


def test_the_feeds_api_and_a_server_that_refreshes_on_its_own(site, tmp_path):
    """`rag serve --refresh-feeds`: the first pass runs once the server is warm, and the API shows its result."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.helpers.ports import free_port

    ix = tmp_path / "ix"
    env = {"RAG_FETCH_ALLOW_PRIVATE": "true", "RAG_FETCH_HOST_DELAY": "0", "RAG_API_TOKEN": "feeds-token"}
    assert run_rag("feeds", "add", f"{site.url}/feeds/main.rss", index_dir=ix, env=env).returncode == 0
    done = run_rag("serve", "--refresh-feeds", "10s", index_dir=ix, env=env)
    assert done.returncode == 1 and "under a minute" in done.stderr

    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | env | {"RAG_RATE_LIMIT": "0"}
    command = [sys.executable, "-m", "rag.cli", "--index-dir", str(ix), "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--refresh-feeds", "30m"], env=full, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        feeds = []
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                feeds = httpx.get(f"{url}/api/feeds", timeout=5).json()["feeds"]
                if feeds and feeds[0]["articles"] == 2:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        assert feeds and feeds[0]["articles"] == 2 and feeds[0]["last_error"] is None, feeds
        asked = httpx.post(f"{url}/api/ask", json={"question": "How much was approved for flood defences?"}, timeout=60)
        assert "$48 million" in asked.json()["citations"][0]["quote"]

        auth = {"Authorization": "Bearer feeds-token"}
        assert httpx.post(f"{url}/api/feeds", json={"url": f"{site.url}/feeds/all.atom"}, timeout=30).status_code == 401
        bad = httpx.post(f"{url}/api/feeds", json={"link": "x"}, headers=auth, timeout=30)
        assert bad.status_code == 400 and '{"url"' in bad.json()["error"]
        added = httpx.post(f"{url}/api/feeds", json={"url": f"{site.url}/feeds/all.atom", "name": "atom"}, headers=auth)
        assert added.status_code == 201 and added.json()["name"] == "atom"
        refreshed = httpx.post(f"{url}/api/feeds/refresh", json={"feeds": ["atom"]}, headers=auth, timeout=60)
        assert refreshed.status_code == 200 and refreshed.json()["feeds"][0]["unchanged"] == 2

        site.add(
            "late",
            "Library opens late on Fridays",
            "The central library stays open until 9 pm on Fridays.",
            "2023-06-06",
        )
        fetched = httpx.post(
            f"{url}/api/articles/fetch",
            json={"urls": [f"{site.url}/news/late.html", "file:///etc/passwd"]},
            headers=auth,
            timeout=60,
        )
        assert fetched.status_code == 201 and fetched.json()["added"] == 1
        assert "only http:// and https://" in fetched.json()["skipped"][0]["reason"]
        refused = httpx.post(f"{url}/api/articles/fetch", json={"urls": "http://x"}, headers=auth, timeout=30)
        assert refused.status_code == 400

        removed = httpx.delete(f"{url}/api/feeds", params={"feed": "atom"}, headers=auth, timeout=30)
        assert removed.status_code == 200 and [f["name"] for f in httpx.get(f"{url}/api/feeds").json()["feeds"]] == [
            feeds[0]["name"]
        ]
        page = httpx.get(f"{url}/sources", timeout=30)
        assert page.status_code == 200 and feeds[0]["name"] in page.text and "Sign in to add articles" in page.text
    finally:
        server.terminate()
        server.wait(30)


def test_extraction_keeps_real_articles_and_drops_the_furniture(tmp_path):
    """Over 50 real news articles served as pages with a site's furniture: what eval/measure_extraction.py reports."""
    import subprocess
    import sys

    from tests.conftest import ROOT, dataset_or_skip

    dataset_or_skip("realtimeqa-news-scale")
    out = tmp_path / "extraction.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "measure_extraction.py"), "--pages", "50", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["pages"] == 50 and figures["sentences"] > 1000
    assert figures["sentences_kept"] >= 0.99 and figures["furniture_dropped"] >= 0.99, figures
    assert min(figures["title_right"], figures["date_right"], figures["site_name_right"]) >= 0.98, figures


def test_the_address_checked_is_the_one_connected_to_and_redirects_are_checked_too(site, monkeypatch):
    """A name that resolves to a public address is fetched from that address, under its own name; a redirect from it
    into a private address is refused before any connection. (Here "public" is 127.0.0.1, by a stand-in for DNS
    and the address rule, since a test cannot reach a real public server.)"""
    import socket

    from rag.fetch import urls
    from rag.fetch.client import PoliteClient

    port = int(site.url.rsplit(":", 1)[1])
    real_resolve, real_reason = socket.getaddrinfo, urls.private_reason

    def resolve(host, *args, **kwargs):
        if host == "news.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_resolve(host, *args, **kwargs)

    monkeypatch.setattr(urls.socket, "getaddrinfo", resolve)
    monkeypatch.setattr(urls, "private_reason", lambda a: None if a == "127.0.0.1" else real_reason(a))
    with PoliteClient(allow_private=False, host_delay=0) as client:
        page = client.get(f"http://news.example:{port}/news/flood-budget.html")
        assert page.status == 200 and b"$48 million" in page.content
        assert site.requested("/news/flood-budget.html")[-1][1]["Host"] == f"news.example:{port}"
        before = len(site.requests)
        with pytest.raises(urls.FetchRefused, match="127.0.0.2, a loopback address"):
            client.get(f"http://news.example:{port}/to-private")
        assert [p for p, _ in site.requests[before:]] == ["/to-private"], "the private address was contacted"
