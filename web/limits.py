"""Bounded work per request: a body limit counted as the body streams in, whatever its transfer encoding.

A Content-Length over the limit is refused before anything is read; a chunked body is counted chunk by
chunk and refused as soon as it passes the limit, so no request can make the server buffer more than the
limit. Refusals are 413 with the API's own JSON error (or the error page), naming the setting to change.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, default: int, uploads: int, upload_paths: tuple[str, ...] = ("/api/articles",)):
        self.app = app
        self.default = default
        self.uploads = uploads
        self.upload_paths = upload_paths

    def limit(self, scope: Scope) -> int:
        return self.uploads if scope["path"] in self.upload_paths else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        too_large = refused = started = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal refused, started
            if not too_large:
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif not refused and not started:
                # The app may have caught the overflow and answered on its own (FastAPI turns any error
                # while reading a body into a 400): the refusal goes out in place of that answer.
                refused = True
                await self._refuse(scope, send, limit)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if started:
                raise  # a response already under way cannot be replaced: the server drops the connection
            if not refused:
                refused = True
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        setting = "RAG_MAX_FILE_BYTES" if limit == self.uploads else "RAG_MAX_REQUEST_BYTES"
        message = f"The request body is over the {limit:,}-byte limit for {scope['path']} ({setting})."
        wants_json = scope["path"].startswith("/api/") or b"application/json" in dict(scope["headers"]).get(
            b"accept", b""
        )
        if wants_json:
            body, ctype = json.dumps({"error": message, "status": 413}).encode(), b"application/json"
        else:
            body, ctype = f"<!doctype html><title>413</title><p>{message}</p>".encode(), b"text/html; charset=utf-8"
        # The unread rest of the body is not drained: the connection is closed instead.
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", ctype),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
