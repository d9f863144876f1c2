"""A stand-in for the Gemini Developer API (generativelanguage.googleapis.com) on loopback.

It speaks the REST wire format the google-genai SDK and Google's own curl examples use:

- ``POST /v1beta/models/{model}:generateContent`` (nano-banana images, returned inline);
- ``POST /v1beta/models/{model}:predictLongRunning`` (Veo) -> an operation named
  ``models/{model}/operations/{id}``, polled with ``GET /v1beta/{name}``;
- ``GET /v1beta/files/{id}:download?alt=media`` -> a redirect to the bytes, as the real
  endpoint answers (Google's example downloads it with ``curl -L``).

The key is read from ``x-goog-api-key`` (or ``?key=``); errors have Google's shape,
``{"error": {"code", "message", "status", "details"}}``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from tests.providers.conftest import FakeProvider, png, tiny_mp4

KEY = "test-google-key"
LONG_RUNNING_RESPONSE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
IMAGE_MODELS = {"gemini-2.5-flash-image", "gemini-3-pro-image-preview"}
VIDEO_MODELS = {"veo-3.0-fast-generate-001", "veo-3.0-generate-001"}
ASPECT_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
VIDEO_PARAMETERS = {
    "aspectRatio",
    "resolution",
    "durationSeconds",
    "negativePrompt",
    "personGeneration",
    "sampleCount",
    "enhancePrompt",
}


def error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = list(details)
    return {"error": body}


def proto_bytes(text: str) -> bytes:
    """Decode a proto JSON bytes field: standard or URL-safe base64, padded or not (pydantic,
    inside the SDK, writes URL-safe)."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def image_reply(data: bytes, model: str, mime: str = "image/png") -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Here is your image."},
                        {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode()}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1290},
        "modelVersion": model,
        "responseId": uuid.uuid4().hex,
    }


@dataclass
class Operation:
    name: str
    model: str
    body: dict[str, Any]
    polls_left: int
    # What the finished operation reports instead of a video: {"error": ...} or a
    # generateVideoResponse without samples.
    outcome: dict[str, Any] | None = None


class FakeGoogle(FakeProvider):
    provider = "google"

    def __init__(self, *, polls: int = 1) -> None:
        super().__init__()
        self.polls = polls
        # Keep every operation running until the test says otherwise (cancel tests).
        self.hold = False
        # Bodies the next generateContent calls answer with, in order (refusals and such).
        self.replies: list[dict[str, Any]] = []
        # How the next operations finish when not with a video (see ``Operation.outcome``).
        self.outcomes: list[dict[str, Any]] = []
        self.operations: dict[str, Operation] = {}
        self.videos: dict[str, bytes] = {}

        @self.app.post("/v1beta/models/{target}")
        async def call_model(target: str, request: Request) -> Response:
            denied = self._denied(request)
            if denied:
                return denied
            model, _, method = target.partition(":")
            body = await request.json()
            if method == "generateContent" and model in IMAGE_MODELS:
                return self._generate(model, body)
            if method == "predictLongRunning" and model in VIDEO_MODELS:
                return self._predict(model, body)
            return JSONResponse(
                error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta"),
                status_code=404,
            )

        @self.app.get("/v1beta/models/{model}/operations/{op}")
        async def get_operation(model: str, op: str, request: Request) -> Response:
            denied = self._denied(request)
            if denied:
                return denied
            operation = self.operations.get(f"models/{model}/operations/{op}")
            if operation is None:
                return JSONResponse(error(404, "NOT_FOUND", "Operation not found"), status_code=404)
            return JSONResponse(self._state(operation))

        @self.app.get("/v1beta/files/{target}")
        async def download(target: str, request: Request) -> Response:
            denied = self._denied(request)
            if denied:
                return denied
            file_id, _, method = target.partition(":")
            if method != "download" or request.query_params.get("alt") != "media":
                return JSONResponse(error(400, "INVALID_ARGUMENT", "bad request"), 400)
            if file_id not in self.videos:
                return JSONResponse(error(404, "NOT_FOUND", "File not found"), status_code=404)
            return RedirectResponse(self.host(self.videos[file_id], "video/mp4"), 302)

    def _denied(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return JSONResponse(
                error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers. Please use an API Key.",
                ),
                status_code=403,
            )
        if key != KEY:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
            return JSONResponse(
                error(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", info
                ),
                status_code=400,
            )
        return None

    def _generate(self, model: str, body: dict[str, Any]) -> Response:
        problem = _check_generate(model, body)
        if problem:
            return JSONResponse(error(400, "INVALID_ARGUMENT", problem), status_code=400)
        if self.replies:
            return JSONResponse(self.replies.pop(0))
        ratio = body["generationConfig"].get("imageConfig", {}).get("aspectRatio", "1:1")
        w, h = (int(n) for n in ratio.split(":"))
        return JSONResponse(image_reply(png(64, round(64 * h / w)), model))

    def _predict(self, model: str, body: dict[str, Any]) -> Response:
        problem = _check_predict(body)
        if problem:
            return JSONResponse(error(400, "INVALID_ARGUMENT", problem), status_code=400)
        name = f"models/{model}/operations/{uuid.uuid4().hex[:12]}"
        outcome = self.outcomes.pop(0) if self.outcomes else None
        self.operations[name] = Operation(name, model, body, self.polls, outcome)
        return JSONResponse({"name": name})

    def _state(self, operation: Operation) -> dict[str, Any]:
        if self.hold or operation.polls_left > 0:
            operation.polls_left -= 1
            return {"name": operation.name, "done": False}
        state: dict[str, Any] = {"name": operation.name, "done": True}
        if operation.outcome and "error" in operation.outcome:
            state["error"] = operation.outcome["error"]
            return state
        generated = operation.outcome
        if generated is None:
            file_id = uuid.uuid4().hex[:12]
            params = operation.body.get("parameters", {})
            size = (36, 64) if params.get("aspectRatio") == "9:16" else (64, 36)
            self.videos[file_id] = tiny_mp4(size=size)
            uri = f"{self.url}/v1beta/files/{file_id}:download?alt=media"
            generated = {"generatedSamples": [{"video": {"uri": uri}}]}
        state["response"] = {
            "@type": LONG_RUNNING_RESPONSE,
            "generateVideoResponse": generated,
        }
        return state


