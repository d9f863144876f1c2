"""The endpoints API over real HTTP: CRUD, secrets shown once, isolation, scope, validation."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import Server

URL = "https://hooks.example.com/mediagate"


def _create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/webhooks", json={"url": URL, **body})
    assert r.status_code == 201, r.text
    envelope = r.json()
    assert envelope["code"] == 0 and envelope["message"] == "ok" and envelope["errors"] is None
    return envelope["data"]  # type: ignore[no-any-return]


def test_endpoint_lifecycle_shows_the_secret_only_on_create_and_rotate(hooks: Server) -> None:
    t = hooks.tenant()
    made = _create(t.client, event_types=["job.completed", "job.failed"], description="prod")
    assert set(made) == {
        "id",
        "url",
        "event_types",
        "description",
        "enabled",
        "disabled_reason",
        "secret",
        "created_at",
        "updated_at",
    }
    assert made["url"] == URL and made["event_types"] == ["job.completed", "job.failed"]
    assert made["enabled"] is True and made["description"] == "prod"
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"))) == 32

    listed = t.client.get("/v1/webhooks").json()["data"]["endpoints"]
    assert [e["id"] for e in listed] == [made["id"]]
    assert "secret" not in listed[0]
    one = t.client.get(f"/v1/webhooks/{made['id']}").json()["data"]
    assert "secret" not in one and one["url"] == URL

    r = t.client.patch(
        f"/v1/webhooks/{made['id']}",
        json={"event_types": [], "description": "all events", "url": URL + "/v2"},
    )
    assert r.status_code == 200, r.text
    patched = r.json()["data"]
    assert patched["event_types"] == [] and patched["description"] == "all events"
    assert patched["url"] == URL + "/v2" and "secret" not in patched
    off = t.client.patch(f"/v1/webhooks/{made['id']}", json={"enabled": False}).json()["data"]
    assert off["enabled"] is False and off["disabled_reason"]
    on = t.client.patch(f"/v1/webhooks/{made['id']}", json={"enabled": True}).json()["data"]
    assert on["enabled"] is True and on["disabled_reason"] is None

    rotated = t.client.post(f"/v1/webhooks/{made['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["data"]["secret"].startswith("whsec_")
    assert rotated.json()["data"]["secret"] != made["secret"]

    gone = t.client.delete(f"/v1/webhooks/{made['id']}")
    assert gone.status_code == 200
    assert gone.json()["data"] == {"id": made["id"], "deleted": True}
    missing = t.client.get(f"/v1/webhooks/{made['id']}")
    assert missing.status_code == 404 and missing.json()["message"] == "webhook_not_found"
    assert t.client.delete(f"/v1/webhooks/{made['id']}").status_code == 404


def test_the_default_secret_is_made_once_and_rotates(hooks: Server) -> None:
    t = hooks.tenant()
    first = t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
    assert first.startswith("whsec_")
    assert t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"] == first
    rotated = t.client.post("/v1/webhooks/default/rotate-secret").json()["data"]["secret"]
    assert rotated != first
    assert t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"] == rotated


def test_another_workspaces_endpoints_and_deliveries_are_not_found(hooks: Server) -> None:
    owner, other = hooks.tenant(), hooks.tenant()
    made = _create(owner.client)
    path = f"/v1/webhooks/{made['id']}"
    for method, url in [
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("POST", path + "/rotate-secret"),
        ("GET", "/v1/webhooks/deliveries/nope"),
        ("POST", "/v1/webhooks/deliveries/nope/redeliver"),
        ("GET", "/v1/webhooks/deliveries/nope/payload"),
    ]:
        r = other.client.request(method, url, json={} if method == "PATCH" else None)
        assert r.status_code == 404, (method, url, r.text)
    assert other.client.get("/v1/webhooks").json()["data"]["endpoints"] == []
    # The owner's secret is not the other's, and the endpoint is untouched.
    assert owner.client.get(path).json()["data"]["url"] == URL
    mine = owner.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
    theirs = other.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
    assert mine != theirs


def test_every_route_needs_the_webhooks_scope(hooks: Server) -> None:
    t = hooks.tenant(scopes="generate")
    for method, url, body in [
        ("POST", "/v1/webhooks", {"url": URL}),
        ("GET", "/v1/webhooks", None),
        ("GET", "/v1/webhooks/x", None),
        ("PATCH", "/v1/webhooks/x", {}),
        ("DELETE", "/v1/webhooks/x", None),
        ("POST", "/v1/webhooks/x/rotate-secret", None),
        ("GET", "/v1/webhooks/default/secret", None),
        ("POST", "/v1/webhooks/default/rotate-secret", None),
        ("GET", "/v1/webhooks/deliveries", None),
        ("GET", "/v1/webhooks/deliveries/x", None),
        ("POST", "/v1/webhooks/deliveries/x/redeliver", None),
    ]:
        r = t.client.request(method, url, json=body)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["message"] == "missing_scope" and r.json()["data"]["scope"] == "webhooks"
    assert hooks.client().get("/v1/webhooks").status_code == 401


def _field_error(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "validation_error" and body["data"] is None
    return str(body["errors"][0]["field"])


def test_validation_edges(hooks: Server) -> None:
    t = hooks.tenant()
    base = "https://hooks.example.com/"
    longest = base + "a" * (2000 - len(base))
    assert _create(t.client, url=longest)["url"] == longest
    assert _field_error(t.client.post("/v1/webhooks", json={"url": longest + "a"})) == "url"
    for url in ["ftp://hooks.example.com/x", "not a url", "https://user:pw@example.com/", ""]:
        assert _field_error(t.client.post("/v1/webhooks", json={"url": url})) == "url", url
    bad_type = t.client.post("/v1/webhooks", json={"url": URL, "event_types": ["job.exploded"]})
    assert _field_error(bad_type) == "event_types.0"
    long_text = t.client.post("/v1/webhooks", json={"url": URL, "description": "d" * 501})
    assert _field_error(long_text) == "description"
    assert _create(t.client, description="d" * 500)["description"] == "d" * 500
    assert _field_error(t.client.post("/v1/webhooks", json={"url": URL, "secret": "x"}))
    twice = _create(t.client, event_types=["job.failed", "job.failed"])
    assert twice["event_types"] == ["job.failed"]

    made = _create(t.client)
    path = f"/v1/webhooks/{made['id']}"
    assert _field_error(t.client.patch(path, json={"event_types": ["nope"]})) == "event_types.0"
    assert _field_error(t.client.patch(path, json={"url": longest + "a"})) == "url"
    # null means "leave as is"
    same = t.client.patch(path, json={"url": None, "description": None}).json()["data"]
    assert same["url"] == URL

    assert t.client.get("/v1/webhooks/deliveries", params={"limit": 0}).status_code == 400
    assert t.client.get("/v1/webhooks/deliveries", params={"limit": 201}).status_code == 400
    assert t.client.get("/v1/webhooks/deliveries", params={"status": "odd"}).status_code == 400
