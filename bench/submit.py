"""Submit throughput: ``POST /v1/generate`` next to ``GET /healthz`` of one server, one run.

What it measures
----------------
The script starts its own server (``mediagate serve --no-workers`` on a free port, a fresh
temporary data dir, SQLite by default), waits for ``/healthz``, creates a ``pro`` workspace with
plenty of credits and a sandbox key through the CLI, and then drives it from separate client
processes (``--clients``, default 1), so that the load generator never shares an interpreter or
an event loop with the server (on a 2-core machine: one core each, roughly):

* **Phase 1, peak (closed loop).** ``--concurrency`` keep-alive connections each send the next
  request as soon as the previous one is answered, for ``--duration`` seconds after ``--warmup``
  seconds that are not counted. Rounds alternate ``healthz, generate, healthz, generate, ...``
  (``--rounds``, default 2) so that drift on a noisy machine hits both endpoints alike; the peak
  of an endpoint is the mean of its rounds. Reported: requests/s of successful answers, p50/p99
  latency, errors, and the ratio ``generate_rps / healthz_rps``. ``/healthz`` is the ceiling of
  the HTTP stack (uvicorn, routing, JSON) on this machine; the ratio says how much of it a real
  submit leaves.
* **Phase 2, latency at half of peak (open loop).** Requests are *scheduled* at a fixed rate of
  50% of each endpoint's measured peak, whether or not earlier ones have been answered, and
  latency is taken from the scheduled time, not the send time, so that a stalled server cannot
  hide its queue (no coordinated omission). Requests still unanswered 10 s after the window
  count as errors.

Every generate is a fresh job (unique ``request_id``): credit hold, job row, event and
idempotency record, written by the server's group-commit batcher (``jobs/batch.py``) in a
transaction it shares with the submits that arrived alongside. Workers are off
(``--no-workers``) so that builtin image rendering does not compete with the API for the CPU;
``--server-workers`` runs the same measurement with the in-process workers on.

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams (``--client raw``,
the default): ``httpx.AsyncClient`` costs more CPU per request than the server's ``/healthz``
does (about 340 requests/s at 32 connections on the 2-core box) and would measure itself.
``--client httpx`` is kept for comparison. The client runs with the garbage collector off during
a window, so that its pauses are not reported as server latency.

Besides rps and latency, each row shows the CPU used in the window (100% = one core) by the
server process, by the client process(es) and by everything else on the machine ("other": other
users of a shared host, kernel work not charged to either process, and with ``--database-url``
the PostgreSQL server), plus the worst lateness of the client's event loop. A client near 100%
CPU, a large "other" or a large client lag each mean that a number is not the server's alone.

Targets (from the issue): submit throughput >= 30% of healthz throughput on SQLite, and p99 of
generate under 25 ms at half of peak load.

How to run
----------
From the repository root::

    .venv/bin/python bench/submit.py                      # SQLite, 32 connections, 5 s windows
    .venv/bin/python bench/submit.py --duration 10 --concurrency 64 --json
    .venv/bin/python bench/submit.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

With ``--database-url`` a fresh database ``mg_bench_<random>`` is created on that server (with
asyncpg, ``CREATE DATABASE``), migrated with ``mediagate db upgrade``, and dropped at the end.
The server is always stopped (terminate, wait) and the temporary data dir removed. The server
runs whatever ``mediagate`` package ``.venv/bin/mediagate`` imports; point ``PYTHONPATH`` at
another checkout's ``src`` to measure that instead (the report names the code under test).
Exit status: 0, or 2 when no request of an endpoint succeeded; with ``--check``, 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

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
RATIO_TARGET = 0.30
P99_TARGET_MS = 25.0
PROMPT = "a lighthouse at dawn, volumetric fog, 35mm"
OPEN_LOOP_GRACE_S = 10.0
OPEN_LOOP_MAX_CONNECTIONS = 256
CREDITS = 100_000_000

Mode = Literal["closed", "open"]
Endpoint = Literal["healthz", "generate", "estimate"]
ClientKind = Literal["raw", "httpx"]


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True)
class LoadSpec:
    """One client process's share of one phase (picklable; sent to a client process)."""

    host: str
    port: int
    endpoint: Endpoint
    mode: Mode
    client: ClientKind
    api_key: str | None
    concurrency: int  # closed loop: connections of this process
    rate: float  # open loop: total requests/s of all processes
    process_index: int
    processes: int
    warmup: float
    duration: float
    start_at: float  # time.time() at which every process starts
    tag: str


