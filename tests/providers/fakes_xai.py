"""A stand-in for xAI's REST API (api.x.ai/v1) on loopback: image generation and editing
answer at once, video requests are queued and polled until done.

Wire format as docs.x.ai describes it: JSON bodies, ``Authorization: Bearer <key>``, errors as
``{"code": "<gRPC-ish status text>", "error": "<message>"}`` (a wrong key is a 400).
"""

from __future__ import annotations

import base64
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from PIL import Image

from tests.providers.conftest import FakeProvider, png, tiny_mp4

KEY = "Bearer test-xai-key"
INVALID = "Client specified an invalid argument"
# The sides of the PNGs the fake paints, per xAI aspect ratio ("auto" paints a square).
SIZES = {
    "1:1": (64, 64),
    "16:9": (96, 54),
    "9:16": (54, 96),
    "4:3": (80, 60),
    "3:4": (60, 80),
    "3:2": (90, 60),
    "2:3": (60, 90),
    "20:9": (100, 45),
}


def _error(status: int, message: str, code: str = INVALID) -> JSONResponse:
    return JSONResponse({"code": code, "error": message}, status_code=status)


@dataclass
class VideoRequest:
    body: dict[str, Any]
    polls: int = 0


class FakeXai(FakeProvider):
    provider = "xai"

    def __init__(self, *, pending_polls: int = 2) -> None:
        super().__init__()
        self.pending_polls = pending_polls
        # Keep every video pending until the test says otherwise (cancel tests).
        self.hold = False
        # What a finished video reports instead of success, e.g. {"status": "failed", ...}.
        self.video_outcome: dict[str, Any] | None = None
        # Indices of images that moderation withholds (respect_moderation false, no payload).
        self.withheld: set[int] = set()
        self.mp4 = tiny_mp4()
        self.videos: dict[str, VideoRequest] = {}
        # (path, monotonic time) of every request, scripted faults included.
        self.seen: list[tuple[str, float]] = []

        @self.app.middleware("http")
        async def clock(request: Request, call_next: Any) -> Response:
            self.seen.append((request.url.path, time.monotonic()))
            return await call_next(request)  # type: ignore[no-any-return]

        @self.app.post("/v1/images/generations")
        async def generations(request: Request) -> JSONResponse:
            body = await request.json()
            refused = _check(request, body)
            if refused:
                return refused
            size = SIZES.get(body.get("aspect_ratio", "auto"), (64, 64))
            return self._images(body, size)

        @self.app.post("/v1/images/edits")
        async def edits(request: Request) -> JSONResponse:
            body = await request.json()
            refused = _check(request, body)
            if refused:
                return refused
            sources = body.get("images") or ([body["image"]] if body.get("image") else [])
            if not sources or any(not str(s.get("url", "")) for s in sources):
                return _error(400, "image or images is required")
            try:
                first = _decode_data_url(sources[0]["url"])
            except ValueError as exc:
                return _error(400, str(exc))
            # By default an edit keeps the first source image's shape.
            ratio = body.get("aspect_ratio")
            size = SIZES[ratio] if ratio in SIZES else Image.open(io.BytesIO(first)).size
            return self._images(body, size)

        @self.app.post("/v1/videos/generations")
        async def videos(request: Request) -> JSONResponse:
            body = await request.json()
            refused = _check(request, body)
            if refused:
                return refused
            request_id = str(uuid.uuid4())
            self.videos[request_id] = VideoRequest(body)
            return JSONResponse({"request_id": request_id})

        @self.app.get("/v1/videos/{request_id}")
        async def video(request_id: str, request: Request) -> JSONResponse:
            if request.headers.get("authorization") != KEY:
                return _error(400, "Incorrect API key provided: te***ey.")
            found = self.videos.get(request_id)
            if found is None:
                return _error(
                    404, f"request {request_id} not found", "Some requested entity was not found"
                )
            found.polls += 1
            if self.hold or found.polls <= self.pending_polls:
                return JSONResponse({"status": "pending", "progress": 30 * found.polls})
            if self.video_outcome is not None:
                return JSONResponse(self.video_outcome)
            return JSONResponse(
                {
                    "status": "done",
                    "video": {
                        "url": self.host(self.mp4, "video/mp4"),
                        "duration": found.body.get("duration", 6),
                        "respect_moderation": True,
                    },
                    "model": found.body["model"],
                    "progress": 100,
                }
            )

    def arrivals(self, path: str) -> list[float]:
        return [at for seen, at in self.seen if seen == path]

    def _images(self, body: dict[str, Any], size: tuple[int, int]) -> JSONResponse:
        items: list[dict[str, Any]] = []
        for index in range(int(body.get("n", 1))):
            if index in self.withheld:
                items.append({"url": "", "respect_moderation": False})
                continue
            data = png(*size, color=(40 * index % 255, 120, 200))
            if body.get("response_format", "url") == "b64_json":
                item = {"b64_json": base64.b64encode(data).decode()}
            else:
                item = {"url": self.host(data, "image/png")}
            items.append({**item, "revised_prompt": "", "respect_moderation": True})
        return JSONResponse({"data": items})


def _check(request: Request, body: dict[str, Any]) -> JSONResponse | None:
    if request.headers.get("authorization") != KEY:
        return _error(
            400,
            "Incorrect API key provided: te***ey. You can obtain an API key from https://console.x.ai.",
        )
    if not body.get("model") or not body.get("prompt"):
        return _error(422, "model and prompt are required")
    return None


def _decode_data_url(url: str) -> bytes:
    header, sep, data = url.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise ValueError("image url must be a public URL or a base64 data URI")
    return base64.b64decode(data)
