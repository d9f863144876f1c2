"""Bearer auth, scopes and revocation across the native endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from mediagate.app import create_app
from mediagate.db.database import Database
from mediagate.runtime import Runtime
from tests.conftest import LiveServer, Server

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


@pytest.fixture
def watched(server: Server) -> Iterator[tuple[Server, Runtime]]:
    """Another app on the same database, whose runtime (and key cache) the test can see."""
    settings = server.settings.model_copy(update={"embedded_workers": False})
    runtime = Runtime.from_settings(settings)
    with LiveServer(create_app(runtime=runtime)) as live:
        other = Server(server.backend, live.url, settings, server.env, server.identity_key)
        yield other, runtime
        other.close()


def write(server: Server, sql: str, **params: Any) -> None:
    """A change made outside the server, as another process would make it."""

    async def run() -> None:
        db = Database(server.settings.resolved_database_url)
        try:
            async with db.writer() as session:
                await session.execute(text(sql), params)
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_cached_key_sees_plan_and_member_changes_at_once(
    watched: tuple[Server, Runtime],
) -> None:
    server, runtime = watched
    cache = runtime.db.principals
    t = server.tenant()
    server.cli("members", "add", "--workspace", t.name, "bot")
    bot = server.client(
        server.cli("keys", "create", "--workspace", t.name, "--member", "bot").strip()
    )

    hits = cache.hits
    for _ in range(3):
        assert t.client.get("/v1/usage").json()["data"]["plan"] == "enterprise"
    assert cache.hits == hits + 2  # the key was looked up once

    write(server, "UPDATE workspaces SET plan = 'pro' WHERE name = :name", name=t.name)
    assert t.client.get("/v1/usage").json()["data"]["plan"] == "pro"

    assert bot.get("/v1/members/me").json()["data"]["permissions"] == []
    assert bot.get("/v1/members/me").json()["data"]["permissions"] == []
    server.cli("members", "grant", "--workspace", t.name, "bot", "manage_keys")
    assert bot.get("/v1/members/me").json()["data"]["permissions"] == ["manage_keys"]

    write(
        server,
        "DELETE FROM members WHERE name = 'bot'"
        " AND workspace_id = (SELECT id FROM workspaces WHERE name = :name)",
        name=t.name,
    )
    assert bot.get("/v1/members/me").status_code == 401
    assert t.client.get("/v1/usage").status_code == 200

    write(server, "DELETE FROM workspaces WHERE name = :name", name=t.name)
    assert t.client.get("/v1/usage").status_code == 401


def test_unknown_route_is_404_in_the_envelope(server: Server) -> None:
    r = server.client().get("/v1/nope")
    assert r.status_code == 404 and r.json()["code"] == 404


def test_malformed_json_is_400(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["message"] == "validation_error"


@pytest.mark.parametrize("path", ["/v1/generate", "/v1/credits/estimate"])
@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b"{not json", "application/json", "body"),
        (b"", "application/json", "body"),
        (b"[1, 2]", "application/json", "body"),
        (b'{"model": "z-image"}', "text/plain", "body"),
        (b'{"model": "z-image"}', None, "body"),
        (b'{"model": 7}', "application/json; charset=utf-8", "model"),
    ],
)
def test_bodies_these_routes_read_themselves_fail_like_any_other(
    server: Server, path: str, content: bytes, content_type: str | None, field: str
) -> None:
    # /v1/generate and /v1/credits/estimate parse their own JSON (deps.read_json); what is
    # not a JSON object of the right shape is a 400 in the envelope, naming the field.
    t = server.tenant()
    headers = {"Content-Type": content_type} if content_type else {}
    r = t.client.post(path, content=content, headers=headers)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "validation_error" and body["data"] is None
    assert field in [e["field"] for e in body["errors"]], body


def test_the_key_is_checked_before_the_body(server: Server) -> None:
    r = server.client().post(
        "/v1/generate",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": "Bearer mg_test_nope"},
    )
    assert r.status_code == 401 and r.json()["message"] == "invalid_api_key"
    ok = server.tenant().client.post(
        "/v1/credits/estimate",
        content=b'{"model": "z-image"}',
        headers={"Content-Type": "application/vnd.api+json"},
    )
    assert ok.status_code == 200 and ok.json()["data"]["credits"] > 0
