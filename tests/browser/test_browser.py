"""The chat in a real browser: Debian's Chromium driven by Playwright against a real uvicorn server.

Screenshots of each state go to test-artifacts/ (git-ignored). In CI a missing browser fails the run.
"""

import os
import shutil
from pathlib import Path

import pytest

from rag.documents.parse import read_path
from rag.pipeline import Pipeline
from rag.types import Article
from tests.conftest import ROOT, dataset_or_skip, in_ci, make_settings
from tests.helpers.servers import LiveServer
from web.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# Without these, Chromium keeps trying to reach Google's services, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`."
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(bundled_index, embedder, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(bundled_index, d)
    with LiveServer(create_app(pipeline=Pipeline(make_settings(d), embedder=embedder))) as s:
        yield s


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    p = ctx.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ask(page, question):
    """Ask, and wait for this question's own answer (an earlier turn's finished answer must not count)."""
    before = page.locator(".turn").count()
    page.get_by_label("Ask about the articles").fill(question)
    page.keyboard.press("Enter")
    turn = page.locator(".turn").nth(before)
    turn.locator(".answer:not(.loading)").wait_for(timeout=60_000)
    return turn.locator(".answer")


def test_answer_with_citation_then_highlighted_article(page, server):
    page.goto(server.url)
    page.screenshot(path=str(ARTIFACTS / "01-empty-chat.png"), full_page=True)
    answer = ask(page, "How much aid was announced?")
    # Evidence first: the cited sentence is the headline, labelled as evidence unless a short answer is likely right.
    assert "$310 million" in answer.locator(".answer-text").inner_text()
    assert answer.locator(".evidence-label").count() + answer.locator(".short-answer").count() == 1
    marker = answer.locator("a.marker").first
    assert marker.inner_text() == "[1]"
    # Said once: each source article on one line with its markers; the quote is the headline, not repeated.
    sources = answer.locator(".sources li")
    assert sources.count() == 1 and "[1]" in sources.first.inner_text()
    assert answer.locator(".sources blockquote").count() == 0
    page.screenshot(path=str(ARTIFACTS / "02-answer.png"), full_page=True)
    # A citation opens over the chat: the cited sentence marked in its paragraph; the chat stays where it was.
    chat_url = page.url
    marker.click()
    panel = page.locator("dialog.source-panel")
    panel.locator("mark").wait_for()
    assert "$310 million" in panel.locator("mark").inner_text() and page.url == chat_url
    assert "Guatemala" in panel.locator("h2").inner_text()
    page.screenshot(path=str(ARTIFACTS / "02b-source-panel.png"))
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    marker.click()
    panel.get_by_role("link", name="Open the whole article").click()
    page.wait_for_url("**/articles/**")
    mark = page.locator("mark#hl")
    assert "$310 million" in mark.inner_text()
    assert mark.is_visible()
    assert page.evaluate("document.activeElement.id") == "hl"
    page.screenshot(path=str(ARTIFACTS / "03-article-highlight.png"))
    # Back returns to the conversation, not an empty chat.
    page.go_back()
    page.locator(".turn .answer:not(.loading)").first.wait_for()
    assert "$310 million" in page.locator(".turn .answer-text").first.inner_text()


def in_view_above_the_form(page, locator) -> bool:
    box, form = locator.bounding_box(), page.locator("#ask-form").bounding_box()
    return box["y"] >= 0 and box["y"] + box["height"] <= form["y"] + 1


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])  # a laptop, a phone
def test_the_newest_answer_starts_in_view_above_the_form(browser, server, width, height):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    try:
        page.goto(server.url)
        ask(page, "How much aid was announced?")
        ask(page, "When did Harris land in Guatemala?")
        last = ask(page, "What is the capital of France?")  # a short card: "No answer found"
        page.screenshot(path=str(ARTIFACTS / f"13-newest-answer-{width}.png"))
        assert in_view_above_the_form(page, last), "the short newest card is wholly visible, not under the form"
        assert page.locator(".turn").last.locator(".question").bounding_box()["y"] >= 0
    finally:
        ctx.close()


