"""The machine-readable docs describe the live server."""

from __future__ import annotations

from tests.conftest import Server


def test_openapi_lists_the_endpoints(server: Server) -> None:
    spec = server.client().get("/agent/openapi.json").json()
    assert spec == server.client().get("/openapi.json").json()
    for path in [
        "/v1/generate",
        "/v1/credits/balance",
        "/v1/credits/estimate",
        "/v1/models/list",
        "/v1/jobs/{job_id}",
        "/auth/moltbook/exchange",
    ]:
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # Every operation that authenticates says so; the public ones do not.
    assert spec["paths"]["/v1/generate"]["post"]["security"] == [{"HTTPBearer": []}]
    assert spec["paths"]["/api/v1/image-editor/process"]["post"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert "security" not in spec["paths"]["/auth/moltbook/exchange"]["post"]
    for path in [
        "/v2/image/agent",
        "/v2/agents",
        "/api/generate",
        "/api/status/{job_id}",
        "/api/chat",
        "/v1/webhooks",
        "/v1/jobs/{job_id}/stream",
        "/v1/usage",
    ]:
        assert path in spec["paths"], path
    # Routes that read their own body still document it, and the headers they read.
    generate = spec["paths"]["/v1/generate"]["post"]
    body = generate["requestBody"]["content"]["application/json"]["schema"]
    assert {"request_id", "model"} <= set(body["required"]) and "units" in body["properties"]
    assert [p["name"] for p in generate["parameters"]] == ["prefer"]
    estimate = spec["paths"]["/v1/credits/estimate"]["post"]["requestBody"]["content"]
    assert "model" in estimate["application/json"]["schema"]["required"]
    agent_body = spec["paths"]["/v2/image/agent"]["post"]["requestBody"]["content"]
    assert set(agent_body) == {"multipart/form-data", "application/json"}
    assert agent_body["multipart/form-data"]["schema"]["properties"]["images"]["maxItems"] == 10


def test_llms_txt_is_generated_from_routes_and_catalog(server: Server) -> None:
    for path in ("/llms.txt", "/agent/llms.txt"):
        r = server.client().get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert "POST /v1/generate" in text and "GET /v1/jobs/{job_id}" in text
        assert "nano-banana-pro [image]: 20 (4K = 40)" in text
        assert "veo3 [video]: 280 (1080p = 350" in text
        assert "2026-02-02-v1" in text
        assert f"{server.url}/agent/openapi.json" in text


def test_health_and_readiness(server: Server) -> None:
    assert server.client().get("/healthz").json() == {"status": "ok"}
    assert server.client().get("/readyz").json() == {"status": "ok"}