@dataclass
class ClientResult:
    ok: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, successful, in window
    cpu_seconds: float = 0.0  # this client process, during the window
    connections: int = 0  # connections (callers) opened
    loop_lag_ms_max: float = 0.0  # worst lateness of this client's event loop in the window


def _client_run(spec: LoadSpec) -> ClientResult:
    """Entry point of a client process."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    # No collector pauses in the load generator: they would show up as server latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_client_main(spec))
    finally:
        gc.enable()
        gc.unfreeze()


class _Requests:
    """The next request of a phase; every generate gets a request_id of its own."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.count = 0
        self.host = f"{spec.host}:{spec.port}"

    def body(self) -> dict[str, str]:
        if self.spec.endpoint == "estimate":
            return {"model": "z-image"}
        self.count += 1
        rid = f"{self.spec.tag}-{self.spec.process_index}-{self.count}"
        return {"model": "z-image", "prompt": PROMPT, "request_id": rid}

    def path(self) -> str:
        return "/v1/credits/estimate" if self.spec.endpoint == "estimate" else "/v1/generate"

    def raw(self) -> bytes:
        if self.spec.endpoint == "healthz":
            return f"GET /healthz HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        payload = json.dumps(self.body(), separators=(",", ":")).encode()
        head = (
            f"POST {self.path()} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.spec.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    def good(self, status: int, body: bytes) -> bool:
        if self.spec.endpoint == "healthz":
            return status == 200
        return status == 200 and b'"code":0' in body


class _Caller(Protocol):
    async def call(self) -> bool: ...

    async def aclose(self) -> None: ...


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if chunked:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size + 2))
        await reader.readuntil(b"\r\n")
        return status, b"".join(p[:-2] for p in parts), close
    if length is None:
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