def _check_generate(model: str, body: dict[str, Any]) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in contents:
        for part in content.get("parts", []):
            # Proto JSON takes a field by its lowerCamel or its proto name: the SDK sends
            # inlineData.mime_type, Google's curl examples inline_data.mime_type.
            inline = _field(part, "inlineData")
            if inline is not None:
                if not (_field(inline, "mimeType") or "").startswith("image/"):
                    return "Unsupported MIME type"
                proto_bytes(inline["data"])
            elif "text" not in part:
                return "Invalid part"
    config = body.get("generationConfig", {})
    if "IMAGE" not in config.get("responseModalities", []):
        return "This model only supports text and image output; ask for IMAGE."
    image_config = config.get("imageConfig", {})
    unknown = set(image_config) - {"aspectRatio", "imageSize"}
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"'
    if image_config.get("aspectRatio", "1:1") not in ASPECT_RATIOS:
        return "Unsupported aspect ratio"
    if "imageSize" in image_config:
        if model == "gemini-2.5-flash-image":
            return "Image size is not supported for this model."
        if image_config["imageSize"] not in ("1K", "2K", "4K"):
            return "Unsupported image size"
    return None


def _check_predict(body: dict[str, Any]) -> str | None:
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        return "instances must hold exactly one instance"
    instance = instances[0]
    image = instance.get("image")
    if not isinstance(instance.get("prompt"), str) and image is None:
        return "instances[0] needs a prompt or an image"
    if image is not None:
        if set(image) != {"bytesBase64Encoded", "mimeType"}:
            return "instances[0].image needs bytesBase64Encoded and mimeType"
        proto_bytes(image["bytesBase64Encoded"])
    params = body.get("parameters", {})
    unknown = set(params) - VIDEO_PARAMETERS
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"'
    if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return "aspectRatio must be 16:9 or 9:16"
    if params.get("resolution", "720p") not in ("720p", "1080p"):
        return "resolution must be 720p or 1080p"
    if int(params.get("durationSeconds", 8)) not in (4, 6, 8):
        return "durationSeconds must be 4, 6 or 8"
    return None


def _field(message: dict[str, Any], camel: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return message.get(camel, message.get(snake))
