"""POST /v2/image/agent and /v2/agents over real HTTP, on both databases."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Server

MiB = 1024 * 1024
EXAMPLE = (
    "put these two photos side by side, make it black and white and write "
    "'Summer 2026' at the bottom"
)


def _png(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _padded_png(total: int) -> bytes:
    """A valid PNG whose file is exactly ``total`` bytes (zero padding after IEND)."""
    data = _png((10, 20, 30), (8, 8))
    return data + b"\0" * (total - len(data))


def _bomb() -> bytes:
    """A tiny PNG that declares 30000 x 30000 pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def _wait(server: Server, client: httpx.Client, job_id: str) -> dict[str, Any]:
    return server.wait_job(client, job_id, timeout=60)


def test_multipart_exactly_like_the_spec_curl(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/image/agent",
        data={
            "instructions": "make it warmer and brighter",
            "model_id": "image-agent-1-preview",
            "aspect_ratio": "1:1",
            "resolution": "2K",
            "max_steps": "10",
        },
        files=[
            ("images.0", ("a.png", _png((200, 60, 60)), "image/png")),
            ("images.2.items.0", ("b.png", _png((60, 60, 200)), "image/png")),
        ],
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["errors"] is None
    job_id = body["data"]["job_id"]
    assert body["data"]["links"]["self"] == f"/v1/jobs/{job_id}"
    assert body["data"]["links"]["stream"].startswith(f"/v1/jobs/{job_id}/stream")
    job = _wait(server, t.client, job_id)
    assert job["status"] == "completed", job
    out = job["outputs"][0]
    assert (out["width"], out["height"]) == (2048, 2048)
    progress = [
        e for e in _events(t.client, body["data"]["links"]["stream"]) if e["event"] == "progress"
    ]
    assert 1 <= len(progress) <= 10
    assert job["credits"]["held"] == 40 and job["credits"]["charged"] == 4 * len(progress)
    balance = t.client.get("/v1/credits/balance").json()["data"]["balance"]
    assert balance == 1000 - 4 * len(progress)


def _events(client: httpx.Client, link: str) -> list[dict[str, Any]]:
    events, current = [], {}
    with client.stream("GET", link) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
    return events


def test_the_example_instruction_end_to_end(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/image/agent",
        data={"instructions": EXAMPLE, "aspect_ratio": "16:9"},
        files=[
            ("images", ("a.png", _png((220, 40, 40)), "image/png")),
            ("images", ("b.png", _png((40, 200, 40)), "image/png")),
        ],
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["data"]["job_id"]
    job = _wait(server, t.client, job_id)
    assert job["status"] == "completed", job
    final = Image.open(io.BytesIO(httpx.get(job["outputs"][0]["url"]).content)).convert("RGB")
    assert final.size == (2048, 1152)
    r_, g, b = final.split()
    assert r_.tobytes() == g.tobytes() == b.tobytes()  # black and white
    progress = [
        e["data"]
        for e in _events(t.client, f"/v1/jobs/{job_id}/stream")
        if e["event"] == "progress"
    ]
    tools = [p["tool"] for p in progress]
    assert tools[0] == "compose" and "overlay_text" in tools and tools[-1] == "finish"
    assert [p["step"] for p in progress] == list(range(1, len(progress) + 1))
    for p in progress:
        assert p["summary"] if "summary" in p else p["message"]
        assert httpx.get(p["preview_url"]).status_code == 200
    bottom = final.crop((0, 1152 * 3 // 4, 2048, 1152)).getextrema()
    assert bottom[0][0] != bottom[0][1]  # text drawn near the bottom


def test_json_with_data_urls(server: Server) -> None:
    t = server.tenant(credits=1000)
    data_url = "data:image/png;base64," + base64.b64encode(_png((10, 120, 200))).decode()
    r = t.client.post(
        "/v2/image/agent",
        json={
            "instructions": "crop it square and make it sepia",
            "images": data_url,
            "resolution": "4K",
            "aspect_ratio": "auto",
            "max_steps": 5,
        },
    )
    assert r.status_code == 202, r.text
    job = _wait(server, t.client, r.json()["data"]["job_id"])
    assert job["status"] == "completed", job
    assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (4096, 3072)
    assert job["credits"]["held"] == 40  # 5 steps x 8 at 4K


def test_no_images_generates(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/image/agent",
        json={"instructions": "a lighthouse at dawn", "aspect_ratio": "9:16", "max_steps": 3},
    )
    job = _wait(server, t.client, r.json()["data"]["job_id"])
    assert job["status"] == "completed", job
    assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (1152, 2048)
    assert job["credits"]["charged"] <= 12


def test_a_private_image_url_fails_the_job(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/image/agent", json={"instructions": "brighten it", "images": [f"{server.url}/healthz"]}
    )
    assert r.status_code == 202
    job = _wait(server, t.client, r.json()["data"]["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "input_fetch_failed"
    assert job["credits"]["charged"] == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"instructions": "ab"}, "instructions"),
        ({"instructions": "x" * 10_001}, "instructions"),
        ({"max_steps": "0"}, "max_steps"),
        ({"max_steps": "31"}, "max_steps"),
        ({"aspect_ratio": "7:5"}, "aspect_ratio"),
        ({"resolution": "1K"}, "resolution"),
        ({"model_id": "other"}, "model_id"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_validation_errors_name_the_field(
    server: Server, fields: dict[str, str], field: str
) -> None:
    t = server.tenant()
    r = t.client.post(
        "/v2/image/agent",
        data={"instructions": "make it pop", **fields},
        files=[("images", ("a.png", _png((1, 2, 3)), "image/png"))],
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["data"] is None and body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"instructions": "abc"}, True),
        ({"instructions": "x" * 10_000}, True),
        ({"max_steps": "1"}, True),
        ({"max_steps": "30"}, True),
    ],
)
def test_limits_that_pass(server: Server, fields: dict[str, str], ok: bool) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/image/agent",
        data={"instructions": "make it pop", **fields},
        files=[("images", ("a.png", _png((1, 2, 3)), "image/png"))],
    )
    assert r.status_code == 202, r.text


def test_ten_images_pass_and_eleven_fail(server: Server) -> None:
    t = server.tenant(credits=1000)
    files = [
        ("images", (f"{i}.png", _png((i * 20, 0, 0), (16, 16)), "image/png")) for i in range(11)
    ]
    assert (
        t.client.post(
            "/v2/image/agent", data={"instructions": "grid them"}, files=files[:10]
        ).status_code
        == 202
    )
    r = t.client.post("/v2/image/agent", data={"instructions": "grid them"}, files=files)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "images"
    r = t.client.post(
        "/v2/image/agent",
        json={"instructions": "grid them", "images": ["https://example.com/a.png"] * 11},
    )
    assert r.status_code == 400


def test_thirty_megabytes_pass_and_one_byte_more_is_413(server: Server) -> None:
    t = server.tenant(credits=1000)
    ok = t.client.post(
        "/v2/image/agent",
        data={"instructions": "brighten"},
        files=[("images", ("a.png", _padded_png(30 * MiB), "image/png"))],
    )
    assert ok.status_code == 202, ok.text
    big = _padded_png(30 * MiB + 1)
    try:
        r = t.client.post(
            "/v2/image/agent",
            data={"instructions": "brighten"},
            files=[("images", ("a.png", big, "image/png"))],
        )
    except httpx.HTTPError:
        return  # the server answered and closed while we were still sending: refused
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "images"


def test_bad_images_are_refused(server: Server) -> None:
    t = server.tenant()
    for payload, name in (
        (_bomb(), "bomb.png"),
        (b"GIF89a-not-really", "x.gif"),
        (b"BM" + b"\0" * 100, "x.png"),
        (b"", "empty.png"),
    ):
        r = t.client.post(
            "/v2/image/agent",
            data={"instructions": "brighten"},
            files=[("images", (name, payload, "image/png"))],
        )
        assert r.status_code == 400, (name, r.text)


def test_scope_and_auth(server: Server) -> None:
    t = server.tenant(scopes="generate")
    r = t.client.post("/v2/image/agent", json={"instructions": "hello there"})
    assert r.status_code == 403 and r.json()["data"] is None
    assert server.client().post("/v2/image/agent", json={}).status_code == 401
    assert t.client.get("/v2/agents").status_code == 403


def test_saved_agents_crud_and_use(server: Server) -> None:
    t = server.tenant(credits=1000)
    r = t.client.post(
        "/v2/agents",
        json={
            "name": "poster",
            "instructions": "write 'SALE' at the top",
            "aspect_ratio": "4:5",
            "max_steps": 6,
            "allowed_tools": ["compose", "overlay_text", "reframe", "resize", "adjust"],
        },
    )
    assert r.status_code == 201, r.text
    agent = r.json()["data"]
    assert agent["name"] == "poster" and agent["max_steps"] == 6
    listing = t.client.get("/v2/agents").json()["data"]
    assert listing["total"] == 1 and listing["data"][0]["id"] == agent["id"]
    patched = t.client.patch(f"/v2/agents/{agent['id']}", json={"name": "poster v2"}).json()
    assert patched["data"]["name"] == "poster v2" and patched["data"]["aspect_ratio"] == "4:5"

    run = t.client.post(
        "/v2/image/agent",
        data={"instructions": "make it brighter", "agent_id": agent["id"]},
        files=[("images", ("a.png", _png((90, 90, 90)), "image/png"))],
    )
    assert run.status_code == 202, run.text
    job = _wait(server, t.client, run.json()["data"]["job_id"])
    assert job["status"] == "completed", job
    assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (1638, 2048)
    assert job["credits"]["held"] == 24  # the agent's 6 steps
    explicit = t.client.post(
        "/v2/image/agent",
        data={
            "instructions": "make it brighter",
            "agent_id": agent["id"],
            "aspect_ratio": "1:1",
            "max_steps": "2",
        },
        files=[("images", ("a.png", _png((90, 90, 90)), "image/png"))],
    )
    job = _wait(server, t.client, explicit.json()["data"]["job_id"])
    assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (2048, 2048)

    other = server.tenant()
    for client in (other.client,):
        assert client.get(f"/v2/agents/{agent['id']}").status_code == 404
        r = client.post("/v2/image/agent", json={"instructions": "hello", "agent_id": agent["id"]})
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "agent_id"
    assert t.client.delete(f"/v2/agents/{agent['id']}").status_code == 200
    assert t.client.get(f"/v2/agents/{agent['id']}").status_code == 404
    bad = t.client.post("/v2/agents", json={"name": "x", "allowed_tools": ["paint"]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"].startswith("allowed_tools")


def test_bodies_that_do_not_parse_are_400_not_500(server: Server) -> None:
    t = server.tenant()
    # JSON nested past the parser's recursion limit (it raised RecursionError: a 500).
    deep = b"[" * 5000 + b"]" * 5000
    r = t.client.post("/v2/image/agent", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body", r.text
    # A multipart body whose boundary is not the declared one (the parser's error was a 500).
    malformed = b'--x\r\nContent-Disposition: form-data; name="instructions"\r\n\r\nhi\r\n--x--\r\n'
    r = t.client.post(
        "/v2/image/agent",
        content=malformed,
        headers={"content-type": "multipart/form-data; boundary=y"},
    )
    assert r.status_code == 400 and "multipart" in r.text, r.text
