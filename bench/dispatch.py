"""Dispatch: submit-to-``processing`` latency and lifecycle jobs/s, next to ``SELECT 1``.

What it measures
----------------
For each scenario the script starts its own stack on free ports in a fresh temporary data dir,
creates an ``enterprise`` workspace with plenty of credits and a sandbox key through the CLI,
warms it up with a few jobs (not counted) and then, in one run against the same database:

* **Baseline.** A bare ``SELECT 1`` round trip from this process to the same database, p50/p99
  over ``--select-iterations`` (default 2000): SQLite through ``aiosqlite`` on the server's own
  file (plus plain ``sqlite3``, for scale), PostgreSQL through ``asyncpg`` on the bench database.
  For reference also ``SELECT 1`` through a SQLAlchemy ``AsyncEngine`` (the stack the server
  uses), and on PostgreSQL the ``pg_notify`` round trip (autocommit NOTIFY on one connection
  until the LISTEN callback runs on another): the floor of a cross-process wake-up.
* **Submit-to-processing latency.** ``--jobs`` (default 200) ``POST /v1/generate`` calls
  (``google/nano-banana``, unique ``request_id``) *scheduled* at ``--rate`` per second (default
  5, one every 200 ms) from one client, whether or not earlier ones were answered. A builtin
  render costs about 100 ms of CPU, so 5/s keeps half a core busy rendering and the queue
  normally empty: this measures dispatch, not queueing (10/s already saturates a core of the
  shared 2-core box and jobs start to queue). After the queue has drained, each job is read
  back with ``GET /v1/jobs/{id}`` and the latency is ``started_at - created_at``. Both
  timestamps come from the server's clock: ``created_at`` is taken inside the submit
  transaction (after authentication and the idempotency lookup, before the credit hold and the
  insert), ``started_at`` by the worker when it wakes, just *before* its claim transaction. So
  the number covers the rest of the submit transaction, its commit, the wake-up (in-process
  event, LISTEN/NOTIFY, or polling) and the worker loop's turn, but not the claim itself.
  Because of that, the bench also adds a side table and an ``AFTER UPDATE`` trigger to its own
  fresh database (``--no-claim-trigger`` leaves the schema alone) that stamp, with the
  database's clock, when the claim statement set the job to ``processing``: the "claim
  statement" row (SQLite stamps have millisecond resolution; the claim transaction commits a
  little later still). Also shown: the HTTP response time of the submits, the client-side
  ``send -> started_at`` (same machine, same wall clock), the latency over only the jobs that
  arrived while no other job was rendering or queued ("nothing running"), and how many jobs
  arrived while another one was still queued (should be 0 for A and B).
* **Lifecycle throughput.** A burst of ``--burst`` (default 200) submits over ``--concurrency``
  (default 16) keep-alive connections, as fast as the server takes them; then the database is
  polled every 20 ms until no job is queued or processing. Reported: completed jobs per second
  over the server's span ``max(finished_at) - min(created_at)`` (and over the client's wall
  time, first send to "drained" seen), how long the burst took to be accepted, and the CPU
  seconds the server, the worker process and everything else (other users of the host,
  PostgreSQL) used meanwhile.

Scenarios
---------
A ``sqlite``: ``mediagate serve`` with in-process workers (``MEDIAGATE_WORKER_CONCURRENCY``,
default 4) on SQLite. Target: p50 <= 5 ms.
B ``postgres``: a fresh database ``mg_bench_<random>`` created with asyncpg next to ``--pg-url``
(dropped afterwards, ``WITH (FORCE)``), migrated with ``mediagate db upgrade``;
``mediagate serve --no-workers`` plus one ``mediagate worker`` process, woken by LISTEN/NOTIFY.
Target: p50 <= 15 ms.
C ``sqlite-worker`` (informational, no target): SQLite with ``serve --no-workers`` and a
separate ``mediagate worker``. Notifications do not cross processes on SQLite, so an idle
worker finds new jobs only by polling every ``MEDIAGATE_WORKER_POLL_SECONDS`` (1 s); a busy one
looks again whenever one of its loops finishes a job. This shows the polling cost. Use
``--scenarios`` to choose.

The ratio column divides a p50 by the p50 of the bare async-driver ``SELECT 1`` (aiosqlite or
asyncpg) measured in the same run.

How to run
----------
From the repository root::

    .venv/bin/python bench/dispatch.py                        # A, B and C
    .venv/bin/python bench/dispatch.py --skip-postgres        # SQLite only (A and C)
    .venv/bin/python bench/dispatch.py --scenarios sqlite,postgres --jobs 100 --rate 10
    .venv/bin/python bench/dispatch.py --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/dispatch.py --json > dispatch.json

``--pg-url`` is the admin URL the bench database is created from (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``). The run is bounded: every wait has a
deadline and ``--max-seconds`` (default 1200) caps the whole run; servers and workers are always
stopped (SIGTERM, then SIGKILL), temporary data dirs removed and bench databases dropped, also on
Ctrl-C or SIGTERM. The stack runs whatever ``mediagate`` package ``.venv/bin/mediagate`` imports;
point ``PYTHONPATH`` at another checkout's ``src`` to measure that instead (the report names the
code under test). Exit status: 0; 1 with ``--check`` when a target is missed; 2 when a scenario
could not be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from harness import (  # bench/ is on sys.path when run as a script
    cli,
    code_under_test,
    fmt,
    free_port,
    json_safe,
    machine_busy_seconds,
    mediagate_bin,
    percentile,
    proc_cpu_seconds,
    write_bench_catalog,
)

ROOT = Path(__file__).resolve().parent.parent
MODEL = "google/nano-banana"
PROMPT = "a lighthouse at dawn, volumetric fog, 35mm"
CREDITS = 100_000_000
WARMUP_JOBS = 8
POLL_INTERVAL_S = 0.02
DRAIN_TIMEOUT_S = 300.0
NOTIFY_ITERATIONS = 300

# The bench's own database gets a side table and a trigger that stamp the moment the worker's
# claim statement sets a job to ``processing`` (database clock; SQLite: millisecond resolution).
SQLITE_TRIGGER = """
CREATE TABLE bench_claims (job_id TEXT NOT NULL, claimed_at REAL NOT NULL);
CREATE TRIGGER bench_claim AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN NEW.status = 'processing' AND OLD.status <> 'processing'
BEGIN
    INSERT INTO bench_claims VALUES (NEW.id, (julianday('now') - 2440587.5) * 86400.0);
