"""A fake OpenAI-compatible chat server: real HTTP/1.1 on 127.0.0.1, whole and streamed replies."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

WAIT_SECONDS = 5


@dataclass
class JSONReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SSEReply:
    """Writes ``parts`` as chunks of a chunked body, one by one. A ``threading.Event`` part
    makes the server wait for it first. ``cut`` drops the connection instead of ending the body.
    """

    parts: list[str | threading.Event]
    cut: bool = False


@dataclass
class Stall:
    """Answer nothing until the test ends."""


def completion(content: str | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def chunk(content: str | None = None, *, role: str | None = None, finish: str | None = None) -> str:
    """One ``data:`` event of a chat-completions stream."""
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def usage_chunk() -> str:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    body = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    return f"data: {json.dumps(body)}\n\n"


DONE = "data: [DONE]\n\n"


def error_body(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-stream is part of several tests


class FakeChatServer:
    """Answers ``POST .../chat/completions`` from ``replies`` in order and records requests.

    ``sent`` lists the stream parts written so far; ``waits`` whether each awaited event came.
    """

    def __init__(self) -> None:
        self.replies: list[JSONReply | SSEReply | Stall] = []
        self.requests: list[dict[str, Any]] = []
        self.sent: list[str] = []
        self.waits: list[bool] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "json": body}
                )
                reply = fake.replies.pop(0) if fake.replies else JSONReply(500, "no reply scripted")
                if isinstance(reply, Stall):
                    fake.release.wait(WAIT_SECONDS)
                    self.close_connection = True
                elif isinstance(reply, JSONReply):
                    self._json(reply)
                else:
                    self._stream(reply)

            def _json(self, reply: JSONReply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: SSEReply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                for part in reply.parts:
                    if isinstance(part, threading.Event):
                        fake.waits.append(part.wait(WAIT_SECONDS))
                        continue
                    data = part.encode()
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    fake.sent.append(part)
                if reply.cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def chat_server() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
