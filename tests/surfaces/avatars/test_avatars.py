"""The avatars API over real HTTP, with every limit at its edge, both input modes, saving,
idempotency and a webhook carrying the metadata."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from mediagate.clock import FrozenClock, utcnow
from mediagate.db.database import Database
from mediagate.idempotency.service import IdempotencyService
from mediagate.jobs.service import CLAIM_LEASE
from mediagate.workspaces.models import Workspace
from tests.conftest import Server, finished, poll
from tests.webhooks.conftest import Receiver

MiB = 1024 * 1024


def _ref(color: tuple[int, int, int] = (200, 80, 60), fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _padded_png_b64(total: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    data = buf.getvalue()
    return base64.b64encode(data + b"\0" * (total - len(data))).decode()


def _wait(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return poll(lambda: client.get(f"/api/v1/jobs/{job_id}").json(), finished, timeout)


def test_library_assisted_generation(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/api/v1/avatars/generate",
        json={
            "prompt": "a friendly barista, warm studio light",
            "hints": {"style": "vivid", "composition": "headshot", "unknown_key": "ignored"},
            "correlation_id": "trace-1",
            "metadata": {"customer": "42"},
        },
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["object"] == "job" and body["status"] == "queued"
    assert body["id"].startswith("req_") and isinstance(body["created"], int)
    uuid.UUID(body["job_id"])
    job = _wait(t.client, body["job_id"])
    assert job["status"] == "completed", job
    assert job["correlation_id"] == "trace-1" and job["metadata"] == {"customer": "42"}
    assert job["data"]["input_mode"] == "library"
    assert job["data"]["library_reference"] == "warm-studio"  # best tag match
    image = Image.open(io.BytesIO(httpx.get(job["data"]["avatar"]["image_url"]).content))
    assert image.size == (1024, 1024)


def test_bring_your_own_references_and_output_controls(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/api/v1/avatars/generate",
        json={
            "prompt": "noir detective",
            "hints": {"style": "noir"},
            "reference_images": ["data:image/png;base64," + _ref(), _ref(fmt="JPEG")],
            "output": {"size": "512x512", "format": "webp", "background": "transparent"},
        },
    )
    assert r.status_code == 202, r.text
    job = _wait(t.client, r.json()["job_id"])
    assert job["status"] == "completed", job
    assert job["data"]["input_mode"] == "provided" and job["data"]["library_reference"] is None
    data = httpx.get(job["data"]["avatar"]["image_url"]).content
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP" and image.size == (512, 512) and image.mode == "RGBA"
    assert image.getpixel((2, 2))[3] == 0  # transparent corner


@pytest.mark.parametrize(
    ("overrides", "status", "param"),
    [
        ({"prompt": "p" * 5000}, 202, None),
        ({"prompt": "p" * 5001}, 400, "prompt"),
        ({"prompt": "   "}, 400, "prompt"),
        ({"prompt": ""}, 400, "prompt"),
        ({"correlation_id": "c" * 200}, 202, None),
        ({"correlation_id": "c" * 201}, 400, None),
        ({"metadata": {f"k{i}": "v" for i in range(16)}}, 202, None),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata"),
        ({"metadata": {"k": "v" * 500}}, 202, None),
        ({"metadata": {"k": "v" * 501}}, 400, None),
        ({"hints": {"style": {"nested": True}}}, 400, None),
        ({"hints": {"tags": ["a", "b"]}}, 400, None),
        ({"output": {"format": "jpeg", "background": "transparent"}}, 400, None),
        ({"output": {"size": "2048x2048"}}, 400, None),
        ({"reference_images": []}, 400, "reference_images"),
        ({"colour": "red"}, 400, "colour"),
    ],
)
def test_limits_at_their_edges(
    server: Server, overrides: dict[str, Any], status: int, param: str | None
) -> None:
    t = server.tenant()
    r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x", **overrides})
    assert r.status_code == status, r.text
    if status == 400:
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        if param:
            assert error["param"].startswith(param)


def test_reference_count_size_and_type(server: Server) -> None:
    t = server.tenant(credits=10_000)
    refs = [_ref((i * 30, 0, 0)) for i in range(7)]
    ok = t.client.post(
        "/api/v1/avatars/generate", json={"prompt": "x", "reference_images": refs[:6]}
    )
    assert ok.status_code == 202
    r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x", "reference_images": refs})
    assert r.status_code == 400 and r.json()["error"]["param"] == "reference_images"
    big_ok = t.client.post(
        "/api/v1/avatars/generate",
        json={"prompt": "x", "reference_images": [_padded_png_b64(15 * MiB)]},
    )
    assert big_ok.status_code == 202, big_ok.text
    too_big = t.client.post(
        "/api/v1/avatars/generate",
        json={"prompt": "x", "reference_images": [_padded_png_b64(15 * MiB + 1)]},
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["param"] == "reference_images.0"
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    for bad in (
        base64.b64encode(gif.getvalue()).decode(),
        "not base64!!",
        "data:image/png;base64," + base64.b64encode(b"BM" + b"\0" * 60).decode(),
    ):
        r = t.client.post(
            "/api/v1/avatars/generate", json={"prompt": "x", "reference_images": [bad]}
        )
        assert r.status_code == 400, bad[:20]


def test_save_list_and_get(server: Server) -> None:
    t = server.tenant(credits=1000)
    job_id = t.client.post("/api/v1/avatars/generate", json={"prompt": "a pilot"}).json()["job_id"]
    _wait(t.client, job_id)
    saved = t.client.post("/api/v1/avatars/save", json={"job_id": job_id, "name": "CEO hero v2"})
    assert saved.status_code == 201, saved.text
    avatar = saved.json()
    assert avatar["object"] == "avatar" and avatar["name"] == "CEO hero v2"
    assert avatar["job_id"] == job_id and isinstance(avatar["created"], int)
    assert httpx.get(avatar["image_url"]).status_code == 200
    got = t.client.get(f"/api/v1/avatars/{avatar['id']}").json()
    assert got["id"] == avatar["id"]
    listing = t.client.get("/api/v1/avatars?limit=20&offset=0").json()
    assert listing["total"] == 1 and listing["data"][0]["id"] == avatar["id"]
    assert t.client.get("/api/v1/avatars?limit=101").status_code == 400
    assert t.client.get("/api/v1/avatars?limit=0").status_code == 400
    assert t.client.get("/api/v1/avatars?offset=-1").status_code == 400
    other = server.tenant()
    assert other.client.get(f"/api/v1/avatars/{avatar['id']}").status_code == 404
    assert (
        other.client.post("/api/v1/avatars/save", json={"job_id": job_id, "name": "x"}).status_code
        == 404
    )
    image_job = t.client.post(
        "/v1/generate", json={"model": "z-image", "prompt": "x", "request_id": str(uuid.uuid4())}
    ).json()["data"]
    r = t.client.post("/api/v1/avatars/save", json={"job_id": image_job["task_id"], "name": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_an_avatar_job"


def test_saving_an_unfinished_avatar_is_409(server: Server) -> None:
    with server.sibling(own_database=True, embedded_workers=False) as idle:
        t = idle.tenant()
        job_id = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"}).json()["job_id"]
        r = t.client.post("/api/v1/avatars/save", json={"job_id": job_id, "name": "x"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_completed"


def test_idempotency_key(server: Server) -> None:
    t = server.tenant(credits=100)
    key = "k" * 255
    body = {"prompt": "a sailor", "metadata": {"a": "1"}}
    first = t.client.post("/api/v1/avatars/generate", json=body, headers={"Idempotency-Key": key})
    again = t.client.post("/api/v1/avatars/generate", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.content == again.content  # byte for byte
    other = t.client.post(
        "/api/v1/avatars/generate",
        json={**body, "prompt": "a baker"},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_mismatch"
    too_long = t.client.post(
        "/api/v1/avatars/generate", json=body, headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 400
    # A validation failure is not stored: a corrected retry with the same key works.
    fresh = str(uuid.uuid4())
    bad = t.client.post(
        "/api/v1/avatars/generate", json={"prompt": ""}, headers={"Idempotency-Key": fresh}
    )
    assert bad.status_code == 400
    good = t.client.post(
        "/api/v1/avatars/generate", json={"prompt": "ok"}, headers={"Idempotency-Key": fresh}
    )
    assert good.status_code == 202
    _wait(t.client, first.json()["job_id"])
    _wait(t.client, good.json()["job_id"])
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 80


def test_concurrent_identical_requests_make_one_job(server: Server) -> None:
    t = server.tenant(credits=1000)
    body = {"prompt": "a climber"}

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {t.key}", "Idempotency-Key": "same"},
        ) as c:
            return await asyncio.gather(
                *[c.post("/api/v1/avatars/generate", json=body) for _ in range(30)]
            )

    responses = asyncio.run(fire())
    # Each one either made (or replays) the one job, or met the first still in flight.
    accepted = [r for r in responses if r.status_code == 202]
    busy = [r for r in responses if r.status_code != 202]
    assert accepted and len({r.content for r in accepted}) == 1
    for r in busy:
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "idempotency_key_in_use"
    _wait(t.client, accepted[0].json()["job_id"])
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 990


def test_a_retry_while_the_first_is_in_flight_is_409_until_its_claim_lapses(
    server: Server,
) -> None:
    clock = FrozenClock(utcnow())
    with server.sibling(clock=clock) as s:
        t = s.tenant(credits=100)
        key = "slow-" + uuid.uuid4().hex
        # A first request claimed the key and is still working (or died without finishing).
        asyncio.run(_claim_like_a_request(s, t.name, key))
        headers = {"Idempotency-Key": key}
        r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"}, headers=headers)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "idempotency_key_in_use"
        clock.advance(seconds=CLAIM_LEASE.total_seconds() - 1)
        r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"}, headers=headers)
        assert r.status_code == 409
        # Its claim lapsed: the retry takes the key over and runs.
        clock.advance(seconds=2)
        r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"}, headers=headers)
        assert r.status_code == 202
        again = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"}, headers=headers)
        assert again.content == r.content


async def _claim_like_a_request(s: Server, workspace: str, key: str) -> None:
    db = Database(s.settings.resolved_database_url)
    try:
        async with db.writer() as session:
            workspace_id = await session.scalar(
                select(Workspace.id).where(Workspace.name == workspace)
            )
            assert workspace_id is not None
            await IdempotencyService(session).begin(
                workspace_id, "avatars", key, "other", now=utcnow(), lease=CLAIM_LEASE
            )
    finally:
        await db.dispose()


def test_scope_and_errors(server: Server) -> None:
    t = server.tenant(scopes="generate")
    r = t.client.post("/api/v1/avatars/generate", json={"prompt": "x"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = server.client().post("/api/v1/avatars/generate", json={"prompt": "x"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert server.tenant().client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_webhook_carries_the_metadata(server: Server) -> None:
    receiver = Receiver()
    try:
        with server.sibling(own_database=True, webhook_allow_private=True) as hooks:
            t = hooks.tenant()
            secret = t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
            r = t.client.post(
                "/api/v1/avatars/generate",
                json={
                    "prompt": "an astronaut",
                    "metadata": {"order": "A-17"},
                    "correlation_id": "corr-9",
                    "webhook_url": receiver.url,
                },
            )
            got = receiver.wait_for(1, timeout=60)[0]
            Webhook(secret).verify(got.body, got.headers)
            body = got.json()
            assert body["type"] == "job.completed" and body["id"] == r.json()["job_id"]
            assert body["metadata"] == {"order": "A-17"} and body["correlation_id"] == "corr-9"
            assert body["data"]["avatar"]["image_url"].startswith("http")
    finally:
        receiver.close()