END;
"""
PG_TRIGGER = """
CREATE TABLE bench_claims (job_id TEXT NOT NULL, claimed_at DOUBLE PRECISION NOT NULL);
CREATE FUNCTION bench_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'processing' AND OLD.status <> 'processing' THEN
        INSERT INTO bench_claims
        VALUES (NEW.id, extract(epoch FROM clock_timestamp())::double precision);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bench_claim AFTER UPDATE OF status ON jobs
FOR EACH ROW EXECUTE FUNCTION bench_claim();
"""

Database = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    title: str
    database: Database
    separate_worker: bool
    target_p50_ms: float | None


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("sqlite", "A", "SQLite, serve with in-process workers", "sqlite", False, 5.0),
        Scenario(
            "postgres",
            "B",
            "PostgreSQL, serve --no-workers + 1 worker process (LISTEN/NOTIFY)",
            "postgresql",
            True,
            15.0,
        ),
        Scenario(
            "sqlite-worker",
            "C",
            "SQLite, serve --no-workers + 1 worker process (polling; informational)",
            "sqlite",
            True,
            None,
        ),
    )
}


# --------------------------------------------------------------------------- statistics


@dataclass
class Stat:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stat:
        ms = [x * 1000 for x in seconds]
        return cls(
            n=len(ms),
            p50_ms=percentile(ms, 50),
            p99_ms=percentile(ms, 99),
            max_ms=max(ms) if ms else math.nan,
            mean_ms=sum(ms) / len(ms) if ms else math.nan,
        )


# --------------------------------------------------------------------------- CPU accounting


@dataclass
class CpuWindow:
    """CPU seconds used by the server, the worker process, this script and everything else."""

    wall_s: float = 0.0
    server_s: float = 0.0
    worker_s: float = 0.0
    bench_s: float = 0.0
    other_s: float = 0.0


class CpuMeter:
    def __init__(self, server_pid: int | None, worker_pid: int | None) -> None:
        self.pids = (server_pid, worker_pid)
        self.start: tuple[float, ...] = ()

    def _sample(self) -> tuple[float, ...]:
        return (
            time.perf_counter(),
            proc_cpu_seconds(self.pids[0]),
            proc_cpu_seconds(self.pids[1]),
            time.process_time(),
            machine_busy_seconds(),
        )

    def begin(self) -> None:
        self.start = self._sample()

    def end(self) -> CpuWindow:
        end = self._sample()
        wall, server, worker, bench, busy = (b - a for a, b in zip(self.start, end, strict=True))
        return CpuWindow(
            wall_s=wall,
            server_s=server,
            worker_s=worker,
            bench_s=bench,
            other_s=max(0.0, busy - server - worker - bench),
        )


# --------------------------------------------------------------------------- database probe


class Probe:
    """This process's own connection to the stack's database: the ``SELECT 1`` baseline and
    the "is the queue drained" poll."""

    def __init__(self, database: Database, url: str) -> None:
        self.database = database
        self.url = url  # SQLAlchemy URL (sqlite+aiosqlite:///... or postgresql+asyncpg://...)
        self._conn: Any = None

    @property
    def _sqlite_path(self) -> str:
        return self.url.split(":///", 1)[1]

    @property
    def _pg_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    async def open(self) -> None:
        if self.database == "sqlite":
            import aiosqlite

            self._conn = await aiosqlite.connect(self._sqlite_path, isolation_level=None)
        else:
            import asyncpg

            self._conn = await asyncpg.connect(self._pg_dsn)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _scalar(self, sql: str) -> Any:
        if self.database == "sqlite":
            async with self._conn.execute(sql) as cur:
                row = await cur.fetchone()
            return row[0] if row else None
        return await self._conn.fetchval(sql)

    async def unfinished(self) -> int:
        """Jobs still queued or processing."""
        return int(
            await self._scalar(
                "SELECT count(*) FROM jobs WHERE status NOT IN ('completed','failed','canceled')"
            )
        )

    async def claims(self) -> dict[str, float]:
        """job id -> epoch seconds at which its claim statement ran (the bench trigger)."""
        sql = "SELECT job_id, claimed_at FROM bench_claims"
        if self.database == "sqlite":
            async with self._conn.execute(sql) as cur:
                rows = await cur.fetchall()
        else:
            rows = await self._conn.fetch(sql)
        # A job claimed twice (a retry, a rescue) keeps its first claim.
        out: dict[str, float] = {}
        for job_id, at in rows:
            out[job_id] = min(float(at), out.get(job_id, math.inf))
        return out

    async def select1(self, iterations: int) -> list[float]:
        """Round trips of a bare ``SELECT 1`` through the async driver (aiosqlite / asyncpg)."""
        for _ in range(min(50, iterations)):  # warm the statement cache
            await self._scalar("SELECT 1")
        samples = []
        for _ in range(iterations):
            t = time.perf_counter()
            await self._scalar("SELECT 1")
            samples.append(time.perf_counter() - t)
        return samples

    def select1_sync(self, iterations: int) -> list[float]:
        """SQLite only: plain ``sqlite3`` in this thread (no executor hop), for scale."""
        conn = sqlite3.connect(self._sqlite_path, isolation_level=None)
        try:
            samples = []
            for _ in range(iterations):
                t = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                samples.append(time.perf_counter() - t)
            return samples
        finally:
            conn.close()

    async def select1_sqlalchemy(self, iterations: int) -> list[float]:
        """``SELECT 1`` through a SQLAlchemy AsyncEngine connection (the server's stack)."""
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as conn:
                for _ in range(min(50, iterations)):
                    await conn.exec_driver_sql("SELECT 1")
                samples = []
                for _ in range(iterations):
                    t = time.perf_counter()
                    (await conn.exec_driver_sql("SELECT 1")).scalar()
                    samples.append(time.perf_counter() - t)
                return samples
        finally:
            await engine.dispose()

    async def notify_round_trip(self, iterations: int) -> list[float]:
        """PostgreSQL only: ``SELECT pg_notify`` (autocommit) on one connection until the
        LISTEN callback has run on another connection of this process."""
        import asyncpg

        listener = await asyncpg.connect(self._pg_dsn)
        sender = await asyncpg.connect(self._pg_dsn)
        got: asyncio.Queue[str] = asyncio.Queue()
        channel = f"mg_bench_{secrets.token_hex(4)}"
        try:
            await listener.add_listener(
                channel, lambda _c, _p, _ch, payload: got.put_nowait(payload)
            )
            samples = []
            for i in range(iterations + 20):
                t = time.perf_counter()
                await sender.execute(f"SELECT pg_notify('{channel}', '{i}')")
                await asyncio.wait_for(got.get(), 5)
                if i >= 20:
                    samples.append(time.perf_counter() - t)
            return samples
        finally:
            await listener.close()
            await sender.close()

    async def wait_drained(self, limit_s: float) -> float:
        """Poll until no job is queued or processing; the perf_counter() at which that was
        seen."""
        deadline = time.perf_counter() + limit_s
        while True:
            if await self.unfinished() == 0:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"jobs still unfinished after {limit_s:.0f} s")
            await asyncio.sleep(POLL_INTERVAL_S)


