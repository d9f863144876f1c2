"""kie.ai: one key for several model families, each with its own submit and record-info
endpoints (wire format from docs.kie.ai: "4o Image API", "Veo3.1 API", "Suno API",
"File Upload API"):

- 4o Image  ``POST /api/v1/gpt4o-image/generate``  poll ``GET /api/v1/gpt4o-image/record-info``
- Veo       ``POST /api/v1/veo/generate``          poll ``GET /api/v1/veo/record-info``
- Suno      ``POST /api/v1/generate``              poll ``GET /api/v1/generate/record-info``

kie answers HTTP 200 with an envelope ``{"code", "msg", "data"}`` whose ``code`` carries the
real status (a non-2xx HTTP status, from kie or a proxy, maps as usual); a submit's
``data.taskId`` is polled with ``?taskId=``. Auth is
``Authorization: Bearer <key>``. kie takes input images only as links, so data URLs in the
route's params are uploaded first through the Base64 File Upload API (temporary files, kept
three days). kie has no cancel call: a canceled job stops polling and the task runs out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mediagate.providers.base import (
    Call,
    Done,
    ErrorKind,
    OutputFile,
    ProviderError,
    Queued,
    RemoteFile,
    Running,
    error_for_status,
    retry_after_seconds,
)

# The upload API lives on its own host; an operator's own base URL (a proxy, a test server)
# serves it too.
_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"
# Suno's submit requires a callBackUrl although we poll; this one never resolves (RFC 2606).
# A route may set its own ``callBackUrl`` param instead.
_UNUSED_CALLBACK = "https://mediagate.invalid/kie-callback-unused"
# How kie words a safety refusal in msg / errorMessage (e.g. "Your prompt was flagged by
# Website as violating content policies", "Public error: unsafe image upload").
_POLICY = re.compile(
    r"content polic|violat|flagged|sensitive|unsafe|nsfw|moderation|inappropriate|prohibited",
    re.IGNORECASE,
)
# Envelope codes shared by the families (Suno's submit uses 429 for "insufficient credits"
# and 405/430 for "too many calls"; the others use 402 and 429).
_CODE_KINDS: dict[int, ErrorKind] = {
    400: "invalid",
    401: "auth",
    403: "auth",
    404: "invalid",
    405: "rate_limited",
    408: "timeout",
    413: "invalid",
    422: "invalid",
    429: "rate_limited",
    430: "rate_limited",
    455: "unavailable",
    500: "unavailable",
    501: "failed",
    505: "failed",
}
_SUNO_PROGRESS = {"PENDING": 0.1, "TEXT_SUCCESS": 0.3, "FIRST_SUCCESS": 0.7}


@dataclass(frozen=True)
class _Api:
    name: str
    submit: str
    record: str
    # The envelope code that means the kie account is out of credits.
    credits_code: int
    read: Callable[[Call, dict[str, Any]], Running | Done]
    sends_model: bool = False
    needs_callback: bool = False


class KieAdapter:
    name = "kie"
    default_base_url = "https://api.kie.ai"

    async def start(self, call: Call) -> Queued | Done:
        api = _api_for(call)
        body: dict[str, Any] = {"prompt": call.prompt}
        if api.sends_model:
            body["model"] = call.upstream
        if api.needs_callback:
            body["callBackUrl"] = _UNUSED_CALLBACK
        for field, value in call.params.items():
            body[field] = await _hosted(call, value)
        if body["prompt"] is None:
            del body["prompt"]
        response = await call.http.post(
            f"{call.credentials.base_url}{api.submit}", json=body, headers=_auth(call)
        )
        data = _data(response, api.name, api.credits_code)
        task_id = data.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("unavailable", f"kie accepted the {api.name} task without a taskId")
        return Queued(task_id)

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        api = _api_for(call)
        response = await call.http.get(
            f"{call.credentials.base_url}{api.record}",
            params={"taskId": task_id},
            headers=_auth(call),
        )
        return api.read(call, _data(response, api.name, api.credits_code))

    async def cancel(self, call: Call, task_id: str) -> None:
        """kie offers no way to stop a task."""


def _read_image(call: Call, data: dict[str, Any]) -> Running | Done:
    # status: GENERATING | SUCCESS | CREATE_TASK_FAILED | GENERATE_FAILED; progress "0.48".
    status = data.get("status")
    if data.get("successFlag") == 1 or status == "SUCCESS":
        return Done(_links(data, None), {"kie_status": "SUCCESS"})
    if data.get("successFlag") in (2, 3) or status in ("CREATE_TASK_FAILED", "GENERATE_FAILED"):
        raise _task_error(data)
    return Running(_fraction(data.get("progress")), "generating at kie")


def _read_video(call: Call, data: dict[str, Any]) -> Running | Done:
    # successFlag: 0 generating, 1 success, 2 failed, 3 generation failed.
    flag = data.get("successFlag")
    if flag == 1:
        return Done(_links(data, "video/mp4"), {"kie_status": "SUCCESS"})
    if flag in (2, 3):
        raise _task_error(data)
    return Running(None, "generating at kie")


def _read_music(call: Call, data: dict[str, Any]) -> Running | Done:
    # status: PENDING | TEXT_SUCCESS | FIRST_SUCCESS | SUCCESS | CREATE_TASK_FAILED |
    # GENERATE_AUDIO_FAILED | CALLBACK_EXCEPTION | SENSITIVE_WORD_ERROR.
    status = data.get("status")
    tracks = [
        track
        for track in (data.get("response") or {}).get("sunoData") or []
        if isinstance(track, dict) and isinstance(track.get("audioUrl"), str) and track["audioUrl"]
    ]
    # CALLBACK_EXCEPTION only says kie could not reach our (unused) callback: the tracks
    # may well be there.
    if status == "SUCCESS" or (status == "CALLBACK_EXCEPTION" and tracks):
        # Suno always makes two tracks; the job asked for ``count`` of them.
        wanted = int(call.units.get("count") or 1)
        files: list[OutputFile] = [
            RemoteFile(track["audioUrl"], "audio/mpeg") for track in tracks[:wanted]
        ]
        return Done(files, {"kie_status": status})
    if status == "SENSITIVE_WORD_ERROR":
        raise ProviderError("rejected", _reason(data, "the prompt has words Suno refuses"))
    if status in ("CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "CALLBACK_EXCEPTION"):
        raise _task_error(data)
    return Running(_SUNO_PROGRESS.get(str(status)), f"kie: {status or 'queued'}")


_IMAGE = _Api(
    "4o image",
    "/api/v1/gpt4o-image/generate",
    "/api/v1/gpt4o-image/record-info",
    credits_code=402,
    read=_read_image,
)
_VIDEO = _Api(
    "veo",
    "/api/v1/veo/generate",
    "/api/v1/veo/record-info",
    credits_code=402,
    read=_read_video,
    sends_model=True,
)
_MUSIC = _Api(
    "suno",
    "/api/v1/generate",
    "/api/v1/generate/record-info",
    credits_code=429,
    read=_read_music,
    sends_model=True,
    needs_callback=True,
)


def _api_for(call: Call) -> _Api:
    if call.product == "image" and call.upstream == "gpt4o-image":
        return _IMAGE
    if call.product == "video" and call.upstream.startswith("veo"):
        return _VIDEO
    if call.product == "music":
        return _MUSIC
    raise ProviderError("invalid", f"the kie adapter does not serve {call.upstream!r}")


def _auth(call: Call) -> dict[str, str]:
    return {"Authorization": f"Bearer {call.credentials.api_key}"}


async def _hosted(call: Call, value: Any) -> Any:
    """``value`` with every data URL replaced by a link kie can fetch."""
    if isinstance(value, str) and value.startswith("data:"):
        return await _upload(call, value)
    if isinstance(value, list):
        return [await _hosted(call, item) for item in value]
    return value


async def _upload(call: Call, data_url: str) -> str:
    base = call.credentials.base_url
    if base == KieAdapter.default_base_url:
        base = _UPLOAD_BASE_URL
    response = await call.http.post(
        f"{base}/api/file-base64-upload",
        json={"base64Data": data_url, "uploadPath": "mediagate"},
        headers=_auth(call),
    )
    link = _data(response, "file upload").get("downloadUrl")
    if not isinstance(link, str) or not link:
        raise ProviderError("unavailable", "kie stored the input image without a downloadUrl")
    return link


def _data(response: httpx.Response, what: str, credits_code: int = 402) -> dict[str, Any]:
    """The envelope's ``data``, or the ProviderError its ``code`` means."""
    if not response.is_success:
        raise error_for_status(response)
    try:
        envelope = response.json()
    except ValueError:
        raise ProviderError("unavailable", "kie answered with something other than JSON") from None
    if not isinstance(envelope, dict):
        raise ProviderError("unavailable", "kie answered without its code/msg/data envelope")
    code = envelope.get("code")
    if code == 200:
        data = envelope.get("data")
        return data if isinstance(data, dict) else {}
    msg = str(envelope.get("msg") or "no message")
    message = f"kie {what}: code {code}: {msg}"
    if not isinstance(code, int):
        raise ProviderError("unavailable", message)
    if code in (402, credits_code):
        raise ProviderError("auth", f"{message} (the kie account is out of credits)", status=code)
    kind = _CODE_KINDS.get(code, "unavailable" if code >= 500 else "invalid")
    if kind == "invalid" and _POLICY.search(msg):
        kind = "rejected"
    raise ProviderError(kind, message, status=code, retry_after=retry_after_seconds(response))


def _task_error(data: dict[str, Any]) -> ProviderError:
    """A failed task: a safety refusal, a bad request (errorCode 400), or a failure worth
    trying elsewhere."""
    reason = _reason(data, "no reason given")
    if _POLICY.search(reason):
        return ProviderError("rejected", reason)
    if data.get("errorCode") == 400:
        return ProviderError("invalid", f"kie refused the task: {reason}", status=400)
    return ProviderError("failed", f"kie could not run the task: {reason}")


def _reason(data: dict[str, Any], default: str) -> str:
    return str(data.get("errorMessage") or data.get("msg") or default)


def _links(data: dict[str, Any], mime: str | None) -> list[OutputFile]:
    urls = (data.get("response") or {}).get("resultUrls") or []
    return [RemoteFile(url, mime) for url in urls if isinstance(url, str) and url]


def _fraction(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
