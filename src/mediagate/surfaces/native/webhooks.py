"""Webhook endpoints, signing secrets and the delivery log: `/v1/webhooks`, scope `webhooks`."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from mediagate.auth.principal import Principal
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep
from mediagate.surfaces.native.envelope import Envelope, ok
from mediagate.webhooks import schemas as s
from mediagate.webhooks.service import WebhookService

router = APIRouter(tags=["webhooks"])
SCOPE = "webhooks"


def _workspace(principal: Principal) -> str:
    principal.require(SCOPE)
    return principal.workspace_id


def _endpoint(endpoint: Any, secret: str | None = None) -> dict[str, Any]:
    view = s.Endpoint.of(endpoint).model_dump()
    return view if secret is None else {**view, "secret": secret}


# The delivery log and the default secret come first: "/v1/webhooks/{id}" would match them.


@router.get(
    "/v1/webhooks/deliveries",
    response_model=Envelope[s.DeliveryList],
    summary="The delivery log, most recent first, with every attempt",
)
async def list_deliveries(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    job_id: Annotated[str | None, Query(max_length=36)] = None,
    endpoint_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["pending", "delivering", "succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.reader() as session:
        records = await WebhookService(session, runtime).deliveries(
            workspace_id, job_id=job_id, endpoint_id=endpoint_id, status=status, limit=limit
        )
    deliveries = [s.Delivery.of(r.delivery, r.event_type, r.attempts) for r in records]
    return ok(s.DeliveryList(deliveries=deliveries).model_dump())


@router.get(
    "/v1/webhooks/deliveries/{delivery_id}",
    response_model=Envelope[s.Delivery],
    summary="One delivery with its attempts",
)
async def get_delivery(
    delivery_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.reader() as session:
        r = await WebhookService(session, runtime).delivery(workspace_id, delivery_id)
    return ok(s.Delivery.of(r.delivery, r.event_type, r.attempts).model_dump())


@router.get(
    "/v1/webhooks/deliveries/{delivery_id}/payload",
    response_model=Envelope[s.DeliveryPayload],
    summary="The exact body a delivery sends",
)
async def get_delivery_payload(
    delivery_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.reader() as session:
        message = await WebhookService(session, runtime).message(workspace_id, delivery_id)
    return ok(
        s.DeliveryPayload(
            message_id=message.id,
            event_type=message.event_type,
            created_at=message.created_at.isoformat(),
            payload=json.loads(message.payload),
            body=message.payload,
        ).model_dump()
    )


@router.post(
    "/v1/webhooks/deliveries/{delivery_id}/redeliver",
    response_model=Envelope[s.Delivery],
    summary="Send a delivery again now, whatever became of it",
)
async def redeliver(
    delivery_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        r = await WebhookService(session, runtime).redeliver(workspace_id, delivery_id)
    return ok(s.Delivery.of(r.delivery, r.event_type, r.attempts).model_dump())


@router.get(
    "/v1/webhooks/default/secret",
    response_model=Envelope[s.SigningSecret],
    summary="The secret that signs deliveries to jobs' own webhook_url",
)
async def default_secret(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:  # made on first need
        secret = await WebhookService(session, runtime).default_secret(workspace_id)
    return ok({"secret": secret})


@router.post(
    "/v1/webhooks/default/rotate-secret",
    response_model=Envelope[s.SigningSecret],
    summary="Replace the default secret; the old one stops signing at once",
)
async def rotate_default_secret(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        secret = await WebhookService(session, runtime).rotate_default_secret(workspace_id)
    return ok({"secret": secret})


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=Envelope[s.EndpointWithSecret],
    summary="Subscribe a URL to job events; the signing secret is shown only here",
)
async def create_endpoint(
    body: s.EndpointCreate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        endpoint, secret = await WebhookService(session, runtime).create_endpoint(
            workspace_id, body
        )
    return ok(_endpoint(endpoint, secret))


@router.get(
    "/v1/webhooks",
    response_model=Envelope[s.EndpointList],
    summary="The workspace's webhook endpoints (without secrets)",
)
async def list_endpoints(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.reader() as session:
        endpoints = await WebhookService(session, runtime).endpoints(workspace_id)
    return ok({"endpoints": [_endpoint(e) for e in endpoints]})


@router.get(
    "/v1/webhooks/{endpoint_id}",
    response_model=Envelope[s.Endpoint],
    summary="One webhook endpoint",
)
async def get_endpoint(
    endpoint_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.reader() as session:
        endpoint = await WebhookService(session, runtime).endpoint(workspace_id, endpoint_id)
    return ok(_endpoint(endpoint))


@router.patch(
    "/v1/webhooks/{endpoint_id}",
    response_model=Envelope[s.Endpoint],
    summary="Change an endpoint; enabled=true re-enables one disabled by a 410",
)
async def update_endpoint(
    endpoint_id: str, body: s.EndpointUpdate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        endpoint = await WebhookService(session, runtime).update_endpoint(
            workspace_id, endpoint_id, body
        )
    return ok(_endpoint(endpoint))


@router.delete(
    "/v1/webhooks/{endpoint_id}",
    response_model=Envelope[s.Deleted],
    summary="Delete an endpoint; its delivery log stays",
)
async def delete_endpoint(
    endpoint_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        await WebhookService(session, runtime).delete_endpoint(workspace_id, endpoint_id)
    return ok({"id": endpoint_id, "deleted": True})


@router.post(
    "/v1/webhooks/{endpoint_id}/rotate-secret",
    response_model=Envelope[s.EndpointWithSecret],
    summary="Replace an endpoint's secret; the old one stops signing at once",
)
async def rotate_secret(
    endpoint_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    workspace_id = _workspace(principal)
    async with runtime.db.writer() as session:
        endpoint, secret = await WebhookService(session, runtime).rotate_secret(
            workspace_id, endpoint_id
        )
    return ok(_endpoint(endpoint, secret))