# --------------------------------------------------------------------------- client


@dataclass
class Submitted:
    job_id: str | None
    sent_wall: float  # time.time() just before the request was written
    response_s: float
    error: str | None = None


@dataclass
class JobTimes:
    job_id: str
    status: str
    created: float  # epoch seconds
    started: float | None
    finished: float | None


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class Client:
    def __init__(self, base_url: str, api_key: str, connections: int) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=30.0,
        )
        self.tag = secrets.token_hex(4)
        self.count = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self) -> Submitted:
        self.count += 1
        body = {
            "model": MODEL,
            "prompt": PROMPT,
            "request_id": f"dispatch-{self.tag}-{self.count}-{uuid.uuid4().hex[:8]}",
        }
        sent = time.time()
        t = time.perf_counter()
        try:
            resp = await self.http.post("/v1/generate", json=body)
        except httpx.HTTPError as exc:
            return Submitted(None, sent, time.perf_counter() - t, type(exc).__name__)
        elapsed = time.perf_counter() - t
        try:
            payload = resp.json()
        except ValueError:
            payload = {}
        if resp.status_code != 200 or payload.get("code") != 0:
            return Submitted(None, sent, elapsed, f"http {resp.status_code}: {resp.text[:200]}")
        return Submitted(payload["data"]["task_id"], sent, elapsed)

    async def job(self, job_id: str) -> JobTimes:
        resp = await self.http.get(f"/v1/jobs/{job_id}")
        resp.raise_for_status()
        data = resp.json()["data"]
        created = _epoch(data["created_at"])
        assert created is not None
        return JobTimes(
            job_id=job_id,
            status=data["status"],
            created=created,
            started=_epoch(data.get("started_at")),
            finished=_epoch(data.get("finished_at")),
        )

    async def jobs(self, ids: list[str], concurrency: int = 8) -> list[JobTimes]:
        gate = asyncio.Semaphore(concurrency)

        async def one(job_id: str) -> JobTimes:
            async with gate:
                return await self.job(job_id)

        return list(await asyncio.gather(*(one(i) for i in ids)))


