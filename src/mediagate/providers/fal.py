"""fal.ai through its queue API (plain HTTP; the wire format of docs.fal.ai "Queue API"):

- submit   ``POST {base}/{endpoint}`` with the model's input as JSON -> ``{"request_id", ...}``
- status   ``GET  {base}/{app}/requests/{id}/status`` -> ``IN_QUEUE | IN_PROGRESS | COMPLETED``
- result   ``GET  {base}/{app}/requests/{id}`` -> the model's output JSON
- cancel   ``PUT  {base}/{app}/requests/{id}/cancel``

``{app}`` is the endpoint's first two path segments (``fal-ai/nano-banana/edit`` ->
``fal-ai/nano-banana``), as fal's own clients derive it. Auth is ``Authorization: Key <key>``.
The fields each model takes come from the catalog route's ``params``.
"""

from __future__ import annotations

from typing import Any

import httpx

from mediagate.providers.base import (
    Call,
    Done,
    OutputFile,
    ProviderError,
    Queued,
    RemoteFile,
    Running,
    error_for_status,
)

# fal's validation errors name a content-policy refusal with this type.
_POLICY_TYPES = {"content_policy_violation", "content_policy", "nsfw_content_detected"}


class FalAdapter:
    name = "fal"
    default_base_url = "https://queue.fal.run"

    async def start(self, call: Call) -> Queued | Done:
        body: dict[str, Any] = {"prompt": call.prompt, **call.params}
        if body["prompt"] is None:
            del body["prompt"]
        response = await call.http.post(
            f"{call.credentials.base_url}/{call.upstream}", json=body, headers=_auth(call)
        )
        _raise_for(response)
        request_id = response.json().get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError("unavailable", "fal accepted the request without a request_id")
        return Queued(request_id)

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        base = _request_url(call, task_id)
        response = await call.http.get(f"{base}/status", headers=_auth(call))
        _raise_for(response)
        state = response.json()
        status = state.get("status")
        if status == "IN_QUEUE":
            return Running(0.05, f"waiting in fal's queue (position {state.get('queue_position')})")
        if status == "IN_PROGRESS":
            return Running(None, "running at fal")
        if status != "COMPLETED":
            raise ProviderError("unavailable", f"fal reported an unknown status {status!r}")
        if state.get("error"):
            raise _task_error(str(state.get("error")), state.get("error_type"))
        result = await call.http.get(base, headers=_auth(call))
        _raise_for(result)
        return Done(_files(result.json()), {"fal_request_id": task_id})

    async def cancel(self, call: Call, task_id: str) -> None:
        response = await call.http.put(f"{_request_url(call, task_id)}/cancel", headers=_auth(call))
        # 400 means it already finished: nothing left to stop.
        if response.status_code not in (200, 202, 400):
            _raise_for(response)


def _auth(call: Call) -> dict[str, str]:
    return {"Authorization": f"Key {call.credentials.api_key}"}


def _request_url(call: Call, task_id: str) -> str:
    app = "/".join(call.upstream.split("/")[:2])
    return f"{call.credentials.base_url}/{app}/requests/{task_id}"


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    if response.status_code == 422:
        detail = _detail(response)
        policy = any(isinstance(d, dict) and d.get("type") in _POLICY_TYPES for d in detail)
        message = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        raise ProviderError(
            "rejected" if policy else "invalid", message or "fal refused the input", status=422
        )
    raise error_for_status(response)


def _detail(response: httpx.Response) -> list[Any]:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return []
    if isinstance(detail, list):
        return detail
    return [detail] if detail else []


def _task_error(message: str, error_type: Any) -> ProviderError:
    if error_type in _POLICY_TYPES:
        return ProviderError("rejected", message)
    return ProviderError("failed", f"fal could not run the request: {message}")


def _files(result: dict[str, Any]) -> list[OutputFile]:
    """Outputs across fal's model families: ``images`` lists, or one ``image``, ``video`` or
    ``audio`` (also ``audio_file``) file object with a ``url``."""
    found: list[Any] = list(result.get("images") or [])
    for key in ("image", "video", "audio", "audio_file"):
        if isinstance(result.get(key), dict):
            found.append(result[key])
    if result.get("has_nsfw_concepts") and all(result["has_nsfw_concepts"]):
        raise ProviderError("rejected", "fal's safety checker withheld every output")
    return [
        RemoteFile(item["url"], item.get("content_type"))
        for item in found
        if isinstance(item, dict) and isinstance(item.get("url"), str)
    ]
