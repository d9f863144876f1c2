"""``POST /v2/image/agent`` and the saved agents under ``/v2/agents``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mediagate.agents.models import SavedAgent
from mediagate.agents.service import SavedAgentService, run_settings
from mediagate.assets.uploads import (
    StoredImage,
    decode_base64_image,
    input_assets,
    input_links,
    parse_multipart,
    store_image,
    store_image_bytes,
)
from mediagate.catalog.service import CatalogService
from mediagate.db.base import MAX_BIGINT
from mediagate.errors import InvalidRequest, PayloadTooLarge
from mediagate.idempotency.service import fingerprint
from mediagate.jobs.follow import TERMINAL_EVENTS, wait_until_done
from mediagate.jobs.service import Accepted, SubmitRequest, submit_job
from mediagate.jobs.views import stream_link
from mediagate.net.guard import FetchRefused, check_url
from mediagate.runtime import Runtime
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep
from mediagate.surfaces.errors import SUBMIT_ERRORS
from mediagate.surfaces.image_agent import schemas as s
from mediagate.surfaces.native.envelope import Envelope, ok
from mediagate.surfaces.prefer import wait_seconds

router = APIRouter(tags=["image agent"])
SURFACE = "image_agent"
MODEL = "image-agent-1-preview"
MAX_JSON_BYTES = 64 * 1024 * 1024


def _is_image_field(name: str) -> bool:
    # The spec's curl sends `images.0` and `images.2.items.0`; browsers send `images` or
    # `images[]`. All of them are one array, in the order they arrive.
    return name == "images" or name.startswith(("images.", "images["))


def _validate(raw: dict[str, Any]) -> s.ImageAgentRequest:
    try:
        return s.ImageAgentRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _read_json(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise PayloadTooLarge(
                "JSON bodies are limited to 64 MB; send large images as multipart/form-data",
                field="images",
            )
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise InvalidRequest("body is nested too deeply", field="body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object", field="body")
    return data


async def _receive(
    request: Request, runtime: Runtime
) -> tuple[s.ImageAgentRequest, set[str], list[StoredImage], list[str]]:
    """Parse either encoding; store uploaded images; return remote image URLs separately."""
    content_type = request.headers.get("content-type", "")
    staging = runtime.settings.storage_dir / "staging"
    stored: list[StoredImage] = []
    remote: list[str] = []
    if content_type.startswith("multipart/form-data"):
        form = await parse_multipart(
            request.stream(),
            content_type,
            staging,
            is_file_field=_is_image_field,
            max_files=s.MAX_IMAGES,
            max_file_bytes=s.MAX_IMAGE_BYTES,
        )
        try:
            body = _validate(dict(form.fields))
            for staged in form.files:
                if staged.size == 0:
                    raise InvalidRequest(
                        f"image part {staged.field!r} is empty", field=staged.field
                    )
                stored.append(
                    await store_image(
                        staged.path, runtime.storage, max_pixels=runtime.settings.max_image_pixels
                    )
                )
        finally:
            form.cleanup()
        return body, set(form.fields), stored, remote
    if content_type.split(";")[0].strip() in ("application/json", ""):
        raw = await _read_json(request)
        body = _validate(raw)
        for url in body.images:
            if url.startswith("data:"):
                data = decode_base64_image(
                    url,
                    max_bytes=s.MAX_IMAGE_BYTES,
                    field="images",
                    limit_label="30 MB",
                    raw_allowed=False,
                )
                stored.append(
                    await store_image_bytes(
                        data, runtime.storage, staging, max_pixels=runtime.settings.max_image_pixels
                    )
                )
                continue
            try:
                check_url(url, allowed_schemes=("https", "http"), max_url_length=2000)
            except FetchRefused as exc:
                raise InvalidRequest(exc.message, field="images") from None
            remote.append(url)
        return body, set(raw), stored, remote
    raise InvalidRequest(
        "send multipart/form-data or application/json", code="unsupported_media_type", status=415
    )


def _accepted(job: Accepted, signing_key: bytes) -> dict[str, Any]:
    link = stream_link(job.job_id, job.workspace_id, signing_key)
    return {
        "job_id": job.job_id,
        "links": {"self": f"/v1/jobs/{job.job_id}", "stream": link},
    }


def _request_body_doc() -> dict[str, Any]:
    """The body for the OpenAPI document (the route reads the raw stream to bound memory)."""
    fields = s.ImageAgentRequest.model_json_schema()
    form = {
        **fields,
        "properties": {
            **fields["properties"],
            "images": {
                "type": "array",
                "maxItems": s.MAX_IMAGES,
                "items": {"type": "string", "format": "binary"},
                "description": "Up to 10 files of at most 30 MB; also accepted as images.N or "
                "images.N.items.M parts",
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": form},
                "application/json": {"schema": fields},
            },
        }
    }


@router.post(
    "/v2/image/agent",
    openapi_extra=_request_body_doc(),
    responses=SUBMIT_ERRORS,
    status_code=202,
    response_model=Envelope[s.JobAccepted],
    response_model_exclude_unset=True,
    summary="Run the image agent on instructions and optional images",
)
async def image_agent(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    prefer: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    principal.require("image_agent")
    wait = wait_seconds(prefer)
    body, explicit, stored, remote = await _receive(request, runtime)
    agent: SavedAgent | None = None
    if body.agent_id:
        async with runtime.db.reader() as session:
            agent = await SavedAgentService(session).get(principal.workspace_id, body.agent_id)
    settings = run_settings(body.model_dump(), explicit, agent)
    if (
        settings.allowed_tools
        and "generate" not in settings.allowed_tools
        and not (stored or remote)
    ):
        raise InvalidRequest(
            "this agent cannot generate, so it needs at least one image", field="images"
        )
    priced = CatalogService(runtime.catalog).price(
        MODEL,
        product=None,
        units={"count": settings.max_steps, "resolution": settings.resolution},
        input_count=len(stored) + len(remote),
        prompt=settings.instructions,
        require_prompt=True,
        price_version=None,
    )
    key = runtime.settings.signing_key
    assets = input_assets(principal.workspace_id, stored)
    input_urls = input_links(key, assets) + remote
    submitted = await submit_job(
        runtime,
        principal,
        SubmitRequest(
            surface=SURFACE,
            model=priced.model,
            units=priced.units,
            prompt=settings.instructions,
            input_urls=input_urls,
            input_assets=assets,
            webhook_url=body.webhook_url,
            extra={
                "aspect_ratio": settings.aspect_ratio,
                "agent_id": settings.agent_id,
                "allowed_tools": settings.allowed_tools,
            },
            idempotency_key=idempotency_key,
            status_code=202,
            fingerprint=fingerprint(
                {**body.model_dump(mode="json"), "uploads": [img.sha256 for img in stored]}
            ),
        ),
        lambda job: _accepted(job, key),
    )
    response.status_code = submitted.status_code
    if wait is None:
        return ok(submitted.body)
    job = await wait_until_done(runtime, submitted.job_id, wait)
    response.headers["Preference-Applied"] = f"wait={wait}"
    if job.status in TERMINAL_EVENTS:
        response.status_code = 200
    return ok({**submitted.body, "status": job.status})


def _agent(agent: SavedAgent) -> dict[str, Any]:
    return s.Agent(
        id=agent.id,
        name=agent.name,
        instructions=agent.instructions,
        aspect_ratio=agent.aspect_ratio,
        resolution=agent.resolution,
        max_steps=agent.max_steps,
        allowed_tools=agent.allowed_tools,
        created_at=agent.created_at.isoformat(),
        updated_at=agent.updated_at.isoformat(),
    ).model_dump()


@router.post(
    "/v2/agents",
    status_code=201,
    response_model=Envelope[s.Agent],
    summary="Save an agent: standing instructions and defaults for runs",
)
async def create_agent(
    body: s.AgentCreate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("image_agent")
    async with runtime.db.writer() as session:
        agent = await SavedAgentService(session).create(principal.workspace_id, body.model_dump())
    return ok(_agent(agent))


@router.get("/v2/agents", response_model=Envelope[s.AgentList], summary="List saved agents")
async def list_agents(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> dict[str, Any]:
    principal.require("image_agent")
    async with runtime.db.reader() as session:
        rows, total = await SavedAgentService(session).page(principal.workspace_id, limit, offset)
    return ok({"data": [_agent(a) for a in rows], "total": total, "limit": limit, "offset": offset})


@router.get("/v2/agents/{agent_id}", response_model=Envelope[s.Agent], summary="A saved agent")
async def get_agent(agent_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    principal.require("image_agent")
    async with runtime.db.reader() as session:
        agent = await SavedAgentService(session).get(principal.workspace_id, agent_id)
    return ok(_agent(agent))


@router.patch(
    "/v2/agents/{agent_id}",
    response_model=Envelope[s.Agent],
    summary="Change a saved agent (fields left out stay as they are)",
)
async def update_agent(
    agent_id: str, body: s.AgentUpdate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("image_agent")
    async with runtime.db.writer() as session:
        agent = await SavedAgentService(session).update(
            principal.workspace_id, agent_id, body.model_dump(exclude_unset=True)
        )
    return ok(_agent(agent))


@router.delete(
    "/v2/agents/{agent_id}", response_model=Envelope[dict[str, Any]], summary="Delete a saved agent"
)
async def delete_agent(
    agent_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("image_agent")
    async with runtime.db.writer() as session:
        await SavedAgentService(session).delete(principal.workspace_id, agent_id)
    return ok({"id": agent_id, "deleted": True})
