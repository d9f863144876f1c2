"""The machine-readable docs describe the live server."""

from __future__ import annotations

import json
import uuid
from typing import Any

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


def _shape(value: Any) -> Any:
    """What a body holds, without its values: keys, types, the first item of a list."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_openapi_documents_errors_as_each_surface_sends_them(server: Server) -> None:
    spec = server.client().get("/openapi.json").json()
    # FastAPI's 422 body is never sent: invalid input is a 400 in the surface's envelope.
    assert "HTTPValidationError" not in json.dumps(spec)
    t = server.tenant(credits=0)
    anonymous = server.client()
    missing_job = str(uuid.uuid4())
    cases = [  # (method, path, documented path, client, JSON body, status)
        ("post", "/v1/generate", "/v1/generate", anonymous, {}, 401),
        ("post", "/v1/generate", "/v1/generate", t.client, {"model": "z-image"}, 400),
        (
            "post",
            "/v1/generate",
            "/v1/generate",
            t.client,
            {"model": "z-image", "prompt": "x", "request_id": missing_job},
            402,
        ),
        ("get", f"/v1/jobs/{missing_job}", "/v1/jobs/{job_id}", t.client, None, 404),
        ("post", "/v2/image/agent", "/v2/image/agent", anonymous, {}, 401),
        ("post", "/v2/image/agent", "/v2/image/agent", t.client, {}, 400),
        ("post", "/api/generate", "/api/generate", t.client, {}, 400),
        ("get", f"/api/status/{missing_job}", "/api/status/{job_id}", t.client, None, 404),
        ("post", "/api/v1/avatars/generate", "/api/v1/avatars/generate", anonymous, {}, 401),
        ("get", f"/api/v1/jobs/{missing_job}", "/api/v1/jobs/{job_id}", t.client, None, 404),
        ("post", "/api/v1/image-editor/process", "/api/v1/image-editor/process", t.client, {}, 400),
    ]
    for method, path, documented, client, body, status in cases:
        r = client.request(method.upper(), path, json=body)
        assert r.status_code == status, (path, r.text)
        response = spec["paths"][documented][method]["responses"][str(status)]
        example = response["content"]["application/json"]["example"]
        assert _shape(r.json()) == _shape(example), (path, status, r.json(), example)
    generate = spec["paths"]["/v1/generate"]["post"]["responses"]
    assert set(generate) == {"200", "400", "401", "402", "403", "409", "429"}
    # A 400 comes in two shapes: field errors in `errors`, or a refusal's details in `data`.
    invalid = generate["400"]["content"]["application/json"]["schema"]["properties"]
    assert (
        invalid["data"] == {} and invalid["errors"] == {} and invalid["code"]["type"] == "integer"
    )
    assert "404" in spec["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]
    assert set(spec["paths"]["/healthz"]["get"]["responses"]) == {"200"}
    process = spec["paths"]["/api/v1/image-editor/process"]["post"]["responses"]
    assert "provider" in process["422"]["description"]
