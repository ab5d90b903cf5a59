"""A local server speaking the OpenAI chat-completions protocol, scripted per request.

Streaming replies are `text/event-stream` chunks `data: {chat.completion.chunk}` ending in `data: [DONE]`,
as OpenAI, Ollama, vLLM and llama.cpp send them. Each request takes the next scripted reply.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str = ""
    kind: str = "stream"  # stream | json | disconnect | sleep | status | garbage
    status: int = 200
    seconds: float = 0.0
    pieces: int = 6


class StubLLM:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests.clear()

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                # The client may have given up (a timeout scenario); then there is nothing left to send.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._respond()

            def _respond(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "not found"}})
                reply = stub.replies.pop(0) if stub.replies else Reply(content="")
                if reply.kind == "sleep":
                    time.sleep(reply.seconds)
                    reply = Reply(content=reply.content)
                if reply.kind == "status":
                    return self._json(reply.status, {"error": {"message": "rate limited", "type": "rate_limit"}})
                if reply.kind == "garbage":
                    data = b"<html>definitely not an API</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if not body.get("stream"):
                    return self._json(200, completion(body.get("model", ""), reply.content))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = split(reply.content, reply.pieces)
                if reply.kind == "disconnect":
                    pieces = pieces[: max(1, len(pieces) // 2)]
                first = True
                for piece in pieces:
                    delta = {"role": "assistant", "content": piece} if first else {"content": piece}
                    first = False
                    self._event(chunk(body.get("model", ""), delta, None))
                if reply.kind == "disconnect":
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the server goes away mid-answer
                    return
                self._event(chunk(body.get("model", ""), {}, "stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, obj) -> None:
                self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def split(text: str, n: int) -> list[str]:
    size = max(1, len(text) // n)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def chunk(model: str, delta: dict, finish: str | None) -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def completion(model: str, content: str) -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
