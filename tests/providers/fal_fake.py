"""A stand-in for fal's queue API (queue.fal.run), on loopback."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from tests.providers.conftest import FakeProvider, png, tiny_mp4

KEY = "Key test-fal-key"


@dataclass
class FalRequest:
    endpoint: str
    body: dict[str, Any]
    polls_left: int
    canceled: bool = False
    error: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)


class FakeFal(FakeProvider):
    provider = "fal"

    def __init__(self, *, polls: int = 1) -> None:
        super().__init__()
        self.polls = polls
        # Keep a request IN_PROGRESS until the test says otherwise (cancel tests).
        self.hold = False
        # The error the next completed request reports: {"error": ..., "error_type": ...}.
        self.task_error: dict[str, Any] | None = None
        self.queue: dict[str, FalRequest] = {}

        @self.app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
        async def route(path: str, request: Request) -> JSONResponse:
            if request.headers.get("authorization") != KEY:
                return JSONResponse({"detail": "Unauthorized"}, status_code=401)
            parts = path.split("/")
            if "requests" in parts:
                at = parts.index("requests")
                app_id, rid, rest = "/".join(parts[:at]), parts[at + 1], parts[at + 2 :]
                return self._request(request.method, app_id, rid, rest)
            if request.method != "POST":
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            return self._submit(path, await request.json())

    def _submit(self, endpoint: str, body: dict[str, Any]) -> JSONResponse:
        rid = str(uuid.uuid4())
        self.queue[rid] = FalRequest(endpoint, body, self.polls, error=self.task_error)
        app_id = "/".join(endpoint.split("/")[:2])
        base = f"{self.url}/{app_id}/requests/{rid}"
        return JSONResponse(
            {
                "request_id": rid,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    def _request(self, method: str, app_id: str, rid: str, rest: list[str]) -> JSONResponse:
        item = self.queue.get(rid)
        if item is None or not item.endpoint.startswith(app_id):
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if rest == ["cancel"] and method == "PUT":
            if item.polls_left <= 0 and not self.hold:
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            item.canceled = True
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)
        if rest == ["status"]:
            if self.hold or item.polls_left > 0:
                item.polls_left -= 1
                status = "IN_PROGRESS" if self.hold else "IN_QUEUE"
                return JSONResponse({"status": status, "queue_position": 0})
            done: dict[str, Any] = {"status": "COMPLETED", "response_url": ""}
            if item.error:
                done.update(item.error)
            return JSONResponse(done)
        if not rest:
            return JSONResponse(self._result(item))
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    def _result(self, item: FalRequest) -> dict[str, Any]:
        if item.result:
            return item.result
        if "video" in item.endpoint:
            item.result = {
                "video": {"url": self.host(tiny_mp4(), "video/mp4"), "content_type": "video/mp4"},
                "seed": 7,
            }
        else:
            count = int(item.body.get("num_images", 1))
            item.result = {
                "images": [
                    {
                        "url": self.host(png(64 + i, 48), "image/png"),
                        "content_type": "image/png",
                        "width": 64 + i,
                        "height": 48,
                    }
                    for i in range(count)
                ],
                "seed": 7,
                "has_nsfw_concepts": [False] * count,
            }
        return item.result
