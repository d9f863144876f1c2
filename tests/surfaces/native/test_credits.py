"""Balance, estimate and the model list: the spec's price table, exactly."""

from __future__ import annotations

import pytest

from tests.conftest import Server


@pytest.mark.parametrize(
    ("model", "units", "images", "credits"),
    [
        ("google/nano-banana", {}, 0, 8),
        ("google/nano-banana", {"count": 8}, 0, 64),
        ("nano-banana-pro", {"resolution": "1K"}, 0, 20),
        ("nano-banana-pro", {"resolution": "4K"}, 0, 40),
        ("nano-banana-pro", {"resolution": "4K", "count": 2}, 0, 80),
        ("gpt4o_image", {"count": 4}, 0, 40),
        ("qwen/text-to-image", {}, 0, 15),
        ("qwen/image-to-image", {}, 1, 15),
        ("xai/grok-imagine-image", {}, 0, 20),
        ("xai/grok-imagine-image/edit", {}, 1, 20),
        ("z-image", {"count": 2}, 0, 40),
        ("sora-2", {}, 0, 10),
        ("sora-2-pro", {}, 0, 330),
        ("sora-2-pro", {"resolution": "1080p"}, 0, 594),
        ("veo3_fast", {}, 0, 50),
        ("veo3_fast", {"resolution": "1080p"}, 0, 90),
        ("veo3_fast", {}, 1, 75),
        ("veo3", {}, 0, 280),
        ("veo3", {"resolution": "1080p"}, 0, 350),
        ("doubao-seedance-1.0-pro-fast", {}, 0, 40),
        ("wan-2.6", {}, 0, 20),
        ("wan-2.6", {"resolution": "1080p"}, 0, 300),
        ("wan-2.6", {"resolution": "1080p"}, 1, 450),
        ("fal-ai/ltx-2/image-to-video", {}, 1, 50),
        ("xai/grok-imagine-video/text-to-video", {}, 0, 10),
        ("V5", {}, 0, 35),
        ("V4_5PLUS", {}, 0, 30),
        ("V4_5", {}, 0, 25),
        ("V4", {"count": 2}, 0, 40),
    ],
)
def test_estimate_matches_the_price_table(
    server: Server, model: str, units: dict[str, object], images: int, credits: int
) -> None:
    t = server.tenant(credits=500)
    body = {
        "model": model,
        "units": units,
        "input_image_urls": ["https://example.com/in.png"] * images,
    }
    r = t.client.post("/v1/credits/estimate", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["credits"] == credits
    assert data["price_version"] == "2026-02-02-v1"
    assert data["available"] == 500
    assert data["can_proceed"] is (credits <= 500)
    assert data["breakdown"][0] == {"item": "base", "credits": data["breakdown"][0]["credits"]}


def test_estimate_equals_the_charge(server: Server) -> None:
    t = server.tenant(credits=1000)
    units = {"count": 4, "resolution": "4K"}
    est = t.client.post(
        "/v1/credits/estimate",
        json={
            "product": "image",
            "model": "nano-banana-pro",
            "units": units,
            "price_version": "2026-02-02-v1",
        },
    ).json()["data"]
    task = t.client.post(
        "/v1/generate",
        json={
            "model": "nano-banana-pro",
            "prompt": "tiny",
            "request_id": "est-1",
            "units": {"count": 1, "resolution": "1K"},
        },
    ).json()["data"]["task_id"]
    job = server.wait_job(t.client, task)
    assert est["credits"] == 160
    assert job["credits"]["charged"] == 20


def test_estimate_refuses_a_stale_price_version_and_bad_units(server: Server) -> None:
    t = server.tenant()
    r = t.client.post("/v1/credits/estimate", json={"model": "veo3", "price_version": "old"})
    assert r.status_code == 409
    r = t.client.post("/v1/credits/estimate", json={"model": "veo3", "units": {"duration": 7}})
    assert r.status_code == 400 and r.json()["data"]["allowed"] == [8]


def test_can_proceed_is_false_when_short(server: Server) -> None:
    t = server.tenant(credits=19)
    data = t.client.post("/v1/credits/estimate", json={"model": "z-image"}).json()["data"]
    assert data["credits"] == 20 and data["can_proceed"] is False


def test_balance_shows_held_credits_while_a_job_waits(server: Server) -> None:
    t = server.tenant(credits=100)
    assert t.client.get("/v1/credits/balance").json() == {
        "code": 0,
        "message": "ok",
        "errors": None,
        "data": {"balance": 100, "held": 0, "available": 100},
    }
    server.cli("credits", "grant", "--workspace", t.name, "50")
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 150
    out = server.cli("credits", "balance", "--workspace", t.name)
    assert "balance 150" in out and "available 150" in out


def test_models_list(server: Server) -> None:
    sandbox, live = server.tenant(), server.tenant(mode="live")
    body = sandbox.client.get("/v1/models/list").json()["data"]
    assert body["price_version"] == "2026-02-02-v1"
    ids = [m["id"] for m in body["models"]]
    assert len(ids) == 26 and "nano-banana-pro" in ids and "V5" in ids
    assert {"image-editor-pro", "image-editor-standard", "image-editor-creative"} <= set(ids)
    by_id = {m["id"]: m for m in body["models"]}
    assert by_id["nano-banana-pro"]["available"] is True
    assert by_id["veo3"]["available"] is True  # the builtin video engine
    assert by_id["V5"]["available"] is True  # the builtin music engine
    live_models = live.client.get("/v1/models/list").json()["data"]["models"]
    # Only the image agent runs on this server for live keys; the rest need providers.
    assert [m["id"] for m in live_models if m["available"]] == ["avatar-1", "image-agent-1-preview"]
