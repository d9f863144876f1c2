"""Style and character presets of the image editor API: list, create, get, update, delete.

System presets are listed first and are read-only: PATCH or DELETE on one answers 403.
Reference images are editor image ids (from ``/upload-url`` or a ``/process`` result).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediagate.assets.signing import signed_path
from mediagate.editor.presets import CharacterPreset, PresetService, StylePreset
from mediagate.errors import InvalidRequest
from mediagate.runtime import Runtime
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep, base_url
from mediagate.surfaces.image_editor.access import require_editor
from mediagate.surfaces.image_editor.schemas import stamp, success

router = APIRouter(prefix="/api/v1/image-editor", tags=["image editor presets"])

MAX_NAME = 200
MAX_STYLE_TEXT = 2000
MAX_CHARACTER_DESCRIPTION = 4000
MAX_REFERENCE_IMAGES = 6
ObjectId = Annotated[str, Field(min_length=1, max_length=64)]


def _name(name: str | None) -> str | None:
    if name is not None and not name.strip():
        raise ValueError("name must not be blank")
    return name


def _distinct(ids: list[str] | None) -> list[str] | None:
    if ids and len(set(ids)) != len(ids):
        raise ValueError("reference_image_ids must not repeat an image")
    return ids


class StyleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = Field("", max_length=MAX_STYLE_TEXT)
    prompt_prefix: str = Field("", max_length=MAX_STYLE_TEXT)
    prompt_suffix: str = Field("", max_length=MAX_STYLE_TEXT)
    reference_image_id: ObjectId | None = None

    _check_name = field_validator("name")(_name)


class StyleUpdate(BaseModel):
    """Only the fields sent change; ``reference_image_id: null`` removes the reference."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    description: str | None = Field(None, max_length=MAX_STYLE_TEXT)
    prompt_prefix: str | None = Field(None, max_length=MAX_STYLE_TEXT)
    prompt_suffix: str | None = Field(None, max_length=MAX_STYLE_TEXT)
    reference_image_id: ObjectId | None = None

    _check_name = field_validator("name")(_name)


class Style(BaseModel):
    id: str
    name: str
    description: str
    prompt_prefix: str
    prompt_suffix: str
    reference_image_id: str | None
    reference_image_url: str | None
    is_system: bool
    created_at: str
    updated_at: str


class CharacterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = Field("", max_length=MAX_CHARACTER_DESCRIPTION)
    reference_image_ids: list[ObjectId] = Field(
        default_factory=list, max_length=MAX_REFERENCE_IMAGES
    )
    avatar_id: ObjectId | None = None

    _check_name = field_validator("name")(_name)
    _check_ids = field_validator("reference_image_ids")(_distinct)


class CharacterUpdate(BaseModel):
    """Only the fields sent change; ``avatar_id: null`` unlinks the avatar and
    ``reference_image_ids`` replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    description: str | None = Field(None, max_length=MAX_CHARACTER_DESCRIPTION)
    reference_image_ids: list[ObjectId] | None = Field(None, max_length=MAX_REFERENCE_IMAGES)
    avatar_id: ObjectId | None = None

    _check_name = field_validator("name")(_name)
    _check_ids = field_validator("reference_image_ids")(_distinct)


class Character(BaseModel):
    id: str
    name: str
    description: str
    reference_image_ids: list[str]
    reference_image_urls: list[str]
    avatar_id: str | None
    avatar_image_url: str | None
    is_system: bool
    created_at: str
    updated_at: str


def _changes(body: BaseModel, texts: tuple[str, ...]) -> dict[str, Any]:
    """The fields the client sent; a text field sent as null becomes empty."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("name must not be null", field="name")
    return {f: ("" if v is None and f in texts else v) for f, v in changes.items()}


class _Links:
    def __init__(self, request: Request, runtime: Runtime) -> None:
        self.root = base_url(request)
        self.key = runtime.settings.signing_key
        self.ttl = runtime.settings.asset_url_ttl_seconds

    def __call__(self, asset_id: str | None) -> str | None:
        return self.root + signed_path(self.key, asset_id, self.ttl) if asset_id else None


