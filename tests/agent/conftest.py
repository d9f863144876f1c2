"""Fixtures for the agent tests: colourful input photos and a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image


def photo(width: int, height: int, hue: int) -> Image.Image:
    """A colourful, textured RGB picture: gradients in two channels, stripes in the third."""
    xs = np.linspace(0, 1, width)[None, :]
    ys = np.linspace(0, 1, height)[:, None]
    red = 255 * xs * np.ones_like(ys)
    green = 255 * ys * np.ones_like(xs)
    blue = (hue + 60 * np.sin(xs * 40) * np.cos(ys * 30)) * np.ones_like(red)
    arr = np.stack([red, green, blue], axis=-1)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def photos() -> list[Image.Image]:
    """A 4:3 landscape and a 3:4 portrait."""
    return [photo(400, 300, 90), photo(300, 400, 200)]


def chat_reply(
    name: str | None,
    args: dict[str, Any] | None = None,
    *,
    call_id: str = "call_1",
    content: str | None = None,
    raw_arguments: str | None = None,
) -> dict[str, Any]:
    """A chat-completions response in the real wire format (one tool call, or none)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish_reason = "stop"
    if name is not None:
        arguments = raw_arguments if raw_arguments is not None else json.dumps(args or {})
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
        finish_reason = "tool_calls"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeChatServer:
    """A real HTTP server on 127.0.0.1 answering POSTs from a script and recording requests.

    ``replies`` holds ``(status, body)`` pairs, or ``("sleep", seconds)`` to stall a request.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[Any, Any]] = []
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "json": body}
                )
                status, reply = fake.replies.pop(0) if fake.replies else (500, "no reply scripted")
                if status == "sleep":
                    time.sleep(float(reply))
                    return
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]


@pytest.fixture
def chat_server() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
