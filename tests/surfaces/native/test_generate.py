"""POST /v1/generate and GET /v1/jobs/{id}, over real HTTP, on both databases."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid

import httpx
import pytest
from PIL import Image

from tests.conftest import Server


def _gen(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "nano-banana-pro",
        "prompt": "a red fox in snow",
        "request_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


def test_generate_runs_to_completion_with_real_images(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post("/v1/generate", json=_gen(units={"count": 2, "aspect_ratio": "16:9"}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 0 and body["message"] == "ok" and body["errors"] is None
    data = body["data"]
    assert set(data) == {"task_id", "provider_task_id", "status", "usage_event_id"}
    assert data["status"] == "pending"

    job = server.wait_job(t.client, data["task_id"])
    assert job["status"] == "completed", job
    assert job["engine"] == "builtin" and job["mode"] == "sandbox"
    assert job["credits"] == {"estimated": 40, "held": 40, "charged": 40}
    assert job["usage_event_id"] == data["usage_event_id"]
    assert len(job["outputs"]) == 2
    for out in job["outputs"]:
        assert (out["width"], out["height"]) == (1024, 576)
        png = httpx.get(out["url"])  # signed link: no API key needed
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert len(png.content) == out["bytes"]
        assert Image.open(io.BytesIO(png.content)).size == (1024, 576)
    balance = t.client.get("/v1/credits/balance").json()["data"]
    assert balance == {"balance": 960, "held": 0, "available": 960}


@pytest.mark.parametrize(
    ("resolution", "aspect", "size"),
    [
        ("1K", "1:1", (1024, 1024)),
        ("2K", "9:16", (1152, 2048)),
        ("4K", "16:9", (4096, 2304)),
    ],
)
def test_output_size_follows_aspect_and_resolution(
    server: Server, resolution: str, aspect: str, size: tuple[int, int]
) -> None:
    t = server.tenant()
    r = t.client.post(
        "/v1/generate", json=_gen(units={"resolution": resolution, "aspect_ratio": aspect})
    )
    job = server.wait_job(t.client, r.json()["data"]["task_id"])
    assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == size
    assert job["credits"]["charged"] == (40 if resolution == "4K" else 20)


def test_same_request_id_replays_without_charging(server: Server) -> None:
    t = server.tenant(credits=100)
    body = _gen()
    first = t.client.post("/v1/generate", json=body)
    second = t.client.post("/v1/generate", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    server.wait_job(t.client, first.json()["data"]["task_id"])
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 80


def test_reused_request_id_with_another_body_is_409(server: Server) -> None:
    t = server.tenant()
    body = _gen()
    assert t.client.post("/v1/generate", json=body).status_code == 200
    r = t.client.post("/v1/generate", json={**body, "prompt": "something else"})
    assert r.status_code == 409
    assert r.json()["message"] == "idempotency_key_mismatch"
    assert r.json()["code"] == 409


def test_request_ids_are_scoped_to_the_workspace(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    body = _gen()
    ra = a.client.post("/v1/generate", json=body).json()["data"]
    rb = b.client.post("/v1/generate", json=body).json()["data"]
    assert ra["task_id"] != rb["task_id"]


def test_concurrent_identical_requests_make_one_job_and_one_charge(server: Server) -> None:
    t = server.tenant(credits=1000)
    body = _gen()

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {t.key}"}
        ) as c:
            return await asyncio.gather(*[c.post("/v1/generate", json=body) for _ in range(100)])

    responses = asyncio.run(fire())
    # Each one either made (or replays) the one task, or met the first still in flight.
    accepted = [r for r in responses if r.status_code == 200]
    assert accepted and len({r.json()["data"]["task_id"] for r in accepted}) == 1
    for r in responses:
        if r.status_code != 200:
            assert r.status_code == 409
            assert r.json()["message"] == "idempotency_key_in_use"
    server.wait_job(t.client, accepted[0].json()["data"]["task_id"])
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 980


def test_concurrent_submits_never_overdraw(server: Server) -> None:
    t = server.tenant(credits=100)  # five 20-credit images, no more

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {t.key}"}
        ) as c:
            return await asyncio.gather(*[c.post("/v1/generate", json=_gen()) for _ in range(12)])

    responses = asyncio.run(fire())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [402] * 7
    for r in responses:
        if r.status_code == 200:
            assert server.wait_job(t.client, r.json()["data"]["task_id"])["status"] == "completed"
    balance = t.client.get("/v1/credits/balance").json()["data"]
    assert balance == {"balance": 0, "held": 0, "available": 0}


def test_insufficient_credits_is_402_with_details(server: Server) -> None:
    t = server.tenant(credits=30)
    r = t.client.post("/v1/generate", json=_gen(units={"resolution": "4K"}))
    assert r.status_code == 402
    body = r.json()
    assert body["code"] == 402 and body["message"] == "insufficient_credits"
    assert body["data"]["error"] == "insufficient_credits"
    assert body["data"]["required"] == 40 and body["data"]["available"] == 30
    assert body["data"]["suggestion"]
    assert body["errors"] is None
    # Nothing was held and no job exists.
    assert t.client.get("/v1/credits/balance").json()["data"]["held"] == 0


def test_stale_price_version_names_the_current_one(server: Server) -> None:
    t = server.tenant()
    r = t.client.post("/v1/generate", json=_gen(price_version="2025-01-01-v0"))
    assert r.status_code == 409
    assert r.json()["message"] == "price_version_mismatch"
    assert r.json()["data"]["current_price_version"] == "2026-02-02-v1"
    ok = t.client.post("/v1/generate", json=_gen(price_version="2026-02-02-v1"))
    assert ok.status_code == 200


def test_unknown_model_and_product_mismatch(server: Server) -> None:
    t = server.tenant()
    r = t.client.post("/v1/generate", json=_gen(model="no-such-model"))
    assert r.status_code == 404 and r.json()["message"] == "model_not_found"
    r = t.client.post("/v1/generate", json=_gen(product="video"))
    assert r.status_code == 400 and r.json()["message"] == "product_mismatch"
    r = t.client.post("/v1/generate", json=_gen(product="image"))
    assert r.status_code == 200


def test_prompt_required_for_text_to_image(server: Server) -> None:
    t = server.tenant()
    body = _gen()
    del body["prompt"]
    r = t.client.post("/v1/generate", json=body)
    assert r.status_code == 400
    assert r.json()["data"]["field"] == "prompt"


def test_image_only_model_needs_an_input(server: Server) -> None:
    t = server.tenant()
    r = t.client.post("/v1/generate", json=_gen(model="qwen/image-to-image"))
    assert r.status_code == 400 and r.json()["data"]["field"] == "input_image_urls"


@pytest.mark.parametrize(
    ("field", "ok_value", "bad_value"),
    [
        ("prompt", "p" * 10_000, "p" * 10_001),
        ("request_id", "r" * 255, "r" * 256),
    ],
)
def test_string_limits_at_the_edge(
    server: Server, field: str, ok_value: str, bad_value: str
) -> None:
    t = server.tenant()
    assert t.client.post("/v1/generate", json=_gen(**{field: ok_value})).status_code == 200
    r = t.client.post("/v1/generate", json=_gen(**{field: bad_value}))
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "validation_error" and body["data"] is None
    assert body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("units", "status"),
    [
        ({"count": 8}, 200),
        ({"count": 4}, 200),
        ({"count": 3}, 400),
        ({"count": 16}, 400),
        ({"count": 0}, 400),
        ({"resolution": "8K"}, 400),
        ({"aspect_ratio": "7:3"}, 400),
        ({"duration": 5}, 400),
        ({"colour": "red"}, 400),
    ],
)
def test_units_are_checked_against_the_model(
    server: Server, units: dict[str, object], status: int
) -> None:
    t = server.tenant(credits=10_000)
    r = t.client.post("/v1/generate", json=_gen(units=units))
    assert r.status_code == status, r.text


def test_input_image_url_limits(server: Server) -> None:
    t = server.tenant(credits=10_000)
    urls = [f"https://example.com/{i}.png" for i in range(10)]
    assert (
        t.client.post(
            "/v1/generate", json=_gen(model="qwen/image-to-image", input_image_urls=urls)
        ).status_code
        == 200
    )
    r = t.client.post(
        "/v1/generate",
        json=_gen(
            model="qwen/image-to-image", input_image_urls=[*urls, "https://example.com/x.png"]
        ),
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "input_image_urls"
    for bad in [
        "ftp://example.com/a.png",
        "https://user:pw@example.com/a.png",
        "not a url",
        "https://example.com/" + "a" * 2000,
    ]:
        r = t.client.post(
            "/v1/generate", json=_gen(model="qwen/image-to-image", input_image_urls=[bad])
        )
        assert r.status_code == 400, bad


def _png_data_url(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_image_to_image_applies_the_edits_named_in_the_prompt(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/v1/generate",
        json=_gen(
            model="qwen/image-to-image",
            prompt="make it black and white and rotate 90",
            input_image_urls=[_png_data_url((200, 40, 40))],
        ),
    )
    job = server.wait_job(t.client, r.json()["data"]["task_id"])
    assert job["status"] == "completed", job
    out = job["outputs"][0]
    assert (out["width"], out["height"]) == (48, 64)  # rotated
    image = Image.open(io.BytesIO(httpx.get(out["url"]).content)).convert("RGB")
    r_, g, b = image.getpixel((24, 10))
    assert r_ == g == b  # grayscale away from the sandbox band


def test_an_output_can_feed_the_next_job(server: Server) -> None:
    t = server.tenant()
    first = server.wait_job(
        t.client,
        t.client.post("/v1/generate", json=_gen(units={"aspect_ratio": "16:9"})).json()["data"][
            "task_id"
        ],
    )
    r = t.client.post(
        "/v1/generate",
        json=_gen(
            model="qwen/image-to-image",
            prompt="invert it and crop to 1:1",
            input_image_urls=[first["outputs"][0]["url"]],
        ),
    )
    job = server.wait_job(t.client, r.json()["data"]["task_id"])
    assert job["status"] == "completed", job
    assert job["outputs"][0]["width"] == job["outputs"][0]["height"] == 576


def test_a_private_input_url_fails_the_job_and_releases_the_hold(server: Server) -> None:
    t = server.tenant(credits=100)
    r = t.client.post(
        "/v1/generate",
        json=_gen(model="qwen/image-to-image", input_image_urls=[f"{server.url}/healthz"]),
    )
    job = server.wait_job(t.client, r.json()["data"]["task_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_fetch_failed"
    assert job["credits"]["charged"] == 0
    assert t.client.get("/v1/credits/balance").json()["data"] == {
        "balance": 100,
        "held": 0,
        "available": 100,
    }


def test_live_key_without_providers_gets_503(server: Server) -> None:
    t = server.tenant(mode="live")
    r = t.client.post("/v1/generate", json=_gen())
    assert r.status_code == 503 and r.json()["message"] == "model_unavailable"
    assert t.client.get("/v1/credits/balance").json()["data"]["held"] == 0


def test_sandbox_video_is_a_real_h264_mp4(server: Server) -> None:
    import av

    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v1/generate",
        json=_gen(
            model="wan-2.6",
            prompt="ocean waves at sunset",
            units={"duration": 5, "aspect_ratio": "9:16"},
        ),
    )
    assert r.status_code == 200, r.text
    job = server.wait_job(t.client, r.json()["data"]["task_id"], timeout=60)
    assert job["status"] == "completed", job
    video, poster = job["outputs"]
    assert video["mime_type"] == "video/mp4" and poster["mime_type"] == "image/png"
    assert (video["width"], video["height"]) == (720, 1280)
    assert video["duration_seconds"] == 5
    data = httpx.get(video["url"]).content
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (720, 1280)
        assert sum(1 for _ in container.decode(stream)) == 5 * 24
    assert job["credits"]["charged"] == 20


def test_jobs_of_other_workspaces_are_404(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    task = a.client.post("/v1/generate", json=_gen()).json()["data"]["task_id"]
    assert a.client.get(f"/v1/jobs/{task}").status_code == 200
    r = b.client.get(f"/v1/jobs/{task}")
    assert r.status_code == 404 and r.json()["message"] == "job_not_found"
    assert b.client.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_sandbox_music_is_real_audio(server: Server) -> None:
    import wave

    import av

    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v1/generate",
        json=_gen(
            model="V4", prompt="a calm piano piece, 80 bpm", units={"duration": 30, "count": 2}
        ),
    )
    assert r.status_code == 200, r.text
    job = server.wait_job(t.client, r.json()["data"]["task_id"], timeout=60)
    assert job["status"] == "completed", job
    assert [o["mime_type"] for o in job["outputs"]] == ["audio/mpeg", "audio/wav"] * 2
    assert job["credits"]["charged"] == 40  # two tracks of V4
    wav = httpx.get(job["outputs"][1]["url"]).content
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 44100)
        assert w.getnframes() == 30 * 44100
    with av.open(io.BytesIO(httpx.get(job["outputs"][0]["url"]).content)) as container:
        assert container.streams.audio[0].codec_context.name.startswith("mp3")
        assert float(container.duration / av.time_base) == pytest.approx(30, abs=0.2)
