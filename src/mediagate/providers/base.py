"""The adapter protocol: what one hosted provider implements.

An adapter only speaks its provider's wire format. Everything shared — which route to try,
retries with backoff, fallback, circuit breakers, saving the task id, polling, copying outputs
into our storage, cancel — lives in ``providers.engine``. Adding a provider is one module that
implements ``Adapter`` plus catalog routes naming it.

Errors: an adapter raises ``ProviderError`` with a ``kind`` that tells the engine what to do:

==============  =============================================  ===================================
kind            when                                           the engine
==============  =============================================  ===================================
rate_limited    HTTP 429                                       retries after Retry-After, then
                                                               falls back; counts for the breaker
unavailable     HTTP 5xx, connection refused/reset              retries with backoff, then falls
                                                               back; counts for the breaker
timeout         the request or the provider's job timed out    as ``unavailable``
auth            401/403 with our key                            falls back (platform key) or fails
                                                               (BYOK key); counts for the breaker
rejected        a safety / content-policy refusal              fails the job: 422
                                                               ``provider_rejected``, nothing
                                                               charged; never trips the breaker
invalid         any other 4xx: the request itself is bad       fails the job; never trips the
                                                               breaker
failed          the provider ran the task and it failed        falls back to the next route
==============  =============================================  ===================================
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx

from mediagate.clock import utcnow

ErrorKind = Literal[
    "rate_limited", "unavailable", "timeout", "auth", "rejected", "invalid", "failed"
]

# Kinds that say nothing about the provider's health: the caller's own request was at fault.
CALLER_FAULTS: frozenset[str] = frozenset({"rejected", "invalid"})
# Kinds worth another try at the same provider before falling back.
TRANSIENT: frozenset[str] = frozenset({"rate_limited", "unavailable", "timeout"})


class ProviderError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Credentials:
    api_key: str
    base_url: str
    # The workspace's own key (BYOK): no fallback to other providers, no credits.
    byok: bool = False


@dataclass(frozen=True)
class InputImage:
    data: bytes
    mime_type: str

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class Call:
    """One request to one provider for one job, with our parameters already mapped onto the
    provider's names by the route's ``params`` (see ``providers.mapping``)."""

    job_id: str
    model_id: str
    product: str
    upstream: str
    prompt: str | None
    units: dict[str, Any]
    # The route's mapped parameters: provider field name -> value.
    params: dict[str, Any]
    inputs: list[InputImage]
    credentials: Credentials
    http: httpx.AsyncClient


@dataclass(frozen=True)
class RemoteFile:
    """An output the provider hosts; the engine downloads it at once (provider links expire)."""

    url: str
    mime_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InlineFile:
    data: bytes
    mime_type: str


OutputFile = RemoteFile | InlineFile


@dataclass(frozen=True)
class Done:
    files: list[OutputFile]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Queued:
    """The provider accepted the task; poll it with ``task_id``."""

    task_id: str


@dataclass(frozen=True)
class Running:
    progress: float | None = None
    message: str = "running at the provider"


class Adapter(Protocol):
    name: str
    # The base URL used when the operator sets none (MEDIAGATE_<NAME>_BASE_URL).
    default_base_url: str

    async def start(self, call: Call) -> Queued | Done:
        """Submit the task. Synchronous providers return ``Done``; queued ones ``Queued``."""
        ...

    async def poll(self, call: Call, task_id: str) -> Running | Done:
        """Check a queued task; raise ProviderError(kind="failed"/"rejected") if it failed."""
        ...

    async def cancel(self, call: Call, task_id: str) -> None:
        """Ask the provider to stop the task; a provider with no cancel call does nothing."""
        ...


def error_for_status(response: httpx.Response, message: str | None = None) -> ProviderError:
    """The ProviderError a non-2xx HTTP response means (adapters refine 400s they recognise
    as safety refusals into ``rejected``)."""
    status = response.status_code
    text = message or _excerpt(response)
    if status == 429:
        return ProviderError(
            "rate_limited", text, status=status, retry_after=retry_after_seconds(response)
        )
    if status >= 500:
        return ProviderError(
            "unavailable", text, status=status, retry_after=retry_after_seconds(response)
        )
    if status in (401, 403):
        return ProviderError("auth", text, status=status)
    if status == 408:
        return ProviderError("timeout", text, status=status)
    return ProviderError("invalid", text, status=status)


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - utcnow()).total_seconds())


def _excerpt(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:
        text = ""
    return f"HTTP {response.status_code}: {text[:300]}"
