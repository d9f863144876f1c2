"""The image editor API over real HTTP: presigned uploads, synchronous /process in its three
input modes, chained edits, estimates, the job list, and this surface's errors."""

from __future__ import annotations

import io
import resource
import struct
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from mediagate.clock import FrozenClock
from tests.conftest import Server, Tenant
from tests.surfaces.image_editor.test_presets import _saved_avatar

BASE = "/api/v1/image-editor"


def png(width: int = 48, height: int = 32, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 48, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 20, 200)).save(out, "JPEG")
    return out.getvalue()


def announce(t: Tenant, mime: str = "image/png", **extra: Any) -> dict[str, Any]:
    r = t.client.post(f"{BASE}/upload-url", json={"file_name": "a.png", "mime_type": mime, **extra})
    assert r.status_code == 201, r.text
    assert r.json()["success"] is True
    return r.json()["data"]  # type: ignore[no-any-return]


def put(url: str, data: bytes, mime: str = "image/png") -> httpx.Response:
    return httpx.put(url, content=data, headers={"Content-Type": mime}, timeout=30)


def upload(t: Tenant, data: bytes | None = None, mime: str = "image/png") -> str:
    slot = announce(t, mime)
    r = put(slot["upload_url"], data if data is not None else png(), mime)
    assert r.status_code == 200, r.text
    return str(slot["image_id"])


def process(t: Tenant, **body: Any) -> httpx.Response:
    body.setdefault("prompt", "make it grayscale")
    body.setdefault("model_tier", "pro")
    return t.client.post(f"{BASE}/process", json=body, timeout=60)


def fail(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"success", "error"} and body["success"] is False
    return str(body["error"])


def test_upload_process_and_chain(server: Server) -> None:
    t = server.tenant(credits=1000)
    slot = announce(t, file_size=1234)
    assert slot["expires_in"] == 3600
    # Nothing there until the PUT.
    assert httpx.get(slot["public_url"]).status_code == 404
    r = put(slot["upload_url"], png(48, 32))
    assert r.status_code == 200 and r.json()["data"]["width"] == 48
    fetched = httpx.get(slot["public_url"])
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"

    big = upload(t, png(480, 320))
    first = process(t, image_id=big, prompt="make it grayscale")
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert data["status"] == "completed"
    assert data["model_tier"] == "pro" and data["provider_used"] == "system"
    assert data["credits_consumed"] == 50
    assert data["processing_ms"] >= 0 and data["completed_at"] >= data["created_at"]
    result = Image.open(io.BytesIO(server.client().get(data["result_url"]).content))
    assert result.size == (480, 320)
    assert len(set(result.convert("RGB").getpixel((5, 5)))) == 1  # gray: r == g == b

    # The result is an image id of its own: chain a second edit on it.
    second = process(t, image_id=data["result_image_id"], prompt="flip it", model_tier="standard")
    assert second.status_code == 201, second.text
    chained = second.json()["data"]
    assert chained["credits_consumed"] == 20
    row = t.client.get(f"{BASE}/jobs/{chained['job_id']}").json()["data"]
    assert row["image_id"] == data["result_image_id"]
    assert row["prompt"] == "flip it" and row["status"] == "completed"
    assert row["result_url"] and row["error"] is None
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 1000 - 70
    assert slot["image_id"] != big


def test_text_to_image(server: Server) -> None:
    t = server.tenant()
    r = process(t, prompt="a lighthouse at dusk", model_tier="creative")
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["credits_consumed"] == 30
    image = Image.open(io.BytesIO(server.client().get(data["result_url"]).content))
    assert image.size == (1024, 1024)


def test_image_id_wins_over_image_url(server: Server) -> None:
    t = server.tenant()
    image_id = upload(t)
    # The URL would be refused, but it is ignored when image_id is set.
    r = process(t, image_id=image_id, image_url="https://127.0.0.1/x.png")
    assert r.status_code == 201, r.text
    row = t.client.get(f"{BASE}/jobs/{r.json()['data']['job_id']}").json()["data"]
    assert row["image_id"] == image_id and row["image_url"] is None


