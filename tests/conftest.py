"""Test harness: the real app under uvicorn on a free port, on SQLite and on PostgreSQL.

Every test that takes ``server`` runs once per backend. The PostgreSQL run needs
``MEDIAGATE_TEST_DATABASE_URL`` (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test); each
session creates a fresh database from it and drops it at the end. Without the variable the
PostgreSQL runs are skipped with that reason, unless ``MEDIAGATE_REQUIRE_POSTGRES=1`` (CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from mediagate.app import create_app
from mediagate.cli import app as cli_app
from mediagate.config import Settings
from mediagate.db import migrate
from mediagate.runtime import Runtime

PG_URL = os.environ.get("MEDIAGATE_TEST_DATABASE_URL")
REQUIRE_PG = os.environ.get("MEDIAGATE_REQUIRE_POSTGRES") == "1"
ISSUER = "https://moltbook.test"
AUDIENCE = "mediagate-tests"


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError(
            "MEDIAGATE_REQUIRE_POSTGRES=1 but MEDIAGATE_TEST_DATABASE_URL is not set"
        )


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        assert PG_URL
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # Also called from async fixtures, where asyncio.run cannot nest: use a thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()


@contextlib.contextmanager
def database_url(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh, migrated database of the given backend."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'mediagate.db'}"
        migrate.upgrade(url)
        yield url
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need MEDIAGATE_TEST_DATABASE_URL")
    name = f"mg_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    url = f"{base}/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TERMINAL = ("completed", "failed", "canceled")


def finished(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL


def poll(
    fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Fetch until ``done``; the pause grows so that polling stays well inside the plan's
    per-minute limit."""
    deadline, pause = time.monotonic() + timeout, 0.02
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still not done after {timeout}s: {value}"
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


class LiveServer:
    """Runs an ASGI app under uvicorn in a background thread, on a socket we bound."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@dataclass
class Tenant:
    name: str
    key: str
    client: httpx.Client


class Server:
    """A running Mediagate plus helpers to make tenants through the real CLI."""

    def __init__(
        self,
        backend: str,
        url: str,
        settings: Settings,
        env: dict[str, str],
        identity_key: rsa.RSAPrivateKey,
    ) -> None:
        self.backend = backend
        self.url = url
        self.settings = settings
        self.env = env
        self.identity_key = identity_key
        self._clients: list[httpx.Client] = []

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(cli_app, list(args), env=self.env)
        if result.exit_code != 0:
            raise AssertionError(f"mediagate {' '.join(args)} failed: {result.output}")
        return result.output

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        if key:
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    def tenant(
        self,
        *,
        plan: str = "enterprise",
        credits: int = 1000,
        scopes: str | None = None,
        mode: str = "sandbox",
    ) -> Tenant:
        name = f"ws-{uuid.uuid4().hex[:10]}"
        self.cli("workspaces", "create", name, "--plan", plan, "--credits", str(credits))
        args = ["keys", "create", "--workspace", name, "--mode", mode]
        if scopes is not None:
            args += ["--scopes", scopes]
        key = self.cli(*args).strip()
        return Tenant(name=name, key=key, client=self.client(key))

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
        return poll(lambda: client.get(f"/v1/jobs/{job_id}").json()["data"], finished, timeout)

    @contextlib.contextmanager
    def sibling(
        self, *, own_database: bool = False, clock: Any = None, **overrides: Any
    ) -> Iterator[Server]:
        """Another app (own runtime and workers) with some settings changed — e.g. no
        workers, a small stream cap. With ``own_database`` it gets a fresh database of the
        same backend, so that no other worker can pick up its jobs."""
        with contextlib.ExitStack() as stack:
            env = dict(self.env)
            if own_database:
                tmp = Path(tempfile.mkdtemp(prefix="mg-sibling-"))
                stack.callback(shutil.rmtree, tmp, True)
                url = stack.enter_context(database_url(self.backend, tmp))
                env.update(MEDIAGATE_DATABASE_URL=url, MEDIAGATE_DATA_DIR=str(tmp))
                overrides.update(database_url=url, data_dir=tmp)
            settings = self.settings.model_copy(update=overrides)
            runtime = Runtime.from_settings(settings, clock=clock)
            live = stack.enter_context(LiveServer(create_app(runtime=runtime)))
            other = Server(self.backend, live.url, settings, env, self.identity_key)
            stack.callback(other.close)
            yield other

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="session")
def identity_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    identity_key: rsa.RSAPrivateKey,
) -> Iterator[Server]:
    backend = request.param
    tmp = tmp_path_factory.mktemp(backend)
    keys = tmp / "identity.pem"
    keys.write_bytes(
        identity_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with database_url(backend, tmp) as url:
        env = {
            "MEDIAGATE_DATA_DIR": str(tmp),
            "MEDIAGATE_DATABASE_URL": url,
            "MEDIAGATE_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "MEDIAGATE_MOLTBOOK_ISSUER": ISSUER,
            "MEDIAGATE_MOLTBOOK_AUDIENCE": AUDIENCE,
            "MEDIAGATE_MOLTBOOK_PUBLIC_KEYS": str(keys),
            "MEDIAGATE_MOLTBOOK_KEY_MODE": "sandbox",
            "MEDIAGATE_WORKER_POLL_SECONDS": "0.2",
        }
        settings = Settings(**{k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()})
        with LiveServer(create_app(settings)) as live:
            server = Server(backend, live.url, settings, env, identity_key)
            yield server
            server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many PostgreSQL-backed tests passed; CI fails when that is zero."""
    passed = terminalreporter.stats.get("passed", [])
    count = sum(1 for rep in passed if "postgres" in rep.nodeid and rep.when == "call")
    terminalreporter.write_line(f"postgres-backed tests passed: {count}")
