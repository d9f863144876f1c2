"""OpenAI: GPT Image models and Sora videos, through the official ``openai`` SDK.

Wire format (platform.openai.com/docs/api-reference, "Images" and "Videos"):

- image    ``POST {base}/images/generations`` (JSON) or, with input images,
           ``POST {base}/images/edits`` (multipart, the images as ``image[]``) ->
           ``{"data": [{"b64_json": ...}], "output_format": "png", ...}``
- video    ``POST {base}/videos`` (multipart: model, prompt, seconds, size, optional
           ``input_reference`` file) -> a video object ``{"id", "status", "progress", ...}``;
           ``GET {base}/videos/{id}`` until ``status`` is ``completed`` or ``failed``;
           ``GET {base}/videos/{id}/content`` -> the MP4.

Errors are ``{"error": {"message", "type", "param", "code"}}``; a safety refusal has code
``moderation_blocked`` (GPT Image, Sora) or ``content_policy_violation`` (DALL-E). The fields
each model takes (``n``, ``size``, ``seconds``) come from the catalog route's ``params``.

Videos have no cancel call: ``DELETE /videos/{id}`` removes a finished video's files, it does
not stop a running one, so ``cancel`` does nothing. OpenAI shut the Sora API down on
2026-09-24; the video half serves gateways that kept its wire format (set the base URL).
"""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
from openai.types import ImagesResponse, Video
from PIL import Image, ImageOps

from mediagate.providers.base import (
    Call,
    Done,
    InlineFile,
    InputImage,
    OutputFile,
    ProviderError,
    Queued,
    Running,
    error_for_status,
)

# Error codes OpenAI gives a request its safety system refused.
_SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


class OpenAIAdapter:
    name = "openai"
    default_base_url = "https://api.openai.com/v1"

    async def start(self, call: Call) -> Queued | Done:
        if call.product == "video":
            return await self._start_video(call)
        return await self._images(call)

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        async with _client(call) as client:
            video = await client.get(f"/videos/{task_id}", cast_to=Video)
            if video.status in ("queued", "in_progress"):
                progress = video.progress / 100 if video.progress is not None else None
                return Running(progress, f"{video.status} at openai")
            if video.status == "failed":
                raise _video_error(video)
            if video.status != "completed":
                raise ProviderError("unavailable", f"openai reported a video as {video.status!r}")
            content = await client.get(
                f"/videos/{task_id}/content",
                cast_to=openai.HttpxBinaryResponseContent,
                options={"headers": {"Accept": "application/binary"}},
            )
        mime = content.response.headers.get("content-type", "video/mp4").split(";")[0]
        return Done([InlineFile(content.content, mime)], {"openai_video_id": task_id})

    async def cancel(self, call: Call, task_id: str) -> None:
        """OpenAI cannot stop a running video (see the module docstring)."""

    async def _images(self, call: Call) -> Done:
        prompt = call.prompt or ""
        async with _client(call) as client:
            if call.inputs:
                images = [_upload(image, f"image-{i}") for i, image in enumerate(call.inputs, 1)]
                response: ImagesResponse = await client.images.edit(
                    model=call.upstream, prompt=prompt, image=images, extra_body=call.params
                )
            else:
                response = await client.images.generate(
                    model=call.upstream, prompt=prompt, extra_body=call.params
                )
        encoded = [d.b64_json for d in response.data or []]
        if not encoded or None in encoded:
            raise ProviderError("failed", "openai answered without base64 image data")
        mime = f"image/{response.output_format or 'png'}"
        files: list[OutputFile] = [
            InlineFile(base64.b64decode(data or ""), mime) for data in encoded
        ]
        info: dict[str, Any] = {"usage": response.usage.model_dump()} if response.usage else {}
        return Done(files, info)

    async def _start_video(self, call: Call) -> Queued:
        body: dict[str, Any] = {"model": call.upstream, "prompt": call.prompt or "", **call.params}
        files = []
        if call.inputs:
            # Sora takes one reference image, which must be exactly the video's size.
            files.append(("input_reference", _fitted(call.inputs[0], body.get("size"))))
        async with _client(call) as client:
            # Through the SDK's generic requests: its ``videos`` methods warn on every call
            # that the Sora API is shut down, which our warnings-as-errors tests would trip.
            video = await client.post(
                "/videos",
                cast_to=Video,
                body=body,
                files=files,
                options={"headers": {"Content-Type": "multipart/form-data"}},
            )
        if video.status == "failed":
            raise _video_error(video)
        return Queued(video.id)


@contextlib.asynccontextmanager
async def _client(call: Call) -> AsyncIterator[openai.AsyncOpenAI]:
    """A short-lived SDK client for one call. The SDK runs on its own HTTP library
    (``httpx2``), so it cannot share ``call.http``; it takes that client's timeout, and
    ``max_retries=0`` because the engine does the retrying."""
    client = openai.AsyncOpenAI(
        api_key=call.credentials.api_key,
        base_url=call.credentials.base_url,
        max_retries=0,
        timeout=call.http.timeout.read,
    )
    try:
        yield client
    except openai.APIError as exc:
        raise _provider_error(exc) from None
    finally:
        await client.close()


def _provider_error(exc: openai.APIError) -> ProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "openai did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("unavailable", f"could not reach openai: {exc.message}")
    if not isinstance(exc, openai.APIStatusError):  # a 2xx body that is not what it documents
        return ProviderError("unavailable", f"openai sent an unexpected response: {exc.message}")
    headers = exc.response.headers
    detail = exc.body.get("message") if isinstance(exc.body, dict) else None
    error = error_for_status(
        httpx.Response(exc.status_code, headers=list(headers.multi_items())),
        f"HTTP {exc.status_code}: {detail or exc.message}",
    )
    if exc.code in _SAFETY_CODES:
        error.kind = "rejected"
    elif exc.code == "insufficient_quota":  # a 429 that no wait will cure: the account is empty
        error.kind, error.retry_after = "auth", None
    elif error.kind == "rate_limited" and headers.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            error.retry_after = max(0.0, float(headers["retry-after-ms"]) / 1000)
    return error


def _video_error(video: Video) -> ProviderError:
    code = video.error.code if video.error else None
    message = video.error.message if video.error else "no reason given"
    if code in _SAFETY_CODES:
        return ProviderError("rejected", f"openai refused the video: {message}")
    return ProviderError("failed", f"openai failed the video ({code}): {message}")


def _upload(image: InputImage, stem: str) -> tuple[str, bytes, str]:
    return (f"{stem}.{_EXTENSIONS.get(image.mime_type, 'png')}", image.data, image.mime_type)


def _fitted(image: InputImage, size: object) -> tuple[str, bytes, str]:
    """The image cropped and scaled to ``size`` ("1280x720"); as sent when there is no size."""
    try:
        width, height = (int(side) for side in str(size).split("x"))
    except ValueError:
        return _upload(image, "reference")
    with Image.open(io.BytesIO(image.data)) as source:
        if source.size == (width, height):
            return _upload(image, "reference")
        fitted = ImageOps.fit(source.convert("RGB"), (width, height))
    out = io.BytesIO()
    fitted.save(out, "PNG")
    return ("reference.png", out.getvalue(), "image/png")
