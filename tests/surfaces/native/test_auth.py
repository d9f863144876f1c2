"""Bearer auth, scopes and revocation across the native endpoints."""

from __future__ import annotations

import pytest

from tests.conftest import Server

ENDPOINTS = [
    ("POST", "/v1/generate", {"model": "z-image", "prompt": "x", "request_id": "r1"}),
    ("POST", "/v1/credits/estimate", {"model": "z-image"}),
    ("GET", "/v1/credits/balance", None),
    ("GET", "/v1/models/list", None),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_missing_or_bad_key_is_401_in_the_envelope(
    server: Server, method: str, path: str, body: object
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer mg_test_nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not-a-jwt"},
    ):
        r = server.client(**headers).request(method, path, json=body)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["code"] == 401 and r.json()["errors"] is None
        assert r.headers["www-authenticate"] == "Bearer"


def test_missing_scope_is_403(server: Server) -> None:
    t = server.tenant(scopes="chat,avatars")
    r = t.client.post("/v1/generate", json={"model": "z-image", "prompt": "x", "request_id": "r"})
    assert r.status_code == 403
    assert r.json()["message"] == "missing_scope" and r.json()["data"]["scope"] == "generate"
    assert t.client.get("/v1/credits/balance").status_code == 200


def test_revoked_key_stops_working_at_once(server: Server) -> None:
    t = server.tenant()
    assert t.client.get("/v1/credits/balance").status_code == 200
    server.cli("keys", "revoke", "--workspace", t.name, t.key[:16])
    assert t.client.get("/v1/credits/balance").status_code == 401


def test_unknown_route_is_404_in_the_envelope(server: Server) -> None:
    r = server.client().get("/v1/nope")
    assert r.status_code == 404 and r.json()["code"] == 404


def test_malformed_json_is_400(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["message"] == "validation_error"
