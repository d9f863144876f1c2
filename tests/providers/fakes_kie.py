"""A stand-in for kie.ai (api.kie.ai) on loopback: the 4o Image, Veo and Suno submit and
record-info endpoints and the Base64 File Upload API, answering HTTP 200 with kie's
``{"code", "msg", "data"}`` envelope whatever the outcome, as kie does."""

from __future__ import annotations

import base64
import io
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from fastapi import Request

from tests.providers.conftest import FakeProvider, png, tiny_mp4

KEY = "Bearer test-kie-key"
SUNO_MODELS = {"V3_5", "V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5"}


def tiny_mp3(seconds: float = 0.5, rate: int = 22050) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), 1152):
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1152], format="fltp", layout="mono"
            )
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


@dataclass
class Task:
    family: str  # "image" | "veo" | "suno"
    body: dict[str, Any]
    polls_left: int
    polls: int = 0
    # Scripted end: record-info fields that replace the success ones.
    failure: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)


def envelope(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


class FakeKie(FakeProvider):
    provider = "kie"

    def __init__(self, *, polls: int = 2) -> None:
        super().__init__()
        self.polls = polls
        # Keep every task generating until the test says otherwise (cancel tests).
        self.hold = False
        # The record-info fields the next task ends with instead of success, e.g.
        # {"status": "SENSITIVE_WORD_ERROR", "errorMessage": "..."}.
        self.next_failure: dict[str, Any] | None = None
        self.tasks: dict[str, Task] = {}
        self.uploads: dict[str, bytes] = {}
        self.mp4 = tiny_mp4()
        self.mp3 = tiny_mp3()

        @self.app.post("/api/file-base64-upload")
        async def upload(request: Request) -> dict[str, Any]:
            if request.headers.get("authorization") != KEY:
                return envelope(401, "You do not have access permissions")
            body = await request.json()
            data_url = body.get("base64Data")
            if not isinstance(data_url, str) or not body.get("uploadPath"):
                return envelope(400, "base64Data and uploadPath are required")
            header, _, encoded = data_url.partition(";base64,")
            raw = base64.b64decode(encoded)
            link = self.host(raw, header.removeprefix("data:"))
            self.uploads[link] = raw
            return {
                "success": True,
                **envelope(
                    200,
                    "File uploaded successfully",
                    {
                        "fileName": f"{uuid.uuid4().hex}.png",
                        "filePath": f"{body['uploadPath']}/x.png",
                        "downloadUrl": link,
                        "fileSize": len(raw),
                        "mimeType": header.removeprefix("data:"),
                        "uploadedAt": "2026-01-01T00:00:00.000Z",
                    },
                ),
            }

        @self.app.post("/api/v1/gpt4o-image/generate")
        async def image_generate(request: Request) -> dict[str, Any]:
            return await self._submit(request, "image", self._check_image)

        @self.app.post("/api/v1/veo/generate")
        async def veo_generate(request: Request) -> dict[str, Any]:
            return await self._submit(request, "veo", self._check_veo)

        @self.app.post("/api/v1/generate")
        async def suno_generate(request: Request) -> dict[str, Any]:
            return await self._submit(request, "suno", self._check_suno)

        @self.app.get("/api/v1/gpt4o-image/record-info")
        async def image_record(request: Request) -> dict[str, Any]:
            return self._record(request, "image")

        @self.app.get("/api/v1/veo/record-info")
        async def veo_record(request: Request) -> dict[str, Any]:
            return self._record(request, "veo")

        @self.app.get("/api/v1/generate/record-info")
        async def suno_record(request: Request) -> dict[str, Any]:
            return self._record(request, "suno")

    # -- submit ---------------------------------------------------------------------------

    async def _submit(self, request: Request, family: str, check: Any) -> dict[str, Any]:
        if request.headers.get("authorization") != KEY:
            return envelope(401, "You do not have access permissions")
        body = await request.json()
        problem = check(body)
        if problem:
            return envelope(422, problem)
        task_id = uuid.uuid4().hex
        self.tasks[task_id] = Task(family, body, self.polls, failure=self.next_failure)
        self.next_failure = None
        return envelope(200, "success", {"taskId": task_id})

    def _check_links(self, urls: Any, most: int) -> str | None:
        if urls is None:
            return None
        if not isinstance(urls, list) or not 1 <= len(urls) <= most:
            return f"between 1 and {most} image URLs"
        if not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
            return "image URLs must be http(s) links"
        return None

    def _check_image(self, body: dict[str, Any]) -> str | None:
        if body.get("size") not in ("1:1", "3:2", "2:3"):
            return "size must be one of 1:1, 3:2, 2:3"
        if body.get("nVariants", 1) not in (1, 2, 4):
            return "nVariants must be 1, 2 or 4"
        if not body.get("prompt") and not body.get("filesUrl"):
            return "prompt or filesUrl is required"
        return self._check_links(body.get("filesUrl"), 5)

    def _check_veo(self, body: dict[str, Any]) -> str | None:
        if not body.get("prompt"):
            return "prompt is required"
        if body.get("model", "veo3_fast") not in ("veo3", "veo3_fast"):
            return "model must be veo3 or veo3_fast"
        if body.get("aspectRatio", "16:9") not in ("16:9", "9:16", "Auto"):
            return "aspectRatio must be 16:9, 9:16 or Auto"
        return self._check_links(body.get("imageUrls"), 2)

    def _check_suno(self, body: dict[str, Any]) -> str | None:
        for name in ("customMode", "instrumental"):
            if not isinstance(body.get(name), bool):
                return f"{name} is required"
        if body.get("model") not in SUNO_MODELS:
            return "model is invalid"
        if not body.get("callBackUrl"):
            return "callBackUrl is required"
        prompt = body.get("prompt")
        if not body["customMode"] and (not prompt or len(prompt) > 500):
            return "prompt is required (500 characters at most)"
        return None

    # -- record-info ----------------------------------------------------------------------

    def _record(self, request: Request, family: str) -> dict[str, Any]:
        if request.headers.get("authorization") != KEY:
            return envelope(401, "You do not have access permissions")
        task = self.tasks.get(request.query_params.get("taskId", ""))
        if task is None or task.family != family:
            return envelope(404, "task not found")
        task.polls += 1
        if self.hold or task.polls <= task.polls_left:
            return envelope(200, "success", self._running(task, request))
        if task.failure is not None:
            return envelope(200, "success", {**self._running(task, request), **task.failure})
        if not task.result:
            task.result = self._finished(task)
        return envelope(200, "success", task.result)

    def _base(self, request: Request) -> dict[str, Any]:
        return {
            "taskId": request.query_params["taskId"],
            "createTime": 1767225600000,
            "errorCode": None,
            "errorMessage": None,
        }

    def _running(self, task: Task, request: Request) -> dict[str, Any]:
        data = self._base(request)
        if task.family == "image":
            progress = min(task.polls / (task.polls_left + 1), 0.99)
            return {**data, "status": "GENERATING", "successFlag": 0, "progress": f"{progress:.2f}"}
        if task.family == "veo":
            return {**data, "successFlag": 0, "response": None}
        stages = ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"]
        return {**data, "status": stages[min(task.polls - 1, 2)], "response": None}

    def _finished(self, task: Task) -> dict[str, Any]:
        data = {"taskId": next(k for k, v in self.tasks.items() if v is task)}
        if task.family == "image":
            colors = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
            urls = [
                self.host(png(96, 64, colors[i]), "image/png")
                for i in range(task.body.get("nVariants", 1))
            ]
            return {
                **data,
                "status": "SUCCESS",
                "successFlag": 1,
                "progress": "1.00",
                "response": {"resultUrls": urls},
            }
        if task.family == "veo":
            return {
                **data,
                "successFlag": 1,
                "response": {
                    "taskId": data["taskId"],
                    "resultUrls": [self.host(self.mp4, "video/mp4")],
                    "resolution": "720p",
                },
            }
        tracks = [
            {
                "id": uuid.uuid4().hex,
                "audioUrl": self.host(self.mp3, "audio/mpeg"),
                "streamAudioUrl": f"{self.url}/stream/{i}",
                "title": f"track {i}",
                "duration": 0.5,
            }
            for i in range(2)
        ]
        return {
            **data,
            "status": "SUCCESS",
            "type": "GENERATE",
            "response": {"taskId": data["taskId"], "sunoData": tracks},
        }
