"""Machine-readable docs: the OpenAPI document and llms.txt, both built from the live app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from mediagate.surfaces.deps import RuntimeDep, base_url

router = APIRouter(tags=["docs"])


@router.get("/agent/openapi.json", include_in_schema=False)
async def agent_openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def _availability(runtime: Any, model: Any) -> str:
    if runtime.engines.available(model, "live"):
        return ""
    offline = "builtin" if runtime.engines.available(model, "sandbox") else "unavailable"
    return f" - live keys: no provider configured; sandbox keys: {offline}"


def build_llms_txt(request: Request, runtime: Any) -> str:
    catalog = runtime.catalog
    root = base_url(request)
    lines = [
        "# Mediagate",
        "",
        "> Self-hosted generative-media API. Authenticate with `Authorization: Bearer <key>`.",
        '> Responses use the envelope {"code":0,"message":"ok","data":...,"errors":null};',
        "> errors keep it with a non-zero code (the HTTP status) and a machine-readable message.",
        "",
        f"Base URL: {root}",
        f"OpenAPI: {root}/agent/openapi.json",
        f"Price version: {catalog.price_version}",
        "",
        "## Flow",
        "1. POST /v1/credits/estimate {model, units} -> credits, can_proceed",
        "2. POST /v1/generate {request_id, model, prompt, units} -> data.task_id",
        "   (reusing request_id with the same body returns the same task and charges nothing)",
        "3. GET /v1/jobs/{task_id} until status is completed or failed; outputs[].url",
        "",
        "## Endpoints",
    ]
    # The OpenAPI document is the live route table in a stable form.
    for path, operations in request.app.openapi()["paths"].items():
        for method, operation in operations.items():
            lines.append(f"- {method.upper()} {path}: {operation.get('summary', '')}")
    lines += ["", "## Models (credits per unit)"]
    for model in catalog.models:
        extras = []
        if model.resolution_credits:
            extras += [f"{r} = {c}" for r, c in model.resolution_credits.items()]
        if model.resolution_multipliers:
            extras += [f"{r} x{m}" for r, m in model.resolution_multipliers.items()]
        if model.image_to_video_multiplier:
            extras.append(f"image-to-video x{model.image_to_video_multiplier}")
        note = f" ({'; '.join(extras)})" if extras else ""
        lines.append(
            f"- {model.id} [{model.product}]: {model.credits}{note}{_availability(runtime, model)}"
        )
    lines += [
        "",
        "## Errors",
        "- 400 validation_error (errors: [{field, message}]) / invalid_units",
        "- 401 missing or invalid key; 403 missing scope; 404 not found (also other "
        "workspaces' objects)",
        "- 402 insufficient_credits {required, available, suggestion}",
        "- 409 request_id reused with another body (idempotency_key_mismatch) or while the "
        "first is still running (idempotency_key_in_use) / stale price_version",
        "- 429 rate_limited (per-minute limit of the plan) / quota_exceeded (daily quota); "
        "Retry-After says when",
        "- 503 model_unavailable (no engine configured for the model)",
        "",
        "Other surfaces: /v2 (image agent) uses the same envelope with data null and errors "
        "[{field, message}]; /api (generate & chat) answers plain objects and errors "
        '{"error": "...", "code": <status>}; /api/v1/avatars errors are '
        '{"error": {type, code, message, param}}; /api/v1/image-editor answers '
        '{"success": true, "data": ...} and errors {"success": false, "error": "..."}.',
        "",
    ]
    return "\n".join(lines)


@router.get("/llms.txt", response_class=PlainTextResponse, include_in_schema=False)
@router.get("/agent/llms.txt", response_class=PlainTextResponse, include_in_schema=False)
async def llms_txt(request: Request, runtime: RuntimeDep) -> str:
    return build_llms_txt(request, runtime)
