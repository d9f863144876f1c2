"""Workspace provider keys (BYOK) through /v1/provider-keys, the real CLI and the resolver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from mediagate.byok.models import ProviderKey
from mediagate.cli import app as cli_app
from mediagate.runtime import Runtime
from mediagate.webhooks.secrets import SecretBox
from mediagate.workspaces.repository import WorkspaceRepository
from tests.conftest import Server, Tenant

T = TypeVar("T")


def _secret(tag: str = "") -> str:
    return f"sk-{tag}{uuid.uuid4().hex}{uuid.uuid4().hex[:6]}"


def _read(server: Server, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run a read on the test database through the server's own runtime wiring."""

    async def main() -> T:
        runtime = Runtime.from_settings(server.settings)
        try:
            async with runtime.db.reader() as session:
                return await query(session)
        finally:
            await runtime.db.dispose()

    return asyncio.run(main())


def _workspace_id(server: Server, t: Tenant) -> str:
    async def query(session: AsyncSession) -> str:
        ws = await WorkspaceRepository(session).by_name(t.name)
        assert ws is not None
        return ws.id

    return _read(server, query)


def _keys(t: Tenant) -> dict[str, dict[str, Any]]:
    r = t.client.get("/v1/provider-keys")
    assert r.status_code == 200, r.text
    return {k["provider"]: k for k in r.json()["data"]["provider_keys"]}


def test_set_and_list_never_show_the_key(server: Server) -> None:
    t = server.tenant()
    secret = _secret()
    r = t.client.put("/v1/provider-keys/openai", json={"api_key": secret})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["provider"] == "openai" and data["last4"] == secret[-4:] and data["enabled"]
    assert secret not in r.text
    listing = t.client.get("/v1/provider-keys")
    assert secret not in listing.text
    assert set(_keys(t)) == {"openai"}

    replacement = _secret("new-")
    r = t.client.put("/v1/provider-keys/openai", json={"api_key": replacement, "enabled": False})
    assert r.status_code == 200 and replacement not in r.text
    replaced = r.json()["data"]
    assert replaced["last4"] == replacement[-4:] and replaced["enabled"] is False
    assert replaced["created_at"] == data["created_at"]
    assert replaced["updated_at"] >= data["updated_at"]

    cli_secret = _secret("cli-")
    out = server.cli("provider-keys", "set", "--workspace", t.name, "fal", cli_secret)
    assert cli_secret not in out and cli_secret[-4:] in out
    out = server.cli("provider-keys", "list", "--workspace", t.name)
    assert "openai" in out and "fal" in out and "disabled" in out
    assert all(s not in out for s in (secret, replacement, cli_secret))
    assert _keys(t)["fal"]["enabled"] is True

    async def stored(session: AsyncSession) -> dict[str, str]:
        rows = await session.execute(select(ProviderKey.provider, ProviderKey.key_encrypted))
        return {p: e for p, e in rows if p in ("openai", "fal")}

    box = SecretBox(server.settings.signing_key, "provider-keys")
    columns = _read(server, stored)
    for provider, plain in (("openai", replacement), ("fal", cli_secret)):
        assert plain not in columns[provider] and plain[-8:] not in columns[provider]
        assert box.decrypt(columns[provider]) == plain


def test_enable_disable_and_delete(server: Server) -> None:
    t = server.tenant()
    assert t.client.put("/v1/provider-keys/xai", json={"api_key": _secret()}).status_code == 201
    r = t.client.patch("/v1/provider-keys/xai", json={"enabled": False})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False
    assert _keys(t)["xai"]["enabled"] is False
    r = t.client.patch("/v1/provider-keys/xai", json={"enabled": True})
    assert r.status_code == 200 and _keys(t)["xai"]["enabled"] is True

    r = t.client.delete("/v1/provider-keys/xai")
    assert r.status_code == 200 and r.json()["data"] == {"provider": "xai", "deleted": True}
    assert _keys(t) == {}
    for method, body in (("DELETE", None), ("PATCH", {"enabled": True})):
        r = t.client.request(method, "/v1/provider-keys/xai", json=body)
        assert r.status_code == 404 and r.json()["message"] == "provider_key_not_found"


