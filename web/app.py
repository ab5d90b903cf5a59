"""The web chat: `create_app(settings=None, pipeline=None)` builds one app around one Pipeline."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.config import Settings
from rag.errors import RagError
from rag.fetch.schedule import FeedSchedule
from rag.pipeline import Pipeline
from rag.question_request import describe

from .guards import SECURITY_HEADERS, RateLimit, SecurityHeaders
from .limits import BodyLimit
from .routes import router

HERE = Path(__file__).parent
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and part headers around an upload of the largest file allowed
log = logging.getLogger("web")


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """The pipeline is built once and shared by every request. Its model and index load in the background at
    startup, so /healthz answers at once; a question asked meanwhile waits for them."""
    settings = settings or (pipeline.settings if pipeline else Settings())
    if pipeline is None and settings.reader_process is None:
        # Concurrent questions are what a server is for, and one process's GIL holds them to about one core.
        settings = settings.model_copy(update={"reader_process": (os.cpu_count() or 1) > 1})
    pipeline = pipeline or Pipeline(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        def warm() -> None:
            try:
                pipeline.warm_up()
            except Exception as e:  # reported by /healthz; a question raises it again, as a clear error
                app.state.warm_up_error = f"{type(e).__name__}: {e}"
                log.warning("warm-up failed: %s", app.state.warm_up_error)
            finally:
                app.state.warming = False

        app.state.warming = True

        threading.Thread(target=warm, name="warm-up", daemon=True).start()
        schedule = None
        if settings.refresh_feeds:
            schedule = FeedSchedule(pipeline.web.refresh, settings.refresh_feeds, lambda: not app.state.warming)
            app.state.feed_schedule = schedule.start()
        yield
        if schedule is not None:
            schedule.stop()

    app = FastAPI(
        title="News QA",
        lifespan=lifespan,
        docs_url="/api/docs" if settings.api_docs else None,
        redoc_url=None,
        openapi_url="/api/openapi.json" if settings.api_docs else None,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.warm_up_error = None
    app.state.warming = False  # whether the startup warm-up is still loading the model and the index
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["limits"] = {"question_chars": settings.max_question_chars, "history": 5}
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    # Outermost last: headers on every response, then the rate limit, then the body limit.
    app.add_middleware(
        BodyLimit, default=settings.max_request_bytes, uploads=settings.max_file_bytes + MULTIPART_OVERHEAD
    )
    app.add_middleware(RateLimit, per_minute=settings.rate_limit)
    app.add_middleware(SecurityHeaders)

    install_error_handlers(app, templates)
    return app


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """One translation of errors for people: JSON {"error", "status"} under /api/, the error page elsewhere."""

    def respond(request: Request, status: int, message: str, headers: dict | None = None):
        # An unexpected error is answered outside every middleware, SecurityHeaders included: the headers go here.
        headers = {**{k.decode(): v.decode() for k, v in SECURITY_HEADERS}, **(headers or {})}
        if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status_code=status, headers=headers
        )

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError):
        return respond(request, exc.status_code, str(exc), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return respond(request, 400, describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no page at {request.url.path}."
        return respond(request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return respond(request, 500, "Something went wrong on the server; the error was logged.")