def test_upload_url_limits(server: Server) -> None:
    t = server.tenant()
    ok = t.client.post(
        f"{BASE}/upload-url", json={"file_name": "n" * 255, "mime_type": "image/gif"}
    )
    assert ok.status_code == 201
    for body in (
        {"file_name": "n" * 256, "mime_type": "image/png"},
        {"file_name": "", "mime_type": "image/png"},
        {"file_name": "a.bmp", "mime_type": "image/bmp"},
        {"mime_type": "image/png"},
        {"file_name": "a.png", "mime_type": "image/png", "file_size": -1},
    ):
        fail(t.client.post(f"{BASE}/upload-url", json=body), 400)


def test_put_checks_type_signature_and_content(server: Server) -> None:
    t = server.tenant()
    slot = announce(t, "image/png")
    assert fail(put(slot["upload_url"], png(), "image/jpeg"), 400)  # not the declared type
    assert "announced as image/png" in fail(put(slot["upload_url"], jpeg(), "image/png"), 400)
    tampered = slot["upload_url"].replace("signature=", "signature=0")
    fail(put(tampered, png()), 403)
    other_image = slot["upload_url"].replace(slot["image_id"], str(uuid.uuid4()))
    fail(put(other_image, png()), 403)
    # A GIF announced as a GIF is taken (and stored re-encoded).
    gif_slot = announce(t, "image/gif")
    gif = io.BytesIO()
    Image.new("P", (10, 10)).save(gif, "GIF")
    assert put(gif_slot["upload_url"], gif.getvalue(), "image/gif").status_code == 200


def test_an_expired_upload_url_is_refused(server: Server) -> None:
    clock = FrozenClock(datetime.now(UTC))
    with server.sibling(clock=clock) as s:
        t = s.tenant()
        slot = announce(t)
        clock.advance(seconds=3601)
        fail(put(slot["upload_url"], png()), 403)


def test_upload_size_limit_at_its_edge(server: Server) -> None:
    image = png()
    limit = len(image) + 100
    with server.sibling(max_input_image_bytes=limit) as s:
        t = s.tenant()
        at_limit = image + b"\0" * 100  # trailing bytes after IEND: still a valid PNG
        assert put(announce(t)["upload_url"], at_limit).status_code == 200
        fail(put(announce(t)["upload_url"], at_limit + b"\0"), 413)


