"""The per-minute limiter on its own: windows in this process, and windows shared through Redis
by several processes (``MEDIAGATE_TEST_REDIS_URL``, e.g. redis://127.0.0.1:6379/0)."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from mediagate.plans.ratelimit import WINDOW_SECONDS, RequestLimiter

REDIS_URL = os.environ.get("MEDIAGATE_TEST_REDIS_URL")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_window_counts_to_its_limit_and_opens_again_a_minute_after_its_first_hit() -> None:
    clock = Clock()
    limiter = RequestLimiter(now=clock)
    first = await limiter.hit("key", 3)
    assert (first.remaining, first.reset_at, first.allowed) == (2, clock.now + 60, True)
    clock.now += 59.5
    assert [(w.remaining, w.allowed) for w in [await limiter.hit("key", 3) for _ in range(3)]] == [
        (1, True),
        (0, True),
        (0, False),  # one past the limit
    ]
    assert first.reset_at == (await limiter.peek("key", 3)).reset_at
    clock.now += 0.5  # the window opened by the first hit has ended
    again = await limiter.hit("key", 3)
    assert (again.remaining, again.reset_at, again.allowed) == (2, clock.now + 60, True)


async def test_peek_counts_nothing_and_keys_are_separate() -> None:
    clock = Clock()
    limiter = RequestLimiter(now=clock)
    idle = await limiter.peek("a", 5)
    assert (idle.remaining, idle.reset_at, idle.allowed) == (5, clock.now, True)
    await limiter.hit("a", 5)
    assert (await limiter.peek("a", 5)).remaining == 4
    assert (await limiter.peek("a", 5)).remaining == 4
    assert (await limiter.hit("b", 5)).remaining == 4


async def test_keys_gone_quiet_are_forgotten() -> None:
    clock = Clock()
    limiter = RequestLimiter(now=clock)
    for n in range(100):
        await limiter.hit(f"key-{n}", 10)
    assert len(limiter._local) == 100
    clock.now += WINDOW_SECONDS
    await limiter.hit("another", 10)
    assert len(limiter._local) == 1


@pytest.mark.skipif(not REDIS_URL, reason="Redis tests need MEDIAGATE_TEST_REDIS_URL")
async def test_nodes_sharing_redis_count_against_one_window() -> None:
    assert REDIS_URL
    key = f"test-{uuid.uuid4().hex}"
    one, two = RequestLimiter(REDIS_URL), RequestLimiter(REDIS_URL)
    before = time.time()
    assert (await one.hit(key, 3)).remaining == 2
    assert (await two.hit(key, 3)).remaining == 1
    assert (await one.peek(key, 3)).remaining == 1
    last = await two.hit(key, 3)
    assert (last.remaining, last.allowed) == (0, True)
    refused = await one.hit(key, 3)
    assert (refused.remaining, refused.allowed) == (0, False)
    assert before + 59 <= refused.reset_at <= time.time() + 60
    assert (await one.hit(f"{key}-other", 3)).remaining == 2
    await one.close()
    await two.close()
