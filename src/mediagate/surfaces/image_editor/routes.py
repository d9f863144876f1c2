"""The image editor API: presigned uploads, synchronous /process, estimates, and its jobs.

/process is synchronous: it submits an ordinary job (so it is metered, retried, evented and
webhooked like any other) and waits for it, up to 300 seconds.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse

from mediagate.assets.models import Asset
from mediagate.assets.repository import AssetRepository
from mediagate.assets.signing import purpose_signature, signed_path, verify_purpose
from mediagate.assets.uploads import (
    INPUT_LINK_TTL,
    input_assets,
    store_image,
    store_image_bytes,
)
from mediagate.auth.principal import Principal
from mediagate.catalog.pricing import Units, quote
from mediagate.catalog.schemas import Model
from mediagate.credits.service import CreditService
from mediagate.db.base import MAX_BIGINT, new_id
from mediagate.editor.images import UPLOAD_WINDOW, EditorImageRepository, EditorImageService
from mediagate.editor.models import EditorImage
from mediagate.editor.presets import resolve_character, resolve_style
from mediagate.errors import (
    DomainError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from mediagate.idempotency.service import IdempotencyService, fingerprint
from mediagate.images.intake import sniff_mime
from mediagate.jobs.follow import wait_until_done
from mediagate.jobs.models import Job
from mediagate.jobs.repository import JobRepository
from mediagate.jobs.service import Accepted, SubmitRequest, claim_key, release_key
from mediagate.jobs.status import JobStatus
from mediagate.net.guard import FetchRefused, fetch
from mediagate.runtime import Runtime
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep, base_url
from mediagate.surfaces.errors import SUBMIT_ERRORS
from mediagate.surfaces.image_editor import schemas as s
from mediagate.surfaces.image_editor.access import require_editor

router = APIRouter(prefix="/api/v1/image-editor", tags=["image editor"])
SURFACE = "image_editor"
PROCESS_WAIT_SECONDS = 300
# An in-flight /process keeps its idempotency key for as long as it may run.
PROCESS_CLAIM = timedelta(seconds=PROCESS_WAIT_SECONDS + 60)
UPLOAD_PURPOSE = "editor-upload"
IMAGE_PURPOSE = "editor-image"
# Our statuses in this API's words.
STATUS_NAMES = {
    JobStatus.QUEUED: "pending",
    JobStatus.PROCESSING: "processing",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "failed",
}
STATUS_FILTER = {
    "pending": [JobStatus.QUEUED],
    "processing": [JobStatus.PROCESSING],
    "completed": [JobStatus.COMPLETED],
    "failed": [JobStatus.FAILED, JobStatus.CANCELED],
}
# Job failures that are the caller's or the provider's verdict, not our fault.
FAILURE_STATUS = {
    "provider_rejected": 422,
    "byok_not_configured": 422,
    "provider_auth_failed": 422,
    "invalid_input_image": 400,
    "provider_invalid": 400,
}


class JobFailed(DomainError):
    code, status = "job_failed", 500


# ----------------------------------------------------------------------------- uploads


@router.post("/upload-url", status_code=201, summary="Announce an image and get a PUT URL")
async def upload_url(
    body: s.UploadUrlRequest, principal: PrincipalDep, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.writer() as session:
        image = await EditorImageService(session).announce(
            principal.workspace_id,
            body.file_name,
            body.mime_type,
            body.file_size,
            runtime.clock.now(),
        )
    root = base_url(request)
    return s.success(
        s.UploadUrl(
            image_id=image.id,
            upload_url=_upload_target(runtime, image, root),
            public_url=root + _image_path(runtime, image.id),
            expires_in=int(UPLOAD_WINDOW.total_seconds()),
        ).model_dump()
    )


def _upload_target(runtime: Runtime, image: EditorImage, root: str) -> str:
    """Where the client PUTs the bytes. With local storage that is our own signed, expiring
    endpoint below; an object store would hand out its own presigned PUT URL here instead."""
    assert image.upload_expires_at is not None
    expires = int(image.upload_expires_at.timestamp())
    sig = purpose_signature(
        runtime.settings.signing_key, UPLOAD_PURPOSE, f"{image.id}:{image.mime_type}", expires
    )
    return f"{root}{router.prefix}/uploads/{image.id}?expires={expires}&signature={sig}"


def _image_path(runtime: Runtime, image_id: str) -> str:
    expires = int(runtime.clock.now().timestamp()) + runtime.settings.asset_url_ttl_seconds
    sig = purpose_signature(runtime.settings.signing_key, IMAGE_PURPOSE, image_id, expires)
    return f"{router.prefix}/images/{image_id}?expires={expires}&signature={sig}"


@router.put("/uploads/{image_id}", summary="Receive an announced image (the presigned PUT)")
async def put_upload(
    image_id: str,
    request: Request,
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        image = await session.get(EditorImage, image_id)
    refused = Forbidden("this upload URL is invalid or has expired", code="bad_upload_url")
    if image is None or image.origin != "upload":
        raise refused
    if not verify_purpose(
        runtime.settings.signing_key,
        UPLOAD_PURPOSE,
        f"{image.id}:{image.mime_type}",
        expires,
        signature,
        now=runtime.clock.now().timestamp(),
    ):
        raise refused
    declared = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if declared != image.mime_type:
        raise InvalidRequest(
            f"send the Content-Type declared for this upload ({image.mime_type})",
            code="content_type_mismatch",
        )
    limit = runtime.settings.max_input_image_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    staging = runtime.settings.storage_dir / "staging"
    await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=staging, prefix=".put-")
    path = Path(name)
    try:
        received = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                out.write(chunk)
        sniffed = sniff_mime(await asyncio.to_thread(_head, path))
        if sniffed != image.mime_type:
            raise InvalidRequest(
                f"the file is {sniffed or 'not an image we accept'}, but this upload was "
                f"announced as {image.mime_type}",
                code="content_mismatch",
            )
        stored = await store_image(
            path, runtime.storage, max_pixels=runtime.settings.max_image_pixels
        )
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    async with runtime.db.writer() as session:
        current = await session.get(EditorImage, image_id)
        assert current is not None
        asset = Asset(
            id=new_id(),
            workspace_id=current.workspace_id,
            role="upload",
            sha256=stored.sha256,
            mime_type=stored.mime_type,
            bytes=stored.size,
            width=stored.width,
            height=stored.height,
            created_at=runtime.clock.now(),
        )
        await EditorImageService(session).attach(current, asset)
    return s.success(
        {
            "image_id": image_id,
            "mime_type": stored.mime_type,
            "bytes": stored.size,
            "width": stored.width,
            "height": stored.height,
        }
    )


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(64)


def _too_large(limit: int) -> DomainError:
    return PayloadTooLarge(f"the file may be at most {limit} bytes", code="file_too_large")


@router.get("/images/{image_id}", summary="An editor image, through its signed link")
async def image_content(
    image_id: str,
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> FileResponse:
    if not verify_purpose(
        runtime.settings.signing_key,
        IMAGE_PURPOSE,
        image_id,
        expires,
        signature,
        now=runtime.clock.now().timestamp(),
    ):
        raise Forbidden("this link is invalid or has expired", code="bad_image_url")
    async with runtime.db.reader() as session:
        image = await session.get(EditorImage, image_id)
        asset = (
            await AssetRepository(session).get(image.asset_id) if image and image.asset_id else None
        )
    if asset is None:
        raise NotFound("this image has not been uploaded yet", code="image_not_found")
    return FileResponse(runtime.storage.path(asset.sha256), media_type=asset.mime_type)


# ----------------------------------------------------------------------------- routing


async def _route(
    principal: Principal, runtime: Runtime, tier: str, provider: str
) -> tuple[Model, str | None]:
    """The tier's catalog model and, for a BYOK call, the provider; enforces the tier matrix
    (a tier is offered by a provider when the tier's model has a route on it)."""
    if provider not in s.PROVIDERS:
        raise InvalidRequest(
            f"provider must be one of {', '.join(s.PROVIDERS)}",
            code="invalid_provider",
            field="provider",
        )
    model = runtime.catalog.model(s.TIER_MODELS[tier])
    assert model is not None, "the catalog lacks the image editor's tier models"
    if provider == "platform":
        return model, None
    if not any(route.provider == provider for route in model.routes):
        tiers = [t for t, m in s.TIER_MODELS.items() if _offers(runtime, m, provider)]
        raise InvalidRequest(
            f"model_tier {tier!r} is not available with provider {provider!r}; "
            f"it offers: {', '.join(tiers)}",
            code="tier_not_offered",
            field="model_tier",
        )
    plan = runtime.catalog.plans.get(principal.plan)
    if plan is None or not plan.byok:
        raise Unprocessable(
            f"the {principal.plan} plan does not include bring-your-own-key providers",
            code="byok_not_in_plan",
        )
    resolver = runtime.providers.byok_keys if runtime.providers else None
    if resolver is None or await resolver(principal.workspace_id, provider) is None:
        raise Unprocessable(
            f"this workspace has no enabled {provider} key; add one with "
            f"PUT /v1/provider-keys/{provider}",
            code="byok_not_configured",
        )
    return model, provider


def _offers(runtime: Runtime, model_id: str, provider: str) -> bool:
    model = runtime.catalog.model(model_id)
    return model is not None and any(r.provider == provider for r in model.routes)


def _units(has_source: bool) -> Units:
    # An edit keeps its source's shape; a new image is square at 1K.
    return Units(
        count=1, resolution="1K", aspect_ratio=None if has_source else "1:1", image_input=has_source
    )


@router.post("/estimate-credits", summary="What a /process call would cost at most")
async def estimate_credits(
    body: s.EstimateRequest, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    model, byok = await _route(principal, runtime, body.model_tier, body.provider)
    credits = 0 if byok else quote(model, _units(False)).credits
    async with runtime.db.reader() as session:
        available = (await CreditService(session).balance(principal.workspace_id)).available
    return s.success(
        s.Estimate(
            model_tier=body.model_tier,
            provider=body.provider,
            estimated_credits=credits,
            is_exact=False,
            available_credits=available,
            can_proceed=available >= credits,
            byok_skips_credits=byok is not None,
        ).model_dump()
    )


# ----------------------------------------------------------------------------- process


async def _fetch_source(runtime: Runtime, url: str, workspace_id: str) -> Asset:
    """Fetch an external image through the SSRF guard (HTTPS only, every redirect checked,
    size-limited while streaming), then sniff, bound and re-encode it like an upload."""
    settings = runtime.settings
    try:
        fetched = await fetch(
            url,
            max_bytes=settings.max_input_image_bytes,
            allow_private=settings.fetch_allow_private,
            trusted_networks=settings.fetch_allowed_networks,
            allowed_schemes=("https",),
            max_url_length=s.MAX_IMAGE_URL,
            ssl_context=settings.fetch_ssl_context,
        )
    except FetchRefused as exc:
        raise InvalidRequest(
            f"image_url refused: {exc}", code="image_url_refused", field="image_url"
        ) from exc
    stored = await store_image_bytes(
        fetched.content,
        runtime.storage,
        settings.storage_dir / "staging",
        max_pixels=settings.max_image_pixels,
    )
    return input_assets(workspace_id, [stored])[0]


async def _inputs(
    principal: Principal, runtime: Runtime, body: s.ProcessRequest
) -> tuple[str, list[str], list[Asset], dict[str, Any]]:
    """The prompt as presets shape it, links to every input image (the source first, then the
    presets' references), the newly fetched image to record with the job, and what was
    resolved, for the job row."""
    ws = principal.workspace_id
    prompt = body.prompt
    resolved: dict[str, Any] = {"image_id": None, "style_id": None, "character_id": None}
    known: list[Asset] = []
    references: list[str] = []
    async with runtime.db.reader() as session:
        if body.image_id:
            known.append(await EditorImageService(session).asset_of(ws, body.image_id))
            resolved["image_id"] = body.image_id
        if body.style_id:
            style = await resolve_style(session, ws, body.style_id)
            if style is None:
                raise NotFound(
                    f"no style {body.style_id!r} in this workspace", code="style_not_found"
                )
            prompt = style.apply(prompt)
            resolved["style_id"] = style.id
            if style.reference_asset_id:
                references.append(style.reference_asset_id)
        if body.character_id:
            character = await resolve_character(session, ws, body.character_id)
            if character is None:
                raise NotFound(
                    f"no character {body.character_id!r} in this workspace",
                    code="character_not_found",
                )
            detail = f": {character.description}" if character.description else ""
            prompt = f"{prompt}\nKeep the character {character.name}{detail}"
            resolved["character_id"] = character.id
            references.extend(character.reference_asset_ids)
        assets = AssetRepository(session)
        for asset_id in references:
            asset = await assets.get(asset_id)
            if asset is not None and asset.workspace_id == ws:
                known.append(asset)
    fetched: list[Asset] = []
    if not body.image_id and body.image_url:
        fetched.append(await _fetch_source(runtime, body.image_url, ws))
        resolved["image_url"] = body.image_url
    key = runtime.settings.signing_key
    links = [signed_path(key, a.id, INPUT_LINK_TTL) for a in fetched + known]
    return prompt, links, fetched, resolved


@router.post(
    "/process",
    status_code=201,
    responses={
        **SUBMIT_ERRORS,
        422: {
            "description": "The provider refused the input, or the workspace's own provider "
            "key is missing or was refused"
        },
    },
    summary="Generate or edit an image and wait for it",
)
async def process(
    body: s.ProcessRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    require_editor(principal)
    model, byok = await _route(principal, runtime, body.model_tier, body.provider)
    prompt, links, fetched, resolved = await _inputs(principal, runtime, body)
    req = SubmitRequest(
        surface=SURFACE,
        model=model,
        units=_units(bool(links)),
        prompt=prompt,
        input_urls=links,
        extra={
            "editor": {
                "prompt": body.prompt,
                "model_tier": body.model_tier,
                "provider": body.provider,
                **resolved,
            },
            **({"byok": byok} if byok else {}),
        },
        idempotency_key=idempotency_key,
        fingerprint=fingerprint(body.model_dump()),
        status_code=201,
        input_assets=fetched,
        engine=byok if byok and not principal.sandbox else None,
        free=byok is not None,
    )
    claim = None
    if idempotency_key:
        claim = await claim_key(runtime, principal, req, lease=PROCESS_CLAIM)
        if claim.replay is not None:
            return claim.replay.response
    try:
        submitted = await runtime.submits.submit(principal, req, _no_body, idempotent=False)
        job = await wait_until_done(runtime, submitted.job_id, PROCESS_WAIT_SECONDS)
        if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
            raise _failure(job)
        answer = s.success((await _rows(runtime, [job], request, full=False))[0])
        if claim is not None and claim.record_id is not None:
            async with runtime.db.writer() as session:
                await IdempotencyService(session).settle(
                    claim.record_id,
                    now=runtime.clock.now(),
                    status_code=201,
                    response=answer,
                    job_id=job.id,
                )
        return answer
    except BaseException:
        if claim is not None and claim.record_id is not None:
            await release_key(runtime, claim.record_id)
        raise


def _no_body(_job: Accepted) -> dict[str, Any]:
    return {}


def _failure(job: Job) -> DomainError:
    error = job.error or {}
    code = str(error.get("code") or "job_failed")
    message = str(error.get("message") or f"the job ended {job.status}")
    failed = JobFailed(message, code=code)
    failed.status = FAILURE_STATUS.get(code, 500)
    return failed


async def _rows(
    runtime: Runtime, jobs: Sequence[Job], request: Request, *, full: bool
) -> list[dict[str, Any]]:
    """Jobs as this API shows them. A completed job's output gets its image id the first time
    it is shown: one read for the page, and a write only for outputs not yet named."""
    done = [job.id for job in jobs if job.status == JobStatus.COMPLETED]
    async with runtime.db.reader() as session:
        outputs = await AssetRepository(session).first_outputs(done)
        named = await EditorImageRepository(session).results_of(list(outputs))
    if len(named) < len(outputs):
        async with runtime.db.writer() as session:
            image_ids = await EditorImageService(session).results_of(outputs)
    else:
        image_ids = {job_id: image.id for job_id, image in named.items()}
    root = base_url(request)
    settings = runtime.settings
    return [
        _row(
            job,
            result_url=root
            + signed_path(settings.signing_key, outputs[job.id].id, settings.asset_url_ttl_seconds)
            if job.id in outputs
            else None,
            result_image_id=image_ids.get(job.id),
            full=full,
        )
        for job in jobs
    ]


def _row(
    job: Job, *, result_url: str | None, result_image_id: str | None, full: bool
) -> dict[str, Any]:
    editor = job.params.get("editor") or {}
    byok = job.params.get("byok")
    data: dict[str, Any] = s.Processed(
        job_id=job.id,
        status=STATUS_NAMES.get(JobStatus(job.status), str(job.status)),
        result_url=result_url,
        result_image_id=result_image_id,
        model_tier=str(editor.get("model_tier") or ""),
        provider_used=byok or "system",
        credits_consumed=job.credits_charged,
        processing_ms=_millis(job.created_at, job.finished_at),
        created_at=s.stamp(job.created_at),
        completed_at=s.stamp(job.finished_at) if job.finished_at else None,
    ).model_dump()
    if full:
        data.update(
            prompt=editor.get("prompt"),
            provider=editor.get("provider") or "platform",
            image_id=editor.get("image_id"),
            image_url=editor.get("image_url"),
            style_id=editor.get("style_id"),
            character_id=editor.get("character_id"),
            error=(job.error or {}).get("message") if job.error else None,
        )
    return data


def _millis(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else int((end - start).total_seconds() * 1000)


# ----------------------------------------------------------------------------- jobs


@router.get("/jobs", summary="This workspace's editor jobs, most recent first")
async def list_jobs(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    request: Request,
    # The page times its size is an OFFSET: it must stay within BIGINT too.
    page: Annotated[int, Query(ge=1, le=MAX_BIGINT // s.MAX_PER_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=s.MAX_PER_PAGE)] = 50,
    status: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    require_editor(principal)
    if status is not None and status not in STATUS_FILTER:
        raise InvalidRequest(f"status must be one of {', '.join(STATUS_FILTER)}", field="status")
    async with runtime.db.reader() as session:
        jobs, total = await JobRepository(session).page_for_surface(
            principal.workspace_id,
            SURFACE,
            statuses=[str(x) for x in STATUS_FILTER[status]] if status else None,
            offset=(page - 1) * per_page,
            limit=per_page,
        )
    rows = await _rows(runtime, jobs, request, full=True)
    return s.success(
        {
            "jobs": rows,
            "pagination": {
                "page": page,
                "per_page": per_page,
                "total": total,
                "total_pages": (total + per_page - 1) // per_page,
            },
        }
    )


@router.get("/jobs/{job_id}", summary="One editor job, the full row")
async def get_job(
    job_id: str, principal: PrincipalDep, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.reader() as session:
        job = await JobRepository(session).get_in_workspace(principal.workspace_id, job_id)
    if job is None or job.surface != SURFACE:
        raise NotFound(f"no job {job_id!r} in this workspace", code="job_not_found")
    return s.success((await _rows(runtime, [job], request, full=True))[0])