def test_bad_requests_are_400(server: Server) -> None:
    t = server.tenant()
    for method, path, body, code in (
        ("PUT", "/v1/provider-keys/acme", {"api_key": _secret()}, "unknown_provider"),
        ("PATCH", "/v1/provider-keys/acme", {"enabled": False}, "unknown_provider"),
        ("DELETE", "/v1/provider-keys/acme", None, "unknown_provider"),
        ("PUT", "/v1/provider-keys/openai", {"api_key": "short"}, "validation_error"),
        ("PUT", "/v1/provider-keys/openai", {}, "validation_error"),
        (
            "PUT",
            "/v1/provider-keys/openai",
            {"api_key": "sk with spaces"},
            "invalid_api_key_format",
        ),
        ("PUT", "/v1/provider-keys/kie", {"api_key": _secret(), "x": 1}, "validation_error"),
        ("PATCH", "/v1/provider-keys/openai", {}, "validation_error"),
    ):
        r = t.client.request(method, path, json=body)
        assert r.status_code == 400, (method, path, r.text)
        assert r.json()["message"] == code
    assert _keys(t) == {}


def test_another_workspace_cannot_see_or_change_them(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    assert a.client.put("/v1/provider-keys/google", json={"api_key": _secret()}).status_code == 201
    assert _keys(b) == {}
    for method, body in (("PATCH", {"enabled": False}), ("DELETE", None)):
        r = b.client.request(method, "/v1/provider-keys/google", json=body)
        assert r.status_code == 404, r.text
    before = _keys(a)["google"]
    assert before["enabled"] is True
    # b setting its own google key leaves a's alone.
    assert b.client.put("/v1/provider-keys/google", json={"api_key": _secret()}).status_code == 201
    assert _keys(a)["google"] == before


def test_admin_scope_is_required(server: Server) -> None:
    t = server.tenant(scopes="generate,image_editor")
    for method, body in (
        ("GET", None),
        ("PUT", {"api_key": _secret()}),
        ("PATCH", {"enabled": False}),
        ("DELETE", None),
    ):
        path = "/v1/provider-keys" if method == "GET" else "/v1/provider-keys/openai"
        r = t.client.request(method, path, json=body)
        assert r.status_code == 403, (method, r.text)
        assert r.json()["message"] == "missing_scope" and r.json()["data"]["scope"] == "admin"


def test_cli_enable_disable_delete(server: Server) -> None:
    t = server.tenant()
    server.cli("provider-keys", "set", "--workspace", t.name, "kie", _secret())
    assert "kie key disabled" in server.cli(
        "provider-keys", "disable", "--workspace", t.name, "kie"
    )
    assert _keys(t)["kie"]["enabled"] is False
    server.cli("provider-keys", "enable", "--workspace", t.name, "kie")
    assert _keys(t)["kie"]["enabled"] is True
    piped = _secret("stdin-")
    result = CliRunner().invoke(
        cli_app,
        ["provider-keys", "set", "--workspace", t.name, "kie", "-"],
        input=piped + "\n",
        env=server.env,
    )
    assert result.exit_code == 0 and piped not in result.output
    assert _keys(t)["kie"]["last4"] == piped[-4:]
    server.cli("provider-keys", "delete", "--workspace", t.name, "kie")
    assert _keys(t) == {}
    for args in (
        ["provider-keys", "delete", "--workspace", t.name, "kie"],
        ["provider-keys", "enable", "--workspace", t.name, "kie"],
        ["provider-keys", "set", "--workspace", t.name, "acme", _secret()],
        ["provider-keys", "set", "--workspace", t.name, "openai", "short"],
        ["provider-keys", "list", "--workspace", "no-such-workspace"],
    ):
        with pytest.raises(AssertionError, match="failed"):
            server.cli(*args)


def test_the_resolver_returns_the_key_only_when_enabled(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    a_id, b_id = _workspace_id(server, a), _workspace_id(server, b)
    secret = _secret()
    assert a.client.put("/v1/provider-keys/openai", json={"api_key": secret}).status_code == 201

    def resolve(workspace_id: str, provider: str) -> str | None:
        async def main() -> str | None:
            runtime = Runtime.from_settings(server.settings)  # the wiring the server uses
            try:
                assert runtime.providers is not None and runtime.providers.byok_keys
                return await runtime.providers.byok_keys(workspace_id, provider)
            finally:
                await runtime.db.dispose()

        return asyncio.run(main())

    assert resolve(a_id, "openai") == secret
    assert resolve(a_id, "google") is None
    assert resolve(b_id, "openai") is None
    a.client.patch("/v1/provider-keys/openai", json={"enabled": False})
    assert resolve(a_id, "openai") is None
    a.client.patch("/v1/provider-keys/openai", json={"enabled": True})
    assert resolve(a_id, "openai") == secret
    a.client.delete("/v1/provider-keys/openai")
    assert resolve(a_id, "openai") is None
