"""A stand-in for the OpenAI API's images and videos endpoints (api.openai.com/v1), on loopback.

Speaks the documented wire format: bearer auth, JSON image generations, multipart image edits
(``image[]``) and video creation, video objects polled until ``completed``, the MP4 at
``/videos/{id}/content``, and errors as ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from tests.providers.conftest import FakeProvider, png, tiny_mp4

KEY = "Bearer test-openai-key"


def error(status: int, message: str, type_: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FakeVideo:
    id: str
    fields: dict[str, str]
    reference: Upload | None
    polls_left: int
    status: str = "queued"
    progress: int = 0
    error: dict[str, str] | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "video",
            "model": self.fields.get("model", "sora-2"),
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at,
            "completed_at": int(time.time()) if self.status == "completed" else None,
            "expires_at": None,
            "prompt": self.fields.get("prompt"),
            "seconds": self.fields.get("seconds", "4"),
            "size": self.fields.get("size", "720x1280"),
            "remixed_from_video_id": None,
            "error": self.error,
        }


class FakeOpenAI(FakeProvider):
    provider = "openai"

    def __init__(self, *, polls: int = 1) -> None:
        super().__init__()
        self.polls = polls
        # Keep videos in_progress until the test says otherwise (cancel tests).
        self.hold = False
        # The error the next finished video reports: {"code": ..., "message": ...}.
        self.video_error: dict[str, str] | None = None
        self.videos: dict[str, FakeVideo] = {}
        self.mp4 = tiny_mp4()
        # The next ``slow`` image generations answer only after ``delay`` seconds.
        self.slow, self.delay = 0, 0.0
        # What each image edit was sent: its form fields and its uploads.
        self.image_forms: list[tuple[dict[str, str], list[tuple[str, Upload]]]] = []

        @self.app.post("/v1/images/generations")
        async def generations(request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            body = await request.json()
            if self.slow > 0:
                self.slow -= 1
                await asyncio.sleep(self.delay)
            if not body.get("prompt"):
                return error(400, "Missing required parameter: 'prompt'.", "invalid_request_error")
            return _images(body.get("n", 1), body.get("size", "1024x1024"))

        @self.app.post("/v1/images/edits")
        async def edits(request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            fields, uploads = await _form(request)
            self.image_forms.append((fields, uploads))
            if not any(name in ("image", "image[]") for name, _ in uploads):
                return error(400, "Missing required parameter: 'image'.", "invalid_request_error")
            return _images(int(fields.get("n", "1")), fields.get("size", "1024x1024"))

        @self.app.post("/v1/videos")
        async def create_video(request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            fields, uploads = await _form(request)
            if not fields.get("prompt"):
                return error(400, "Missing required parameter: 'prompt'.", "invalid_request_error")
            reference = next((u for name, u in uploads if name == "input_reference"), None)
            video = FakeVideo(f"video_{uuid.uuid4().hex}", fields, reference, self.polls)
            self.videos[video.id] = video
            return JSONResponse(video.wire())

        @self.app.get("/v1/videos/{video_id}")
        async def retrieve_video(video_id: str, request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            video = self.videos.get(video_id)
            if video is None:
                return _missing(video_id)
            if video.status in ("queued", "in_progress"):
                self._advance(video)
            return JSONResponse(video.wire())

        @self.app.get("/v1/videos/{video_id}/content")
        async def content(video_id: str, request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            video = self.videos.get(video_id)
            if video is None:
                return _missing(video_id)
            if video.status != "completed":
                return error(400, "Video is not ready yet.", "invalid_request_error")
            return Response(self.mp4, media_type="video/mp4")

        @self.app.delete("/v1/videos/{video_id}")
        async def delete(video_id: str, request: Request) -> Response:
            if request.headers.get("authorization") != KEY:
                return _unauthorized()
            video = self.videos.pop(video_id, None)
            if video is None:
                return _missing(video_id)
            return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})

    def _advance(self, video: FakeVideo) -> None:
        if self.hold:
            video.status, video.progress = "in_progress", 50
            return
        if video.polls_left > 0:
            video.polls_left -= 1
            video.status, video.progress = "in_progress", 50
            return
        if self.video_error is not None:
            video.status, video.error = "failed", self.video_error
            return
        video.status, video.progress = "completed", 100


def _images(n: int, size: str) -> JSONResponse:
    width, height = (int(side) for side in size.split("x")) if size != "auto" else (1024, 1024)
    data = [
        {"b64_json": base64.b64encode(png(width, height, (40 * i, 90, 200))).decode()}
        for i in range(n)
    ]
    return JSONResponse(
        {
            "created": int(time.time()),
            "data": data,
            "background": "opaque",
            "output_format": "png",
            "quality": "medium",
            "size": size,
            "usage": {
                "input_tokens": 50,
                "input_tokens_details": {"image_tokens": 40, "text_tokens": 10},
                "output_tokens": 50,
                "total_tokens": 100,
            },
        }
    )


async def _form(request: Request) -> tuple[dict[str, str], list[tuple[str, Upload]]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return {}, []
    fields: dict[str, str] = {}
    uploads: list[tuple[str, Upload]] = []
    async with request.form() as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                uploads.append((name, Upload(value.filename or "", value.content_type or "", data)))
            else:
                fields[name] = value
    return fields, uploads


def _unauthorized() -> JSONResponse:
    return error(
        401,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _missing(video_id: str) -> JSONResponse:
    return error(404, f"Video with id '{video_id}' not found.", "invalid_request_error")
