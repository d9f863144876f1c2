"""The image editor's provider routing: the BYOK tier matrix cell by cell, the workspace's own
key reaching the provider with nothing charged, safety refusals, and server-side fetches of
external images (over real TLS on loopback)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.certs import self_signed
from tests.conftest import Server, Tenant
from tests.providers.conftest import FAST, live_with
from tests.providers.fal_fake import FakeFal
from tests.surfaces.image_editor.test_editor import BASE, fail, png, process

TIERS = ("pro", "standard", "creative")
MATRIX = {
    "openai": {"pro", "standard"},
    "google": {"pro"},
    "fal": {"pro", "standard", "creative"},
    "kie": {"pro", "standard", "creative"},
}


def estimate(t: Tenant, tier: str, provider: str) -> httpx.Response:
    return t.client.post(
        f"{BASE}/estimate-credits", json={"model_tier": tier, "provider": provider}
    )


@pytest.mark.parametrize("provider", sorted(MATRIX))
def test_byok_matrix_cell_by_cell(server: Server, provider: str) -> None:
    t = server.tenant(plan="pro", credits=100)
    for tier in TIERS:
        if tier not in MATRIX[provider]:
            assert "not available with provider" in fail(estimate(t, tier, provider), 400)
            fail(process(t, model_tier=tier, provider=provider), 400)
        else:
            assert "no enabled" in fail(estimate(t, tier, provider), 422)
            fail(process(t, model_tier=tier, provider=provider), 422)
    r = t.client.put(f"/v1/provider-keys/{provider}", json={"api_key": f"sk-{provider}-own"})
    assert r.status_code == 201, r.text
    for tier in TIERS:
        if tier not in MATRIX[provider]:
            fail(estimate(t, tier, provider), 400)
            continue
        data = estimate(t, tier, provider).json()["data"]
        assert data["estimated_credits"] == 0 and data["byok_skips_credits"] is True
        assert data["can_proceed"] is True and data["provider"] == provider
        done = process(t, model_tier=tier, provider=provider)
        assert done.status_code == 201, done.text
        assert done.json()["data"]["provider_used"] == provider
        assert done.json()["data"]["credits_consumed"] == 0
    assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 100
    # Disabled: as good as absent.
    t.client.patch(f"/v1/provider-keys/{provider}", json={"enabled": False})
    tier = sorted(MATRIX[provider])[0]
    fail(estimate(t, tier, provider), 422)
    fail(process(t, model_tier=tier, provider=provider), 422)


def test_byok_needs_a_plan_that_includes_it(server: Server) -> None:
    t = server.tenant(plan="free")
    r = t.client.put("/v1/provider-keys/fal", json={"api_key": "fal-own-key-0001"})
    assert r.status_code == 201
    assert "plan" in fail(estimate(t, "creative", "fal"), 422)
    fail(process(t, model_tier="creative", provider="fal"), 422)
    fail(estimate(t, "creative", "azure"), 400)


def test_the_workspaces_own_key_reaches_the_provider_and_costs_nothing(server: Server) -> None:
    with FakeFal() as fal, server.sibling(own_database=True, fal_base_url=fal.url, **FAST) as s:
        t = s.tenant(mode="live", plan="pro", credits=100)
        # No platform key for fal here: only the workspace's own key can reach it.
        fail(process(t, model_tier="creative"), 500)
        assert not fal.requests
        t.client.put("/v1/provider-keys/fal", json={"api_key": "test-fal-key"})
        r = process(t, model_tier="creative", provider="fal", prompt="a red kite")
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert data["provider_used"] == "fal" and data["credits_consumed"] == 0
        (submit,) = fal.calls("POST")
        assert submit.path == "/fal-ai/qwen-image"
        assert submit.headers["authorization"] == "Key test-fal-key"
        assert submit.json["prompt"] == "a red kite"
        assert t.client.get("/v1/credits/balance").json()["data"]["balance"] == 100
        # A wrong own key is the workspace's problem: 422, and no other provider is tried.
        t.client.put("/v1/provider-keys/fal", json={"api_key": "wrong-fal-key-0001"})
        assert "fal" in fail(process(t, model_tier="creative", provider="fal"), 422)


def test_platform_keys_charge_credits_and_a_safety_refusal_is_422(server: Server) -> None:
    refusal = {"detail": [{"msg": "prompt flagged", "type": "content_policy_violation"}]}
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        r = process(t, model_tier="creative", prompt="a harbour")
        assert r.status_code == 201, r.text
        assert r.json()["data"]["provider_used"] == "system"
        assert r.json()["data"]["credits_consumed"] == 30
        fal.fail("/fal-ai/", 422, refusal, method="POST")
        assert "prompt flagged" in fail(process(t, model_tier="creative"), 422)
        balance = t.client.get("/v1/credits/balance").json()["data"]
        assert balance == {"balance": 5000 - 30, "held": 0, "available": 5000 - 30}
        jobs = t.client.get(f"{BASE}/jobs", params={"status": "failed"}).json()["data"]["jobs"]
        assert len(jobs) == 1 and "prompt flagged" in jobs[0]["error"]


# ----------------------------------------------------------------------------- external images


class _Images(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_images(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key, _ = self_signed("127.0.0.1", tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    _Images.routes = {
        "/photo.png": (200, {"Content-Type": "image/png"}, png(64, 40)),
        "/text": (200, {"Content-Type": "text/plain"}, b"not an image"),
        "/to-http": (302, {"Location": f"http://127.0.0.1:{port}/photo.png"}, b""),
        "/to-self": (302, {"Location": "/photo.png"}, b""),
        "/to-private": (302, {"Location": f"https://127.0.0.2:{port}/photo.png"}, b""),
        "/to-metadata": (302, {"Location": "https://169.254.169.254/latest/meta-data/"}, b""),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_external_image_is_fetched_and_edited(
    server: Server, tls_images: tuple[str, Path]
) -> None:
    origin, ca = tls_images
    # Only this one loopback address is trusted, as an operator trusts an intranet image store;
    # every other private address stays refused, also when a redirect leads there.
    with server.sibling(fetch_allowed_networks=["127.0.0.1/32"], fetch_ca_file=ca) as s:
        t = s.tenant()
        r = process(t, image_url=f"{origin}/photo.png", prompt="flip it")
        assert r.status_code == 201, r.text
        row = t.client.get(f"{BASE}/jobs/{r.json()['data']['job_id']}").json()["data"]
        assert row["image_url"] == f"{origin}/photo.png" and row["image_id"] is None
        result = s.client().get(r.json()["data"]["result_url"])
        assert result.status_code == 200
        # A redirect is followed, and every hop is checked again: to HTTP it is refused.
        assert process(t, image_url=f"{origin}/to-self").status_code == 201
        assert "image_url refused" in fail(process(t, image_url=f"{origin}/to-http"), 400)
        for hop in ("to-private", "to-metadata"):
            error = fail(process(t, image_url=f"{origin}/{hop}"), 400)
            assert "image_url refused" in error and "private_address" in error, error
        # What comes back must be an image.
        fail(process(t, image_url=f"{origin}/text"), 400)
        fail(process(t, image_url=f"{origin}/missing.png"), 400)