def _style(style: StylePreset, link: _Links) -> dict[str, Any]:
    return Style(
        id=style.id,
        name=style.name,
        description=style.description,
        prompt_prefix=style.prompt_prefix,
        prompt_suffix=style.prompt_suffix,
        reference_image_id=style.reference_image_id,
        reference_image_url=link(style.reference_asset_id),
        is_system=style.is_system,
        created_at=stamp(style.created_at),
        updated_at=stamp(style.updated_at),
    ).model_dump()


def _character(character: CharacterPreset, link: _Links) -> dict[str, Any]:
    return Character(
        id=character.id,
        name=character.name,
        description=character.description,
        reference_image_ids=list(character.reference_image_ids),
        reference_image_urls=[str(link(a)) for a in character.reference_asset_ids],
        avatar_id=character.avatar_id,
        avatar_image_url=link(character.avatar_asset_id),
        is_system=character.is_system,
        created_at=stamp(character.created_at),
        updated_at=stamp(character.updated_at),
    ).model_dump()


# ------------------------------------------------------------------------------ styles


@router.get("/styles", summary="List styles: the system's first, then the workspace's")
async def list_styles(
    request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.reader() as session:
        styles = await PresetService(session).list_styles(principal.workspace_id)
    link = _Links(request, runtime)
    return success({"styles": [_style(s, link) for s in styles]})


@router.post("/styles", status_code=201, summary="Create a style")
async def create_style(
    body: StyleCreate, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.writer() as session:
        style = await PresetService(session).create_style(
            principal.workspace_id, **body.model_dump()
        )
    return success(_style(style, _Links(request, runtime)))


@router.get("/styles/{style_id}", summary="Get a style")
async def get_style(
    style_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.reader() as session:
        style = await PresetService(session).get_style(principal.workspace_id, style_id)
    return success(_style(style, _Links(request, runtime)))


@router.patch("/styles/{style_id}", summary="Update a style (not a system one)")
async def update_style(
    style_id: str,
    body: StyleUpdate,
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    require_editor(principal)
    changes = _changes(body, ("description", "prompt_prefix", "prompt_suffix"))
    async with runtime.db.writer() as session:
        style = await PresetService(session).update_style(principal.workspace_id, style_id, changes)
    return success(_style(style, _Links(request, runtime)))


@router.delete("/styles/{style_id}", summary="Delete a style (not a system one)")
async def delete_style(
    style_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.writer() as session:
        await PresetService(session).delete_style(principal.workspace_id, style_id)
    return success({"id": style_id, "deleted": True})


# -------------------------------------------------------------------------- characters


@router.get("/characters", summary="List characters: the system's first, then the workspace's")
async def list_characters(
    request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.reader() as session:
        characters = await PresetService(session).list_characters(principal.workspace_id)
    link = _Links(request, runtime)
    return success({"characters": [_character(c, link) for c in characters]})


@router.post("/characters", status_code=201, summary="Create a character")
async def create_character(
    body: CharacterCreate, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.writer() as session:
        character = await PresetService(session).create_character(
            principal.workspace_id, **body.model_dump()
        )
    return success(_character(character, _Links(request, runtime)))


@router.get("/characters/{character_id}", summary="Get a character")
async def get_character(
    character_id: str, request: Request, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.reader() as session:
        character = await PresetService(session).get_character(principal.workspace_id, character_id)
    return success(_character(character, _Links(request, runtime)))


@router.patch("/characters/{character_id}", summary="Update a character (not a system one)")
async def update_character(
    character_id: str,
    body: CharacterUpdate,
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    require_editor(principal)
    changes = _changes(body, ("description",))
    async with runtime.db.writer() as session:
        character = await PresetService(session).update_character(
            principal.workspace_id, character_id, changes
        )
    return success(_character(character, _Links(request, runtime)))


@router.delete("/characters/{character_id}", summary="Delete a character (not a system one)")
async def delete_character(
    character_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    require_editor(principal)
    async with runtime.db.writer() as session:
        await PresetService(session).delete_character(principal.workspace_id, character_id)
    return success({"id": character_id, "deleted": True})
