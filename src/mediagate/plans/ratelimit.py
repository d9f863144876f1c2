"""Per-minute request limits per key, by plan: counted in this process by default, in Redis
through the ``limits`` library when ``MEDIAGATE_REDIS_URL`` is set (so every node shares the
window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from limits import RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate.errors import DomainError

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset_at: float  # unix time
    allowed: bool

    def headers(self) -> dict[str, str]:
        reset_in = max(0, int(self.reset_at - time.time() + 0.999))
        return {
            "RateLimit-Policy": f"{self.limit};w=60",
            "RateLimit": f"limit={self.limit}, remaining={self.remaining}, reset={reset_in}",
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at)),
            **({} if self.allowed else {"Retry-After": str(max(1, reset_in))}),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers()`` as ASGI header pairs (lower-case names)."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers().items()]


class RequestLimiter:
    """Fixed one-minute windows per key, opened by the key's first request.

    With ``redis_url`` the windows live in Redis through the ``limits`` library, so that every
    node counts against the same window. Without it they live in this process, in a dict: the
    ``limits`` in-memory storage starts an expiry task on every call, about 8 µs of a request,
    and a per-process counter needs none of what that storage offers (locks across tasks,
    moving windows)."""

    def __init__(
        self, redis_url: str | None = None, *, now: Callable[[], float] = time.time
    ) -> None:
        self._redis_url = redis_url
        self._pool: redis.asyncio.ConnectionPool | None = None
        self._strategy: FixedWindowRateLimiter | None = None
        self._local = _LocalWindows(now)

    @property
    def _limiter(self) -> FixedWindowRateLimiter:
        # Built on first use, inside the serving event loop: the storage starts background
        # tasks when it is created, and they must belong to that loop.
        if self._strategy is None:
            assert self._redis_url is not None
            # redis-py (a dependency already) rather than limits' default client, coredis,
            # on a pool of ours, which ``close`` can close.
            self._pool = redis.asyncio.ConnectionPool.from_url(self._redis_url)
            # limits documents connection_pool; its annotations only name scalar options.
            options: dict[str, Any] = {"implementation": "redispy", "connection_pool": self._pool}
            storage = storage_from_string(f"async+{self._redis_url}", **options)
            self._strategy = FixedWindowRateLimiter(storage)
        return self._strategy

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = self._strategy = None

    async def peek(self, key: str, per_minute: int) -> Window:
        if self._redis_url is None:
            count, reset_at = self._local.read(key)
            remaining = max(0, per_minute - count)
            return Window(per_minute, remaining, reset_at, remaining > 0)
        item = RateLimitItemPerMinute(per_minute)
        stats = await self._limiter.get_window_stats(item, "mediagate", key)
        return Window(per_minute, stats.remaining, stats.reset_time, stats.remaining > 0)

    async def hit(self, key: str, per_minute: int) -> Window:
        if self._redis_url is None:
            count, reset_at = self._local.hit(key)
        else:
            # The fixed window's hit and window stats in two storage calls instead of four:
            # the count the increment returns is what the stats would read back.
            item = RateLimitItemPerMinute(per_minute)
            storage = self._limiter.storage
            storage_key = item.key_for("mediagate", key)
            count = await storage.incr(storage_key, item.get_expiry())
            reset_at = await storage.get_expiry(storage_key)
        return Window(per_minute, max(0, per_minute - count), reset_at, count <= per_minute)


class _LocalWindows:
    """This process's windows: key -> [ends at (unix time), requests counted]."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._windows: dict[str, list[float]] = {}
        self._sweep_at = 0.0

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: str) -> tuple[int, float]:
        now = self._now()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            if now >= self._sweep_at:  # forget keys gone quiet, once a window
                self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
                self._sweep_at = now + WINDOW_SECONDS
            window = self._windows[key] = [now + WINDOW_SECONDS, 0]
        window[1] += 1
        return int(window[1]), window[0]

    def read(self, key: str) -> tuple[int, float]:
        now = self._now()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            return 0, now
        return int(window[1]), window[0]


class RateLimited(DomainError):
    code, status = "rate_limited", 429


class RateLimitHeaders:
    """ASGI middleware: puts the caller's rate-limit headers on every response, errors and
    streams included. The auth dependency leaves the window in ``scope["state"]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Create the state dict here: layers below may copy the scope, and a shallow copy
        # still shares this dict with us.
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                window = state.get(STATE_KEY)
                if window is not None and window.allowed:
                    # None of these names is set below us: appended without a scan.
                    message["headers"] = [*message.get("headers", ()), *window.raw_headers()]
                elif window is not None:  # a refusal: replaces the Retry-After it may carry
                    headers = MutableHeaders(scope=message)
                    for name, value in window.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


STATE_KEY = "mediagate_ratelimit"
