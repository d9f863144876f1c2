"""xAI (Grok Imagine) over its REST API, plain HTTP with ``Authorization: Bearer <key>``.

The wire format, from docs.x.ai ("Image Generation", "Image Editing", "Video Generation") and
the REST clients in vercel/ai ``packages/xai/src/xai-image-model.ts`` and
``xai-video-model.ts``:

- images  ``POST {base}/images/generations`` ``{model, prompt, n, response_format,
  aspect_ratio, resolution}`` -> ``{"data": [{"url" | "b64_json", "respect_moderation"}]}``
- edits   ``POST {base}/images/edits``, the same JSON plus ``image: {url, type: "image_url"}``
  (or ``images: [...]``, up to three); the url may be a data URL
- video   ``POST {base}/videos/generations`` ``{model, prompt, duration, aspect_ratio,
  resolution, image?: {url}}`` -> ``{"request_id"}``; then
  ``GET {base}/videos/{request_id}`` -> ``{"status": "pending" | "done" | "expired" |
  "failed", "progress", "video": {"url", "duration", "respect_moderation"}, "error"}``

Images answer at once; video is queued. xAI has no call to cancel a video request, so
``cancel`` does nothing (the engine stops polling). A flagged output comes back with
``respect_moderation: false`` and no payload; a refused prompt is a 400 naming moderation.
Which fields go out besides ``model``, ``prompt`` and the input images comes from the catalog
route's ``params``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import httpx

from mediagate.providers.base import (
    Call,
    Done,
    InlineFile,
    OutputFile,
    ProviderError,
    Queued,
    RemoteFile,
    Running,
    error_for_status,
)

# How xAI words a content-policy refusal in an error message.
_MODERATION = re.compile(r"moderat|content polic|safety|violat", re.I)
# xAI answers a wrong key with 400 "Incorrect API key provided: ..." rather than 401.
_BAD_KEY = re.compile(r"\b(incorrect|invalid|missing|no) api key", re.I)


class XaiAdapter:
    name = "xai"
    default_base_url = "https://api.x.ai/v1"

    async def start(self, call: Call) -> Queued | Done:
        if call.product == "video":
            return await self._start_video(call)
        return await self._image(call)

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        response = await call.http.get(
            f"{call.credentials.base_url}/videos/{task_id}", headers=_auth(call)
        )
        _raise_for(response)
        state = _json(response)
        status = state.get("status")
        video = state.get("video") if isinstance(state.get("video"), dict) else None
        if status == "done" or (status is None and video and video.get("url")):
            return _video_done(video, task_id)
        if status == "pending":
            progress = state.get("progress")
            fraction = progress / 100 if isinstance(progress, int | float) else None
            return Running(fraction, "generating at xAI")
        if status == "failed":
            raise _task_error(state.get("error"))
        if status == "expired":
            raise ProviderError("failed", "xAI let the video request expire")
        raise ProviderError("unavailable", f"xAI reported an unknown video status {status!r}")

    async def cancel(self, call: Call, task_id: str) -> None:
        """xAI offers no cancel for video requests: the engine simply stops polling."""

    async def _image(self, call: Call) -> Done:
        body = _body(call)
        path = "images/generations"
        if call.inputs:
            path = "images/edits"
            images = [{"url": i.data_url(), "type": "image_url"} for i in call.inputs]
            if len(images) == 1:
                body["image"] = images[0]
            else:
                body["images"] = images
        response = await call.http.post(
            f"{call.credentials.base_url}/{path}", json=body, headers=_auth(call)
        )
        _raise_for(response)
        return Done(_images(_json(response)))

    async def _start_video(self, call: Call) -> Queued:
        body = _body(call)
        if call.inputs:  # image-to-video: the still becomes the first frame
            body["image"] = {"url": call.inputs[0].data_url()}
        response = await call.http.post(
            f"{call.credentials.base_url}/videos/generations", json=body, headers=_auth(call)
        )
        _raise_for(response)
        request_id = _json(response).get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError("unavailable", "xAI accepted the video without a request_id")
        return Queued(request_id)


def _body(call: Call) -> dict[str, Any]:
    body: dict[str, Any] = {"model": call.upstream, **call.params}
    if call.prompt is not None:
        body["prompt"] = call.prompt
    return body


def _auth(call: Call) -> dict[str, str]:
    return {"Authorization": f"Bearer {call.credentials.api_key}"}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ProviderError("unavailable", "xAI answered with something other than JSON") from None
    if not isinstance(data, dict):
        raise ProviderError("unavailable", "xAI answered with an unexpected JSON shape")
    return data


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    message = _error_message(response)
    if response.status_code == 400 and _BAD_KEY.search(message):
        raise ProviderError("auth", message, status=400)
    if response.status_code in (400, 422) and _MODERATION.search(message):
        raise ProviderError("rejected", message, status=response.status_code)
    raise error_for_status(response, f"HTTP {response.status_code}: {message}")


def _error_message(response: httpx.Response) -> str:
    """xAI's errors are ``{"code", "error": "<text>"}``; OpenAI-style
    ``{"error": {"message"}}`` bodies are read too."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
        if data.get("message"):
            return str(data["message"])
    return str(data)[:300]


def _images(result: dict[str, Any]) -> list[OutputFile]:
    items = [i for i in result.get("data") or [] if isinstance(i, dict)]
    kept = [i for i in items if i.get("respect_moderation") is not False]
    if items and not kept:
        raise ProviderError("rejected", "xAI's moderation withheld every image")
    files: list[OutputFile] = []
    for item in kept:
        if isinstance(item.get("b64_json"), str):
            files.append(_inline(item["b64_json"]))
        elif isinstance(item.get("url"), str):
            files.append(RemoteFile(item["url"]))
    return files


def _inline(encoded: str) -> InlineFile:
    # Some answers carry a whole data URL instead of the bare base64.
    mime = "image/jpeg"
    if encoded.startswith("data:"):
        header, _, encoded = encoded.partition(",")
        mime = header[5:].split(";")[0] or mime
    try:
        return InlineFile(base64.b64decode(encoded, validate=True), mime)
    except (binascii.Error, ValueError):
        raise ProviderError("failed", "xAI returned an image that is not valid base64") from None


def _video_done(video: dict[str, Any] | None, task_id: str) -> Done:
    if video and video.get("respect_moderation") is False:
        raise ProviderError("rejected", "xAI's moderation withheld the video")
    if not video or not isinstance(video.get("url"), str):
        raise ProviderError("failed", "xAI finished the video without a url")
    info: dict[str, Any] = {"xai_request_id": task_id}
    if video.get("duration") is not None:
        info["duration"] = video["duration"]
    return Done([RemoteFile(video["url"], "video/mp4")], info)


def _task_error(error: Any) -> ProviderError:
    if isinstance(error, dict):
        text = f"{error.get('code') or ''} {error.get('message') or ''}".strip()
    else:
        text = str(error or "")
    if _MODERATION.search(text):
        return ProviderError("rejected", text)
    return ProviderError("failed", f"xAI could not generate the video: {text or 'no reason given'}")
