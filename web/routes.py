"""Thin handlers: parse, call the pipeline, render or serialise."""

from __future__ import annotations

import functools
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag.documents.highlight import parse_ranges, segments
from rag.documents.parse import load_json
from rag.errors import BadInput, NotFound, RagError
from rag.question_request import AskRequest

router = APIRouter()


class Unauthorized(RagError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(RagError):
    status_code = 403


def _pipeline(request: Request):
    return request.app.state.pipeline


def _render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status)


def _k(value: str) -> int | None:
    """The form's k: empty is the default; anything else must be a whole number."""
    if not value.strip():
        return None
    if not value.strip().isdigit() or len(value.strip()) > 3:
        raise BadInput(f"k={value!r} is not a whole number from 1 to 50.")
    return int(value)


def render_answer(request: Request, answer: dict) -> str:
    """The answer as the page shows it: one rendering, for the form page and for the streamed chat alike."""
    return request.app.state.templates.get_template("_answer.html").render({"request": request, "answer": answer})


def _index_summary(request: Request) -> dict:
    articles = _pipeline(request).list_articles()
    return {"count": len(articles), "articles": articles}


NO_FILTERS = {"since": None, "until": None, "recent": False}


@router.get("/", response_class=HTMLResponse)
def chat_page(request: Request):
    return _render(
        request, "chat.html", {"index": _index_summary(request), "answer": None, "question": "", "filters": NO_FILTERS}
    )


async def _answering(request: Request, fn, *args, **kwargs):
    """Run a question's work in a worker thread, at most RAG_QUESTION_THREADS at once; the rest wait in the
    event loop, holding no thread."""
    limiter = getattr(request.app.state, "question_limiter", None)
    if limiter is None:  # made here, inside the running event loop, on the first question
        limiter = request.app.state.question_limiter = anyio.CapacityLimiter(
            request.app.state.settings.question_threads
        )
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)


@router.post("/", response_class=HTMLResponse)
async def chat_form(
    request: Request,
    question: str = Form(""),
    k: str = Form(""),
    since: str = Form(""),
    until: str = Form(""),
    recent: str = Form(""),
):
    """The no-JavaScript path: a plain form POST rendered through the same _answer.html partial."""
    filters = {"since": since or None, "until": until or None, "recent": bool(recent)}
    # Without JavaScript the browser's own date is unknown; the server's today stands in for it.
    as_of = date.today().isoformat() if recent else None
    answer = await _answering(
        request, _pipeline(request).ask, question, k=_k(k), since=since or None, until=until or None, as_of=as_of
    )
    index = await run_in_threadpool(_index_summary, request)
    return _render(
        request, "chat.html", {"index": index, "answer": answer.to_dict(), "question": question, "filters": filters}
    )


@router.post("/api/ask")
async def api_ask(body: AskRequest, request: Request):
    answer = await _answering(request, _pipeline(request).ask, body)
    return JSONResponse(answer.to_dict())


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/api/ask/stream")
async def api_ask_stream(body: AskRequest, request: Request):
    """Server-sent events: `passages`, `token`..., `answer` (the answer object), then `html` (the answer rendered
    by the same template as the no-JavaScript page, which the page inserts as it is)."""
    # The search runs here, so a bad request or an empty index fails before streaming starts.
    events = await _answering(request, _pipeline(request).ask_stream, body)

    def stream():
        try:
            for event, data in events:
                yield _sse(event, data)
                if event == "answer":
                    yield _sse("html", render_answer(request, data))
        except RagError as e:
            yield _sse("error", {"error": str(e), "status": e.status_code})
        except Exception:
            yield _sse("error", {"error": "Something went wrong on the server; the error was logged.", "status": 500})

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get("/articles/{article_id}", response_class=HTMLResponse)
def article_page(request: Request, article_id: str, hl: list[str] = Query(default=[])):
    try:
        article = _pipeline(request).get_article(article_id)
    except NotFound:  # its message speaks to the command line; a reader of the page is shown the way back
        raise NotFound(f"There is no article '{article_id}' here; it may have been deleted.") from None
    ranges = parse_ranges(hl, len(article.text))
    return _render(
        request,
        "article.html",
        {
            "article": article,
            "segments": segments(article.text, ranges),
            "highlighted": bool(ranges),
            "also": _pipeline(request).also_reported_by(article_id),
        },
    )


