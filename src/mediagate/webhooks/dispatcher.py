"""The webhook dispatcher: claims due deliveries, signs and sends them, schedules retries.

A delivery is claimed in a short write transaction (status ``delivering`` plus a lease), sent
outside any transaction, and its outcome written in another. A dispatcher that dies between the
two leaves a ``delivering`` row whose lease runs out; any dispatcher then claims it again, so a
restart loses nothing (at-least-once: receivers deduplicate on ``webhook-id``).

Signatures follow Standard Webhooks: ``webhook-id`` is the message id (the same for every
attempt), ``webhook-timestamp`` the attempt's time, ``webhook-signature`` ``v1,<HMAC>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from mediagate.net.guard import FetchRefused, check_url, guarded_transport
from mediagate.webhooks.models import WebhookAttempt, WebhookDelivery
from mediagate.webhooks.repository import WebhookRepository
from mediagate.webhooks.schemas import MAX_URL
from mediagate.webhooks.secrets import SecretUnreadable, decrypt
from mediagate.webhooks.service import WebhookService

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

log = logging.getLogger("mediagate.webhooks")

# Seconds to wait before attempts 2..8; the first attempt is immediate.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.10
RETRY_AFTER_CAP = 36000.0
LEASE_SECONDS = 60
SEND_TIMEOUT = 15.0
SHUTDOWN_GRACE = 5.0
LOGGED_BODY_CHARS = 1000
USER_AGENT = "Mediagate-Webhooks/1"


@dataclass(frozen=True)
class _Claim:
    """A claimed delivery and what sending it needs; ``attempts`` + ``lease`` fence the write."""

    delivery_id: str
    attempts: int
    lease: datetime
    endpoint_id: str | None
    url: str
    message_id: str
    payload: str
    secret: str | None


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error when no answer came."""

    status_code: int | None
    error: str | None
    body: str | None
    duration_ms: int
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """A ``Retry-After`` header (delay in seconds or an HTTP date) as seconds from ``now``."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Dispatcher:
    """Delivers the webhook outbox.

    >>> await Dispatcher(runtime).run_until(stop)       # doctest: +SKIP
    >>> async with Dispatcher(runtime, transport=t) as d:  # doctest: +SKIP
    ...     await d.run_once()

    ``rng`` draws the retry jitter (seed it to make schedules reproducible).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        batch_size: int = 16,
        poll_seconds: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.rng = rng or random.Random()
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._sending = False
        self._claimed_last = 0

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            transport = self._transport or guarded_transport(
                allow_private=self.runtime.settings.webhook_allow_private, timeout=SEND_TIMEOUT
            )
            self._client = httpx.AsyncClient(
                transport=transport, timeout=SEND_TIMEOUT, follow_redirects=False, trust_env=False
            )
        return self._client

    # ------------------------------------------------------------------ loops

    async def run_until(self, stop: asyncio.Event) -> None:
        loop = asyncio.create_task(self._loop(stop))
        try:
            await stop.wait()
            if self._sending:  # let attempts in flight finish; cut ones are retried later
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(loop), SHUTDOWN_GRACE)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await self.aclose()

    async def _loop(self, stop: asyncio.Event) -> None:
        with self.runtime.bus.subscribe("webhooks") as woke:
            while not stop.is_set():
                try:
                    await self.run_once()
                    if self._claimed_last >= self.batch_size:
                        continue  # more may be due right now
                except Exception:  # a bug or a database hiccup must not kill the loop
                    log.exception("webhook dispatcher error")
                await woke.wait(self.poll_seconds)

    async def run_once(self) -> int:
        """Attempt every due delivery (up to ``batch_size``); returns the attempts made."""
        claims = await self._claim()
        self._claimed_last = len(claims)
        if not claims:
            return 0
        self._sending = True
        try:
            results = await asyncio.gather(
                *(self._attempt(claim) for claim in claims), return_exceptions=True
            )
        finally:
            self._sending = False
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, BaseException):
                # Unrecorded: the delivery is retried once its lease runs out.
                log.error("recording delivery %s failed: %r", claim.delivery_id, result)
        return len(claims)

    # ------------------------------------------------------------------ one attempt

    async def _claim(self) -> list[_Claim]:
        now = self.runtime.clock.now()
        lease = now + timedelta(seconds=LEASE_SECONDS)
        claims: list[_Claim] = []
        async with self.runtime.db.writer() as session:
            repo = WebhookRepository(session)
            for delivery in await repo.claim_due(now, lease, self.batch_size):
                claim = await self._prepare(session, repo, delivery, now)
                if claim is not None:
                    claims.append(claim)
        return claims

    async def _prepare(
        self,
        session: AsyncSession,
        repo: WebhookRepository,
        delivery: WebhookDelivery,
        now: datetime,
    ) -> _Claim | None:
        """Find the destination and secret; a deleted or disabled endpoint ends the delivery."""
        secret: str | None = None
        try:
            if delivery.endpoint_id is None:
                secret = await WebhookService(session, self.runtime).default_secret(
                    delivery.workspace_id
                )
            else:
                endpoint = await repo.endpoint(delivery.endpoint_id)
                if endpoint is None or not endpoint.enabled:
                    delivery.status = "failed"
                    delivery.attempts -= 1  # nothing was sent
                    delivery.last_error = (
                        f"endpoint {'deleted' if endpoint is None else 'disabled'}"
                    )
                    delivery.next_attempt_at = None
                    delivery.lease_expires_at = None
                    return None
                # Follow the endpoint: a corrected URL applies to retries already scheduled.
                delivery.url = endpoint.url
                secret = decrypt(self.runtime.settings, endpoint.secret_encrypted)
        except SecretUnreadable:
            log.error("webhook secret of delivery %s cannot be decrypted", delivery.id)
        message = await repo.message(delivery.message_id)
        assert message is not None  # deliveries cascade with their message
        return _Claim(
            delivery_id=delivery.id,
            attempts=delivery.attempts,
            lease=delivery.lease_expires_at or now,
            endpoint_id=delivery.endpoint_id,
            url=delivery.url,
            message_id=message.id,
            payload=message.payload,
            secret=secret,
        )

    async def _attempt(self, claim: _Claim) -> None:
        outcome = await self._send(claim)
        await self._record(claim, outcome)

    async def _send(self, claim: _Claim) -> Outcome:
        started = time.monotonic()

        def failed(error: str) -> Outcome:
            return Outcome(None, error[:500], None, int((time.monotonic() - started) * 1000))

        if claim.secret is None:
            return failed("the signing secret cannot be decrypted (was the server secret changed?)")
        now = self.runtime.clock.now()
        try:
            # The URL is re-checked on every attempt; the transport checks the address it
            # connects to, so a DNS change since the endpoint was saved cannot reach inside.
            check_url(claim.url, allowed_schemes=("https", "http"), max_url_length=MAX_URL)
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "accept-encoding": "identity",
                "webhook-id": claim.message_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(claim.secret).sign(
                    claim.message_id, now, claim.payload
                ),
            }
            # One deadline for the whole attempt: a receiver that drips its answer must not
            # hold the claim until its lease runs out (and another dispatcher sends again).
            async with (
                asyncio.timeout(SEND_TIMEOUT),
                self._http().stream(
                    "POST", claim.url, content=claim.payload.encode(), headers=headers
                ) as response,
            ):
                body = await _read_start(response)
        except TimeoutError:
            return failed(f"no complete answer within {SEND_TIMEOUT:g} seconds")
        except FetchRefused as exc:
            log.warning("webhook to %s refused: %s", claim.url, exc)
            return failed(f"refused: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        except Exception as exc:  # never leave a claim unrecorded over a surprise
            log.exception("webhook attempt to %s crashed", claim.url)
            return failed(f"internal error: {type(exc).__name__}")
        return Outcome(
            response.status_code,
            None,
            body,
            int((time.monotonic() - started) * 1000),
            response.headers.get("retry-after"),
        )

    async def _record(self, claim: _Claim, outcome: Outcome) -> None:
        now = self.runtime.clock.now()
        async with self.runtime.db.writer() as session:
            repo = WebhookRepository(session)
            await repo.add_attempt(
                WebhookAttempt(
                    delivery_id=claim.delivery_id,
                    attempt=claim.attempts,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    response_body=outcome.body,
                    duration_ms=outcome.duration_ms,
                    created_at=now,
                )
            )
            if not await repo.finish_attempt(
                claim.delivery_id,
                claim.attempts,
                claim.lease,
                **self._next_state(claim, outcome, now),
            ):
                log.warning(
                    "delivery %s was claimed again meanwhile; outcome logged only",
                    claim.delivery_id,
                )
                return
            if outcome.status_code == 410 and claim.endpoint_id is not None:
                await repo.disable_endpoint(
                    claim.endpoint_id, "the receiver answered 410 Gone", now
                )

    def _next_state(self, claim: _Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
        code = outcome.status_code
        state: dict[str, Any] = {
            "last_status_code": code,
            "last_error": outcome.error or (None if outcome.succeeded else f"HTTP {code}"),
            "lease_expires_at": None,
            "next_attempt_at": None,
            "updated_at": now,
        }
        if outcome.succeeded:
            return {**state, "status": "succeeded"}
        delay = None if code == 410 else self.retry_delay(claim.attempts, outcome, now)
        if delay is None:
            return {**state, "status": "failed"}
        return {**state, "status": "pending", "next_attempt_at": now + delay}

    def retry_delay(self, attempts: int, outcome: Outcome, now: datetime) -> timedelta | None:
        """When to try again after ``attempts`` failed ones; None once they are used up."""
        if attempts >= MAX_ATTEMPTS:
            return None
        if outcome.status_code in (429, 503) and outcome.retry_after:
            asked = retry_after_seconds(outcome.retry_after, now)
            if asked is not None:
                return timedelta(seconds=min(asked, RETRY_AFTER_CAP))
        base = SCHEDULE[attempts - 1]
        return timedelta(seconds=base * (1 + self.rng.uniform(-JITTER, JITTER)))


async def _read_start(response: httpx.Response) -> str:
    """The start of the response body, for the log; the rest is never read."""
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) >= 4 * LOGGED_BODY_CHARS:
            break
    return body.decode("utf-8", "replace")[:LOGGED_BODY_CHARS]