# --------------------------------------------------------------------------- phases


@dataclass
class Baseline:
    select1_driver: Stat
    driver: str
    select1_sqlalchemy: Stat
    select1_sqlite3: Stat | None = None
    notify_round_trip: Stat | None = None


@dataclass
class Latency:
    jobs: int
    rate: float
    errors: int
    error_samples: list[str]
    submit_to_processing: Stat  # started_at - created_at (server clock)
    client_send_to_processing: Stat  # started_at - client send time (same machine clock)
    submit_response: Stat  # HTTP round trip of POST /v1/generate
    idle_submit_to_processing: Stat  # only jobs that arrived while nothing was rendering
    submit_to_claim: Stat | None  # claim statement (bench trigger, DB clock) - created_at
    idle_submit_to_claim: Stat | None
    run_time: Stat  # finished_at - started_at
    arrived_behind_queued: int  # jobs that arrived while another one was still queued
    not_completed: int
    cpu: CpuWindow


@dataclass
class Throughput:
    jobs: int
    concurrency: int
    errors: int
    error_samples: list[str]
    completed: int
    accepted_s: float  # first send to last submit answered
    server_span_s: float  # max(finished_at) - min(created_at)
    client_wall_s: float  # first send to "drained" seen by the poll
    jobs_per_s: float  # completed / server span
    jobs_per_s_client: float
    submit_response: Stat
    queue_wait: Stat  # started_at - created_at under the burst (queueing, not dispatch)
    run_time: Stat
    cpu: CpuWindow


@dataclass
class ScenarioResult:
    scenario: str
    label: str
    title: str
    database: str
    worker_concurrency: int
    code: str
    baseline: Baseline
    latency: Latency
    throughput: Throughput
    target_p50_ms: float | None
    target_pass: bool | None
    ratio_p50_to_select1: float = math.nan
    notes: list[str] = field(default_factory=list)


async def _baseline(probe: Probe, iterations: int) -> Baseline:
    if probe.database == "sqlite":
        return Baseline(
            select1_driver=Stat.of(await probe.select1(iterations)),
            driver="aiosqlite",
            select1_sqlalchemy=Stat.of(await probe.select1_sqlalchemy(iterations)),
            select1_sqlite3=Stat.of(probe.select1_sync(iterations)),
        )
    return Baseline(
        select1_driver=Stat.of(await probe.select1(iterations)),
        driver="asyncpg",
        select1_sqlalchemy=Stat.of(await probe.select1_sqlalchemy(iterations)),
        notify_round_trip=Stat.of(await probe.notify_round_trip(NOTIFY_ITERATIONS)),
    )


def _errors(subs: list[Submitted]) -> tuple[int, list[str]]:
    errs = [s.error for s in subs if s.error]
    return len(errs), sorted(set(errs))[:5]


