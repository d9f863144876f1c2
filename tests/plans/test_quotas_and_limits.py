"""Plans over real HTTP: daily quotas at their edge, the UTC reset, per-minute limits and
their headers, and /v1/usage."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from mediagate.clock import FrozenClock
from tests.conftest import Server

REDIS_URL = os.environ.get("MEDIAGATE_TEST_REDIS_URL")


def _image(client: httpx.Client, count: int = 1) -> httpx.Response:
    return client.post(
        "/v1/generate",
        json={
            "model": "google/nano-banana",
            "prompt": "x",
            "request_id": str(uuid.uuid4()),
            "units": {"count": count},
        },
    )


def test_free_images_quota_edge_and_utc_reset(server: Server) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 23, 59, 0, tzinfo=UTC))
    with server.sibling(own_database=True, clock=clock) as app:
        t = app.tenant(plan="free", credits=10_000)
        assert _image(t.client, 8).status_code == 200
        over = _image(t.client, 4)  # 8 + 4 > 10
        assert over.status_code == 429
        assert over.json()["message"] == "quota_exceeded"
        assert "daily quota of 10 images on the free plan" in over.json()["data"]["detail"]
        assert over.headers["retry-after"] == "60"  # until 00:00 UTC
        assert _image(t.client, 2).status_code == 200  # the 9th and 10th image pass
        eleventh = _image(t.client, 1)
        assert eleventh.status_code == 429
        usage = t.client.get("/v1/usage").json()["data"]
        assert usage["daily"]["image"] == {"used": 10, "limit": 10}
        assert usage["daily"]["chat"] == {"used": 0, "limit": 50}
        clock.advance(seconds=61)  # the next UTC day
        assert _image(t.client, 1).status_code == 200
        assert t.client.get("/v1/usage").json()["data"]["daily"]["image"]["used"] == 1


def test_pro_and_enterprise_limits(server: Server) -> None:
    with server.sibling(own_database=True) as app:
        pro = app.tenant(plan="pro")
        usage = pro.client.get("/v1/usage").json()["data"]
        assert usage["daily"]["image"]["limit"] == 200
        assert usage["daily"]["video"]["limit"] == 50
        assert usage["daily"]["chat"]["limit"] is None
        enterprise = app.tenant(plan="enterprise")
        daily = enterprise.client.get("/v1/usage").json()["data"]["daily"]
        assert all(v["limit"] is None for v in daily.values())


def test_a_canceled_queued_job_gives_its_quota_back(server: Server) -> None:
    with server.sibling(own_database=True, embedded_workers=False) as app:
        t = app.tenant(plan="free", credits=10_000)
        job = _image(t.client, 8).json()["data"]["task_id"]
        assert _image(t.client, 4).status_code == 429
        assert t.client.post(f"/v1/jobs/{job}/cancel").status_code == 200
        assert t.client.get("/v1/usage").json()["data"]["daily"]["image"]["used"] == 0
        assert _image(t.client, 4).status_code == 200


def test_per_minute_limit_and_headers(server: Server) -> None:
    with server.sibling(own_database=True) as app:
        t = app.tenant(plan="free")  # 20 requests a minute
        remaining = []
        for _ in range(20):
            r = t.client.get("/v1/credits/balance")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "20"
            assert r.headers["ratelimit-policy"] == "20;w=60"
            assert r.headers["ratelimit"].startswith("limit=20, remaining=")
            assert int(r.headers["x-ratelimit-reset"]) > 1_700_000_000
            remaining.append(int(r.headers["x-ratelimit-remaining"]))
        assert remaining == list(range(19, -1, -1))
        blocked = t.client.get("/v1/credits/balance")
        assert blocked.status_code == 429
        assert blocked.json()["message"] == "rate_limited"
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert blocked.headers["x-ratelimit-remaining"] == "0"
        # Limits are per key: another key of the same plan is unaffected.
        other = app.tenant(plan="free")
        assert other.client.get("/v1/credits/balance").status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="Redis tests need MEDIAGATE_TEST_REDIS_URL")
def test_two_nodes_sharing_redis_share_each_keys_minute(server: Server) -> None:
    with server.sibling(redis_url=REDIS_URL) as one, server.sibling(redis_url=REDIS_URL) as two:
        t = one.tenant(plan="free")  # 20 requests a minute
        on_two = two.client(t.key)
        seen = []
        for n in range(19):
            r = (t.client if n % 2 else on_two).get("/v1/credits/balance")
            assert r.status_code == 200
            seen.append(int(r.headers["x-ratelimit-remaining"]))
        assert seen == list(range(19, 0, -1))
        # The 20th request, on node two, reads the window both nodes counted.
        usage = on_two.get("/v1/usage").json()["data"]["minute"]
        assert (usage["limit"], usage["remaining"]) == (20, 0)
        for client in (t.client, on_two):
            blocked = client.get("/v1/credits/balance")
            assert blocked.status_code == 429
            assert 1 <= int(blocked.headers["retry-after"]) <= 60
