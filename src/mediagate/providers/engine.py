"""Runs a job on hosted providers: the model's routes in order, each with retries, behind a
circuit breaker, falling back to the next route; a submitted task's id is saved at once so a
resumed job polls it instead of paying twice; outputs are copied into our storage at once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from PIL import Image

from mediagate.catalog.schemas import Model, Route
from mediagate.clock import Clock
from mediagate.config import Settings
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.net.guard import FetchRefused, fetch
from mediagate.providers.base import (
    CALLER_FAULTS,
    TRANSIENT,
    Adapter,
    Call,
    Credentials,
    Done,
    InlineFile,
    InputImage,
    OutputFile,
    ProviderError,
    Queued,
    RemoteFile,
)
from mediagate.providers.breaker import Breakers
from mediagate.providers.mapping import map_params, values_for

log = logging.getLogger("mediagate.providers")
T = TypeVar("T")


class KeyResolver(Protocol):
    """Finds a workspace's own key for a provider (BYOK); None when not set or disabled."""

    async def __call__(self, workspace_id: str, provider: str) -> str | None: ...


@dataclass(frozen=True)
class _Attempt:
    route: Route
    credentials: Credentials


class ProviderRouter:
    """Shared by the per-provider engines: adapters, credentials, breakers, HTTP."""

    def __init__(
        self,
        settings: Settings,
        adapters: list[Adapter],
        *,
        clock: Clock,
        byok_keys: KeyResolver | None = None,
    ) -> None:
        self.settings = settings
        self.adapters = {a.name: a for a in adapters}
        self.clock = clock
        self.byok_keys = byok_keys
        self.breakers = Breakers(
            settings.provider_breaker_failures, settings.provider_breaker_cooldown_seconds, clock
        )
        self._http: httpx.AsyncClient | None = None

    def engines(self) -> list[ProviderEngine]:
        return [ProviderEngine(name, self) for name in self.adapters]

    def configured(self, provider: str) -> bool:
        return provider in self.adapters and bool(
            self.settings.provider_setting(provider, "api_key")
        )

    def base_url(self, provider: str) -> str:
        own = self.settings.provider_setting(provider, "base_url")
        return (own or self.adapters[provider].default_base_url).rstrip("/")

    @property
    def http(self) -> httpx.AsyncClient:
        # Provider APIs are operator-configured, so they are not SSRF-guarded (a test or an
        # on-premises gateway may well be private); what users send us never reaches here.
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.provider_request_timeout_seconds, trust_env=False
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run(self, first: str, job: JobSpec, ctx: RunContext) -> EngineResult:
        attempts = await self._attempts(first, job)
        resume = _split_task_id(job.provider_task_id)
        inputs = [await self._input(url, ctx) for url in job.input_urls]
        tried: list[dict[str, Any]] = []
        last: ProviderError | None = None
        for attempt in attempts:
            provider = attempt.route.provider
            owner = job.workspace_id if attempt.credentials.byok else "platform"
            breaker = self.breakers.get(provider, owner)
            task_id = resume[1] if resume and resume[0] == provider else None
            if task_id is None and not breaker.allow():
                tried.append({"provider": provider, "error": "circuit_open"})
                continue
            call = self._call(attempt, job, inputs)
            try:
                result = await self._run_route(call, provider, task_id, job, ctx)
            except ProviderError as exc:
                if exc.kind in CALLER_FAULTS:
                    breaker.success()  # it answered: the provider itself is healthy
                    raise _caller_fault(provider, exc) from exc
                breaker.failure()
                log.warning("provider %s failed job %s: %s", provider, job.id, exc.message)
                tried.append({"provider": provider, "error": exc.kind, "message": exc.message})
                last = exc
                if attempt.credentials.byok:
                    break
                continue
            breaker.success()
            result.info["fallbacks"] = tried
            return result
        detail = (
            "; ".join(
                f"{t['provider']}: {t['error']}"
                + (f" ({t['message']})" if t.get("message") else "")
                for t in tried
            )
            or "no route"
        )
        code = "provider_auth_failed" if last and last.kind == "auth" else "provider_unavailable"
        raise EngineError(f"every provider route failed ({detail})", code=code)

    async def _attempts(self, first: str, job: JobSpec) -> list[_Attempt]:
        routes = job.model.routes
        start = next((i for i, r in enumerate(routes) if r.provider == first), 0)
        byok = job.params.get("byok")
        if byok:
            route = next((r for r in routes if r.provider == byok), None)
            key = await self.byok_keys(job.workspace_id, byok) if self.byok_keys else None
            if route is None or key is None:
                raise EngineError(
                    f"the workspace's {byok} key is not configured and enabled",
                    code="byok_not_configured",
                )
            return [_Attempt(route, Credentials(key, self.base_url(byok), byok=True))]
        found: list[_Attempt] = []
        for route in routes[start:]:
            key = self.settings.provider_setting(route.provider, "api_key")
            if not route.delivers(job.units.get("resolution")):
                continue
            if route.provider in self.adapters and key:
                found.append(_Attempt(route, Credentials(key, self.base_url(route.provider))))
        if not found:
            resolution = job.units.get("resolution")
            raise EngineError(
                f"no configured provider delivers {job.model.id}"
                + (f" at {resolution}" if resolution else ""),
                code="unavailable",
            )
        return found

    def _call(self, attempt: _Attempt, job: JobSpec, inputs: list[InputImage]) -> Call:
        route = attempt.route
        values = values_for(job.prompt, job.units, [i.data_url() for i in inputs])
        return Call(
            job_id=job.id,
            model_id=job.model.id,
            product=job.model.product,
            upstream=route.upstream_for(bool(inputs)),
            prompt=job.prompt,
            units=job.units,
            params=map_params(dict(route.params), values),
            inputs=inputs,
            credentials=attempt.credentials,
            http=self.http,
        )

    async def _input(self, url: str, ctx: RunContext) -> InputImage:
        data = await ctx.load_input(url)
        header = _image_header(data)
        return InputImage(data, header[0] if header else "application/octet-stream")

    async def _run_route(
        self, call: Call, provider: str, task_id: str | None, job: JobSpec, ctx: RunContext
    ) -> EngineResult:
        adapter = self.adapters[provider]
        if task_id is None:
            started = await self._retrying(lambda: adapter.start(call), ctx)
            if isinstance(started, Queued):
                task_id = started.task_id
                await ctx.save_provider_task_id(f"{provider}:{task_id}")
                await ctx.progress(0.05, f"queued at {provider}", details={"provider": provider})
                done = await self._follow(adapter, call, task_id, ctx)
            else:
                done = started
        else:
            await ctx.progress(0.05, f"resuming {provider} task", details={"provider": provider})
            done = await self._follow(adapter, call, task_id, ctx)
        outputs = [await self._download(f, ctx) for f in done.files]
        if not outputs:
            raise ProviderError("failed", f"{provider} finished without any output")
        info = {"provider": provider, "upstream": call.upstream, **done.info}
        if task_id:
            info["provider_task_id"] = task_id
        # Images and music tracks are priced per unit: charge for what arrived.
        delivered = len(outputs) if job.model.product in ("image", "music") else 1
        return EngineResult(outputs=outputs, delivered_count=delivered, info=info)

    async def _follow(self, adapter: Adapter, call: Call, task_id: str, ctx: RunContext) -> Done:
        while True:
            if ctx.canceled():
                with contextlib.suppress(ProviderError, httpx.HTTPError):
                    await adapter.cancel(call, task_id)
                raise EngineError("canceled", code="canceled")
            try:
                state = await self._retrying(lambda: adapter.poll(call, task_id), ctx)
            except ProviderError as exc:
                if exc.kind not in TRANSIENT and exc.kind != "auth":
                    raise
                # The task lives on at the provider: requeue the job, and it resumes polling.
                raise EngineError(
                    f"lost touch with {adapter.name} while polling: {exc.message}",
                    code="provider_unavailable",
                    retryable=True,
                ) from exc
            if isinstance(state, Done):
                return state
            if state.progress is not None:
                await ctx.progress(max(0.05, min(state.progress, 0.95)), state.message)
            await asyncio.sleep(self.settings.provider_poll_seconds)

    async def _retrying(self, step: Callable[[], Awaitable[T]], ctx: RunContext) -> T:
        """Run ``step``; on a transient provider error wait (Retry-After, else exponential
        backoff) and try again, ``provider_retries`` times at most."""
        settings = self.settings
        for attempt in range(settings.provider_retries + 1):
            try:
                return await step()
            except httpx.TimeoutException as exc:
                error = ProviderError("timeout", f"request timed out: {exc}")
            except httpx.TransportError as exc:
                error = ProviderError("unavailable", f"connection failed: {exc}")
            except ProviderError as exc:
                error = exc
            if error.kind not in TRANSIENT or attempt == settings.provider_retries:
                raise error
            delay = settings.provider_backoff_seconds * 2**attempt
            if error.retry_after is not None:
                if error.retry_after > settings.provider_max_backoff_seconds:
                    raise error  # too long to wait here: let the next route serve it
                delay = error.retry_after
            await asyncio.sleep(min(delay, settings.provider_max_backoff_seconds))
            if ctx.canceled():
                raise EngineError("canceled", code="canceled")
        raise AssertionError("unreachable")

    async def _download(self, file: OutputFile, ctx: RunContext) -> Output:
        if isinstance(file, InlineFile):
            data, mime = file.data, file.mime_type
        else:
            assert isinstance(file, RemoteFile)
            try:
                fetched = await fetch(
                    file.url,
                    max_bytes=self.settings.max_output_bytes,
                    allow_private=self.settings.fetch_allow_private,
                    allowed_schemes=("https", "http")
                    if self.settings.fetch_allow_private
                    else ("https",),
                    timeout=self.settings.provider_request_timeout_seconds,
                    accept="*/*",
                )
            except FetchRefused as exc:
                raise ProviderError("unavailable", f"could not download the output: {exc}") from exc
            data = fetched.content
            mime = file.mime_type or fetched.content_type or "application/octet-stream"
        image = _image_header(data)
        if image is not None:
            return Output(data, *image)
        return Output(data, mime.split(";")[0].strip())


def _image_header(data: bytes) -> tuple[str, int, int] | None:
    """(mime, width, height) when ``data`` is an image Pillow knows; only the header is read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = Image.MIME.get(image.format or "")
            return (mime, image.width, image.height) if mime else None
    except Exception:
        return None


def _split_task_id(saved: str | None) -> tuple[str, str] | None:
    if not saved or ":" not in saved:
        return None
    provider, task_id = saved.split(":", 1)
    return provider, task_id


def _caller_fault(provider: str, exc: ProviderError) -> EngineError:
    if exc.kind == "rejected":
        return EngineError(
            f"{provider} refused the request under its safety policy: {exc.message}",
            code="provider_rejected",
        )
    return EngineError(f"{provider} refused the request: {exc.message}", code="provider_invalid")


class ProviderEngine:
    """The engine the registry knows as ``name``: runs from that provider's route onward."""

    offline = False

    def __init__(self, name: str, router: ProviderRouter) -> None:
        self.name = name
        self.router = router

    def serves(self, model: Model) -> bool:
        return self.router.configured(self.name) and any(
            r.provider == self.name for r in model.routes
        )

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        return await self.router.run(self.name, job, ctx)