class _RawCaller:
    """One keep-alive HTTP/1.1 connection written by hand: a load generator that costs the
    client a fraction of what it costs the server (httpx costs more than the server does)."""

    def __init__(self, spec: LoadSpec, requests: _Requests, kinds: Counter[str]) -> None:
        self.spec, self.requests, self.kinds = spec, requests, kinds
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> bool:
        request = self.requests.raw()
        for attempt in (0, 1):
            reused = self.writer is not None
            try:
                if self.reader is None or self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(
                        self.spec.host, self.spec.port
                    )
                self.writer.write(request)
                status, body, close = await _read_response(self.reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                await self.aclose()
                # A keep-alive connection the server closed while idle: once more, afresh.
                if attempt == 0 and reused:
                    continue
                self.kinds[type(exc).__name__] += 1
                return False
            if close:
                await self.aclose()
            if self.requests.good(status, body):
                return True
            self.kinds[f"http {status}"] += 1
            return False
        return False  # pragma: no cover - the loop always returns

    async def aclose(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _HttpxCaller:
    """The same request through a shared ``httpx.AsyncClient`` (``--client httpx``)."""

    def __init__(self, client: httpx.AsyncClient, requests: _Requests, kinds: Counter[str]):
        self.client, self.requests, self.kinds = client, requests, kinds

    async def call(self) -> bool:
        try:
            if self.requests.spec.endpoint == "healthz":
                resp = await self.client.get("/healthz")
            else:
                resp = await self.client.post(self.requests.path(), json=self.requests.body())
        except httpx.HTTPError as exc:
            self.kinds[type(exc).__name__] += 1
            return False
        if self.requests.good(resp.status_code, resp.content):
            return True
        self.kinds[f"http {resp.status_code}"] += 1
        return False

    async def aclose(self) -> None:
        return None


class _Pool:
    """Callers for the open loop: reuse an idle one, else open one, up to ``cap``."""

    def __init__(self, new: Callable[[], _Caller], cap: int) -> None:
        self.new, self.cap = new, cap
        self.idle: asyncio.LifoQueue[_Caller] = asyncio.LifoQueue()
        self.all: list[_Caller] = []

    async def acquire(self) -> _Caller:
        if self.idle.empty() and len(self.all) < self.cap:
            caller = self.new()
            self.all.append(caller)
            return caller
        return await self.idle.get()

    def release(self, caller: _Caller) -> None:
        self.idle.put_nowait(caller)


async def _client_main(spec: LoadSpec) -> ClientResult:
    result = ClientResult()
    kinds: Counter[str] = Counter()
    requests = _Requests(spec)
    cap = spec.concurrency if spec.mode == "closed" else OPEN_LOOP_MAX_CONNECTIONS
    headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
    client = httpx.AsyncClient(
        base_url=f"http://{spec.host}:{spec.port}",
        headers=headers,
        limits=httpx.Limits(max_connections=cap, max_keepalive_connections=cap),
        timeout=30.0,
    )
    callers: list[_Caller] = []

    def new_caller() -> _Caller:
        caller: _Caller
        if spec.client == "raw":
            caller = _RawCaller(spec, requests, kinds)
        else:
            caller = _HttpxCaller(client, requests, kinds)
        callers.append(caller)
        return caller

    try:
        delay = spec.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        win_start = t0 + spec.warmup
        win_end = win_start + spec.duration
        cpu: dict[str, float] = {}

        async def cpu_probe() -> None:
            """CPU of this process over the window, and how late its event loop ran."""
            await asyncio.sleep(max(0.0, win_start - time.perf_counter()))
            cpu["start"] = time.process_time()
            while (before := time.perf_counter()) < win_end:
                await asyncio.sleep(0.005)
                lag = time.perf_counter() - before - 0.005
                result.loop_lag_ms_max = max(result.loop_lag_ms_max, lag * 1000)
            cpu["end"] = time.process_time()

        probe = asyncio.create_task(cpu_probe())
        if spec.mode == "closed":
            await _closed_loop(new_caller, spec, win_start, win_end, result)
        else:
            await _open_loop(_Pool(new_caller, cap), spec, t0, win_start, win_end, result)
        await probe
        result.cpu_seconds = cpu.get("end", 0.0) - cpu.get("start", 0.0)
    finally:
        for caller in callers:
            await caller.aclose()
        await client.aclose()
    result.error_kinds.update(kinds)
    result.connections = len(callers) if spec.client == "raw" else cap
    return result


async def _closed_loop(
    new_caller: Callable[[], _Caller],
    spec: LoadSpec,
    win_start: float,
    win_end: float,
    result: ClientResult,
) -> None:
    async def connection() -> None:
        caller = new_caller()
        while (start := time.perf_counter()) < win_end:
            good = await caller.call()
            end = time.perf_counter()
            if not win_start <= end <= win_end:
                continue  # warmup, or the overhang after the window
            if good:
                result.ok += 1
                if start >= win_start:
                    result.latencies.append(end - start)
            else:
                result.errors += 1

    await asyncio.gather(*(connection() for _ in range(spec.concurrency)))


async def _open_loop(
    pool: _Pool,
    spec: LoadSpec,
    t0: float,
    win_start: float,
    win_end: float,
    result: ClientResult,
) -> None:
    interval = 1.0 / spec.rate
    step = interval * spec.processes  # this process sends every processes-th request
    offset = interval * spec.process_index
    tasks: set[asyncio.Task[None]] = set()
    in_window: list[asyncio.Task[None]] = []

    async def fire(scheduled: float, counted: bool) -> None:
        caller = await pool.acquire()  # waiting for a connection counts as latency
        try:
            good = await caller.call()
        finally:
            pool.release(caller)
        if not counted:
            return
        if good:
            result.ok += 1
            result.latencies.append(time.perf_counter() - scheduled)
        else:
            result.errors += 1

    i = 0
    while (scheduled := t0 + offset + i * step) < win_end:
        i += 1
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        counted = scheduled >= win_start
        task = asyncio.create_task(fire(scheduled, counted))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if counted:
            in_window.append(task)
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=OPEN_LOOP_GRACE_S)
        for task in pending:
            task.cancel()
        unanswered = sum(1 for t in in_window if t in pending)
        if unanswered:
            result.errors += unanswered
            result.error_kinds["unanswered"] = unanswered


# --------------------------------------------------------------------------- measurement


@dataclass
class PhaseResult:
    endpoint: str
    mode: Mode
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    errors: int
    error_kinds: dict[str, int]
    server_cpu_pct: float
    client_cpu_pct: float
    other_cpu_pct: float = 0.0
    client_lag_ms_max: float = 0.0
    target_rps: float | None = None
    rounds_rps: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace, base_url: str, api_key: str, pid: int) -> None:
        self.args = args
        self.base_url = base_url
        self.host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.api_key = api_key
        self.server_pid = pid
        self.tag = secrets.token_hex(4)
        self.pool = ProcessPoolExecutor(
            max_workers=args.clients, mp_context=multiprocessing.get_context("spawn")
        )
        # Start the client processes now, outside any measured window.
        list(self.pool.map(_noop, range(args.clients)))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)

    def run(self, endpoint: Endpoint, mode: Mode, label: str, rate: float = 0.0) -> PhaseResult:
        args = self.args
        start_at = time.time() + 0.5
        futures: list[Future[ClientResult]] = []
        for index in range(args.clients):
            share = args.concurrency // args.clients + (
                1 if index < args.concurrency % args.clients else 0
            )
            spec = LoadSpec(
                host=self.host,
                port=self.port,
                endpoint=endpoint,
                mode=mode,
                client=args.client,
                api_key=self.api_key if endpoint != "healthz" else None,
                concurrency=max(1, share),
                rate=rate,
                process_index=index,
                processes=args.clients,
                warmup=args.warmup,
                duration=args.duration,
                start_at=start_at,
                tag=f"{self.tag}-{label}",
            )
            futures.append(self.pool.submit(_client_run, spec))
        # Server CPU over the measured window, sampled from this (idle) process.
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        cpu0, busy0 = proc_cpu_seconds(self.server_pid), machine_busy_seconds()
        time.sleep(max(0.0, start_at + args.warmup + args.duration - time.time()))
        cpu1, busy1 = proc_cpu_seconds(self.server_pid), machine_busy_seconds()
        results = [f.result(timeout=args.warmup + args.duration + 60) for f in futures]
        phase = self._merge(endpoint, mode, label, results, cpu1 - cpu0, rate)
        # Whatever else kept the machine busy meanwhile (other users of a shared host).
        busy = 100 * (busy1 - busy0) / args.duration
        phase.other_cpu_pct = max(0.0, busy - phase.server_cpu_pct - phase.client_cpu_pct)
        return phase

    def _merge(
        self,
        endpoint: str,
        mode: Mode,
        label: str,
        results: list[ClientResult],
        server_cpu: float,
        rate: float,
    ) -> PhaseResult:
        duration = self.args.duration
        latencies = sorted(x for r in results for x in r.latencies)
        kinds: Counter[str] = Counter()
        for r in results:
            kinds.update(r.error_kinds)
        ok = sum(r.ok for r in results)
        return PhaseResult(
            endpoint=endpoint,
            mode=mode,
            label=label,
            rps=ok / duration,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=(latencies[-1] if latencies else math.nan) * 1000,
            ok=ok,
            errors=sum(r.errors for r in results),
            error_kinds=dict(kinds),
            server_cpu_pct=100 * server_cpu / duration,
            client_cpu_pct=100 * sum(r.cpu_seconds for r in results) / duration,
            client_lag_ms_max=max(r.loop_lag_ms_max for r in results),
            target_rps=rate if mode == "open" else None,
        )


