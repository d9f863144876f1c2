"""How each surface shows a job outside a request (webhook bodies): a registry by surface.

A surface registers a function that renders a job, with its outputs and the public base URL,
in its own envelope. The native renderer is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mediagate.assets.models import Asset
from mediagate.assets.signing import signed_path, stream_token
from mediagate.jobs.models import Job

JobRenderer = Callable[[Job, Sequence[Asset], str, bytes, int], dict[str, Any]]
_RENDERERS: dict[str, JobRenderer] = {}


def register(surface: str, renderer: JobRenderer) -> None:
    _RENDERERS[surface] = renderer


def render(
    job: Job, assets: Sequence[Asset], base_url: str, signing_key: bytes, ttl: int
) -> dict[str, Any]:
    renderer = _RENDERERS.get(job.surface, native_envelope)
    return renderer(job, assets, base_url, signing_key, ttl)


STREAM_TOKEN_TTL = 900


def stream_link(job_id: str, workspace_id: str, signing_key: bytes) -> str:
    token = stream_token(signing_key, job_id, workspace_id, STREAM_TOKEN_TTL)
    return f"/v1/jobs/{job_id}/stream?token={token}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def native_job(
    job: Job, assets: Sequence[Asset], base_url: str, signing_key: bytes, ttl: int
) -> dict[str, Any]:
    """The job resource of ``GET /v1/jobs/{id}``."""
    return {
        "id": job.id,
        "object": "job",
        "status": job.status,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "model": job.model,
        "product": job.product,
        "surface": job.surface,
        "engine": job.engine,
        "mode": job.mode,
        "outputs": [
            {
                "id": a.id,
                "index": a.position,
                "url": base_url + signed_path(signing_key, a.id, ttl),
                "mime_type": a.mime_type,
                "bytes": a.bytes,
                "width": a.width,
                "height": a.height,
                "duration_seconds": a.duration_seconds,
                "sha256": a.sha256,
            }
            for a in assets
        ],
        "error": job.error,
        "credits": {
            "estimated": job.credits_estimated,
            "held": job.credits_held,
            "charged": job.credits_charged,
        },
        "price_version": job.price_version,
        "usage_event_id": job.usage_event_id,
        "provider_task_id": job.provider_task_id,
        "attempts": job.attempts,
        "correlation_id": job.correlation_id,
        "metadata": job.metadata_,
        "webhook_url": job.webhook_url,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "links": {
            "self": f"/v1/jobs/{job.id}",
            "stream": stream_link(job.id, job.workspace_id, signing_key),
        },
    }


def native_envelope(
    job: Job, assets: Sequence[Asset], base_url: str, signing_key: bytes, ttl: int
) -> dict[str, Any]:
    return {
        "code": 0,
        "message": "ok",
        "data": native_job(job, assets, base_url, signing_key, ttl),
        "errors": None,
    }