def _png_bomb(side: int) -> bytes:
    """A valid PNG header for a side x side grayscale image whose pixel data is a few KB of
    compressed zeros: tiny on the wire, gigabytes if decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = zlib.compressobj(9)
    rows = b"".join(raw.compress(b"\0" * (side + 1)) for _ in range(64)) + raw.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_a_decompression_bomb_is_refused_without_decoding(server: Server) -> None:
    t = server.tenant()
    bomb = _png_bomb(60_000)  # 3.6 gigapixels
    assert len(bomb) < 100_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = fail(put(announce(t)["upload_url"], bomb), 400)
    assert "pixels" in error
    # The server runs in this process: decoding would have raised its peak by gigabytes.
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024


def test_process_limits_at_their_edges(server: Server) -> None:
    t = server.tenant(credits=10_000)
    assert process(t, prompt="p" * 10_000, model_tier="standard").status_code == 201
    assert "prompt" in fail(process(t, prompt="p" * 10_001), 400)
    fail(process(t, prompt=""), 400)
    fail(process(t, model_tier="ultra"), 400)
    fail(t.client.post(f"{BASE}/process", json={"prompt": "x"}), 400)
    fail(process(t, provider="azure"), 400)
    url = "https://127.0.0.1/" + "a" * (2000 - len("https://127.0.0.1/"))
    assert len(url) == 2000
    assert "image_url refused" in fail(process(t, image_url=url), 400)  # length fine, address not
    assert "image_url" in fail(process(t, image_url=url + "a"), 400)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/x.png", "address"),
        ("https://10.1.2.3/x.png", "address"),
        ("https://192.168.0.7/x.png", "address"),
        ("https://169.254.169.254/latest/meta-data/", "address"),
        ("https://[::ffff:127.0.0.1]/x.png", "address"),
        ("https://[::1]/x.png", "address"),
        ("http://example.com/x.png", "scheme"),
        ("ftp://example.com/x.png", "scheme"),
    ],
)
def test_image_url_ssrf_refusals(server: Server, url: str, reason: str) -> None:
    t = server.tenant()
    error = fail(process(t, image_url=url), 400)
    assert "image_url refused" in error
    assert t.client.get("/v1/credits/balance").json()["data"]["held"] == 0


def test_not_found_in_this_workspace(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    image_id = upload(a)
    job_id = process(a, image_id=image_id).json()["data"]["job_id"]
    fail(process(b, image_id=image_id), 404)
    fail(process(b, image_id=str(uuid.uuid4())), 404)
    fail(process(b, style_id=str(uuid.uuid4())), 404)
    fail(process(b, character_id=str(uuid.uuid4())), 404)
    fail(b.client.get(f"{BASE}/jobs/{job_id}"), 404)
    assert a.client.get(f"{BASE}/jobs/{job_id}").status_code == 200
    # A job of another surface is not an editor job.
    other = a.client.post(
        "/v1/generate",
        json={"model": "nano-banana-pro", "prompt": "x", "request_id": str(uuid.uuid4())},
    )
    fail(a.client.get(f"{BASE}/jobs/{other.json()['data']['task_id']}"), 404)
    # An announced image that never arrived cannot be processed.
    pending = announce(a)["image_id"]
    assert "not been uploaded" in fail(process(a, image_id=pending), 400)


def test_auth_scope_permission_credits(server: Server) -> None:
    fail(server.client().post(f"{BASE}/estimate-credits", json={"model_tier": "pro"}), 401)
    no_scope = server.tenant(scopes="generate")
    fail(
        no_scope.client.post(
            f"{BASE}/upload-url", json={"file_name": "a", "mime_type": "image/png"}
        ),
        403,
    )
    # A key of a member without access_image_editor.
    t = server.tenant()
    server.cli("members", "add", "--workspace", t.name, "intern")
    key = server.cli(
        "keys", "create", "--workspace", t.name, "--member", "intern", "--mode", "sandbox"
    ).strip()
    intern = server.client(key)
    assert "access_image_editor" in fail(process_with(intern), 403)
    server.cli("members", "grant", "--workspace", t.name, "intern", "access_image_editor")
    assert process_with(intern).status_code == 201
    poor = server.tenant(credits=49)
    error = fail(process(poor), 402)
    assert "50" in error
    assert process(poor, model_tier="standard").status_code == 201


def process_with(client: httpx.Client) -> httpx.Response:
    return client.post(
        f"{BASE}/process", json={"prompt": "x", "model_tier": "standard"}, timeout=60
    )


def test_rate_limit_headers_and_429(server: Server) -> None:
    t = server.tenant(plan="free")
    r = t.client.post(f"{BASE}/estimate-credits", json={"model_tier": "pro"})
    assert r.headers["X-RateLimit-Limit"] == "20"
    assert int(r.headers["X-RateLimit-Remaining"]) == 19
    assert int(r.headers["X-RateLimit-Reset"]) >= 0
    errors = t.client.get(f"{BASE}/jobs/{uuid.uuid4()}")
    assert errors.status_code == 404 and errors.headers["X-RateLimit-Limit"] == "20"
    for _ in range(18):
        t.client.get(f"{BASE}/jobs")
    limited = t.client.get(f"{BASE}/jobs")
    fail(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1


def test_estimate(server: Server) -> None:
    t = server.tenant(credits=40)
    r = t.client.post(f"{BASE}/estimate-credits", json={"model_tier": "pro"})
    assert r.status_code == 200
    assert r.json()["data"] == {
        "model_tier": "pro",
        "provider": "platform",
        "estimated_credits": 50,
        "is_exact": False,
        "available_credits": 40,
        "can_proceed": False,
        "byok_skips_credits": False,
    }
    r = t.client.post(f"{BASE}/estimate-credits", json={"model_tier": "standard"})
    assert r.json()["data"]["estimated_credits"] == 20 and r.json()["data"]["can_proceed"]


def test_job_list_pagination_and_filter(server: Server) -> None:
    t = server.tenant(credits=10_000)
    ids = [
        process(t, prompt=f"image {i}", model_tier="standard").json()["data"]["job_id"]
        for i in range(3)
    ]
    page = t.client.get(f"{BASE}/jobs", params={"per_page": 2}).json()["data"]
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    assert page["pagination"] == {"page": 1, "per_page": 2, "total": 3, "total_pages": 2}
    second = t.client.get(f"{BASE}/jobs", params={"per_page": 2, "page": 2}).json()["data"]
    assert [j["job_id"] for j in second["jobs"]] == [ids[0]]
    done = t.client.get(f"{BASE}/jobs", params={"status": "completed"}).json()["data"]
    assert done["pagination"]["total"] == 3
    assert t.client.get(f"{BASE}/jobs", params={"status": "failed"}).json()["data"]["jobs"] == []
    assert t.client.get(f"{BASE}/jobs", params={"per_page": 100}).status_code == 200
    fail(t.client.get(f"{BASE}/jobs", params={"per_page": 101}), 400)
    fail(t.client.get(f"{BASE}/jobs", params={"page": 0}), 400)
    fail(t.client.get(f"{BASE}/jobs", params={"status": "queued"}), 400)
    default = t.client.get(f"{BASE}/jobs").json()["data"]["pagination"]
    assert default["per_page"] == 50


def test_idempotent_process(server: Server) -> None:
    t = server.tenant(credits=1000)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"prompt": "a kite", "model_tier": "standard"}
    first = t.client.post(f"{BASE}/process", json=body, headers=headers, timeout=60)
    again = t.client.post(f"{BASE}/process", json=body, headers=headers, timeout=60)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = t.client.post(f"{BASE}/process", json={**body, "prompt": "a boat"}, headers=headers)
    assert "different request body" in fail(other, 409)
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 980


def test_public_url_is_signed(server: Server) -> None:
    t = server.tenant()
    slot = announce(t)
    put(slot["upload_url"], png())
    parts = urlsplit(slot["public_url"])
    forged = f"{parts.scheme}://{parts.netloc}{parts.path}?expires=9999999999&signature=00"
    fail(httpx.get(forged), 403)


def test_presets_shape_the_request(server: Server) -> None:
    t = server.tenant(credits=1000)
    styles = t.client.get(f"{BASE}/styles").json()["data"]["styles"]
    watercolor = next(s for s in styles if s["name"] == "Watercolor")
    reference = upload(t, png(40, 40, (0, 120, 0)))
    character = t.client.post(
        f"{BASE}/characters",
        json={"name": "Ada", "description": "red coat", "reference_image_ids": [reference]},
    ).json()["data"]
    r = process(t, style_id=watercolor["id"], character_id=character["id"], prompt="at sea")
    assert r.status_code == 201, r.text
    job_id = r.json()["data"]["job_id"]
    row = t.client.get(f"{BASE}/jobs/{job_id}").json()["data"]
    assert row["style_id"] == watercolor["id"] and row["character_id"] == character["id"]
    assert row["prompt"] == "at sea"  # the caller's own words; presets shape what is sent
    # With no source image the character's reference is the one the engine works from.
    native = t.client.get(f"/v1/jobs/{job_id}").json()["data"]
    assert native["status"] == "completed"
    # A saved avatar is a character too.
    avatar = _saved_avatar(t.client, "Captain")
    r = process(t, character_id=avatar["id"], image_id=upload(t))
    assert r.status_code == 201, r.text
    row = t.client.get(f"{BASE}/jobs/{r.json()['data']['job_id']}").json()["data"]
    assert row["character_id"] == avatar["id"]
