"""Webhook test harness: real receivers, a server that may deliver to them, and a rig whose
clock the test moves.

- ``Receiver``: a real HTTP server on 127.0.0.1 that records what it gets and answers from a
  script.
- ``hooks``: the real app under uvicorn (like the session ``server``) with
  ``MEDIAGATE_WEBHOOK_ALLOW_PRIVATE=1``, so deliveries may reach local receivers.
- ``rig``: a runtime with a frozen clock, the API served from the test's own event loop (no
  lifespan, hence no background worker or dispatcher), and a tenant; the test runs the worker
  and the dispatcher itself, one step at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from mediagate.app import create_app
from mediagate.auth.principal import SCOPES, Principal
from mediagate.auth.service import ApiKeyService
from mediagate.catalog.pricing import Units
from mediagate.clock import FrozenClock
from mediagate.config import Settings
from mediagate.jobs.service import SubmitRequest, submit_job
from mediagate.jobs.worker import Worker
from mediagate.runtime import Runtime
from mediagate.webhooks.dispatcher import Dispatcher
from mediagate.workspaces.service import WorkspaceService
from tests.conftest import LiveServer, Server, database_url

# ---------------------------------------------------------------------------- receivers


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A local webhook receiver. ``script`` holds the answers to give, in order, as
    ``(status, headers)``; once it runs out every request gets 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.delay = 0.0  # seconds to sit on each request before answering
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                time.sleep(receiver.delay)
                reply = f"answer {status}".encode()
                # The sender may have given up on a slow answer and hung up.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": str(len(reply))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def answer(self, *responses: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            self.script += [r if isinstance(r, tuple) else (r, {}) for r in responses]

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.requests)} of {count} webhook requests")
            time.sleep(0.02)
        return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def receiver2() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# ---------------------------------------------------------------------------- the app


def webhook_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The real app (its lifespan runs the worker and the webhook dispatcher)."""
    return create_app(settings, runtime=runtime)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def hooks(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    identity_key: rsa.RSAPrivateKey,
) -> Iterator[Server]:
    """A running Mediagate that may deliver webhooks to loopback receivers."""
    tmp = tmp_path_factory.mktemp(f"hooks-{request.param}")
    with database_url(request.param, tmp) as url:
        env = {
            "MEDIAGATE_DATA_DIR": str(tmp),
            "MEDIAGATE_DATABASE_URL": url,
            "MEDIAGATE_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "MEDIAGATE_WORKER_POLL_SECONDS": "0.2",
            "MEDIAGATE_WEBHOOK_ALLOW_PRIVATE": "1",
        }
        settings = Settings(**{k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()})
        live = LiveServer(webhook_app(settings))
        # Webhook bodies are rendered outside any request: tell them where we listen.
        settings.public_base_url = live.url
        with live:
            server = Server(request.param, live.url, settings, env, identity_key)
            yield server
            server.close()


# ---------------------------------------------------------------------------- the rig


@contextlib.asynccontextmanager
async def serve_here(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` over a real socket from the current event loop, without its lifespan."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server did not start")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Rig:
    runtime: Runtime
    clock: FrozenClock
    api: httpx.AsyncClient
    principal: Principal
    dispatchers: list[Dispatcher] = field(default_factory=list)

    def dispatcher(self, **options: Any) -> Dispatcher:
        options.setdefault("rng", random.Random(7))
        d = Dispatcher(self.runtime, **options)
        self.dispatchers.append(d)
        return d

    async def job(self, webhook_url: str | None = None) -> str:
        """Submit a job and run it to completion with the real worker."""
        model = self.runtime.catalog.model("z-image")
        assert model is not None
        done = await submit_job(
            self.runtime,
            self.principal,
            SubmitRequest(
                surface="native",
                model=model,
                units=Units(count=1, resolution="1K", aspect_ratio="1:1"),
                prompt="a test card",
                webhook_url=webhook_url,
            ),
            lambda job: {"id": job.job_id},
        )
        assert await Worker(self.runtime).run_once()
        return done.job_id

    async def deliveries(self, **query: str) -> list[dict[str, Any]]:
        r = await self.api.get("/v1/webhooks/deliveries", params=query)
        assert r.status_code == 200, r.text
        return r.json()["data"]["deliveries"]  # type: ignore[no-any-return]

    async def delivery(self, job_id: str) -> dict[str, Any]:
        (only,) = await self.deliveries(job_id=job_id)
        return only

    async def default_secret(self) -> str:
        r = await self.api.get("/v1/webhooks/default/secret")
        assert r.status_code == 200, r.text
        return r.json()["data"]["secret"]  # type: ignore[no-any-return]


def rig_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        secret_key="rig-secret-" + "k" * 24,
        heartbeat_seconds=3600,
        webhook_allow_private=True,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    with database_url(request.param, tmp_path) as url:
        # Near the real time: receivers verify signatures against their own clock (±5 min).
        clock = FrozenClock(datetime.now(UTC))
        runtime = Runtime.from_settings(rig_settings(tmp_path, url), clock=clock)
        await runtime.start()
        async with runtime.db.writer() as s:
            ws, owner = await WorkspaceService(s, runtime.catalog).create(
                f"rig-{uuid.uuid4().hex[:8]}", plan="pro", credits=10_000
            )
            _, key = await ApiKeyService(s).create(ws.id, mode="sandbox")
        principal = Principal(
            workspace_id=ws.id,
            plan="pro",
            member_id=owner.id,
            scopes=frozenset(SCOPES),
            mode="sandbox",
        )
        try:
            async with (
                serve_here(webhook_app(runtime=runtime)) as base,
                httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
                ) as api,
            ):
                rig = Rig(runtime, clock, api, principal)
                try:
                    yield rig
                finally:
                    for d in rig.dispatchers:
                        await d.aclose()
        finally:
            await runtime.close()