def _noop(_: int) -> int:
    return os.getpid()


def _combine(rounds: list[PhaseResult]) -> PhaseResult:
    """Several closed-loop rounds of one endpoint as one result: mean rps, median percentiles."""
    first = rounds[0]
    total_ok = sum(r.ok for r in rounds)
    kinds: Counter[str] = Counter()
    for r in rounds:
        kinds.update(r.error_kinds)
    n = len(rounds)
    return PhaseResult(
        endpoint=first.endpoint,
        mode=first.mode,
        label="peak",
        rps=sum(r.rps for r in rounds) / n,
        # The median of the rounds' percentiles; with 2 rounds, their mean.
        p50_ms=_median([r.p50_ms for r in rounds]),
        p99_ms=_median([r.p99_ms for r in rounds]),
        max_ms=max(r.max_ms for r in rounds),
        ok=total_ok,
        errors=sum(r.errors for r in rounds),
        error_kinds=dict(kinds),
        server_cpu_pct=sum(r.server_cpu_pct for r in rounds) / n,
        client_cpu_pct=sum(r.client_cpu_pct for r in rounds) / n,
        other_cpu_pct=sum(r.other_cpu_pct for r in rounds) / n,
        client_lag_ms_max=max(r.client_lag_ms_max for r in rounds),
        rounds_rps=[round(r.rps, 1) for r in rounds],
    )


