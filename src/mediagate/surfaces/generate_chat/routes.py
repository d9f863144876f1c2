"""The generate & chat API: plain JSON objects; errors ``{"error", "code"}``."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse

from mediagate.assets.models import Asset
from mediagate.assets.signing import signed_path
from mediagate.catalog.service import CatalogService
from mediagate.chat.engines import ChatError, ChatRejected
from mediagate.chat.knowledge import routes_from_openapi
from mediagate.conversations.service import abandon_turn, begin_turn, chat_engine, end_turn
from mediagate.errors import DomainError, InvalidRequest, NotFound, Unavailable
from mediagate.idempotency.service import fingerprint
from mediagate.jobs import views
from mediagate.jobs.follow import wait_until_done
from mediagate.jobs.models import Job
from mediagate.jobs.repository import JobRepository
from mediagate.jobs.service import Accepted, JobService, SubmitRequest, submit_job
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep, base_url
from mediagate.surfaces.errors import SUBMIT_ERRORS
from mediagate.surfaces.generate_chat import schemas as s
from mediagate.surfaces.generate_chat.schemas import VIDEO_DURATIONS
from mediagate.surfaces.prefer import wait_seconds

router = APIRouter(tags=["generate & chat"])
SURFACE = "generate_chat"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id(now: datetime) -> str:
    return f"job_{int(now.timestamp() * 1000)}_{secrets.token_hex(3)}"


@router.post(
    "/api/generate",
    response_model=s.GenerateAccepted,
    responses=SUBMIT_ERRORS,
    summary="Generate an image or a video with the workspace's default model",
)
async def generate(
    body: s.GenerateRequest,
    response: Response,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    principal.require("generate")
    wait = wait_seconds(prefer)
    settings = runtime.settings
    units: dict[str, Any] = {"aspect_ratio": body.aspect_ratio}
    if body.type == "video":
        duration = body.duration if body.duration is not None else VIDEO_DURATIONS[0]
        if duration not in VIDEO_DURATIONS:
            raise InvalidRequest(
                f"duration must be one of {list(VIDEO_DURATIONS)} seconds", field="duration"
            )
        units["duration"] = duration
        model_id = settings.default_video_model
    else:
        if body.duration is not None:
            raise InvalidRequest("duration applies to videos only", field="duration")
        model_id = settings.default_image_model
    priced = CatalogService(runtime.catalog).price(
        model_id,
        product=body.type,
        units=units,
        input_count=0,
        prompt=body.prompt,
        require_prompt=True,
        price_version=None,
    )
    public_id = new_job_id(runtime.clock.now())
    submitted = await submit_job(
        runtime,
        principal,
        SubmitRequest(
            surface=SURFACE,
            model=priced.model,
            units=priced.units,
            prompt=body.prompt,
            public_id=public_id,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(body.model_dump(mode="json")),
        ),
        _accepted,
    )
    if wait is None:
        return submitted.body
    job = await wait_until_done(runtime, submitted.job_id, wait)
    response.headers["Preference-Applied"] = f"wait={wait}"
    return {**submitted.body, "status": job.status}


def _accepted(job: Accepted) -> dict[str, Any]:
    return {"jobId": job.public_id, "status": "queued"}


@router.get(
    "/api/status/{job_id}",
    response_model=s.JobStatus,
    response_model_exclude_none=True,
    summary="A job's status, and its result when done",
)
async def status(
    job_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        job = await JobRepository(session).by_public_id(principal.workspace_id, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found")
        outputs = await JobService(session, runtime).outputs(job)
    settings = runtime.settings
    return status_view(
        job, outputs, base_url(request), settings.signing_key, settings.asset_url_ttl_seconds
    )


def status_view(
    job: Job, outputs: Sequence[Asset], root: str, key: bytes, ttl: int
) -> dict[str, Any]:
    """The job as ``GET /api/status/:jobId`` shows it (also the body of its webhooks)."""
    view: dict[str, Any] = {
        "jobId": job.public_id,
        "status": job.status,
        "type": job.product,
        "progress": round(job.progress * 100),
        "createdAt": _iso(job.created_at),
        "completedAt": _iso(job.finished_at),
    }
    if job.status == "completed" and outputs:
        urls = [root + signed_path(key, a.id, ttl) for a in outputs]
        main = outputs[0]
        view["result"] = {
            "url": urls[0],
            "urls": urls,
            "mimeType": main.mime_type,
            "width": main.width,
            "height": main.height,
            "duration": main.duration_seconds,
            "model": job.model,
            **({"posterUrl": urls[1]} if job.product == "video" and len(urls) > 1 else {}),
        }
    if job.status == "failed" and job.error:
        view["error"] = job.error.get("message")
    return view


views.register(SURFACE, status_view)


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@router.post(
    "/api/chat",
    response_model=s.ChatReply,
    summary="Send a message; with Accept: text/event-stream the reply streams",
)
async def chat(
    body: s.ChatRequest, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> Any:
    principal.require("chat")
    engine = chat_engine(
        runtime, principal, routes_from_openapi(request.app.openapi()), base_url(request)
    )
    turn = await begin_turn(runtime, principal, body.message, body.conversation_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _stream(runtime, principal, engine, turn),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    try:
        reply = await engine.reply(turn.messages)
    except ChatError as exc:
        await abandon_turn(runtime, principal, turn)
        raise _as_domain(exc) from None
    await end_turn(runtime, turn, reply)
    return {"reply": reply, "timestamp": _timestamp(), "conversation_id": turn.conversation_id}


def _as_domain(exc: ChatError) -> DomainError:
    if isinstance(exc, ChatRejected):
        return DomainError(
            f"the chat model refused the request: {exc.message}", code="chat_rejected", status=502
        )
    return Unavailable(f"the chat model is unavailable: {exc.message}", code="chat_unavailable")


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def _stream(runtime: Any, principal: Any, engine: Any, turn: Any) -> AsyncIterator[str]:
    parts: list[str] = []
    try:
        async for delta in engine.stream(turn.messages):
            parts.append(delta)
            yield _event("delta", {"text": delta})
    except ChatError as exc:
        await abandon_turn(runtime, principal, turn)
        yield _event("error", {"error": _as_domain(exc).message, "code": 502})
        return
    reply = "".join(parts)
    await end_turn(runtime, turn, reply)
    yield _event(
        "done", {"reply": reply, "timestamp": _timestamp(), "conversation_id": turn.conversation_id}
    )
