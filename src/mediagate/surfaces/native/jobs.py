"""The job resource every surface links to: read it, cancel it, follow its event stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from mediagate.assets.signing import signed_path, verify_stream_token
from mediagate.auth.principal import Principal
from mediagate.errors import DomainError, NotFound, Unauthenticated
from mediagate.jobs import views
from mediagate.jobs.follow import follow
from mediagate.jobs.models import Job, JobEvent
from mediagate.jobs.repository import JobRepository
from mediagate.jobs.service import JobService
from mediagate.runtime import Runtime
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep, base_url, get_principal
from mediagate.surfaces.native import schemas as s
from mediagate.surfaces.native.envelope import Envelope, ok

router = APIRouter(tags=["jobs"])


def job_view(request: Request, runtime: Runtime, job: Job, outputs: Any) -> dict[str, Any]:
    return views.native_job(
        job,
        outputs,
        base_url(request),
        runtime.settings.signing_key,
        runtime.settings.asset_url_ttl_seconds,
    )


@router.get(
    "/v1/jobs/{job_id}",
    response_model=Envelope[s.JobView],
    summary="A job: status, progress, outputs (signed URLs), error and credits",
)
async def get_job(
    job_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        service = JobService(session, runtime)
        job = await service.get(principal, job_id)
        outputs = await service.outputs(job)
    return ok(job_view(request, runtime, job, outputs))


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=Envelope[s.JobView],
    summary="Cancel a job: at once when queued, cooperatively when running",
)
async def cancel_job(
    job_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.db.writer() as session:
        service = JobService(session, runtime)
        job = await service.cancel(principal, job_id)
        outputs = await service.outputs(job)
    return ok(job_view(request, runtime, job, outputs))


class _CountedStream(StreamingResponse):
    """Releases its slot in the per-process stream cap however the response ends."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _sse(event: JobEvent, data: dict[str, Any]) -> str:
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(data)}\n\n"


async def _stream_principal(
    request: Request, runtime: Runtime, job_id: str, token: str | None
) -> str:
    """The workspace allowed to follow the job: by Bearer header, or by the link's token."""
    if request.headers.get("authorization"):
        principal: Principal = await get_principal(request)
        async with runtime.db.reader() as session:
            job = await JobService(session, runtime).get(principal, job_id)
        return job.workspace_id
    if not token:
        raise Unauthenticated(
            "send a Bearer key or use the stream link with its token", code="missing_api_key"
        )
    async with runtime.db.reader() as session:
        found = await JobRepository(session).get(job_id)
    if found is None or not verify_stream_token(
        runtime.settings.signing_key, token, found.id, found.workspace_id
    ):
        # Same answer for a wrong token and a missing job: nothing to learn by guessing.
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return found.workspace_id


@router.get(
    "/v1/jobs/{job_id}/stream",
    response_class=StreamingResponse,
    summary="Server-sent events of a job; reconnect with Last-Event-ID to resume",
)
async def stream_job(
    job_id: str,
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    await _stream_principal(request, runtime, job_id, token)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    if not runtime.streams.acquire():
        raise DomainError(
            f"too many open streams on this server; retry shortly or poll /v1/jobs/{job_id}",
            code="too_many_streams",
            status=503,
        )
    settings = runtime.settings
    root = base_url(request)

    async def body() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        async for event in follow(
            runtime,
            job_id,
            after,
            poll_seconds=settings.stream_poll_seconds,
            idle_seconds=settings.stream_heartbeat_seconds,
        ):
            if event is None:
                yield ": keep-alive\n\n"
                continue
            data = {"job_id": job_id, **event.data}
            for key in ("asset_id", "preview_asset_id"):
                if key in data:
                    data[key.replace("asset_id", "url")] = root + signed_path(
                        settings.signing_key, data[key], settings.asset_url_ttl_seconds
                    )
            yield _sse(event, data)

    return _CountedStream(body(), runtime.streams.release)
