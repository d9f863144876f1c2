"""The avatars API: generate (202), the job in this surface's shape, save, list, get."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from mediagate.assets.signing import signed_path
from mediagate.assets.uploads import (
    StoredImage,
    decode_base64_image,
    input_assets,
    input_links,
    store_image_bytes,
)
from mediagate.avatars import library
from mediagate.avatars.models import SavedAvatar
from mediagate.avatars.service import SavedAvatarService
from mediagate.catalog.service import CatalogService
from mediagate.db.base import MAX_BIGINT
from mediagate.errors import InvalidRequest
from mediagate.idempotency.service import fingerprint
from mediagate.images.intake import sniff_mime
from mediagate.jobs import views
from mediagate.jobs.models import Job
from mediagate.jobs.service import Accepted, JobService, SubmitRequest, submit_job
from mediagate.runtime import Runtime
from mediagate.surfaces.avatars import schemas as s
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep, base_url
from mediagate.surfaces.errors import SUBMIT_ERRORS

router = APIRouter(tags=["avatars"])
SURFACE = "avatars"
MODEL = "avatar-1"
REFERENCE_TYPES = {"image/jpeg", "image/png", "image/webp"}


async def _store_references(items: list[str], runtime: Runtime) -> list[StoredImage]:
    staging = runtime.settings.storage_dir / "staging"
    stored = []
    for index, item in enumerate(items):
        field = f"reference_images.{index}"
        data = decode_base64_image(
            item,
            max_bytes=s.MAX_REFERENCE_BYTES,
            field=field,
            limit_label="15 MB",
            raw_allowed=True,
        )
        if sniff_mime(data[:64]) not in REFERENCE_TYPES:
            raise InvalidRequest(
                "reference images must be JPEG, PNG or WebP (judged by content)", field=field
            )
        stored.append(
            await store_image_bytes(
                data, runtime.storage, staging, max_pixels=runtime.settings.max_image_pixels
            )
        )
    return stored


def _accepted(job: Accepted) -> dict[str, Any]:
    return s.AvatarAccepted(
        id=job.public_id or "", created=int(job.created_at.timestamp()), job_id=job.job_id
    ).model_dump()


@router.post(
    "/api/v1/avatars/generate",
    status_code=202,
    responses=SUBMIT_ERRORS,
    response_model=s.AvatarAccepted,
    summary="Queue an avatar generation job",
)
async def generate(
    body: s.AvatarGenerate,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    principal.require("avatars")
    if body.output.background == "transparent" and body.output.format == "jpeg":
        raise InvalidRequest(
            "a transparent background needs png or webp", field="output.background"
        )
    priced = CatalogService(runtime.catalog).price(
        MODEL,
        product=None,
        units=None,
        input_count=len(body.reference_images or []),
        prompt=body.prompt,
        require_prompt=True,
        price_version=None,
    )
    stored = await _store_references(body.reference_images or [], runtime)
    key = runtime.settings.signing_key
    assets = input_assets(principal.workspace_id, stored)
    # Library-assisted mode when no references came: the pick is recorded in the job.
    reference = None if stored else library.pick(body.prompt, dict(body.hints)).id
    submitted = await submit_job(
        runtime,
        principal,
        SubmitRequest(
            surface=SURFACE,
            model=priced.model,
            units=priced.units,
            prompt=body.prompt,
            input_urls=input_links(key, assets),
            input_assets=assets,
            public_id="req_" + secrets.token_hex(12),
            extra={
                "hints": body.hints,
                "output": body.output.model_dump(),
                "library_reference": reference,
                "input_mode": "library" if reference else "provided",
            },
            correlation_id=body.correlation_id,
            metadata=body.metadata,
            webhook_url=body.webhook_url,
            idempotency_key=idempotency_key,
            status_code=202,
            fingerprint=fingerprint(body.model_dump(mode="json")),
        ),
        _accepted,
    )
    return submitted.body


def avatar_job(job: Job, outputs: Any, root: str, key: bytes, ttl: int) -> dict[str, Any]:
    """The job as this surface shows it (also the body of its webhooks)."""
    view: dict[str, Any] = {
        "id": job.id,
        "object": "job",
        "status": job.status,
        "created": int(job.created_at.timestamp()),
        "completed": int(job.finished_at.timestamp()) if job.finished_at else None,
        "request_id": job.public_id,
        "correlation_id": job.correlation_id,
        "metadata": job.metadata_,
        "data": None,
        "error": job.error,
    }
    if job.status == "completed" and outputs:
        image = outputs[0]
        view["data"] = {
            "avatar": {
                "image_url": root + signed_path(key, image.id, ttl),
                "width": image.width,
                "height": image.height,
                "mime_type": image.mime_type,
            },
            "input_mode": job.params.get("input_mode"),
            "library_reference": job.params.get("library_reference"),
        }
    return view


views.register(SURFACE, avatar_job)


@router.get("/api/v1/jobs/{job_id}", summary="An avatar job; data.avatar.image_url when done")
async def get_job(
    job_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        service = JobService(session, runtime)
        job = await service.get(principal, job_id)
        outputs = await service.outputs(job)
    settings = runtime.settings
    return avatar_job(
        job, outputs, base_url(request), settings.signing_key, settings.asset_url_ttl_seconds
    )


def _avatar(avatar: SavedAvatar, request: Request, runtime: Runtime) -> dict[str, Any]:
    url = base_url(request) + signed_path(
        runtime.settings.signing_key, avatar.asset_id, runtime.settings.asset_url_ttl_seconds
    )
    return s.Avatar(
        id=avatar.id,
        name=avatar.name,
        image_url=url,
        job_id=avatar.job_id,
        created=int(avatar.created_at.timestamp()),
    ).model_dump()


@router.post(
    "/api/v1/avatars/save",
    response_model=s.Avatar,
    status_code=201,
    summary="Save a completed avatar for reuse",
)
async def save(
    body: s.AvatarSave, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("avatars")
    async with runtime.db.writer() as session:
        avatar = await SavedAvatarService(session).save(
            principal.workspace_id, body.job_id, body.name
        )
    return _avatar(avatar, request, runtime)


@router.get("/api/v1/avatars", response_model=s.AvatarList, summary="List saved avatars")
async def list_avatars(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
) -> dict[str, Any]:
    principal.require("avatars")
    async with runtime.db.reader() as session:
        rows, total = await SavedAvatarService(session).page(principal.workspace_id, limit, offset)
    return {
        "object": "list",
        "data": [_avatar(a, request, runtime) for a in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/api/v1/avatars/{avatar_id}", response_model=s.Avatar, summary="Get a saved avatar")
async def get_avatar(
    avatar_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("avatars")
    async with runtime.db.reader() as session:
        avatar = await SavedAvatarService(session).get(principal.workspace_id, avatar_id)
    return _avatar(avatar, request, runtime)
