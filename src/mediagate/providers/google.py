"""Google's Gemini Developer API (generativelanguage.googleapis.com): nano-banana images and
Veo videos.

Images go through the official ``google-genai`` SDK: ``models.generateContent`` with the prompt
and input images as inline parts, ``responseModalities`` TEXT+IMAGE, and the route's params as
``generationConfig.imageConfig`` (``aspectRatio``, ``imageSize``); the image comes back inline.
Gemini image models answer one candidate per request, so ``count`` images are ``count``
concurrent requests.

Videos use the REST wire format directly: google-genai 3.x refuses ``generate_videos`` on the
Developer API ("only supported in Gemini Enterprise Agent Platform mode"), while the API itself
still serves Veo at ``models/{model}:predictLongRunning``. The operation's name is the task id;
``GET /v1beta/{name}`` polls it; the finished video is a file URI downloaded with the key.
The route's params are the request's ``parameters`` object. The Developer API has no call to
cancel a Veo operation, so ``cancel`` does nothing. Sources: ai.google.dev/gemini-api/docs/video
(REST example) and the SDK's ``_GenerateVideosParameters_to_mldev`` (wire field names).

The SDK is given our shared httpx client and one attempt per call: retries are the engine's.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from mediagate.providers.base import (
    Call,
    Done,
    InlineFile,
    ProviderError,
    Queued,
    Running,
    error_for_status,
)

API_VERSION = "v1beta"
# The same ceiling the engine puts on downloaded outputs (Settings.max_output_bytes default).
MAX_VIDEO_BYTES = 512 * 1024 * 1024
# Finish reasons that mean Google's policy stopped the image: a refusal, not a fault.
REFUSED = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
# The order in which one error among several concurrent image requests decides the job's fate.
_DECISIVE = ("rejected", "invalid", "auth", "rate_limited", "unavailable", "timeout", "failed")
_POLICY_WORDS = re.compile(r"safety|policy|guideline|prohibited|responsible ai", re.I)


class GoogleAdapter:
    name = "google"
    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, httpx.AsyncClient], genai.Client] = {}

    async def start(self, call: Call) -> Queued | Done:
        if call.product == "video":
            return await self._start_video(call)
        return await self._images(call)

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        response = await call.http.get(_url(call, task_id), headers=_auth(call))
        operation = _json(response)
        if not operation.get("done"):
            return Running()
        if operation.get("error"):
            raise _operation_error(operation["error"])
        generated = (operation.get("response") or {}).get("generateVideoResponse") or {}
        samples = generated.get("generatedSamples") or []
        if not samples:
            reasons = "; ".join(generated.get("raiMediaFilteredReasons") or [])
            if generated.get("raiMediaFilteredCount"):
                raise ProviderError("rejected", f"Veo filtered the video: {reasons or 'safety'}")
            raise ProviderError("failed", "the Veo operation finished without a video")
        video = samples[0].get("video") or {}
        mime = video.get("encoding") or video.get("mimeType") or "video/mp4"
        if video.get("uri"):
            return Done([InlineFile(await _download(call, video["uri"]), mime)])
        if video.get("encodedVideo"):
            return Done([InlineFile(base64.b64decode(video["encodedVideo"]), mime)])
        raise ProviderError("failed", "the Veo operation returned a video without content")

    async def cancel(self, call: Call, task_id: str) -> None:
        """The Gemini Developer API has no cancel for Veo operations: it runs to the end."""

    # Images --------------------------------------------------------------------------------

    async def _images(self, call: Call) -> Done:
        count = int(call.units.get("count") or 1)
        results = await asyncio.gather(
            *(self._one_image(call) for _ in range(count)), return_exceptions=True
        )
        files = [r for r in results if isinstance(r, InlineFile)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if not files:
            raise _most_decisive(failures)
        info: dict[str, Any] = {}
        if failures:
            # Some images came back: keep them, and only what was delivered is charged.
            info["missing_images"] = [_describe(f) for f in failures]
        return Done(list(files), info)

    async def _one_image(self, call: Call) -> InlineFile:
        parts = [types.Part.from_text(text=call.prompt)] if call.prompt else []
        parts += [types.Part.from_bytes(data=i.data, mime_type=i.mime_type) for i in call.inputs]
        try:
            config = types.GenerateContentConfig(
                response_modalities=["TEXT", "IMAGE"],
                image_config=types.ImageConfig.model_validate(call.params) if call.params else None,
            )
            response = await self._client(call).aio.models.generate_content(
                model=call.upstream, contents=types.Content(role="user", parts=parts), config=config
            )
        except genai_errors.APIError as exc:
            raise _api_error(exc) from exc
        except ValueError as exc:  # the SDK refused our request before sending it
            raise ProviderError("invalid", f"google-genai refused the request: {exc}") from exc
        return _image_of(response)

    def _client(self, call: Call) -> genai.Client:
        # Building a client costs tens of milliseconds (it sets up TLS for a sync client we
        # never use), so one is kept per key and endpoint.
        key = (call.credentials.api_key, call.credentials.base_url, call.http)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= 64:
                self._clients.clear()
            read = call.http.timeout.read
            client = genai.Client(
                api_key=call.credentials.api_key,
                http_options=types.HttpOptions(
                    base_url=call.credentials.base_url,
                    api_version=API_VERSION,
                    # Left unset, the SDK would send timeout=None and so disable httpx's.
                    timeout=int(read * 1000) if read else None,
                    httpx_async_client=call.http,
                    retry_options=types.HttpRetryOptions(attempts=1),
                ),
            )
            self._clients[key] = client
        return client

    # Videos --------------------------------------------------------------------------------

    async def _start_video(self, call: Call) -> Queued:
        instance: dict[str, Any] = {"prompt": call.prompt} if call.prompt else {}
        if call.inputs:
            first = call.inputs[0]
            instance["image"] = {
                "bytesBase64Encoded": base64.b64encode(first.data).decode(),
                "mimeType": first.mime_type,
            }
        response = await call.http.post(
            _url(call, f"models/{call.upstream}:predictLongRunning"),
            json={"instances": [instance], "parameters": call.params},
            headers=_auth(call),
        )
        name = _json(response).get("name")
        if not name:
            raise ProviderError("failed", "Veo accepted the request without an operation name")
        return Queued(str(name))


def _url(call: Call, path: str) -> str:
    return f"{call.credentials.base_url}/{API_VERSION}/{path}"


def _auth(call: Call) -> dict[str, str]:
    return {"x-goog-api-key": call.credentials.api_key}


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise _http_error(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError("unavailable", f"Google answered with invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProviderError("unavailable", "Google answered with an unexpected body")
    return body


async def _download(call: Call, uri: str) -> bytes:
    """The video file. Our key goes only to Google's own origin, not to where it redirects."""
    origin = urlsplit(call.credentials.base_url)[:2]
    for _ in range(4):
        headers = _auth(call) if urlsplit(uri)[:2] == origin else {}
        async with call.http.stream("GET", uri, headers=headers) as response:
            if response.is_redirect and "location" in response.headers:
                uri = urljoin(uri, response.headers["location"])
                continue
            if response.status_code != 200:
                await response.aread()
                error = _http_error(response)
                if error.kind == "invalid":  # a missing file is not the caller's fault
                    error = ProviderError("failed", error.message, status=error.status)
                raise error
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_VIDEO_BYTES:
                    raise ProviderError("failed", "the Veo video is larger than we accept")
            return bytes(data)
    raise ProviderError("unavailable", "too many redirects downloading the Veo video")


