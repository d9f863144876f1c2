"""Members and permissions through the real CLI and /v1/members over HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from mediagate.auth.principal import Principal
from mediagate.errors import Forbidden
from mediagate.workspaces.service import OWNER_PERMISSIONS
from tests.conftest import AUDIENCE, ISSUER, Server, Tenant


def _members(t: Tenant) -> dict[str, dict[str, Any]]:
    r = t.client.get("/v1/members")
    assert r.status_code == 200, r.text
    return {m["name"]: m for m in r.json()["data"]["members"]}


def _add(server: Server, t: Tenant, name: str, *extra: str) -> str:
    out = server.cli("members", "add", "--workspace", t.name, name, *extra)
    return out.strip().rsplit(" ", 1)[-1]


def test_the_owner_keeps_its_permissions(server: Server) -> None:
    t = server.tenant()
    members = _members(t)
    assert list(members) == ["owner"]
    owner = members["owner"]
    assert owner["role"] == "owner" and owner["permissions"] == OWNER_PERMISSIONS
    me = t.client.get("/v1/members/me").json()["data"]
    assert me["id"] == owner["id"] and me["permissions"] == sorted(OWNER_PERMISSIONS)


def test_cli_adds_grants_and_revokes(server: Server) -> None:
    t = server.tenant()
    bot_id = _add(server, t, "bot")
    bot = _members(t)["bot"]
    assert (bot["id"], bot["role"], bot["permissions"]) == (bot_id, "member", [])
    listing = server.cli("members", "list", "--workspace", t.name)
    assert bot_id in listing and "owner" in listing

    server.cli("members", "grant", "--workspace", t.name, "bot", "access_image_editor")
    server.cli("members", "grant", "--workspace", t.name, bot_id, "manage_keys")
    server.cli("members", "grant", "--workspace", t.name, "bot", "manage_keys")  # no-op
    assert _members(t)["bot"]["permissions"] == ["access_image_editor", "manage_keys"]
    server.cli("members", "revoke", "--workspace", t.name, "bot", "access_image_editor")
    assert _members(t)["bot"]["permissions"] == ["manage_keys"]

    _add(server, t, "editor", "--permissions", "manage_billing,access_image_editor")
    assert _members(t)["editor"]["permissions"] == ["access_image_editor", "manage_billing"]


def test_cli_refuses_unknown_permissions_members_and_duplicates(server: Server) -> None:
    t = server.tenant()
    _add(server, t, "bot")
    for args in (
        ["members", "add", "--workspace", t.name, "other", "--permissions", "root"],
        ["members", "add", "--workspace", t.name, "bot"],
        ["members", "grant", "--workspace", t.name, "bot", "be_admin"],
        ["members", "revoke", "--workspace", t.name, "bot", "be_admin"],
        ["members", "grant", "--workspace", t.name, "nobody", "manage_keys"],
        ["members", "list", "--workspace", "no-such-workspace"],
        ["keys", "create", "--workspace", t.name, "--member", "nobody"],
    ):
        with pytest.raises(AssertionError, match="failed"):
            server.cli(*args)
    assert set(_members(t)) == {"owner", "bot"}


def test_api_replaces_permissions(server: Server) -> None:
    t = server.tenant()
    bot_id = _add(server, t, "bot")
    r = t.client.patch(f"/v1/members/{bot_id}", json={"permissions": ["manage_billing"]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["permissions"] == ["manage_billing"]
    assert _members(t)["bot"]["permissions"] == ["manage_billing"]
    assert "manage_billing" in server.cli("members", "list", "--workspace", t.name)

    r = t.client.patch(f"/v1/members/{bot_id}", json={"permissions": ["manage_billing", "root"]})
    assert r.status_code == 400 and r.json()["message"] == "unknown_permission"
    assert r.json()["data"]["permissions"] == ["root"]
    r = t.client.patch(f"/v1/members/{bot_id}", json={"role": "owner", "permissions": []})
    assert r.status_code == 400 and r.json()["message"] == "validation_error"
    r = t.client.patch(f"/v1/members/{bot_id}", json={"permissions": []})
    assert r.status_code == 200 and r.json()["data"]["permissions"] == []


def test_another_workspaces_member_is_404(server: Server) -> None:
    a, b = server.tenant(), server.tenant()
    bot_id = _add(server, a, "bot")
    r = b.client.patch(f"/v1/members/{bot_id}", json={"permissions": ["manage_keys"]})
    assert r.status_code == 404 and r.json()["message"] == "member_not_found"
    assert b.client.patch("/v1/members/nope", json={"permissions": []}).status_code == 404
    assert "bot" not in _members(b)
    assert _members(a)["bot"]["permissions"] == []


def test_admin_scope_is_required(server: Server) -> None:
    t = server.tenant(scopes="generate,chat")
    owner_id = t.client.get("/v1/members/me").json()["data"]["id"]
    for method, path, body in (
        ("GET", "/v1/members", None),
        ("PATCH", f"/v1/members/{owner_id}", {"permissions": []}),
    ):
        r = t.client.request(method, path, json=body)
        assert r.status_code == 403, r.text
        assert r.json()["message"] == "missing_scope" and r.json()["data"]["scope"] == "admin"


def test_a_key_carries_its_members_permissions(server: Server) -> None:
    t = server.tenant()
    bot_id = _add(server, t, "bot")
    key = server.cli(
        "keys", "create", "--workspace", t.name, "--member", "bot", "--mode", "sandbox"
    ).strip()
    bot = server.client(key)
    me = bot.get("/v1/members/me").json()["data"]
    assert me["id"] == bot_id and me["role"] == "member"
    assert "access_image_editor" not in me["permissions"] and me["permissions"] == []

    # Permissions are read with the key on every request: a grant applies at once.
    server.cli("members", "grant", "--workspace", t.name, "bot", "access_image_editor")
    assert bot.get("/v1/members/me").json()["data"]["permissions"] == ["access_image_editor"]
    # The owner's key is unaffected.
    assert "access_image_editor" in t.client.get("/v1/members/me").json()["data"]["permissions"]


def test_an_access_token_maps_to_its_member(server: Server) -> None:
    now = int(time.time())
    identity = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"agent-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "exp": now + 300,
        },
        server.identity_key,
        algorithm="RS256",
    )
    data = server.client().post("/auth/moltbook/exchange", json={"identity_token": identity})
    assert data.status_code == 200, data.text
    token = data.json()["data"]
    me = server.client(token["access_token"]).get("/v1/members/me").json()["data"]
    assert me["id"] == token["member_id"] and me["permissions"] == sorted(OWNER_PERMISSIONS)


def test_require_permission() -> None:
    principal = Principal(
        "ws", "free", "m", frozenset({"chat"}), "live", permissions=frozenset({"manage_keys"})
    )
    principal.require_permission("manage_keys")
    with pytest.raises(Forbidden) as caught:
        principal.require_permission("access_image_editor")
    assert caught.value.status == 403 and caught.value.code == "missing_permission"
    assert caught.value.details == {"permission": "access_image_editor"}
