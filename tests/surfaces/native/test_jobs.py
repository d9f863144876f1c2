"""The job resource: event streams, cancel and Prefer: wait, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from tests.conftest import Server


def _submit(client: httpx.Client, **units: Any) -> str:
    r = client.post(
        "/v1/generate",
        json={
            "model": "nano-banana-pro",
            "prompt": "waves",
            "request_id": str(uuid.uuid4()),
            "units": units,
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["task_id"])


def _read_events(
    response: httpx.Response | Iterator[str], limit: int = 100
) -> list[dict[str, Any]]:
    """Parse an event stream into dicts with id, event, data (and comments as event ':').
    Pass an iterator of lines to stop early without closing the stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    lines = response.iter_lines() if isinstance(response, httpx.Response) else response
    for line in lines:
        if line.startswith(":"):
            events.append({"event": ":", "data": line[1:].strip()})
        elif line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            events.append(current)
            current = {}
        if len(events) >= limit:
            break
    return events


def test_stream_replays_a_finished_job_and_closes(server: Server) -> None:
    t = server.tenant()
    job_id = _submit(t.client, count=2)
    server.wait_job(t.client, job_id)
    with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in _read_events(r) if e["event"] != ":"]
    kinds = [e["event"] for e in events]
    assert kinds == ["status", "status", "progress", "progress", "output", "output", "completed"]
    assert [e["id"] for e in events] == list(range(1, 8))
    assert events[0]["data"] == {"job_id": job_id, "status": "queued"}
    assert events[1]["data"]["status"] == "processing"
    assert events[4]["data"]["url"].startswith(server.url + "/v1/assets/")
    assert httpx.get(events[4]["data"]["url"]).status_code == 200
    assert events[-1]["data"]["credits_charged"] == 40

    with t.client.stream("GET", f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "4"}) as r:
        resumed = [e for e in _read_events(r) if e["event"] != ":"]
    assert [e["id"] for e in resumed] == [5, 6, 7]


def test_stream_follows_a_running_job_live(server: Server) -> None:
    t = server.tenant(credits=10_000)
    job_id = _submit(t.client, count=4, resolution="4K")
    with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
        events = [e for e in _read_events(r) if e["event"] != ":"]
    progress = [e["data"]["progress"] for e in events if e["event"] == "progress"]
    assert progress == [0.25, 0.5, 0.75, 1.0]
    assert events[-1]["event"] == "completed"


def test_stream_link_token_works_without_a_key(server: Server) -> None:
    t = server.tenant()
    job_id = _submit(t.client)
    link = t.client.get(f"/v1/jobs/{job_id}").json()["data"]["links"]["stream"]
    assert link.startswith(f"/v1/jobs/{job_id}/stream?token=")
    anonymous = server.client()
    with anonymous.stream("GET", link) as r:
        assert r.status_code == 200
        assert _read_events(r)[-1]["event"] == "completed"
    token = link.split("token=")[1]
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert anonymous.get(f"/v1/jobs/{job_id}/stream?token={tampered}").status_code == 404
    other = server.tenant()
    other_job = _submit(other.client)
    assert anonymous.get(f"/v1/jobs/{other_job}/stream?token={token}").status_code == 404
    assert anonymous.get(f"/v1/jobs/{job_id}/stream").status_code == 401
    assert other.client.get(f"/v1/jobs/{job_id}/stream").status_code == 404