def test_the_conversation_survives_a_reload_until_a_new_one_is_started(page, server):
    page.goto(server.url)
    ask(page, "How much aid was announced?")
    page.reload()
    page.locator(".turn .answer").first.wait_for()
    assert page.locator(".turn").count() == 1 and "$310 million" in page.locator(".turn").first.inner_text()
    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".turn").count() == 0
    page.reload()
    page.locator("#ask-form").wait_for()
    assert page.locator(".turn").count() == 0


def test_unanswerable_question_is_styled_as_abstention(page, server):
    page.goto(server.url)
    answer = ask(page, "What is the capital of France?")
    assert "abstained" in answer.get_attribute("class")
    assert "No answer found" in answer.inner_text()
    assert answer.locator(".sources").count() == 0
    bg = answer.evaluate("e => getComputedStyle(e).backgroundColor")
    normal_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(255, 255, 255)" and bg != normal_bg
    page.screenshot(path=str(ARTIFACTS / "04-abstention.png"), full_page=True)


def test_date_filters_are_sent_with_the_question(page, server):
    """The bundled article is dated 2023-05-31. "Favour the latest news" sends the browser's own date."""
    page.goto(server.url)
    page.get_by_text("Dates").click()
    page.get_by_label("Published from").fill("2024-01-01")
    answer = ask(page, "How much aid was announced?")
    assert "abstained" in answer.get_attribute("class")
    assert "published from 2024-01-01" in answer.locator(".notice").inner_text()
    page.get_by_label("Published from").fill("2023-05-01")
    page.get_by_label("to", exact=True).fill("2023-06-30")
    page.get_by_label("Favour the latest news").check()
    with page.expect_request("**/api/ask/stream") as req:
        answer = ask(page, "How much aid was announced?")
    body = req.value.post_data_json
    today = page.evaluate(
        "(() => { const d = new Date(); return [d.getFullYear(), String(d.getMonth() + 1).padStart(2, '0'),"
        " String(d.getDate()).padStart(2, '0')].join('-'); })()"
    )
    assert (body["since"], body["until"], body["as_of"]) == ("2023-05-01", "2023-06-30", today)
    assert "$310 million" in answer.locator(".answer-text").inner_text()
    page.screenshot(path=str(ARTIFACTS / "04b-date-filters.png"), full_page=True)


def test_conversation_keeps_turns_and_shift_enter_adds_a_newline(page, server):
    page.goto(server.url)
    ask(page, "How much aid was announced?")
    box = page.get_by_label("Ask about the articles")
    box.fill("Where did Harris land")
    box.press("Shift+Enter")
    assert page.locator(".turn").count() == 1, "Shift+Enter must not send"
    assert "\n" in box.input_value()
    box.press("Enter")
    page.locator(".turn").nth(1).locator(".answer:not(.loading)").wait_for(timeout=60_000)
    assert page.locator(".turn").count() == 2
    assert page.locator("[aria-live]").count() >= 1


def test_error_state_when_request_is_rejected(page, server):
    page.goto(server.url)
    # The textarea's maxlength stops this in the page; the server's own check is what is tested here.
    page.evaluate("document.getElementById('question').removeAttribute('maxlength')")
    answer = ask(page, "x" * 2001)
    assert "error" in answer.get_attribute("class") and "limit is 2,000" in answer.inner_text()
    page.screenshot(path=str(ARTIFACTS / "05-error.png"), full_page=True)


def test_error_state_when_server_is_down(page, server):
    page.goto(server.url)
    page.route("**/api/ask/stream", lambda route: route.abort())
    answer = ask(page, "How much aid was announced?")
    assert "Cannot reach the server" in answer.inner_text()


