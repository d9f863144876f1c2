"""Style and character presets of the image editor API over real HTTP: CRUD, every limit at
its edge, read-only system presets, workspace isolation, scope and permission, reference
images uploaded through /upload-url, and a saved avatar used as a character."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select

from mediagate.db.database import Database
from mediagate.editor.presets import (
    ResolvedCharacter,
    ResolvedStyle,
    resolve_character,
    resolve_style,
)
from mediagate.workspaces.models import Workspace
from tests.conftest import Server, Tenant, finished, poll

BASE = "/api/v1/image-editor"
WATERCOLOR = "9c572712-ccad-44ea-b5a8-06387500bb73"
MARA = "542604f1-b03c-48ef-abcc-0fb5cdf2d83d"


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is True
    return body["data"]


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and set(body) == {"success", "error"}, body
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def _upload(client: httpx.Client, color: tuple[int, int, int] = (30, 120, 200)) -> str:
    """An editor image id whose bytes have arrived."""
    announced = _ok(
        client.post(f"{BASE}/upload-url", json={"file_name": "ref.png", "mime_type": "image/png"}),
        201,
    )
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "PNG")
    put = httpx.put(
        announced["upload_url"], content=buf.getvalue(), headers={"Content-Type": "image/png"}
    )
    assert put.status_code == 200, put.text
    return str(announced["image_id"])


def _announced_only(client: httpx.Client) -> str:
    announced = _ok(
        client.post(f"{BASE}/upload-url", json={"file_name": "x.png", "mime_type": "image/png"}),
        201,
    )
    return str(announced["image_id"])


async def _resolve(
    server: Server, tenant: Tenant, style_id: str | None, character_id: str | None
) -> tuple[ResolvedStyle | None, ResolvedCharacter | None]:
    db = Database(server.settings.resolved_database_url)
    try:
        async with db.reader() as session:
            workspace_id = await session.scalar(
                select(Workspace.id).where(Workspace.name == tenant.name)
            )
            assert workspace_id is not None
            style = await resolve_style(session, workspace_id, style_id) if style_id else None
            character = (
                await resolve_character(session, workspace_id, character_id)
                if character_id
                else None
            )
            return style, character
    finally:
        await db.dispose()


def test_system_presets_are_listed_first_and_read_only(server: Server) -> None:
    t = server.tenant()
    own = _ok(t.client.post(f"{BASE}/styles", json={"name": "Mine"}), 201)
    styles = _ok(t.client.get(f"{BASE}/styles"))["styles"]
    names = [s["name"] for s in styles]
    assert {"Watercolor", "Cinematic", "Line art", "Product photo"} <= set(names)
    assert [s["is_system"] for s in styles] == [True] * (len(styles) - 1) + [False]
    assert styles[-1]["id"] == own["id"]
    watercolor = _ok(t.client.get(f"{BASE}/styles/{WATERCOLOR}"))
    assert watercolor["prompt_prefix"] and watercolor["prompt_suffix"]
    assert watercolor["reference_image_id"] is None and watercolor["is_system"] is True
    assert watercolor["created_at"].endswith("Z")

    _error(t.client.patch(f"{BASE}/styles/{WATERCOLOR}", json={"name": "Mine now"}), 403)
    _error(t.client.delete(f"{BASE}/styles/{WATERCOLOR}"), 403)
    assert _ok(t.client.get(f"{BASE}/styles/{WATERCOLOR}"))["name"] == "Watercolor"

    characters = _ok(t.client.get(f"{BASE}/characters"))["characters"]
    assert characters and all(c["is_system"] for c in characters)
    mara = _ok(t.client.get(f"{BASE}/characters/{MARA}"))
    assert mara["description"] and mara["reference_image_ids"] == []
    _error(t.client.patch(f"{BASE}/characters/{MARA}", json={"description": "x"}), 403)
    _error(t.client.delete(f"{BASE}/characters/{MARA}"), 403)

    # Every workspace sees the same system presets.
    other = server.tenant()
    assert _ok(other.client.get(f"{BASE}/styles/{WATERCOLOR}")) == watercolor

    style, character = asyncio.run(_resolve(server, t, WATERCOLOR, MARA))
    assert style is not None and style.is_system and style.reference_asset_id is None
    assert style.apply("a fox") == f"{style.prompt_prefix} a fox {style.prompt_suffix}"
    assert character is not None and character.is_system and character.reference_asset_ids == ()
    assert character.description == mara["description"]


def test_style_crud(server: Server) -> None:
    t = server.tenant()
    created = _ok(
        t.client.post(
            f"{BASE}/styles",
            json={
                "name": "Brand look",
                "description": "our house style",
                "prompt_prefix": "In our brand colors,",
                "prompt_suffix": "flat vector, teal and coral",
            },
        ),
        201,
    )
    assert created["is_system"] is False and created["reference_image_id"] is None
    assert created["reference_image_url"] is None
    assert created["created_at"] == created["updated_at"]
    style_id = created["id"]
    assert _ok(t.client.get(f"{BASE}/styles/{style_id}")) == created

    updated = _ok(
        t.client.patch(f"{BASE}/styles/{style_id}", json={"prompt_suffix": "", "name": "B2"})
    )
    assert updated["name"] == "B2" and updated["prompt_suffix"] == ""
    assert updated["prompt_prefix"] == "In our brand colors,"  # untouched
    assert updated["updated_at"] >= created["updated_at"]
    assert (
        _ok(t.client.patch(f"{BASE}/styles/{style_id}", json={"description": None}))["description"]
        == ""
    )
    _error(t.client.patch(f"{BASE}/styles/{style_id}", json={"name": None}), 400)
    _error(t.client.patch(f"{BASE}/styles/{style_id}", json={"is_system": True}), 400)

    style, _ = asyncio.run(_resolve(server, t, style_id, None))
    assert style == ResolvedStyle(style_id, "B2", "In our brand colors,", "", None, False)
    assert style.apply("  a cat ") == "In our brand colors, a cat"

    assert _ok(t.client.delete(f"{BASE}/styles/{style_id}")) == {"id": style_id, "deleted": True}
    _error(t.client.get(f"{BASE}/styles/{style_id}"), 404)
    _error(t.client.delete(f"{BASE}/styles/{style_id}"), 404)
    _error(t.client.get(f"{BASE}/styles/not-a-uuid"), 404)
    assert asyncio.run(_resolve(server, t, style_id, None))[0] is None


def test_style_limits_at_their_edges(server: Server) -> None:
    t = server.tenant()
    edge = {
        "name": "n" * 200,
        "description": "d" * 2000,
        "prompt_prefix": "p" * 2000,
        "prompt_suffix": "s" * 2000,
    }
    style = _ok(t.client.post(f"{BASE}/styles", json=edge), 201)
    assert style["name"] == edge["name"] and style["prompt_prefix"] == edge["prompt_prefix"]
    for field, limit in [
        ("name", 200),
        ("description", 2000),
        ("prompt_prefix", 2000),
        ("prompt_suffix", 2000),
    ]:
        message = _error(
            t.client.post(f"{BASE}/styles", json={**edge, field: "x" * (limit + 1)}), 400
        )
        assert field in message
        _error(t.client.patch(f"{BASE}/styles/{style['id']}", json={field: "x" * (limit + 1)}), 400)
    _error(t.client.post(f"{BASE}/styles", json={"name": ""}), 400)
    _error(t.client.post(f"{BASE}/styles", json={"name": "   "}), 400)
    _error(t.client.post(f"{BASE}/styles", json={}), 400)
    _error(t.client.post(f"{BASE}/styles", json={"name": "x", "colour": "red"}), 400)


def test_character_crud_and_limits(server: Server) -> None:
    t = server.tenant()
    edge = {"name": "c" * 200, "description": "d" * 4000}
    character = _ok(t.client.post(f"{BASE}/characters", json=edge), 201)
    assert character["reference_image_ids"] == [] and character["avatar_id"] is None
    assert character["is_system"] is False
    for field, limit in [("name", 200), ("description", 4000)]:
        over = {**edge, field: "x" * (limit + 1)}
        assert field in _error(t.client.post(f"{BASE}/characters", json=over), 400)
    seven = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(7)]
    message = _error(
        t.client.post(f"{BASE}/characters", json={"name": "x", "reference_image_ids": seven}), 400
    )
    assert "reference_image_ids" in message
    _error(
        t.client.post(
            f"{BASE}/characters", json={"name": "x", "reference_image_ids": seven[:1] * 2}
        ),
        400,
    )

    cid = character["id"]
    changed = _ok(t.client.patch(f"{BASE}/characters/{cid}", json={"name": "Zed"}))
    assert changed["name"] == "Zed" and changed["description"] == edge["description"]
    listed = _ok(t.client.get(f"{BASE}/characters"))["characters"]
    assert listed[-1] == changed and listed[0]["is_system"] is True
    _, resolved = asyncio.run(_resolve(server, t, None, cid))
    assert resolved == ResolvedCharacter(cid, "Zed", edge["description"], (), None, False)
    _ok(t.client.delete(f"{BASE}/characters/{cid}"))
    _error(t.client.get(f"{BASE}/characters/{cid}"), 404)
    _error(t.client.patch(f"{BASE}/characters/{cid}", json={"name": "again"}), 404)


def test_reference_images(server: Server) -> None:
    t = server.tenant()
    other = server.tenant()
    six = [_upload(t.client, (i * 40, 80, 160)) for i in range(6)]

    style = _ok(
        t.client.post(f"{BASE}/styles", json={"name": "Ref", "reference_image_id": six[0]}), 201
    )
    assert style["reference_image_id"] == six[0]
    assert "/v1/assets/" in style["reference_image_url"]
    image = httpx.get(style["reference_image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    resolved, _ = asyncio.run(_resolve(server, t, style["id"], None))
    assert resolved is not None and resolved.reference_asset_id in style["reference_image_url"]
    cleared = _ok(t.client.patch(f"{BASE}/styles/{style['id']}", json={"reference_image_id": None}))
    assert cleared["reference_image_id"] is None and cleared["reference_image_url"] is None

    character = _ok(
        t.client.post(f"{BASE}/characters", json={"name": "Six", "reference_image_ids": six}), 201
    )
    assert character["reference_image_ids"] == six
    assert len(character["reference_image_urls"]) == 6
    _, resolved_character = asyncio.run(_resolve(server, t, None, character["id"]))
    assert resolved_character is not None
    assert len(resolved_character.reference_asset_ids) == 6
    fewer = _ok(
        t.client.patch(
            f"{BASE}/characters/{character['id']}", json={"reference_image_ids": six[4:]}
        )
    )
    assert fewer["reference_image_ids"] == six[4:]

    # Another workspace's image is unknown here; an announced image without bytes is not usable.
    theirs = _upload(other.client)
    message = _error(
        t.client.post(f"{BASE}/styles", json={"name": "x", "reference_image_id": theirs}), 404
    )
    assert theirs in message
    _error(
        t.client.post(f"{BASE}/characters", json={"name": "x", "reference_image_ids": [theirs]}),
        404,
    )
    pending = _announced_only(t.client)
    _error(t.client.post(f"{BASE}/styles", json={"name": "x", "reference_image_id": pending}), 400)
    _error(
        t.client.patch(
            f"{BASE}/characters/{character['id']}", json={"reference_image_ids": [pending]}
        ),
        400,
    )
    # The failed update changed nothing.
    assert _ok(t.client.get(f"{BASE}/characters/{character['id']}")) == fewer


def test_presets_are_private_to_their_workspace(server: Server) -> None:
    owner, stranger = server.tenant(), server.tenant()
    style = _ok(owner.client.post(f"{BASE}/styles", json={"name": "Private"}), 201)
    character = _ok(owner.client.post(f"{BASE}/characters", json={"name": "Private"}), 201)
    for path in (f"{BASE}/styles/{style['id']}", f"{BASE}/characters/{character['id']}"):
        _error(stranger.client.get(path), 404)
        _error(stranger.client.patch(path, json={"name": "mine"}), 404)
        _error(stranger.client.delete(path), 404)
    assert all(s["is_system"] for s in _ok(stranger.client.get(f"{BASE}/styles"))["styles"])
    assert all(c["is_system"] for c in _ok(stranger.client.get(f"{BASE}/characters"))["characters"])
    assert asyncio.run(_resolve(server, stranger, style["id"], character["id"])) == (None, None)
    assert _ok(owner.client.get(f"{BASE}/styles/{style['id']}"))["name"] == "Private"


def test_scope_and_permission_are_required(server: Server) -> None:
    t = server.tenant(scopes="generate,avatars")
    for method, path in [
        ("GET", "/styles"),
        ("POST", "/styles"),
        ("GET", f"/styles/{WATERCOLOR}"),
        ("PATCH", f"/styles/{WATERCOLOR}"),
        ("DELETE", f"/styles/{WATERCOLOR}"),
        ("GET", "/characters"),
        ("POST", "/characters"),
        ("GET", f"/characters/{MARA}"),
    ]:
        body = {"name": "x"} if method in ("POST", "PATCH") else None
        assert "image_editor" in _error(t.client.request(method, BASE + path, json=body), 403)
    _error(server.client().get(f"{BASE}/styles"), 401)

    # A key with the scope whose member lacks the permission.
    server.cli("members", "add", "--workspace", t.name, "intern")
    key = server.cli(
        "keys", "create", "--workspace", t.name, "--mode", "sandbox", "--member", "intern"
    ).strip()
    intern = server.client(key)
    assert "access_image_editor" in _error(intern.get(f"{BASE}/styles"), 403)
    server.cli("members", "grant", "--workspace", t.name, "intern", "access_image_editor")
    assert _ok(intern.get(f"{BASE}/styles"))["styles"]


def _saved_avatar(client: httpx.Client, name: str) -> dict[str, Any]:
    r = client.post("/api/v1/avatars/generate", json={"prompt": "a cheerful lighthouse keeper"})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = poll(lambda: client.get(f"/api/v1/jobs/{job_id}").json(), finished, 60)
    assert job["status"] == "completed", job
    r = client.post("/api/v1/avatars/save", json={"job_id": job_id, "name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_saved_avatar_is_a_character(server: Server) -> None:
    t = server.tenant()
    avatar = _saved_avatar(t.client, "Keeper Ada")
    reference = _upload(t.client)
    character = _ok(
        t.client.post(
            f"{BASE}/characters",
            json={"name": "Ada", "avatar_id": avatar["id"], "reference_image_ids": [reference]},
        ),
        201,
    )
    assert character["avatar_id"] == avatar["id"]
    assert "/v1/assets/" in character["avatar_image_url"]
    assert httpx.get(character["avatar_image_url"]).status_code == 200

    _, as_character = asyncio.run(_resolve(server, t, None, character["id"]))
    assert as_character is not None and as_character.avatar_id == avatar["id"]
    # The avatar's image comes first, then the character's own references.
    assert len(as_character.reference_asset_ids) == 2
    assert as_character.reference_asset_ids[0] in character["avatar_image_url"]

    # The avatar's own id works as a character too.
    _, direct = asyncio.run(_resolve(server, t, None, avatar["id"]))
    assert direct is not None
    assert (direct.id, direct.name, direct.description) == (
        avatar["id"],
        "Keeper Ada",
        "Keeper Ada",
    )
    assert direct.reference_asset_ids == (as_character.reference_asset_ids[0],)

    unlinked = _ok(t.client.patch(f"{BASE}/characters/{character['id']}", json={"avatar_id": None}))
    assert unlinked["avatar_id"] is None and unlinked["avatar_image_url"] is None

    # Another workspace cannot link to it, nor use it as a character.
    other = server.tenant()
    _error(
        other.client.post(f"{BASE}/characters", json={"name": "x", "avatar_id": avatar["id"]}), 404
    )
    assert asyncio.run(_resolve(server, other, None, avatar["id"]))[1] is None
