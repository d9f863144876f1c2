"""Nothing is lost or sent twice: restarts, crashed dispatchers, competing dispatchers, and
redelivery on request (which wakes a running dispatcher through the bus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from mediagate.runtime import Runtime
from mediagate.webhooks.dispatcher import Dispatcher
from mediagate.webhooks.models import WebhookDelivery
from mediagate.webhooks.repository import WebhookRepository
from tests.webhooks.conftest import Receiver, Rig


async def _until(condition: Callable[[], bool], seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def _row(rig: Rig, job_id: str) -> WebhookDelivery:
    async with rig.runtime.db.reader() as s:
        row = await s.scalar(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id))
        assert row is not None
        return row


async def test_a_pending_delivery_survives_a_restart(rig: Rig, receiver: Receiver) -> None:
    receiver.answer(503)
    job_id = await rig.job(webhook_url=receiver.url)
    async with Dispatcher(rig.runtime) as first:
        assert await first.run_once() == 1
    assert (await _row(rig, job_id)).status == "pending"
    await rig.runtime.close()  # the process goes away

    fresh = Runtime.from_settings(rig.runtime.settings, clock=rig.clock)
    await fresh.start()
    try:
        rig.clock.advance(seconds=6)
        async with Dispatcher(fresh) as second:
            assert await second.run_once() == 1
    finally:
        await fresh.close()
    assert (await rig.delivery(job_id))["status"] == "succeeded"
    secret = await rig.default_secret()
    assert Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)


async def test_a_crashed_dispatchers_claim_is_retried_after_its_lease(
    rig: Rig, receiver: Receiver
) -> None:
    job_id = await rig.job(webhook_url=receiver.url)
    now = rig.clock.now()
    lease = now + timedelta(seconds=60)
    async with rig.runtime.db.writer() as s:  # a dispatcher claims, then dies
        (claimed,) = await WebhookRepository(s).claim_due(now, lease, 10)
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 0  # still leased
    rig.clock.advance(seconds=61)
    assert await dispatcher.run_once() == 1
    done = await rig.delivery(job_id)
    assert done["status"] == "succeeded" and len(done["attempt_log"]) == 1
    assert done["attempts"] == 2  # the lost claim counts towards the limit
    assert len(receiver.requests) == 1
    # Were the dead dispatcher to come back, its stale claim could not write.
    async with rig.runtime.db.writer() as s:
        assert not await WebhookRepository(s).finish_attempt(claimed.id, 1, lease, status="failed")
    assert (await rig.delivery(job_id))["status"] == "succeeded"


async def test_two_dispatchers_never_send_one_delivery_twice(rig: Rig, receiver: Receiver) -> None:
    job_ids = [await rig.job(webhook_url=receiver.url) for _ in range(3)]
    a, b = rig.dispatcher(), rig.dispatcher()
    made = await asyncio.gather(a.run_once(), b.run_once())
    assert sum(made) == 3
    assert len(receiver.requests) == 3
    for job_id in job_ids:
        assert (await rig.delivery(job_id))["status"] == "succeeded"


async def test_redeliver_sends_again_at_once_and_keeps_the_history(
    rig: Rig, receiver: Receiver
) -> None:
    job_id = await rig.job(webhook_url=receiver.url)
    stop = asyncio.Event()
    # A long poll: only the bus wake-up can explain a prompt delivery.
    running = asyncio.create_task(rig.dispatcher(poll_seconds=30).run_until(stop))
    try:
        await _until(lambda: len(receiver.requests) == 1)  # the first pass delivers it
        first = await rig.delivery(job_id)
        assert first["status"] == "succeeded"
        r = await rig.api.post(f"/v1/webhooks/deliveries/{first['id']}/redeliver")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["status"] == "pending" and r.json()["data"]["attempts"] == 0
        await _until(lambda: len(receiver.requests) == 2)
    finally:
        stop.set()
        await running
    assert len(receiver.requests) == 2
    again = await rig.delivery(job_id)
    assert again["status"] == "succeeded" and again["attempts"] == 1
    assert [a["attempt"] for a in again["attempt_log"]] == [1, 2]
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    missing = await rig.api.post("/v1/webhooks/deliveries/nope/redeliver")
    assert missing.status_code == 404
