"""A fake OpenAI-compatible chat server on 127.0.0.1: the wire protocol, scripted replies.

It answers ``POST /v1/chat/completions`` as llama.cpp's server or OpenAI's API do: one JSON
``chat.completion`` object, or with ``"stream": true`` server-sent ``chat.completion.chunk``
events ending in ``data: [DONE]``. Each request takes the next :class:`Reply` of the script
(the last one repeats), so a test says what the "model" writes and how the server misbehaves:
an error status with headers (500, 429 with ``Retry-After``), a body that is not JSON, a
delay before answering, a pause between streamed pieces. Every request is recorded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def system(self) -> str:
        return "\n".join(m["content"] for m in self.body["messages"] if m["role"] == "system")

    @property
    def user(self) -> str:
        return "\n".join(m["content"] for m in self.body["messages"] if m["role"] == "user")

    def passage_with(self, words: str) -> int:
        """The number of the passage whose text holds ``words`` (how a model would cite it)."""
        for block in self.user.split('<passage n="')[1:]:
            number, text = block.split('"', 1)
            if words in text:
                return int(number)
        raise LookupError(f"no passage holds {words!r}")


@dataclass
class Reply:
    text: str | Callable[[Request], str] = ""  # a function writes it from the request
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # sent as is instead of a completion (malformed replies)
    content_type: str = "application/json"  # of ``body``
    delay: float = 0.0  # seconds before the response starts
    pieces: int = 6  # streamed in this many pieces
    piece_delay: float = 0.0  # seconds between streamed pieces


class FakeChatAPI:
    """``with FakeChatAPI() as api: api.script(Reply("… [1]")); api.url`` (ends in /v1)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: list[Reply] = list(replies) or [Reply("NOT FOUND")]
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)
            self.requests.clear()

    def __enter__(self) -> FakeChatAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                body = json.loads(raw)
                request = Request(body, dict(self.headers.items()))
                reply = api._next(request)
                try:
                    text = reply.text(request) if callable(reply.text) else reply.text
                except LookupError as exc:  # the script expected other passages
                    self._send(500, {"error": {"message": f"script failed: {exc}"}})
                    return
                time.sleep(reply.delay)
                if reply.status != 200 or reply.body is not None:
                    payload = (
                        reply.body
                        if reply.body is not None
                        else json.dumps({"error": {"message": f"scripted {reply.status}"}}).encode()
                    )
                    self._send(reply.status, payload, reply.headers, reply.content_type)
                elif body.get("stream"):
                    self._stream(reply, text, body.get("model", "fake"))
                else:
                    self._send(200, _completion(text, body.get("model", "fake")))

            def _stream(self, reply: Reply, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                step = max(1, -(-len(text) // reply.pieces))
                pieces = [text[i : i + step] for i in range(0, len(text), step)]
                try:
                    for i, piece in enumerate(pieces):
                        if i:
                            time.sleep(reply.piece_delay)
                        self._event(_chunk({"content": piece}, None, model))
                    self._event(_chunk({}, "stop", model))
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): as a real server sees it
                self.close_connection = True

            def _event(self, data: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _send(
                self,
                status: int,
                payload: Any,
                headers: dict[str, str] | None = None,
                content_type: str = "application/json",
            ) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _chunk(delta: dict[str, str], finish: str | None, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def unused_url() -> str:
    """A base URL where no server listens (the server down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
