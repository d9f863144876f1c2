"""Jobs announce themselves to real receivers over real HTTP, signed, on both databases."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import Server
from tests.webhooks.conftest import Receiver


def _generate(client: httpx.Client, **extra: Any) -> str:
    body = {"model": "nano-banana-pro", "prompt": "a kite", "request_id": str(uuid.uuid4())}
    r = client.post("/v1/generate", json={**body, **extra})
    assert r.status_code == 200, r.text
    return r.json()["data"]["task_id"]  # type: ignore[no-any-return]


def _settled(client: httpx.Client, count: int, timeout: float = 20, **query: str) -> list[Any]:
    """Wait until the log shows ``count`` deliveries, none of them still due."""
    deadline = time.monotonic() + timeout
    while True:
        log = client.get("/v1/webhooks/deliveries", params=query).json()["data"]["deliveries"]
        if len(log) >= count and all(d["status"] in ("succeeded", "failed") for d in log):
            return log  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries not settled: {log}")
        time.sleep(0.05)


def test_a_jobs_webhook_url_gets_exactly_one_signed_completion(
    hooks: Server, receiver: Receiver
) -> None:
    t = hooks.tenant()
    job_id = _generate(t.client, webhook_url=receiver.url)
    job = hooks.wait_job(t.client, job_id)
    (delivery,) = _settled(t.client, 1, job_id=job_id)
    time.sleep(0.3)  # a duplicate would have arrived by now
    (got,) = receiver.requests

    secret = t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
    body = Webhook(secret).verify(got.body, got.headers)
    assert got.headers["webhook-id"] == delivery["message_id"]
    assert got.headers["content-type"] == "application/json"
    assert body["type"] == "job.completed" and body["timestamp"]
    assert body["code"] == 0 and body["message"] == "ok" and body["errors"] is None
    data = body["data"]
    assert data["id"] == job_id and data["status"] == "completed"
    assert data["credits"] == job["credits"] == {"estimated": 20, "held": 20, "charged": 20}
    assert data["webhook_url"] == receiver.url and "metadata" in data
    assert "correlation_id" in data
    (output,) = data["outputs"]
    png = httpx.get(output["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"

    assert delivery["event_type"] == "job.completed" and delivery["endpoint_id"] is None
    assert delivery["status"] == "succeeded" and delivery["last_status_code"] == 200
    assert delivery["url"] == receiver.url and delivery["attempts"] == 1
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["response_body"] == "answer 200"
    payload = t.client.get(f"/v1/webhooks/deliveries/{delivery['id']}/payload").json()["data"]
    assert payload["body"].encode() == got.body and payload["payload"] == body
    assert payload["message_id"] == delivery["message_id"]
    one = t.client.get(f"/v1/webhooks/deliveries/{delivery['id']}").json()["data"]
    assert one == delivery


def test_endpoints_get_the_event_types_they_chose(
    hooks: Server, receiver: Receiver, receiver2: Receiver
) -> None:
    t = hooks.tenant()
    only = t.client.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": ["job.completed"]}
    ).json()["data"]
    every = t.client.post("/v1/webhooks", json={"url": receiver2.url}).json()["data"]
    job_id = _generate(t.client)
    hooks.wait_job(t.client, job_id)
    _settled(t.client, 1, endpoint_id=only["id"])
    _settled(t.client, 3, endpoint_id=every["id"])
    time.sleep(0.3)

    (completed,) = receiver.requests
    assert Webhook(only["secret"]).verify(completed.body, completed.headers)["type"] == (
        "job.completed"
    )
    types = sorted(
        Webhook(every["secret"]).verify(r.body, r.headers)["type"] for r in receiver2.requests
    )
    assert types == ["job.completed", "job.processing", "job.queued"]
    # Each event is its own message; a message keeps one id across destinations.
    ids = {r.headers["webhook-id"] for r in receiver2.requests}
    assert len(ids) == 3 and completed.headers["webhook-id"] in ids
    # The other endpoint's secret does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook(only["secret"]).verify(receiver2.requests[0].body, receiver2.requests[0].headers)


def test_a_loopback_receiver_is_refused_by_default(server: Server, receiver: Receiver) -> None:
    """The session server runs with the default settings: no private destinations."""
    t = server.tenant()
    job_id = _generate(t.client, webhook_url=receiver.url)
    server.wait_job(t.client, job_id)
    deadline = time.monotonic() + 20
    while True:
        (delivery,) = t.client.get("/v1/webhooks/deliveries", params={"job_id": job_id}).json()[
            "data"
        ]["deliveries"]
        if delivery["attempt_log"]:
            break
        assert time.monotonic() < deadline, delivery
        time.sleep(0.05)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "private_address" in delivery["last_error"]
    assert receiver.requests == []