def test_stream_heartbeat_and_cap(server: Server) -> None:
    with server.sibling(
        own_database=True,
        embedded_workers=False,
        stream_heartbeat_seconds=0.2,
        max_streams_per_process=1,
    ) as idle:
        t = idle.tenant()
        client = idle.client(t.key)
        job_id = _submit(client)  # nobody runs it: it stays queued
        with client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
            lines = r.iter_lines()  # kept alive: dropping it would close the stream
            first = _read_events(lines, limit=3)
            busy = client.get(f"/v1/jobs/{job_id}/stream")
            assert busy.status_code == 503 and busy.json()["message"] == "too_many_streams"
        assert first[0]["data"]["status"] == "queued"
        assert {"event": ":", "data": "keep-alive"} in first[1:]
        # The slot was released when the client went away.
        deadline = time.monotonic() + 5
        while True:
            with client.stream("GET", f"/v1/jobs/{job_id}/stream") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_cancel_a_queued_job_releases_the_hold(server: Server) -> None:
    with server.sibling(own_database=True, embedded_workers=False) as idle:
        t = idle.tenant(credits=100)
        client = idle.client(t.key)
        job_id = _submit(client)
        assert client.get("/v1/credits/balance").json()["data"]["held"] == 20
        r = client.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["data"]["status"] == "canceled"
        assert client.get("/v1/credits/balance").json()["data"] == {
            "balance": 100,
            "held": 0,
            "available": 100,
        }
        again = client.post(f"/v1/jobs/{job_id}/cancel")
        assert again.status_code == 409 and again.json()["message"] == "job_not_cancelable"
        with client.stream("GET", f"/v1/jobs/{job_id}/stream") as s:
            assert [e["event"] for e in _read_events(s)] == ["status", "canceled"]
        queued = _submit(client)
        stranger = idle.client(idle.tenant().key)
        assert stranger.post(f"/v1/jobs/{queued}/cancel").status_code == 404


def test_cancel_a_running_job_stops_it_between_steps(server: Server) -> None:
    t = server.tenant(credits=10_000)
    job_id = _submit(t.client, count=8, resolution="4K")
    deadline = time.monotonic() + 20
    while t.client.get(f"/v1/jobs/{job_id}").json()["data"]["progress"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = t.client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200
    job = server.wait_job(t.client, job_id)
    assert job["status"] == "canceled"
    assert job["credits"]["charged"] == 0 and job["outputs"] == []
    assert t.client.get("/v1/credits/balance").json()["data"]["held"] == 0
    assert t.client.post(f"/v1/jobs/{job_id}/cancel").status_code == 409


def test_prefer_wait_returns_the_finished_job(server: Server) -> None:
    t = server.tenant()
    body = {"model": "z-image", "prompt": "dunes", "request_id": str(uuid.uuid4())}
    r = t.client.post("/v1/generate", json=body, headers={"Prefer": "wait=60"})
    assert r.status_code == 200 and r.headers["preference-applied"] == "wait=60"
    data = r.json()["data"]
    assert data["status"] == "completed"
    assert data["job"]["outputs"][0]["url"] and data["job"]["id"] == data["task_id"]


def test_prefer_wait_times_out_to_the_pending_job(server: Server) -> None:
    with server.sibling(own_database=True, embedded_workers=False) as idle:
        t = idle.tenant()
        client = idle.client(t.key)
        started = time.monotonic()
        r = client.post(
            "/v1/generate",
            headers={"Prefer": "wait=1"},
            json={"model": "z-image", "prompt": "x", "request_id": str(uuid.uuid4())},
        )
        assert 1 <= time.monotonic() - started < 10
        assert r.json()["data"]["status"] == "pending"
        assert r.json()["data"]["job"]["status"] == "queued"


def test_prefer_wait_limits(server: Server) -> None:
    t = server.tenant()
    for value, status in (
        ("wait=300", 200),
        ("wait=301", 400),
        ("wait=0", 400),
        ("wait=abc", 400),
        ("respond-async", 200),
    ):
        r = t.client.post(
            "/v1/generate",
            headers={"Prefer": value},
            json={"model": "z-image", "prompt": "x", "request_id": str(uuid.uuid4())},
        )
        assert r.status_code == status, (value, r.text)


def test_a_finished_job_wakes_a_waiting_request_promptly(server: Server) -> None:
    t = server.tenant()
    job_id = _submit(t.client)
    results: list[str] = []

    def follow() -> None:
        with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
            results.extend(e["event"] for e in _read_events(r))

    thread = threading.Thread(target=follow)
    thread.start()
    thread.join(20)
    assert results[-1] == "completed"
