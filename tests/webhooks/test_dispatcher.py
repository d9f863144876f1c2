"""The dispatcher against the real database and real receivers, with a clock the test moves:
the retry schedule, jitter, Retry-After, 410, deleted endpoints, timeouts and the SSRF guard."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from mediagate.webhooks import dispatcher as dispatcher_module
from mediagate.webhooks.dispatcher import (
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP,
    SCHEDULE,
    Dispatcher,
    Outcome,
)
from mediagate.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import Receiver, Rig

_MICRO = timedelta(microseconds=1)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _row(rig: Rig, job_id: str) -> WebhookDelivery:
    async with rig.runtime.db.reader() as s:
        row = await s.scalar(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id))
        assert row is not None
        return row


async def test_retries_follow_the_schedule_and_retry_after(rig: Rig, receiver: Receiver) -> None:
    receiver.answer(500, (429, {"Retry-After": "120"}), 200)
    job_id = await rig.job(webhook_url=receiver.url)
    dispatcher = rig.dispatcher()
    start = rig.clock.now()

    assert await dispatcher.run_once() == 1  # immediately: 500
    first = await rig.delivery(job_id)
    assert first["status"] == "pending" and first["last_status_code"] == 500
    wait = (_at(first["next_attempt_at"]) - start).total_seconds()
    assert 4.5 <= wait <= 5.5
    assert await dispatcher.run_once() == 0  # not due yet

    rig.clock.advance(seconds=wait)
    assert await dispatcher.run_once() == 1  # 429 with Retry-After: 120
    second = await rig.delivery(job_id)
    assert second["last_status_code"] == 429
    assert _at(second["next_attempt_at"]) - rig.clock.now() == timedelta(seconds=120)
    rig.clock.advance(seconds=119)
    assert await dispatcher.run_once() == 0
    rig.clock.advance(seconds=1)
    assert await dispatcher.run_once() == 1  # 200

    done = await rig.delivery(job_id)
    assert done["status"] == "succeeded" and done["next_attempt_at"] is None
    assert done["attempts"] == 3 and done["last_error"] is None
    log = done["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 429, 200]
    assert [a["attempt"] for a in log] == [1, 2, 3]
    assert [_at(a["created_at"]) for a in log] == [
        start,
        start + timedelta(seconds=wait),
        rig.clock.now(),
    ]

    requests = receiver.requests
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {done["message_id"]}
    assert [int(r.headers["webhook-timestamp"]) for r in requests] == [
        int(t.timestamp()) for t in (start, start + timedelta(seconds=wait), rig.clock.now())
    ]
    assert len({r.body for r in requests}) == 1
    secret = await rig.default_secret()
    for r in requests:
        assert Webhook(secret).verify(r.body, r.headers)["type"] == "job.completed"


async def test_a_delivery_gives_up_after_eight_attempts(rig: Rig, receiver: Receiver) -> None:
    receiver.answer(*[500] * 20)
    job_id = await rig.job(webhook_url=receiver.url)
    dispatcher = rig.dispatcher(rng=random.Random(3))
    waits = []
    for _ in range(MAX_ATTEMPTS):
        assert await dispatcher.run_once() == 1
        row = await _row(rig, job_id)
        if row.next_attempt_at is None:
            break
        waits.append((row.next_attempt_at - rig.clock.now()).total_seconds())
        rig.clock.advance(microseconds=(row.next_attempt_at - rig.clock.now()) // _MICRO)
    assert len(waits) == len(SCHEDULE)
    for wait, base in zip(waits, SCHEDULE, strict=True):
        assert base * 0.9 <= wait <= base * 1.1
    assert waits != list(SCHEDULE)  # jittered
    done = await rig.delivery(job_id)
    assert done["status"] == "failed" and done["attempts"] == MAX_ATTEMPTS
    assert len(done["attempt_log"]) == MAX_ATTEMPTS == len(receiver.requests)
    rig.clock.advance(hours=48)
    assert await dispatcher.run_once() == 0


async def test_retry_delays_jitter_within_ten_percent_and_honour_retry_after(rig: Rig) -> None:
    now = rig.clock.now()
    d = Dispatcher(rig.runtime, rng=random.Random(11))
    failed = Outcome(500, None, None, 1)
    for attempts, base in enumerate(SCHEDULE, start=1):
        draws = [d.retry_delay(attempts, failed, now) for _ in range(200)]
        seconds = [x.total_seconds() for x in draws if x is not None]
        assert len(seconds) == 200
        assert min(seconds) >= base * 0.9 and max(seconds) <= base * 1.1
        assert max(seconds) - min(seconds) > base * 0.1  # it does vary
    assert d.retry_delay(MAX_ATTEMPTS, failed, now) is None

    def asked(code: int, header: str | None) -> float | None:
        delay = d.retry_delay(1, Outcome(code, None, None, 1, header), now)
        return None if delay is None else delay.total_seconds()

    assert asked(429, "120") == 120
    assert asked(503, "0") == 0
    assert asked(503, format_datetime(now + timedelta(seconds=90), usegmt=True)) == pytest.approx(
        90, abs=1
    )
    assert asked(429, "99999999") == RETRY_AFTER_CAP
    assert 4.5 <= (asked(429, "soon") or 0) <= 5.5  # unreadable: the schedule
    assert 4.5 <= (asked(500, "120") or 0) <= 5.5  # only 429 and 503 may ask


async def test_410_disables_the_endpoint_until_it_is_enabled_again(
    rig: Rig, receiver: Receiver
) -> None:
    made = await rig.api.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": ["job.completed"]}
    )
    endpoint = made.json()["data"]
    receiver.answer(410)
    job_id = await rig.job()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    gone = await rig.delivery(job_id)
    assert gone["status"] == "failed" and gone["last_status_code"] == 410
    assert gone["next_attempt_at"] is None
    now_off = (await rig.api.get(f"/v1/webhooks/{endpoint['id']}")).json()["data"]
    assert now_off["enabled"] is False and "410" in now_off["disabled_reason"]

    rig.clock.advance(minutes=1)
    quiet = await rig.job()
    assert await rig.deliveries(job_id=quiet) == []  # a disabled endpoint gets nothing new
    assert await dispatcher.run_once() == 0

    r = await rig.api.post(f"/v1/webhooks/deliveries/{gone['id']}/redeliver")
    assert r.status_code == 409 and r.json()["message"] == "webhook_disabled"
    back = await rig.api.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True})
    assert back.json()["data"]["enabled"] is True
    assert back.json()["data"]["disabled_reason"] is None
    assert (
        await rig.api.post(f"/v1/webhooks/deliveries/{gone['id']}/redeliver")
    ).status_code == 200
    assert await dispatcher.run_once() == 1
    assert (await rig.delivery(job_id))["status"] == "succeeded"
    assert Webhook(endpoint["secret"]).verify(
        receiver.requests[-1].body, receiver.requests[-1].headers
    )


async def test_a_deleted_or_disabled_endpoint_ends_its_pending_deliveries(
    rig: Rig, receiver: Receiver
) -> None:
    a = (
        await rig.api.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["job.completed"]}
        )
    ).json()["data"]
    b = (
        await rig.api.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["job.completed"]}
        )
    ).json()["data"]
    receiver.answer(500, 500)
    job_id = await rig.job()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 2
    await rig.api.delete(f"/v1/webhooks/{a['id']}")
    await rig.api.patch(f"/v1/webhooks/{b['id']}", json={"enabled": False})
    rig.clock.advance(minutes=1)
    assert await dispatcher.run_once() == 0
    by_endpoint = {d["endpoint_id"]: d for d in await rig.deliveries(job_id=job_id)}
    assert by_endpoint[a["id"]]["status"] == "failed"
    assert by_endpoint[a["id"]]["last_error"] == "endpoint deleted"
    assert by_endpoint[b["id"]]["status"] == "failed"
    assert by_endpoint[b["id"]]["last_error"] == "endpoint disabled"
    assert all(len(d["attempt_log"]) == 1 for d in by_endpoint.values())
    assert len(receiver.requests) == 2


async def test_an_endpoint_follows_its_new_url_and_secret(
    rig: Rig, receiver: Receiver, receiver2: Receiver
) -> None:
    made = (
        await rig.api.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["job.completed"]}
        )
    ).json()["data"]
    receiver.answer(503)
    job_id = await rig.job()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    await rig.api.patch(f"/v1/webhooks/{made['id']}", json={"url": receiver2.url})
    rotated = (await rig.api.post(f"/v1/webhooks/{made['id']}/rotate-secret")).json()["data"]
    rig.clock.advance(seconds=10)
    assert await dispatcher.run_once() == 1
    (got,) = receiver2.requests
    assert Webhook(rotated["secret"]).verify(got.body, got.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(made["secret"]).verify(got.body, got.headers)
    assert (await rig.delivery(job_id))["url"] == receiver2.url


async def test_loopback_destinations_are_refused_unless_allowed(
    rig: Rig, receiver: Receiver
) -> None:
    rig.runtime.settings.webhook_allow_private = False
    port = receiver.url.split(":")[2].split("/")[0]
    jobs = [
        await rig.job(webhook_url=receiver.url),
        await rig.job(webhook_url=f"http://localhost:{port}/hook"),
    ]
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 2
    for job_id in jobs:
        refused = await rig.delivery(job_id)
        assert refused["status"] == "pending" and refused["last_status_code"] is None
        assert "private_address" in refused["last_error"]
        (attempt,) = refused["attempt_log"]
        assert attempt["status_code"] is None and "private_address" in attempt["error"]
        wait = _at(refused["next_attempt_at"]) - rig.clock.now()
        assert timedelta(seconds=4.5) <= wait <= timedelta(seconds=5.5)
    assert receiver.requests == []


async def test_a_slow_receiver_is_cut_off_and_retried(
    rig: Rig, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher_module, "SEND_TIMEOUT", 0.3)
    receiver.delay = 1.5
    job_id = await rig.job(webhook_url=receiver.url)
    assert await rig.dispatcher().run_once() == 1
    slow = await rig.delivery(job_id)
    assert slow["status"] == "pending" and slow["last_status_code"] is None
    assert "0.3 seconds" in slow["last_error"]
    assert slow["attempt_log"][0]["duration_ms"] < 1500