@router.get("/api/articles")
def api_articles(request: Request):
    # Where an article came from is internal: for a file, a path on the server.
    return {"articles": [{k: v for k, v in a.items() if k != "origin"} for a in _pipeline(request).list_articles()]}


@router.get("/api/articles/{article_id}")
def api_article(request: Request, article_id: str):
    return _pipeline(request).get_article(article_id).to_dict()


def require_token(request: Request) -> None:
    token = request.app.state.settings.api_token
    if not token:
        raise Forbidden("Write endpoints are disabled. Set RAG_API_TOKEN on the server to enable them.")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("This endpoint needs 'Authorization: Bearer <RAG_API_TOKEN>'.")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("The bearer token is wrong.")


MAX_UPLOAD_FILES = 100  # files in one multipart upload; their total is bounded by RAG_MAX_FILE_BYTES too
UPLOAD_LOCK_WAIT = 10.0  # seconds an upload waits for another writer before answering 503 with Retry-After


@router.post("/api/articles", status_code=201)
async def api_add_articles(request: Request):
    """JSON record(s) {id?, title, text, source?, url?, published?}, or a multipart upload in field 'file'.

    Reading the body is async; ingesting (embedding, writing) runs in a worker thread so the event loop
    keeps answering other requests meanwhile."""
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        # More files than this is a 400 from the form parser, before any is read.
        form = await request.form(max_files=MAX_UPLOAD_FILES)
        uploads = [u for u in form.getlist("file") if hasattr(u, "read")]
        if not uploads:
            raise BadInput("Send the article files in multipart fields named 'file'.")
        files = [(u.filename or "upload.txt", await u.read()) for u in uploads]
        report = await run_in_threadpool(pipeline.index_uploads, files, UPLOAD_LOCK_WAIT)
    else:
        payload, problem = load_json(await request.body())
        if problem:
            raise BadInput(f"The body is not valid JSON ({problem}); send an article record or a list of them.")
        report = await run_in_threadpool(pipeline.index_records, payload, UPLOAD_LOCK_WAIT)
    return JSONResponse(report.to_dict(), status_code=201 if report.added + report.updated else 200)


@router.delete("/api/articles/{article_id}")
def api_delete_article(request: Request, article_id: str):
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    pipeline.delete(article_id, UPLOAD_LOCK_WAIT)
    return {"deleted": article_id}


@router.post("/api/articles/fetch", status_code=201)
async def api_fetch_articles(request: Request):
    """{"urls": [...]}: fetch each page, extract its article and ingest them; each URL not used is listed in
    `skipped` with its reason. Private addresses are refused unless RAG_FETCH_ALLOW_PRIVATE is set."""
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    payload, problem = load_json(await request.body())
    urls = payload.get("urls") if isinstance(payload, dict) else None
    if problem or not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise BadInput('Send {"urls": ["https://...", ...]}: a list of article URLs.')
    if len(urls) > MAX_FETCH_URLS:
        raise BadInput(f"{len(urls)} URLs in one request; the limit is {MAX_FETCH_URLS}.")
    report = await run_in_threadpool(pipeline.index_urls, urls, None, UPLOAD_LOCK_WAIT)
    return JSONResponse(report.to_dict(), status_code=201 if report.added + report.updated else 200)


MAX_FETCH_URLS = 50


@router.get("/api/feeds")
def api_feeds(request: Request):
    return {"feeds": [f.to_public() for f in _pipeline(request).web.list_feeds()]}