async def _latency(
    client: Client, probe: Probe, meter: CpuMeter, jobs: int, rate: float, trigger: bool
) -> Latency:
    """Open loop: submits are *scheduled* every 1/rate s whether or not earlier ones are
    answered; the latency itself comes from the server's timestamps."""
    meter.begin()
    start = time.perf_counter() + 0.1
    tasks: list[asyncio.Task[Submitted]] = []
    for i in range(jobs):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.submit()))
    subs = list(await asyncio.gather(*tasks))
    await probe.wait_drained(DRAIN_TIMEOUT_S)
    cpu = meter.end()
    ok = [s for s in subs if s.job_id]
    times = await client.jobs([s.job_id for s in ok if s.job_id])
    started = [t for t in times if t.started is not None]
    dispatch = [t.started - t.created for t in started if t.started is not None]
    by_id = {t.job_id: t for t in times}
    client_side = []
    for s in ok:
        t = by_id[s.job_id or ""]
        if t.started is not None:
            client_side.append(t.started - s.sent_wall)
    idle, behind = [], 0
    idle_jobs: list[JobTimes] = []
    for t in started:
        assert t.started is not None
        rendering = any(
            o is not t
            and o.started is not None
            and o.started < t.started
            and (o.finished is None or o.finished > t.created)
            for o in started
        )
        queued = any(
            o is not t and o.created < t.created and o.started is not None and o.started > t.created
            for o in started
        )
        behind += queued
        if not rendering and not queued:
            idle.append(t.started - t.created)
            idle_jobs.append(t)
    runs = [t.finished - t.started for t in started if t.finished and t.started]
    to_claim = idle_to_claim = None
    if trigger:
        claims = await probe.claims()
        to_claim = Stat.of([claims[t.job_id] - t.created for t in times if t.job_id in claims])
        idle_ids = {id(t) for t in idle_jobs}
        idle_to_claim = Stat.of(
            [claims[t.job_id] - t.created for t in started if id(t) in idle_ids]
        )
    n_err, samples = _errors(subs)
    return Latency(
        jobs=jobs,
        rate=rate,
        errors=n_err,
        error_samples=samples,
        submit_to_processing=Stat.of(dispatch),
        client_send_to_processing=Stat.of(client_side),
        submit_response=Stat.of([s.response_s for s in ok]),
        idle_submit_to_processing=Stat.of(idle),
        submit_to_claim=to_claim,
        idle_submit_to_claim=idle_to_claim,
        run_time=Stat.of(runs),
        arrived_behind_queued=behind,
        not_completed=sum(1 for t in times if t.status != "completed"),
        cpu=cpu,
    )