def _image_of(response: types.GenerateContentResponse) -> InlineFile:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        detail = feedback.block_reason_message or _enum(feedback.block_reason)
        raise ProviderError("rejected", f"Gemini blocked the prompt: {detail}")
    candidates = response.candidates or []
    texts: list[str] = []
    for candidate in candidates:
        for part in (candidate.content.parts if candidate.content else None) or []:
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                return InlineFile(blob.data, blob.mime_type or "image/png")
            if part.text:
                texts.append(part.text)
    reasons = {_enum(c.finish_reason) for c in candidates if c.finish_reason}
    blocked = any(r.blocked for c in candidates for r in c.safety_ratings or [])
    said = f": {' '.join(texts)[:300]}" if texts else ""
    if reasons & REFUSED or blocked:
        refused = ", ".join(sorted(reasons & REFUSED)) or "SAFETY"
        raise ProviderError("rejected", f"Gemini withheld the image ({refused}){said}")
    why = ", ".join(sorted(reasons)) or "no finish reason"
    raise ProviderError("failed", f"Gemini returned no image ({why}){said}")


def _api_error(exc: genai_errors.APIError) -> ProviderError:
    response = getattr(exc, "response", None)
    if isinstance(response, httpx.Response):
        return _http_error(response)
    return ProviderError(
        "unavailable" if exc.code >= 500 else "invalid",
        f"HTTP {exc.code} {exc.status}: {exc.message}",
        status=exc.code,
    )


def _http_error(response: httpx.Response) -> ProviderError:
    """Google's error body is {"error": {"code", "message", "status", "details"}}."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        error = {}
    message = (
        f"HTTP {response.status_code} {error.get('status', '')}: {error.get('message', '')}"
        if error
        else None
    )
    mapped = error_for_status(response, message)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    # A wrong key is a 400 INVALID_ARGUMENT whose ErrorInfo reason says so.
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return ProviderError("auth", mapped.message, status=mapped.status)
    if mapped.kind == "rate_limited" and mapped.retry_after is None:
        mapped.retry_after = _retry_delay(details)
    return mapped


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Google says when to come back in a RetryInfo detail ("retryDelay": "37s")."""
    for detail in details:
        if detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _operation_error(error: dict[str, Any]) -> ProviderError:
    """A finished operation's google.rpc.Status: 3 is INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED."""
    code, message = error.get("code"), str(error.get("message", ""))
    text = f"Veo operation failed (code {code}): {message}"
    if _POLICY_WORDS.search(message):
        return ProviderError("rejected", text)
    if code == 3:
        return ProviderError("invalid", text)
    return ProviderError("failed", text)


def _most_decisive(failures: list[BaseException]) -> BaseException:
    def rank(exc: BaseException) -> int:
        kind = exc.kind if isinstance(exc, ProviderError) else "unavailable"
        return _DECISIVE.index(kind)

    return min(failures, key=rank)


def _describe(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, ProviderError):
        return {"error": exc.kind, "message": exc.message}
    return {"error": "unavailable", "message": str(exc) or type(exc).__name__}


def _enum(value: object) -> str:
    return str(getattr(value, "value", value))
