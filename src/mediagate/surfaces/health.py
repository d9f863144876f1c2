"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mediagate.surfaces.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    try:
        await runtime.db.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})
