"""The notification bus: tells other tasks and processes that something changed.

Notifications are wake-ups, not data: the database stays the source of truth, so a lost
notification costs latency (listeners also poll), never correctness. A notification is sent
only if the transaction that made the change commits:

- ``LocalBus`` (SQLite, one process): delivered in-process after commit.
- ``PostgresBus``: ``pg_notify`` inside the transaction (PostgreSQL delivers it on commit) and a
  dedicated LISTEN connection that dispatches to local subscribers, in every process.
- ``RedisBus``: PUBLISH after commit, and a subscriber task in every process.

Topics are fixed (``events``, ``queue``, ``cancel``); a key narrows a subscription (a job id).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.db.database import after_commit

log = logging.getLogger("mediagate.bus")

TOPICS = ("events", "queue", "cancel", "webhooks")
_CHANNEL_PREFIX = "mediagate_"
Note = tuple[str, str, str]  # topic, key, payload


class Subscription:
    """Collects wake-ups for one (topic, key); ``wait`` returns when one arrived or on timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.payloads: list[str] = []

    def _deliver(self, payload: str) -> None:
        self.payloads.append(payload)
        self._event.set()

    async def wait(self, seconds: float | None = None) -> list[str]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()
        got, self.payloads = self.payloads, []
        return got


class LocalBus:
    """In-process delivery; the base of the cross-process buses."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, str | None], set[Subscription]] = defaultdict(set)

    async def notify(
        self, session: AsyncSession, topic: str, key: str = "", payload: str = ""
    ) -> None:
        assert topic in TOPICS, topic
        after_commit(session, lambda: self.announce([(topic, key, payload)]))

    def announce(self, notes: Sequence[Note]) -> None:
        """Send notifications of a change that has already committed."""
        for topic, key, payload in notes:
            self.dispatch(topic, key, payload)

    async def notify_many(self, session: AsyncSession, notes: Sequence[Note]) -> None:
        """Several ``(topic, key, payload)`` notifications from one transaction."""
        for topic, key, payload in notes:
            await self.notify(session, topic, key, payload)

    def dispatch(self, topic: str, key: str, payload: str) -> None:
        for target in (self._subs.get((topic, key), ()), self._subs.get((topic, None), ())):
            for sub in list(target):
                sub._deliver(payload)

    @contextlib.contextmanager
    def subscribe(self, topic: str, key: str | None = None) -> Any:
        sub = Subscription()
        self._subs[(topic, key)].add(sub)
        try:
            yield sub
        finally:
            self._subs[(topic, key)].discard(sub)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _encode(key: str, payload: str) -> str:
    return f"{key}|{payload}"


def _decode(raw: str) -> tuple[str, str]:
    key, _, payload = raw.partition("|")
    return key, payload


class _ListenerBus(LocalBus, abc.ABC):
    """A bus whose notifications arrive through a listener task that reconnects forever."""

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())
        # Give the listener a moment so that the first notifications are not missed; if the
        # backend is down we carry on and rely on polling until it is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the backend went away: retry with backoff
                log.warning("bus listener lost its connection (%s); retrying", exc)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    @abc.abstractmethod
    async def _listen(self) -> None:
        """Connect, subscribe, set ``connected`` and dispatch until the connection drops."""


class PostgresBus(_ListenerBus):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)

    async def notify(
        self, session: AsyncSession, topic: str, key: str = "", payload: str = ""
    ) -> None:
        assert topic in TOPICS, topic
        # Transactional: PostgreSQL delivers it when (and only if) the transaction commits.
        await session.execute(
            select(func.pg_notify(_CHANNEL_PREFIX + topic, _encode(key, payload)))
        )

    async def notify_many(self, session: AsyncSession, notes: Sequence[Note]) -> None:
        for topic, _, _ in notes:
            assert topic in TOPICS, topic
        if notes:
            await session.execute(
                text(
                    "SELECT pg_notify(c, p) FROM unnest(CAST(:channels AS text[]),"
                    " CAST(:payloads AS text[])) AS n(c, p)"
                ),
                {
                    "channels": [_CHANNEL_PREFIX + topic for topic, _, _ in notes],
                    "payloads": [_encode(key, payload) for _, key, payload in notes],
                },
            )

    async def _listen(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            for topic in TOPICS:
                await conn.add_listener(
                    _CHANNEL_PREFIX + topic,
                    lambda _c, _pid, channel, raw: self.dispatch(
                        channel.removeprefix(_CHANNEL_PREFIX), *_decode(raw)
                    ),
                )
            self.connected.set()
            await lost.wait()
        finally:
            if not conn.is_closed():
                await conn.close()


class RedisBus(_ListenerBus):
    def __init__(self, redis_url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(redis_url)

    def announce(self, notes: Sequence[Note]) -> None:
        loop = asyncio.get_running_loop()
        for topic, key, payload in notes:
            assert topic in TOPICS, topic
            task = loop.create_task(self._publish(_CHANNEL_PREFIX + topic, _encode(key, payload)))
            task.add_done_callback(_log_failure)

    async def _publish(self, channel: str, message: str) -> None:
        await self._redis.publish(channel, message)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(*(_CHANNEL_PREFIX + t for t in TOPICS))
            self.connected.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                channel = message["channel"].decode().removeprefix(_CHANNEL_PREFIX)
                self.dispatch(channel, *_decode(message["data"].decode()))
        finally:
            await pubsub.aclose()

    async def stop(self) -> None:
        await super().stop()
        await self._redis.aclose()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("bus publish failed: %s", task.exception())


async def iterate(sub: Subscription, poll_seconds: float) -> AsyncIterator[list[str]]:
    """Yield on every wake-up, and at least every ``poll_seconds`` (the polling fallback)."""
    while True:
        yield await sub.wait(poll_seconds)


def bus_for(database_url: str, redis_url: str | None) -> LocalBus:
    if redis_url:
        return RedisBus(redis_url)
    if database_url.startswith("postgresql"):
        return PostgresBus(database_url)
    return LocalBus()