async def _throughput(
    client: Client, probe: Probe, meter: CpuMeter, jobs: int, concurrency: int
) -> Throughput:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Submitted:
        async with gate:
            return await client.submit()

    meter.begin()
    t0 = time.perf_counter()
    subs = list(await asyncio.gather(*(one() for _ in range(jobs))))
    accepted = time.perf_counter() - t0
    drained = await probe.wait_drained(DRAIN_TIMEOUT_S)
    cpu = meter.end()
    wall = drained - t0
    ok = [s.job_id for s in subs if s.job_id]
    times = await client.jobs(ok)
    done = [t for t in times if t.status == "completed" and t.finished is not None]
    span = (
        max(t.finished for t in done if t.finished is not None) - min(t.created for t in times)
        if done
        else math.nan
    )
    n_err, samples = _errors(subs)
    return Throughput(
        jobs=jobs,
        concurrency=concurrency,
        errors=n_err,
        error_samples=samples,
        completed=len(done),
        accepted_s=accepted,
        server_span_s=span,
        client_wall_s=wall,
        jobs_per_s=len(done) / span if done and span > 0 else math.nan,
        jobs_per_s_client=len(done) / wall if wall > 0 else math.nan,
        submit_response=Stat.of([s.response_s for s in subs if s.job_id]),
        queue_wait=Stat.of([t.started - t.created for t in times if t.started is not None]),
        run_time=Stat.of([t.finished - t.started for t in done if t.finished and t.started]),
        cpu=cpu,
    )


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database ``mg_bench_<random>`` next to ``admin_url``, dropped afterwards."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(admin_url)
    name = f"mg_bench_{secrets.token_hex(4)}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _install_claim_trigger(database: Database, url: str) -> None:
    if database == "sqlite":
        conn = sqlite3.connect(url.split(":///", 1)[1])
        try:
            conn.executescript(SQLITE_TRIGGER)
        finally:
            conn.close()
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def install() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(PG_TRIGGER)
        finally:
            await conn.close()

    asyncio.run(install())


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_for(
    proc: subprocess.Popen[bytes], log_path: Path, ready: Callable[[], bool], what: str
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{_tail(log_path)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after 60 s:\n{_tail(log_path)}")


@dataclass
class Stack:
    base_url: str
    api_key: str
    database_url: str
    server_pid: int
    worker_pid: int | None
    code: str
    logs: list[Path]

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{_tail(p)}" for p in self.logs)


@contextlib.contextmanager
def _stack(
    scenario: Scenario, pg_url: str | None, worker_concurrency: int, claim_trigger: bool
) -> Iterator[Stack]:
    """Server (and worker) in a fresh data dir, a funded enterprise workspace and a key."""
    data_dir = Path(tempfile.mkdtemp(prefix="mg-dispatch-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env.update(
        {
            "MEDIAGATE_DATA_DIR": str(data_dir),
            "MEDIAGATE_CATALOG_PATH": str(write_bench_catalog(data_dir)),
            "MEDIAGATE_HOST": "127.0.0.1",
            "MEDIAGATE_PORT": str(port),
            "MEDIAGATE_SECRET_KEY": secrets.token_urlsafe(32),
            "MEDIAGATE_WORKER_CONCURRENCY": str(worker_concurrency),
            "MEDIAGATE_SHUTDOWN_GRACE_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "500",
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
    )
    if pg_url:
        env["MEDIAGATE_DATABASE_URL"] = pg_url
        database_url = pg_url
    else:
        database_url = f"sqlite+aiosqlite:///{data_dir.resolve() / 'mediagate.db'}"
    server: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    base_url = f"http://127.0.0.1:{port}"
    server_log, worker_log = data_dir / "server.log", data_dir / "worker.log"
    try:
        cli(env, "db", "upgrade")
        if claim_trigger:
            _install_claim_trigger(scenario.database, database_url)
        cli(env, "workspaces", "create", "bench", "--plan", "bench", "--credits", str(CREDITS))
        out = cli(env, "keys", "create", "--workspace", "bench", "--mode", "sandbox")
        api_key = [w for w in out.split() if w.startswith("mg_")][-1]
        cmd = [mediagate_bin(), "serve", "--port", str(port)]
        if scenario.separate_worker:
            cmd.append("--no-workers")
        with server_log.open("wb") as log:
            server = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        def healthy() -> bool:
            # Our own server said it listens (not another process that took the free port).
            if "Uvicorn running on" not in server_log.read_text(errors="replace"):
                return False
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200
            return False

        _wait_for(server, server_log, healthy, "server")
        logs = [server_log]
        if scenario.separate_worker:
            with worker_log.open("wb") as log:
                worker = subprocess.Popen(
                    [mediagate_bin(), "worker"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            # Printed after the runtime started (on PostgreSQL: LISTEN connected).
            _wait_for(
                worker,
                worker_log,
                lambda: "worker running" in worker_log.read_text(errors="replace"),
                "worker",
            )
            logs.append(worker_log)
        yield Stack(
            base_url=base_url,
            api_key=api_key,
            database_url=database_url,
            server_pid=server.pid,
            worker_pid=worker.pid if worker else None,
            code=code_under_test(env),
            logs=logs,
        )
    finally:
        _stop(worker)
        _stop(server)
        shutil.rmtree(data_dir, ignore_errors=True)


# --------------------------------------------------------------------------- scenario


async def _measure(
    scenario: Scenario, stack: Stack, args: argparse.Namespace, log: Callable[[str], None]
) -> ScenarioResult:
    probe = Probe(scenario.database, stack.database_url)
    await probe.open()
    client = Client(stack.base_url, stack.api_key, max(8, args.concurrency))
    meter = CpuMeter(stack.server_pid, stack.worker_pid)
    try:
        # Warm-up (not counted): imports, connection pools, the painter, the LISTEN path.
        warm = [await client.submit() for _ in range(WARMUP_JOBS)]
        if not any(s.job_id for s in warm):
            raise RuntimeError(f"warm-up submits failed: {_errors(warm)[1]}")
        await probe.wait_drained(120)
        log(f"  baseline: SELECT 1 x {args.select_iterations}")
        baseline = await _baseline(probe, args.select_iterations)
        log(f"  latency: {args.jobs} jobs at {args.rate:g}/s")
        latency = await _latency(client, probe, meter, args.jobs, args.rate, args.claim_trigger)
        await asyncio.sleep(0.5)
        log(f"  throughput: burst of {args.burst} over {args.concurrency} connections")
        throughput = await _throughput(client, probe, meter, args.burst, args.concurrency)
    finally:
        await client.aclose()
        await probe.close()
    p50 = latency.submit_to_processing.p50_ms
    target = scenario.target_p50_ms
    result = ScenarioResult(
        scenario=scenario.key,
        label=scenario.label,
        title=scenario.title,
        database=scenario.database,
        worker_concurrency=args.worker_concurrency,
        code=stack.code,
        baseline=baseline,
        latency=latency,
        throughput=throughput,
        target_p50_ms=target,
        target_pass=None if target is None else (p50 <= target and latency.errors == 0),
        ratio_p50_to_select1=p50 / baseline.select1_driver.p50_ms,
    )
    if latency.errors or throughput.errors:
        result.notes.append("some submits failed; see error_samples")
    if latency.arrived_behind_queued and scenario.key == "sqlite-worker":
        result.notes.append(
            f"{latency.arrived_behind_queued} latency-phase jobs arrived while another job was "
            "still queued: the polling worker lets jobs wait for its next poll"
        )
    elif latency.arrived_behind_queued:
        result.notes.append(
            f"{latency.arrived_behind_queued} latency-phase jobs arrived while another job was "
            "still queued: part of their latency is queueing (lower --rate)"
        )
    if latency.not_completed or throughput.completed < throughput.jobs - throughput.errors:
        result.notes.append("some jobs did not complete")
    return result


def _run_scenario(
    scenario: Scenario, args: argparse.Namespace, log: Callable[[str], None]
) -> ScenarioResult:
    log(f"scenario {scenario.label} ({scenario.key}): {scenario.title}")
    with contextlib.ExitStack() as stack_cm:
        pg_url = (
            stack_cm.enter_context(_postgres_database(args.pg_url))
            if scenario.database == "postgresql"
            else None
        )
        stack = stack_cm.enter_context(
            _stack(scenario, pg_url, args.worker_concurrency, args.claim_trigger)
        )
        try:
            return asyncio.run(_measure(scenario, stack, args, log))
        except Exception:
            log("stack logs:\n" + stack.log_tails())
            raise


# --------------------------------------------------------------------------- report


def _stat_row(name: str, s: Stat, ref: float | None = None) -> str:
    ratio = f"{s.p50_ms / ref:8.0f}x" if ref else f"{'':>9}"
    return (
        f"  {name:<44} {s.n:>5} {fmt(s.p50_ms):>9} {fmt(s.p99_ms):>9} {fmt(s.max_ms, 1):>9} {ratio}"
    )


def _cpu_text(c: CpuWindow) -> str:
    if c.wall_s <= 0:
        return "n/a"

    def pct(x: float) -> str:
        return f"{100 * x / c.wall_s:.0f}%"

    return (
        f"server {c.server_s:.1f}s ({pct(c.server_s)}), worker {c.worker_s:.1f}s "
        f"({pct(c.worker_s)}), bench {c.bench_s:.1f}s ({pct(c.bench_s)}), other "
        f"{c.other_s:.1f}s ({pct(c.other_s)}) over {c.wall_s:.1f}s wall"
    )


def _print_report(r: ScenarioResult) -> None:
    b, lat, tp = r.baseline, r.latency, r.throughput
    ref = b.select1_driver.p50_ms
    print(f"\n=== {r.label} {r.scenario}: {r.title}")
    print(f"code under test: {r.code}; worker concurrency {r.worker_concurrency}")
    head = f"  {'ms':<44} {'n':>5} {'p50':>9} {'p99':>9} {'max':>9} {'p50/SEL1':>9}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    print(_stat_row(f"SELECT 1 ({b.driver}), baseline", b.select1_driver))
    if b.select1_sqlite3:
        print(_stat_row("SELECT 1 (sqlite3, same thread)", b.select1_sqlite3))
    print(_stat_row("SELECT 1 (SQLAlchemy AsyncEngine)", b.select1_sqlalchemy, ref))
    if b.notify_round_trip:
        print(_stat_row("pg_notify -> LISTEN callback", b.notify_round_trip, ref))
    print(_stat_row("submit -> processing (server clock)", lat.submit_to_processing, ref))
    print(
        _stat_row(
            "  same, jobs that arrived with nothing running", lat.idle_submit_to_processing, ref
        )
    )
    if lat.submit_to_claim is not None and lat.idle_submit_to_claim is not None:
        print(_stat_row("submit -> claim statement (DB trigger)", lat.submit_to_claim, ref))
        print(
            _stat_row(
                "  same, jobs that arrived with nothing running", lat.idle_submit_to_claim, ref
            )
        )
    print(_stat_row("client send -> processing", lat.client_send_to_processing, ref))
    print(_stat_row("POST /v1/generate response", lat.submit_response, ref))
    print(_stat_row("run time (processing -> completed)", lat.run_time))
    print(
        f"  latency phase: {lat.jobs} jobs at {lat.rate:g}/s, errors {lat.errors}, "
        f"arrived behind a queued job {lat.arrived_behind_queued}, not completed "
        f"{lat.not_completed}"
    )
    print(f"  cpu (latency phase): {_cpu_text(lat.cpu)}")
    print(
        f"  throughput: burst of {tp.jobs} over {tp.concurrency} connections: accepted in "
        f"{tp.accepted_s:.2f}s, {tp.completed} completed, errors {tp.errors}; server span "
        f"{tp.server_span_s:.2f}s -> {fmt(tp.jobs_per_s, 1)} jobs/s (client wall "
        f"{tp.client_wall_s:.2f}s -> {fmt(tp.jobs_per_s_client, 1)} jobs/s)"
    )
    print(
        f"  burst: submit p50/p99 {fmt(tp.submit_response.p50_ms, 1)}/"
        f"{fmt(tp.submit_response.p99_ms, 1)} ms, queue wait p50/p99 "
        f"{fmt(tp.queue_wait.p50_ms, 0)}/{fmt(tp.queue_wait.p99_ms, 0)} ms, run p50 "
        f"{fmt(tp.run_time.p50_ms, 0)} ms"
    )
    print(f"  cpu (burst): {_cpu_text(tp.cpu)}")
    p50 = lat.submit_to_processing.p50_ms
    if r.target_p50_ms is None:
        print(f"  submit->processing p50 {fmt(p50)} ms (no target: informational)")
    else:
        verdict = "PASS" if r.target_pass else "MISS"
        print(
            f"  target: submit->processing p50 {fmt(p50)} ms <= {r.target_p50_ms:g} ms: "
            f"{verdict}  ({r.ratio_p50_to_select1:.0f}x the {b.driver} SELECT 1 p50)"
        )
        if lat.submit_to_claim is not None:
            claim_p50 = lat.submit_to_claim.p50_ms
            claim_ok = "PASS" if claim_p50 <= r.target_p50_ms else "MISS"
            print(
                f"  (measured to the claim statement instead: p50 {fmt(claim_p50)} ms: {claim_ok})"
            )
    for note in r.notes:
        print(f"  note: {note}")


# --------------------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Submit-to-processing latency and lifecycle jobs/s next to SELECT 1."
    )
    p.add_argument("--jobs", type=int, default=200, help="latency phase: jobs (default 200)")
    p.add_argument("--rate", type=float, default=5.0, help="latency phase: submits/s (5)")
    p.add_argument("--burst", type=int, default=200, help="throughput phase: jobs (200)")
    p.add_argument("--concurrency", type=int, default=16, help="burst connections (16)")
    p.add_argument(
        "--select-iterations", type=int, default=2000, help="SELECT 1 round trips (2000)"
    )
    p.add_argument(
        "--worker-concurrency", type=int, default=4, help="MEDIAGATE_WORKER_CONCURRENCY (4)"
    )
    p.add_argument(
        "--scenarios",
        default="sqlite,postgres,sqlite-worker",
        help="comma-separated from: sqlite (A), postgres (B), sqlite-worker (C)",
    )
    p.add_argument("--skip-postgres", action="store_true", help="leave out scenario B")
    p.add_argument(
        "--pg-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="admin URL the bench database is created from (and dropped)",
    )
    p.add_argument(
        "--no-claim-trigger",
        dest="claim_trigger",
        action="store_false",
        help="do not add the bench trigger that stamps the claim statement",
    )
    p.add_argument("--max-seconds", type=float, default=1200.0, help="cap on the whole run")
    p.add_argument("--json", action="store_true", help="print a JSON summary only")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    if args.skip_postgres:
        keys = [k for k in keys if SCENARIOS[k].database != "postgresql"]
    if not keys:
        p.error("no scenario left to run")
    args.scenario_keys = keys
    if args.jobs < 1 or args.burst < 1 or args.rate <= 0 or args.concurrency < 1:
        p.error("--jobs, --burst, --rate and --concurrency must be positive")
    if not args.pg_url.startswith("postgresql"):
        p.error("--pg-url must be a postgresql URL")
    return args


class _Deadline(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)

    def log(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    # SIGTERM and the overall deadline unwind through the finally blocks (stop processes,
    # remove temp dirs, drop databases).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def on_alarm(*_: Any) -> None:
        raise _Deadline(f"run exceeded --max-seconds {args.max_seconds:g}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.max_seconds)
    results: list[ScenarioResult] = []
    failed: list[str] = []
    try:
        for key in args.scenario_keys:
            try:
                results.append(_run_scenario(SCENARIOS[key], args, log))
            except _Deadline:
                raise
            except Exception as exc:
                log(f"scenario {key} failed: {type(exc).__name__}: {exc}")
                failed.append(key)
    except _Deadline as exc:
        log(str(exc))
        failed.append("deadline")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "args": {k: v for k, v in vars(args).items() if k != "scenario_keys"},
        "scenarios": [asdict(r) for r in results],
        "failed": failed,
    }
    if args.json:
        print(json.dumps(json_safe(summary), indent=2))
    else:
        print(
            f"dispatch bench {summary['date']}  cpus={os.cpu_count()}  jobs={args.jobs} at "
            f"{args.rate:g}/s  burst={args.burst} x{args.concurrency} conns"
        )
        for r in results:
            _print_report(r)
        if failed:
            print(f"\nnot measured: {', '.join(failed)}")
    if failed:
        return 2
    missed = any(r.target_pass is False for r in results)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