def test_phone_width(browser, server):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.goto(server.url)
    answer = ask(page, "How much aid was announced?")
    assert "$310 million" in answer.inner_text()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390, f"page is {scroll_width}px wide at a 390px viewport"
    assert page.locator("button[type=submit]").bounding_box()["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "06-phone.png"), full_page=True)
    ctx.close()


def test_works_without_javascript(browser, server):
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.goto(server.url)
    page.get_by_label("Ask about the articles").fill("How much aid was announced?")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_load_state()
    assert "$310 million" in page.locator(".answer-text").inner_text()
    page.screenshot(path=str(ARTIFACTS / "07-no-js.png"), full_page=True)
    ctx.close()


def test_keyboard_only(page, server):
    page.goto(server.url)
    page.keyboard.press("Tab")  # brand link
    for _ in range(5):
        if page.evaluate("document.activeElement.id") == "question":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.type("How much aid was announced?")
    page.keyboard.press("Enter")
    page.locator(".turn .answer:not(.loading)").last.wait_for(timeout=60_000)
    assert "$310 million" in page.locator(".answer-text").last.inner_text()


def test_llm_answer_marks_unsupported_claims(browser, bundled_index, embedder, tmp_path):
    from tests.helpers.llm_stub import Reply, StubLLM

    d = tmp_path / "index"
    shutil.copytree(bundled_index, d)
    with StubLLM() as stub:
        pipeline = Pipeline(
            make_settings(d, llm_base_url=stub.url, llm_model="stub-model", llm_timeout=5.0), embedder=embedder
        )
        n = next(p.n for p in pipeline.ask("How much aid was announced?").passages if "$310 million" in p.text)
        stub.script(Reply(content=f"Harris announced aid of $410 million [{n}]. She met civil society leaders [{n}]."))
        with LiveServer(create_app(pipeline=pipeline)) as server:
            ctx = browser.new_context(viewport={"width": 1200, "height": 900})
            page = ctx.new_page()
            page.goto(server.url)
            answer = ask(page, "How much aid was announced?")
            assert answer.get_attribute("data-backend") == "llm:stub-model"
            assert "civil society leaders" in answer.locator(".answer-text").inner_text()
            struck = answer.locator("section.unsupported del")
            assert struck.count() == 1 and "$410 million" in struck.inner_text()
            assert "$410 million" not in answer.locator(".answer-text").inner_text()
            assert "is not in the passage it cites" in answer.locator("section.unsupported").inner_text()
            page.screenshot(path=str(ARTIFACTS / "08-llm-unsupported.png"), full_page=True)
            ctx.close()


def test_sources_page_signs_in_follows_a_feed_fetches_a_link_and_the_chat_answers_from_it(browser, embedder, tmp_path):
    """A user with the API token adds a feed and a pasted link from the browser, sees what was added, and asks."""
    from tests.helpers.news_site import NewsSite

    token = "sources-token"
    settings = make_settings(
        tmp_path / "index", api_token=token, fetch_allow_private=True, fetch_host_delay=0, rate_limit=0
    )
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with NewsSite() as site, LiveServer(create_app(pipeline=Pipeline(settings, embedder=embedder))) as server:
        site.add(
            "flood-budget",
            "Council approves flood defence budget",
            "The city council approved a budget of $48 million for flood defences on Tuesday.\n\n"
            "Work on the river walls begins in the spring and takes three years.",
            "2023-06-02",
        )
        site.add(
            "bridge",
            "Old bridge to close for repairs",
            "The Elm Street bridge will close for eleven weeks from July 3 while engineers replace its deck.",
            "2023-06-05",
        )
        page.goto(server.url + "/sources")
        assert "No feeds followed yet." in page.locator("#feeds").inner_text()
        page.get_by_label("API token").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("RSS or Atom feed URL").fill(f"{site.url}/feeds/main.rss")
        page.get_by_role("button", name="Follow").click()
        page.locator("#result .error-text").wait_for()
        assert "The bearer token is wrong." in page.locator("#result").inner_text()
        assert page.get_by_label("API token").is_visible(), "a wrong token must sign the user out"

        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("RSS or Atom feed URL").fill(f"{site.url}/feeds/main.rss")
        page.get_by_label("Name (optional)").fill("Ledger")
        page.get_by_role("button", name="Follow").click()
        page.get_by_text("Ledger: updated").wait_for(timeout=60_000)
        assert "added 2" in page.locator("#result").inner_text()
        page.wait_for_load_state("load")
        page.locator("#feeds tr[data-feed='Ledger']").wait_for(timeout=10_000)
        row = page.locator("#feeds tr[data-feed='Ledger']").inner_text()
        assert "2" in row and "none" in row and "never" not in row
        page.screenshot(path=str(ARTIFACTS / "14-sources-feed.png"), full_page=True)

        # A pasted link: one that works, and one refused with its reason.
        site.add(
            "late",
            "Library opens late on Fridays",
            "The central library will stay open until 9 pm on Fridays.",
            "2023-06-06",
        )
        page.get_by_label("One URL a line").fill(f"{site.url}/news/late.html\n{site.url}/doc.pdf")
        page.get_by_role("button", name="Fetch and add").click()
        page.get_by_text("added 1, updated 0, unchanged 0, skipped 1").wait_for(timeout=60_000)
        assert "sent application/pdf, not text/html" in page.locator("#result").inner_text()
        page.screenshot(path=str(ARTIFACTS / "15-sources-links.png"), full_page=True)

        page.get_by_role("link", name="Chat").click()
        answer = ask(page, "How much was approved for flood defences?")
        assert "$48 million" in answer.inner_text()
        assert (
            "The Loopback Ledger" in answer.locator(".sources").inner_text()
            or "Council approves" in answer.inner_text()
        )
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_chat_shows_other_reports_and_where_their_figures_differ(browser, embedder, tmp_path):
    """Real reports from the news corpus: two USA TODAY articles a day apart give Delta's cancellations after the
    July 2024 outage as 4,500 and then 5,500 (an update); CNN and USA TODAY give Southwest's Mauna Loa cancellations
    the same day as five and nine (a conflict)."""
    corpus = dataset_or_skip("realtimeqa-news-scale") / "corpus.jsonl"
    wanted = {
        "rtqanews-0ecc8d202335",  # USA TODAY 2024-07-23: Delta canceled more than 5,500 flights since Friday
        "rtqanews-2c5b3b014c80",  # USA TODAY 2024-07-22: nearly 4,500 flights between Friday and Sunday
        "rtqanews-09b2ac2287ce",  # CNN 2022-11-28: Southwest canceled five flights to and from Honolulu
        "rtqanews-5b2c72d46ab9",  # USA TODAY 2022-11-28: nine flights between Hilo and Honolulu
        "rtqanews-1346c5bf3c3b",  # CNN 2022-12-20: a winter storm, another story
    }
    articles = [a for a in read_path(corpus, max_bytes=1 << 31) if isinstance(a, Article) and a.id in wanted]
    pipeline = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    assert pipeline.index_articles(sorted(articles, key=lambda a: a.published or "")).added == len(wanted)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with LiveServer(create_app(pipeline=pipeline)) as server:
        page.goto(server.url)
        answer = ask(page, "Why is the Department of Transportation investigating Delta?")
        also = answer.locator(".also-reported")
        assert also.count() == 1 and answer.locator(".sources-differ").count() == 0
        assert "Also reported by: USA TODAY 2024-07-22" in " ".join(also.inner_text().split())
        assert "/articles/rtqanews-2c5b3b014c80" in also.locator("a").get_attribute("href")
        page.screenshot(path=str(ARTIFACTS / "16-also-reported-by.png"), full_page=True)

        answer = ask(page, "How many flights did Delta cancel after the tech outage?")
        box = answer.locator(".sources-differ.update")
        assert "later reports give another figure" in box.locator("h3").inner_text()
        rows = box.locator("li")
        assert rows.count() == 2
        assert "4,500" in rows.nth(0).inner_text() and "2024-07-22" in rows.nth(0).inner_text()
        assert "5,500" in rows.nth(1).inner_text() and "2024-07-23" in rows.nth(1).inner_text()
        assert "latest" in rows.nth(1).inner_text().lower()
        # The closing sentence of the answer's text is this box: it is not said twice.
        assert "Updated since" not in answer.locator(".answer-text").inner_text()
        page.screenshot(path=str(ARTIFACTS / "17-sources-differ-update.png"), full_page=True)
        # A value's marker opens the report it comes from, with its sentence highlighted.
        rows.nth(0).locator("a.marker").click()
        panel = page.locator("dialog.source-panel")
        panel.locator("mark").first.wait_for(timeout=10_000)
        assert "4,500" in panel.locator("mark").first.inner_text()
        page.keyboard.press("Escape")

        answer = ask(page, "How many flights did Southwest cancel because of the Mauna Loa eruption?")
        box = answer.locator(".sources-differ.conflict")
        assert "Sources differ" in box.locator("h3").inner_text()
        text = box.inner_text()
        assert "five" in text and "nine" in text and "CNN" in text and "USA TODAY" in text
        page.screenshot(path=str(ARTIFACTS / "18-sources-differ-conflict.png"), full_page=True)
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
