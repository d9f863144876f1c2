"""Stand-ins for hosted providers: each fake is a real HTTP server on 127.0.0.1 that speaks its
provider's documented wire format, records every request we send, and can be told to fail.

``FakeProvider`` is the base: a FastAPI app plus a request log, scripted faults, and hosted
files (for providers that answer with download links). ``live_with(server, fake)`` starts a
Mediagate of its own (own database, so no other test's worker claims its jobs) configured to
use the fake as provider ``fake.provider``, and returns a live-key tenant on it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import av
import httpx
import numpy as np
from fastapi import FastAPI, Request, Response
from PIL import Image

from tests.conftest import LiveServer, Server, Tenant


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path starts with ``path`` like this."""

    path: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    method: str | None = None


class FakeProvider:
    """Subclasses set ``provider`` and add their routes to ``self.app`` in ``__init__``."""

    provider = "fake"

    def __init__(self) -> None:
        self.app = FastAPI()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.url = ""
        self._live: LiveServer | None = None

        @self.app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            body = await request.body()
            path = request.url.path
            if not path.startswith("/_files/"):
                self.requests.append(
                    Recorded(
                        request.method,
                        path,
                        dict(request.query_params),
                        {k.lower(): v for k, v in request.headers.items()},
                        body,
                    )
                )
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path):
                    if fault.method and fault.method != request.method:
                        continue
                    fault.times -= 1
                    content = (
                        fault.body
                        if isinstance(fault.body, bytes)
                        else json.dumps(
                            fault.body if fault.body is not None else {"error": "scripted fault"}
                        ).encode()
                    )
                    return Response(
                        content,
                        status_code=fault.status,
                        headers=fault.headers,
                        media_type="application/json",
                    )
            return await call_next(request)  # type: ignore[no-any-return]

        @self.app.get("/_files/{name}")
        async def hosted(name: str) -> Response:
            data, mime = self.files[name]
            return Response(data, media_type=mime)

    def fail(self, path: str, status: int, body: Any = None, **kw: Any) -> Fault:
        fault = Fault(path, status, body, **kw)
        self.faults.append(fault)
        return fault

    def host(self, data: bytes, mime: str) -> str:
        """Serve ``data`` at a fresh link, as a provider's CDN would."""
        name = uuid.uuid4().hex
        self.files[name] = (data, mime)
        return f"{self.url}/_files/{name}"

    def calls(self, method: str | None = None, path: str = "") -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path)
        ]

    def __enter__(self) -> Self:
        self._live = LiveServer(self.app).__enter__()
        self.url = self._live.url
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._live is not None
        self._live.__exit__(*exc)


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def tiny_mp4(frames: int = 4, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real H.264 MP4 of a few flat frames, as a provider's video output."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((size[1], size[0], 3), i * 40, np.uint8), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def gen(model: str = "nano-banana-pro", **overrides: Any) -> dict[str, Any]:
    """A ``POST /v1/generate`` body with a fresh request id."""
    return {
        "model": model,
        "prompt": "a lighthouse at dusk",
        "request_id": str(uuid.uuid4()),
        **overrides,
    }


def generate(t: Tenant, body: dict[str, Any]) -> str:
    r = t.client.post("/v1/generate", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["task_id"])


def balance(t: Tenant) -> dict[str, int]:
    return t.client.get("/v1/credits/balance").json()["data"]  # type: ignore[no-any-return]


def completed_info(t: Tenant, job_id: str) -> dict[str, Any]:
    """The engine's info, as the finished job's ``completed`` event carries it."""
    with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "completed":
                return json.loads(line[6:])["info"]  # type: ignore[no-any-return]
    raise AssertionError("no completed event")


def download(output: dict[str, Any]) -> httpx.Response:
    """Fetch a job output through its signed link and check it matches its description."""
    got = httpx.get(output["url"])
    assert got.status_code == 200
    assert got.headers["content-type"].startswith(output["mime_type"])
    assert len(got.content) == output["bytes"]
    return got


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


# Fast retries and polling so fault tests take milliseconds, not the production seconds.
FAST = {
    "provider_poll_seconds": 0.05,
    "provider_backoff_seconds": 0.05,
    "provider_retries": 2,
    "fetch_allow_private": True,
}


@contextlib.contextmanager
def live_with(
    server: Server, *fakes: FakeProvider, **overrides: Any
) -> Iterator[tuple[Server, Tenant]]:
    """A Mediagate whose providers ``fakes`` point at the fake servers, and a live tenant."""
    settings: dict[str, Any] = dict(FAST)
    for fake in fakes:
        settings[f"{fake.provider}_api_key"] = f"test-{fake.provider}-key"
        settings[f"{fake.provider}_base_url"] = fake.url
    settings.update(overrides)
    with server.sibling(own_database=True, **settings) as live:
        yield live, live.tenant(mode="live", credits=5000)
