"""Durability across real processes: `mediagate worker` subprocesses killed and stopped
mid-job while an API server (without workers of its own) watches."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mediagate.assets.models import Asset
from mediagate.credits.models import LedgerEntry
from mediagate.db.database import Database
from tests.conftest import Server, poll

MEDIAGATE = str(Path(sys.executable).with_name("mediagate"))


@pytest.fixture
def api(server: Server) -> Iterator[Server]:
    with server.sibling(own_database=True, embedded_workers=False) as sibling:
        yield sibling


def _worker(api: Server, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **api.env,
        "MEDIAGATE_LEASE_SECONDS": "2",
        "MEDIAGATE_HEARTBEAT_SECONDS": "0.5",
        "MEDIAGATE_WORKER_POLL_SECONDS": "0.1",
        "MEDIAGATE_WORKER_CONCURRENCY": "1",
        **extra,
    }
    return subprocess.Popen(
        [MEDIAGATE, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _submit_slow(client: httpx.Client) -> str:
    """Eight 4K images: a few seconds of real work, with progress after each."""
    r = client.post(
        "/v1/generate",
        json={
            "model": "nano-banana-pro",
            "prompt": "a slow harbour",
            "request_id": str(uuid.uuid4()),
            "units": {"count": 8, "resolution": "4K"},
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["task_id"])


def _wait(client: httpx.Client, job_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    return poll(lambda: client.get(f"/v1/jobs/{job_id}").json()["data"], done, timeout)


def _ledger_and_assets(api: Server, job_id: str) -> tuple[list[str], int]:
    async def read() -> tuple[list[str], int]:
        db = Database(api.settings.resolved_database_url)
        try:
            async with db.reader() as s:
                kinds = list(
                    await s.scalars(
                        select(LedgerEntry.kind)
                        .where(LedgerEntry.job_id == job_id)
                        .order_by(LedgerEntry.created_at)
                    )
                )
                assets = await s.scalar(select(func.count()).where(Asset.job_id == job_id))
                return kinds, int(assets or 0)
        finally:
            await db.dispose()

    return asyncio.run(read())


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()


def test_a_killed_worker_job_is_finished_by_another_exactly_once(api: Server) -> None:
    t = api.tenant(credits=1000)
    first = _worker(api)
    try:
        job_id = _submit_slow(t.client)
        _wait(t.client, job_id, lambda j: j["progress"] > 0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        _stop(first)
    second = _worker(api)
    try:
        job = _wait(t.client, job_id, lambda j: j["status"] in ("completed", "failed"))
        assert job["status"] == "completed", job
        assert job["attempts"] == 2
        assert sorted(o["index"] for o in job["outputs"]) == list(range(8))
        assert job["credits"] == {"estimated": 320, "held": 320, "charged": 320}
        assert t.client.get("/v1/credits/balance").json()["data"] == {
            "balance": 680,
            "held": 0,
            "available": 680,
        }
        assert _ledger_and_assets(api, job_id) == (["hold", "capture"], 8)
    finally:
        assert _stop(second) == 0


def test_sigterm_hands_the_job_back_without_spending_an_attempt(api: Server) -> None:
    t = api.tenant(credits=1000)
    first = _worker(api, MEDIAGATE_SHUTDOWN_GRACE_SECONDS="0.3")
    job_id = _submit_slow(t.client)
    _wait(t.client, job_id, lambda j: j["progress"] > 0)
    stopped = time.monotonic()
    assert _stop(first) == 0
    assert time.monotonic() - stopped < 10
    job = t.client.get(f"/v1/jobs/{job_id}").json()["data"]
    assert job["status"] == "queued" and job["attempts"] == 0
    second = _worker(api)
    try:
        job = _wait(t.client, job_id, lambda j: j["status"] == "completed")
        assert job["attempts"] == 1
        assert _ledger_and_assets(api, job_id) == (["hold", "capture"], 8)
    finally:
        assert _stop(second) == 0


def test_a_stream_follows_a_job_run_by_another_process(api: Server) -> None:
    t = api.tenant(credits=1000)
    worker = _worker(api)
    try:
        job_id = _submit_slow(t.client)
        seen: list[tuple[str, float]] = []
        with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    seen.append((event, time.monotonic()))
        kinds = [k for k, _ in seen]
        assert kinds[:2] == ["status", "status"] and kinds[-1] == "completed"
        assert kinds.count("progress") == 8 and kinds.count("output") == 8
        # Live, not replayed at the end: progress arrived spread over the run.
        progress_times = [at for k, at in seen if k == "progress"]
        assert progress_times[-1] - progress_times[0] > 0.5
    finally:
        assert _stop(worker) == 0