@router.post("/api/feeds", status_code=201)
async def api_add_feed(request: Request):
    """{"url": "...", "name": "..."?}: follow an RSS or Atom feed (fetched once now, to check it)."""
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    payload, problem = load_json(await request.body())
    if problem or not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
        raise BadInput('Send {"url": "https://.../feed.xml", "name": "optional short name"}.')
    name = payload.get("name")
    if name is not None and not isinstance(name, str):
        raise BadInput("'name' must be text.")
    feed = await run_in_threadpool(pipeline.web.add_feed, payload["url"], name or None)
    return JSONResponse(feed.to_public(), status_code=201)


@router.delete("/api/feeds")
def api_remove_feed(request: Request, feed: str = Query(..., max_length=2048)):
    """Stop following a feed, by its name or URL (`?feed=`); its articles stay."""
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    return pipeline.web.remove_feed(feed).to_public()


@router.post("/api/feeds/refresh")
async def api_refresh_feeds(request: Request):
    """One refresh pass now, over every feed (or `{"feeds": [names]}`), ignoring back-off."""
    require_token(request)
    pipeline = _pipeline(request)
    pipeline.refuse_writes()
    body = await request.body()
    payload, problem = load_json(body) if body.strip() else ({}, None)
    names = payload.get("feeds", []) if isinstance(payload, dict) else None
    if problem or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadInput('Send nothing, or {"feeds": ["name", ...]}.')
    outcomes = await run_in_threadpool(functools.partial(pipeline.web.refresh, names, force=True))
    return {"feeds": [o.to_dict() for o in outcomes]}


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request):
    pipeline = _pipeline(request)
    return _render(
        request,
        "sources.html",
        {
            "feeds": [f.to_public() for f in pipeline.web.list_feeds()],
            "writes": bool(request.app.state.settings.api_token) and not pipeline.read_only,
            "read_only": pipeline.read_only,
            "count": len(pipeline.list_articles()),
        },
    )


HEALTH_WAIT = 1.0  # seconds /healthz waits for the store's counts
_HEALTH_CHECKS = ThreadPoolExecutor(2, thread_name_prefix="healthz")  # bounded: a stuck check holds one thread


@router.get("/healthz")
def healthz(request: Request):
    """Liveness and what is ready: the model (loads in the background at startup) and the store."""
    pipeline = _pipeline(request)
    body = {"status": "ok", "model": "ready" if pipeline.ready else "loading"}
    if pipeline.ready:
        body["question_encoder"] = pipeline.question_encoder
        if pipeline.ingest_encoder:  # known once something was ingested in this process
            body["ingest_encoder"] = pipeline.ingest_encoder
        body["reader"] = pipeline.reader
        if pipeline.reader_stuck:
            body.update(status="degraded", reader=f"{pipeline.reader}: not answering; being replaced")
    error = request.app.state.warm_up_error
    if error:
        body.update(status="degraded", model=f"failed: {error}")
    if request.app.state.warming and not pipeline.index_loaded:
        # Still opening the index at startup: say so now rather than wait behind the load.
        body.update(status="starting", index="loading")
        return body
    try:
        # A frozen store must not freeze the health check: it answers within HEALTH_WAIT whatever the store does.
        stats = _HEALTH_CHECKS.submit(pipeline.stats).result(timeout=HEALTH_WAIT)
        body.update(
            articles=stats["articles"],
            chunks=stats["chunks"],
            store=stats["store"],
            index="ok, read-only: questions only" if stats["read_only"] else "ok",
        )
        if pipeline.snapshot_repairs:  # found damaged on opening and rebuilt from the store: worth an operator's look
            body["snapshot_repairs"] = pipeline.snapshot_repairs[-5:]
    except RagError as e:
        body.update(status="degraded", index=f"unavailable: {e}")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    except FutureTimeout:
        body.update(status="degraded", index=f"unavailable: the store did not answer within {HEALTH_WAIT:g} s")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    if body["model"] == "loading":
        body["status"] = "starting"
    return body