def _median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


# --------------------------------------------------------------------------- server lifecycle


@contextlib.contextmanager
def _postgres_database(url: str | None) -> Iterator[str | None]:
    """A fresh database next to ``url`` for the run, dropped afterwards; None for SQLite."""
    if not url:
        yield None
        return
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"mg_bench_{secrets.token_hex(4)}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Server:
    base_url: str
    api_key: str
    pid: int
    log_path: Path
    code: str  # which mediagate the server runs: package path and git state

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def _server(args: argparse.Namespace, database_url: str | None) -> Iterator[Server]:
    """Start ``mediagate serve`` in a fresh data dir, with a funded workspace and a key."""
    data_dir = Path(tempfile.mkdtemp(prefix="mg-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "MEDIAGATE_DATA_DIR": str(data_dir),
        "MEDIAGATE_CATALOG_PATH": str(write_bench_catalog(data_dir)),
        "MEDIAGATE_HOST": "127.0.0.1",
        "MEDIAGATE_PORT": str(port),
        "MEDIAGATE_SECRET_KEY": secrets.token_urlsafe(32),
        "COLUMNS": "500",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    env.pop("MEDIAGATE_DATABASE_URL", None)
    if database_url:
        env["MEDIAGATE_DATABASE_URL"] = database_url
        cli(env, "db", "upgrade")
    log_path = data_dir / "server.log"
    cmd = [mediagate_bin(), "serve", "--port", str(port)]
    cmd.append("--workers" if args.server_workers else "--no-workers")
    proc: subprocess.Popen[bytes] | None = None
    base_url = f"http://127.0.0.1:{port}"
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_healthy(proc, base_url, log_path)
        cli(env, "workspaces", "create", "bench", "--plan", "bench", "--credits", str(CREDITS))
        out = cli(env, "keys", "create", "--workspace", "bench", "--mode", "sandbox")
        api_key = [line for line in out.split() if line.startswith("mg_")][-1]
        yield Server(base_url, api_key, proc.pid, log_path, code_under_test(env))
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if args.keep_data:
            print(f"data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}"
            )
        # Our own server has said it listens (not another process that took the free port).
        if "Uvicorn running on" in log_path.read_text(errors="replace"):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after 60 s:\n{log_path.read_text()[-3000:]}")


# --------------------------------------------------------------------------- report


def _report_rates(
    args: argparse.Namespace, backend: str, code: str, phases: list[PhaseResult]
) -> None:
    if args.json:
        summary = {"backend": backend, "code": code, "phases": [asdict(r) for r in phases]}
        print(json.dumps(json_safe(summary), indent=2))
        return
    print(f"\nbackend={backend}  window={args.duration:g}s  code={code}")
    for r in phases:
        print(
            f"generate at {r.label:>8}: {r.rps:8.1f} rps  p50 {r.p50_ms:6.1f} ms  "
            f"p99 {r.p99_ms:6.1f} ms  server CPU {r.server_cpu_pct:5.1f}%  "
            f"other CPU {r.other_cpu_pct:5.1f}%  errors {r.errors}"
        )


def _report(
    args: argparse.Namespace,
    backend: str,
    code: str,
    peak: list[PhaseResult],
    half: list[PhaseResult],
) -> dict[str, Any]:
    by = {(r.endpoint, r.label): r for r in [*peak, *half]}
    hz, gen = by[("healthz", "peak")], by[("generate", "peak")]
    gen_half = by[("generate", "half")]
    ratio = gen.rps / hz.rps if hz.rps else math.nan
    ratio_ok = ratio >= RATIO_TARGET
    p99_ok = gen_half.p99_ms < P99_TARGET_MS and gen_half.errors == 0
    summary: dict[str, Any] = {
        "backend": backend,
        "code": code,
        "server_workers": args.server_workers,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "client": args.client,
        "client_processes": args.clients,
        "cpu_count": os.cpu_count(),
        "phases": [asdict(r) for r in [*peak, *half]],
        "ratio_generate_healthz": ratio,
        "ratio_target": RATIO_TARGET,
        "ratio_pass": ratio_ok,
        "generate_p99_half_peak_ms": gen_half.p99_ms,
        "p99_target_ms": P99_TARGET_MS,
        "p99_pass": p99_ok,
    }
    if args.json:
        print(json.dumps(json_safe(summary), indent=2))
        return summary
    workers = "on" if args.server_workers else "off (--no-workers)"
    print(
        f"\nbackend={backend}  workers={workers}  concurrency={args.concurrency}  "
        f"window={args.duration:g}s (+{args.warmup:g}s warmup)  rounds={args.rounds}  "
        f"client={args.client} x{args.clients}  cpus={os.cpu_count()}"
    )
    print(f"code under test: {code}")
    head = (
        f"{'endpoint':<10} {'load':<22} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>7} {'srv cpu':>8} {'cli cpu':>8} {'other':>6} {'cli lag':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in [*peak, *half]:
        if r.mode == "closed":
            load = f"closed, {args.concurrency} conns"
        else:
            load = f"open, {r.target_rps:.0f}/s (50%)"
        print(
            f"{r.endpoint:<10} {load:<22} {r.rps:>8.1f} {fmt(r.p50_ms, 2):>8} "
            f"{fmt(r.p99_ms, 2):>8} {fmt(r.max_ms, 1):>8} {r.errors:>7} "
            f"{r.server_cpu_pct:>7.0f}% {r.client_cpu_pct:>7.0f}% {r.other_cpu_pct:>5.0f}% "
            f"{r.client_lag_ms_max:>6.1f}ms"
        )
        if r.error_kinds:
            print(f"{'':<10} errors: {r.error_kinds}")
    print(
        "(cpu: % of one core in the window, for the server process, the client process(es) and"
        " everything else on the machine; cli lag: worst lateness of the client's event loop)"
    )
    print(f"per-round peak rps: healthz {hz.rounds_rps}  generate {gen.rounds_rps}")
    print(
        f"ratio generate/healthz = {ratio:.3f} (target >= {RATIO_TARGET:.2f}) "
        f"{'PASS' if ratio_ok else 'MISS'}"
    )
    print(
        f"p99 at half peak = {fmt(gen_half.p99_ms, 2)} ms (target < {P99_TARGET_MS:g} ms) "
        f"{'PASS' if p99_ok else 'MISS'}"
    )
    phases = [*peak, *half]
    if max(r.other_cpu_pct for r in phases) >= 25:
        print(
            "note: other processes used up to "
            f"{max(r.other_cpu_pct for r in phases):.0f}% of a core during the windows: the "
            "machine was shared; expect noise, repeat the run."
        )
    if max(r.client_lag_ms_max for r in phases) >= 10:
        print(
            "note: the client's event loop ran up to "
            f"{max(r.client_lag_ms_max for r in phases):.0f} ms late: part of the reported "
            "latency may be the client's (open-loop latencies are taken from the schedule)."
        )
    if hz.client_cpu_pct >= 85:
        print(
            f"note: the client used {hz.client_cpu_pct:.0f}% of a core during healthz peak: the "
            "load generator may be the limit there, so healthz rps is a lower bound and the "
            "ratio an upper bound (try --clients 2)."
        )
    return summary


# --------------------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="POST /v1/generate vs GET /healthz throughput and latency of one server."
    )
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per window")
    p.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before each")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    p.add_argument("--rounds", type=int, default=2, help="healthz,generate pairs at peak")
    p.add_argument("--clients", type=int, default=1, help="client processes")
    p.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator: hand-written keep-alive HTTP/1.1 (default) or httpx.AsyncClient",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (postgresql+asyncpg://...); a fresh database is made next to it",
    )
    p.add_argument("--server-workers", action="store_true", help="serve with in-process workers on")
    p.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    p.add_argument("--json", action="store_true", help="print a JSON summary only")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="also measure POST /v1/credits/estimate: the same auth, rate limit, validation "
        "and pricing as a submit, one read and no write",
    )
    p.add_argument(
        "--rates",
        type=lambda text: [float(rate) for rate in text.split(",")],
        default=None,
        help="instead of the peak and half-peak phases: generate only, open loop, at each of "
        "these submits per second (e.g. 190,380,570), so that codes compare at equal load",
    )
    args = p.parse_args(argv)
    if args.rates is not None and (not args.rates or min(args.rates) <= 0):
        p.error("--rates must be positive numbers")
    if args.duration <= 0 or args.concurrency < 1 or args.rounds < 1 or args.clients < 1:
        p.error("duration, concurrency, rounds and clients must be positive")
    if args.database_url and not args.database_url.startswith("postgresql"):
        p.error("--database-url must be a postgresql URL (SQLite is the default)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    quiet = args.json

    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    backend = "postgresql" if args.database_url else "sqlite"
    endpoints: tuple[Endpoint, Endpoint] = ("healthz", "generate")
    # A SIGTERM to the script still runs the cleanup below (server, database, temp dir).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with _postgres_database(args.database_url) as pg_url, _server(args, pg_url) as server:
        log(f"server pid {server.pid} at {server.base_url} ({backend}), code {server.code}")
        bench = Bench(args, server.base_url, server.api_key, server.pid)
        if args.rates:
            try:
                fixed = [bench.run("generate", "open", f"{rate:g}/s", rate) for rate in args.rates]
            finally:
                bench.close()
            _report_rates(args, backend, server.code, fixed)
            return 0
        try:
            rounds: dict[str, list[PhaseResult]] = {"healthz": [], "generate": []}
            for n in range(args.rounds):
                for endpoint in endpoints:
                    r = bench.run(endpoint, "closed", f"peak{n}")
                    log(f"  round {n + 1} {endpoint:<8} {r.rps:8.1f} rps  p99 {r.p99_ms:.1f} ms")
                    rounds[endpoint].append(r)
                    if r.ok == 0:
                        log(f"no successful {endpoint}: {r.error_kinds}; server log:")
                        log(server.log_tail())
                        return 2
            peak = [_combine(rounds[e]) for e in endpoints]
            half = []
            for endpoint, r in zip(endpoints, peak, strict=True):
                h = bench.run(endpoint, "open", "half", rate=max(1.0, r.rps / 2))
                log(f"  half    {endpoint:<8} {h.rps:8.1f} rps  p99 {h.p99_ms:.1f} ms")
                half.append(h)
            if args.ceiling:
                ceiling = bench.run("estimate", "closed", "ceiling")
                log(
                    f"  ceiling estimate {ceiling.rps:8.1f} rps  p99 {ceiling.p99_ms:.1f} ms  "
                    f"ratio to healthz {ceiling.rps / peak[0].rps:.3f}"
                )
        finally:
            bench.close()
        if any(r.errors for r in [*peak, *half]):
            log("some requests failed; server log tail:\n" + server.log_tail())
    summary = _report(args, backend, server.code, peak, half)
    missed = not (summary["ratio_pass"] and summary["p99_pass"])
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
