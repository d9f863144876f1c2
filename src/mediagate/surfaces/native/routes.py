"""The agent credits API: generate, credits, models and jobs, in the native envelope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mediagate.catalog.service import CatalogService
from mediagate.credits.service import CreditService
from mediagate.idempotency.service import fingerprint
from mediagate.jobs.follow import TERMINAL_EVENTS, wait_until_done
from mediagate.jobs.service import Accepted, JobService, SubmitRequest, submit_job
from mediagate.plans.quotas import QuotaService, day_of, seconds_to_reset
from mediagate.surfaces.deps import (
    PrincipalDep,
    RuntimeDep,
    get_principal,
    get_runtime,
    read_json,
    reads_itself,
)
from mediagate.surfaces.errors import SUBMIT_ERRORS
from mediagate.surfaces.native import schemas as s
from mediagate.surfaces.native.envelope import Envelope, ok
from mediagate.surfaces.native.jobs import job_view
from mediagate.surfaces.prefer import wait_seconds

router = APIRouter(tags=["agent credits"])
SURFACE = "native"


def _generate_result(job: Accepted) -> dict[str, Any]:
    # The shape of s.GenerateResult, built directly: every submit renders one.
    return {
        "task_id": job.job_id,
        "provider_task_id": job.provider_task_id,
        "status": "pending",
        "usage_event_id": job.usage_event_id,
    }


@router.post(
    "/v1/generate",
    openapi_extra=reads_itself(s.GenerateRequest, headers=["prefer"]),
    responses=SUBMIT_ERRORS,
    response_model=Envelope[s.GenerateResult],
    response_model_exclude_unset=True,
    summary="Start a generation (idempotent on request_id; Prefer: wait=N to wait for it)",
)
async def generate(request: Request) -> JSONResponse:
    # The busiest route reads its own parameters (see deps.read_json), and answers in the
    # response model's shape without FastAPI validating it again.
    runtime = get_runtime(request)
    principal = await get_principal(request)
    principal.require("generate")
    body = await read_json(request, s.GenerateRequest)
    wait = wait_seconds(request.headers.get("prefer"))
    units = body.units.model_dump() if body.units else None
    priced = CatalogService(runtime.catalog).price(
        body.model,
        product=body.product,
        units=units,
        input_count=len(body.input_image_urls),
        prompt=body.prompt,
        require_prompt=True,
        price_version=body.price_version,
    )
    submitted = await submit_job(
        runtime,
        principal,
        SubmitRequest(
            surface=SURFACE,
            model=priced.model,
            units=priced.units,
            prompt=body.prompt,
            input_urls=body.input_image_urls,
            idempotency_key=body.request_id,
            webhook_url=body.webhook_url,
            fingerprint=fingerprint(body.model_dump(mode="json")),
        ),
        _generate_result,
    )
    if wait is None:
        return JSONResponse(ok(submitted.body))
    job = await wait_until_done(runtime, submitted.job_id, wait)
    async with runtime.db.reader() as session:
        outputs = await JobService(session, runtime).outputs(job)
    view = job_view(request, runtime, job, outputs)
    done = job.status in TERMINAL_EVENTS
    result = s.GenerateResult.model_validate(
        {**submitted.body, "status": job.status if done else "pending", "job": view}
    )
    return JSONResponse(
        ok(result.model_dump(mode="json", exclude_unset=True)),
        headers={"Preference-Applied": f"wait={wait}"},
    )


@router.post(
    "/v1/credits/estimate",
    openapi_extra=reads_itself(s.EstimateRequest),
    response_model=Envelope[s.Estimate],
    summary="Price a generation without running it",
)
async def estimate(request: Request) -> JSONResponse:
    # Called before every generate by agents; reads its own parameters like generate.
    runtime = get_runtime(request)
    principal = await get_principal(request)
    body = await read_json(request, s.EstimateRequest)
    priced = CatalogService(runtime.catalog).price(
        body.model,
        product=body.product,
        units=body.units.model_dump() if body.units else None,
        input_count=len(body.input_image_urls),
        prompt=None,
        require_prompt=False,
        price_version=body.price_version,
    )
    async with runtime.db.reader() as session:
        balance = await CreditService(session).balance(principal.workspace_id)
    return JSONResponse(
        ok(
            s.Estimate(
                model=priced.model.id,
                product=priced.model.product,
                units=priced.units.as_dict(),
                credits=priced.quote.credits,
                unit_credits=priced.quote.unit_credits,
                breakdown=priced.quote.breakdown,
                price_version=runtime.catalog.price_version,
                available=balance.available,
                can_proceed=balance.available >= priced.quote.credits,
            ).model_dump(mode="json")
        )
    )


@router.get(
    "/v1/credits/balance",
    response_model=Envelope[s.CreditBalance],
    summary="Credits granted, held by running jobs, and available",
)
async def credits_balance(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        balance = await CreditService(session).balance(principal.workspace_id)
    return ok({"balance": balance.balance, "held": balance.held, "available": balance.available})


@router.get(
    "/v1/models/list",
    response_model=Envelope[s.ModelList],
    summary="The catalog, with prices and whether this key can use each model",
)
async def models_list(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    models = [
        s.ModelInfo(
            id=m.id,
            product=m.product,
            credits=m.credits,
            notes=m.notes,
            inputs=list(m.inputs),
            resolutions=m.resolutions,
            durations=m.durations,
            available=runtime.engines.available(m, principal.mode),
        ).model_dump()
        for m in runtime.catalog.models
    ]
    return ok({"models": models, "price_version": runtime.catalog.price_version})


@router.get(
    "/v1/usage",
    response_model=Envelope[dict[str, Any]],
    summary="Today's use of the plan's daily quotas and the current minute's requests",
)
async def usage(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    now = runtime.clock.now()
    async with runtime.db.reader() as session:
        quotas = await QuotaService(session, runtime.catalog).today(
            principal.workspace_id, principal.plan, now
        )
    plan = runtime.catalog.plans[principal.plan]
    window = await runtime.limiter.peek(
        principal.api_key_id or principal.member_id, plan.requests_per_minute
    )
    return ok(
        {
            "plan": principal.plan,
            "day": day_of(now),
            "resets_in_seconds": seconds_to_reset(now),
            "daily": quotas,
            "minute": {
                "limit": window.limit,
                "remaining": window.remaining,
                "reset_at": int(window.reset_at),
            },
        }
    )
