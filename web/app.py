"""The web chat: `create_app(settings=None, pipeline=None)` builds one app around one Pipeline."""

from __future__ import annotations

import logging
import re
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
from rag.pipeline import Pipeline

from .limits import BodyLimit
from .routes import router

HERE = Path(__file__).parent
MARKER = re.compile(r"\[(\d+)\]")


def split_markers(answer: str) -> list[dict]:
    """Answer text -> [{"text": ..., "n": None | int}] so templates can link each [n] marker."""
    parts, pos = [], 0
    for m in MARKER.finditer(answer):
        if m.start() > pos:
            parts.append({"text": answer[pos:m.start()], "n": None})
        parts.append({"text": m.group(0), "n": int(m.group(1))})
        pos = m.end()
    if pos < len(answer):
        parts.append({"text": answer[pos:], "n": None})
    return parts
log = logging.getLogger("web")


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """The pipeline (and its embedding model) is loaded once, at startup, and shared by every request."""
    settings = settings or (pipeline.settings if pipeline else Settings())
    pipeline = pipeline or Pipeline(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline.warm_up()
        yield

    app = FastAPI(title="News QA", lifespan=lifespan, docs_url="/api/docs" if settings.api_docs else None,
                  redoc_url=None, openapi_url="/api/openapi.json" if settings.api_docs else None)
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.filters["split_markers"] = split_markers
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    # Uploads may carry a file of up to RAG_MAX_FILE_BYTES plus the multipart framing around it.
    app.add_middleware(BodyLimit, default=settings.max_request_bytes, uploads=settings.max_file_bytes + 64 * 1024)

    def respond(request: Request, status: int, message: str, headers: dict | None = None):
        if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
        return app.state.templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status_code=status, headers=headers
        )

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError):
        return respond(request, exc.status_code, str(exc), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return respond(request, 400, f"Bad request: {problems}")

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

    return app
